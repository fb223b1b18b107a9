import dgram from 'node:dgram';
import http from 'node:http';
import dnsPacket from 'dns-packet';
import { categoryIds, type ManifestCategory } from '../filtering/lists-service.js';
import type { FilterService } from '../filtering/service.js';
import type { Runtime } from '../runtime.js';

/**
 * The guided filtering check (GV-03, AU-04; P4 9.18-9.20). It takes real addresses from the lists in
 * use for each of the UK Safer Internet Centre's "appropriate filtering" content categories, asks the
 * live engine what it decides for the group, person or device being checked, and — when this server
 * runs them — sends one blocked name through the running DNS resolver and one blocked address through
 * the running proxy, so a check also shows that filtering has not been switched off (P4 9.19).
 *
 * The categories are the UKSIC's (illegal content: the IWF's child sexual abuse list and the police's
 * unlawful terrorist content list; then discrimination, drugs, extremism, gambling, malware/hacking,
 * pornography, piracy, self-harm and violence), plus circumvention, which the DfE standard asks
 * about. Each maps to the UT1 folders that hold such sites; where no list in use provides one, the
 * check says so rather than passing it.
 */
export interface CheckCategory {
  id: string;
  name: string;
  /** a list of kind "illegal" provides it (the IWF / CTIRU lists the school subscribes to) */
  illegal?: boolean;
  /** UT1 folder names */
  ut1: string[];
  /** other lists (the school's own) whose id or name says they hold this category */
  match?: RegExp;
  note?: string;
}

export const CHECK_CATEGORIES: CheckCategory[] = [
  { id: 'illegal', name: 'Illegal content (IWF child sexual abuse list; police unlawful terrorist content list)', illegal: true, ut1: [] },
  { id: 'discrimination', name: 'Discrimination', ut1: ['agressif', 'aggressive'], match: /discriminat|hate/i },
  { id: 'drugs', name: 'Drugs and substance abuse', ut1: ['drugs', 'drogue'], match: /drug/i },
  { id: 'extremism', name: 'Extremism', ut1: ['agressif', 'aggressive'], match: /extrem|radical/i, note: 'UT1 has no extremism category of its own; its hate and racism list (agressif) is the nearest.' },
  { id: 'gambling', name: 'Gambling', ut1: ['gambling', 'arjel'], match: /gambl|betting/i },
  { id: 'malware', name: 'Malware and hacking', ut1: ['malware', 'phishing', 'hacking', 'cryptojacking', 'ddos'], match: /malware|phishing|hacking/i },
  { id: 'pornography', name: 'Pornography', ut1: ['adult', 'porn', 'mixed_adult'], match: /porn|adult/i },
  { id: 'piracy', name: 'Piracy and copyright theft', ut1: ['warez'], match: /piracy|warez/i },
  { id: 'self-harm', name: 'Self-harm and suicide', ut1: ['suicide', 'self-harm'], match: /self.?harm|suicid|eating.?disorder/i, note: 'UT1 has no self-harm category: add a list that provides one (its name containing “self-harm”) to cover it.' },
  { id: 'violence', name: 'Violence', ut1: ['violence', 'agressif'], match: /violen|weapon/i, note: 'UT1 keeps violent sites in its agressif list (its “violence” is another name for it).' },
  { id: 'circumvention', name: 'Circumvention (proxies, VPNs, encrypted DNS)', ut1: ['proxy', 'vpn', 'doh', 'redirector', 'strong_redirector', 'residential-proxies'], match: /proxy|vpn|circumvent/i },
];

export interface CheckResultItem {
  /** the UKSIC category id, or "custom" for an address the checker added, or "dns" / "proxy" */
  category: string;
  categoryName: string;
  url: string | null;
  expected: 'block' | 'allow';
  actual: 'block' | 'allow' | 'rewrite' | 'not_covered' | 'no_answer';
  passed: boolean;
  /** in words: the engine's reason, or why nothing could be tried */
  detail: string;
}

interface CategoryRow {
  id: string;
  source_id: string;
  name: string;
  kind: string;
}

/** Up to `perCategory` real names for each check category, from the lists in use. */
export async function sampleAddresses(rt: Runtime, service: FilterService, perCategory = 2): Promise<Map<string, Array<{ host: string; list: string }>>> {
  const sources = await rt.db.kysely.selectFrom('filter_list_source').selectAll().where('enabled', '=', 1).orderBy('created_at').orderBy('id').execute();
  const categories: CategoryRow[] = await rt.db.kysely.selectFrom('filter_category').select(['id', 'source_id', 'name', 'kind']).execute();
  const bySource = new Map(sources.map((s) => [s.id, s]));
  const out = new Map<string, Array<{ host: string; list: string }>>();
  const names = async (category: CategoryRow, count: number): Promise<string[]> => {
    const source = bySource.get(category.source_id);
    if (!source) return [];
    if (source.location === null) {
      const rows = await rt.db.kysely.selectFrom('filter_list_entry').select('host').where('source_id', '=', source.id).orderBy('host').limit(count).execute();
      return rows.map((r) => r.host);
    }
    const manifest = service.store.manifest(source.id);
    if (!manifest) return [];
    const others = new Set(categories.filter((c) => c.source_id !== source.id).map((c) => c.id));
    const meta: ManifestCategory | undefined = categoryIds(source, manifest.categories, others).find((c) => c.id === category.id)?.meta;
    if (!meta) return [];
    // A category may hold only host/path prefixes (UT1's adult keeps most of its entries that way).
    const domains = service.store.entriesHead(source.id, meta.file, 'domains', count);
    return [...domains, ...service.store.entriesHead(source.id, meta.file, 'urls', count - domains.length)];
  };
  for (const wanted of CHECK_CATEGORIES) {
    const matching = categories.filter((c) => {
      if (wanted.illegal) return c.kind === 'illegal';
      if (c.kind === 'illegal' || c.kind === 'allow') return false;
      const folder = c.id.includes('.') ? c.id.slice(c.id.lastIndexOf('.') + 1) : c.id;
      return wanted.ut1.includes(folder) || (wanted.match !== undefined && (wanted.match.test(c.id) || wanted.match.test(c.name)));
    });
    const picked: Array<{ host: string; list: string }> = [];
    for (const category of matching) {
      if (picked.length >= perCategory) break;
      for (const host of await names(category, perCategory - picked.length)) picked.push({ host, list: category.name });
    }
    out.set(wanted.id, picked);
  }
  return out;
}

/** What the live engine decides for each sample, for one policy. */
export function decideSamples(service: FilterService, policyId: string, at: Date, samples: Map<string, Array<{ host: string; list: string }>>, custom: Array<{ url: string; expect: 'block' | 'allow' }>): CheckResultItem[] {
  const items: CheckResultItem[] = [];
  for (const category of CHECK_CATEGORIES) {
    const hosts = samples.get(category.id) ?? [];
    if (hosts.length === 0) {
      items.push({ category: category.id, categoryName: category.name, url: null, expected: 'block', actual: 'not_covered', passed: false, detail: category.illegal ? 'No illegal-content list is in use: add the IWF and CTIRU lists your provider gives you.' : `No list in use provides this category.${category.note ? ` ${category.note}` : ''}` });
      continue;
    }
    for (const { host, list } of hosts) {
      const url = host.includes('/') ? `http://${host}` : `http://${host}/`;
      const { verdict } = service.explain(url, policyId, at);
      items.push({ category: category.id, categoryName: category.name, url, expected: 'block', actual: verdict.action, passed: verdict.action === 'block', detail: `${verdict.reason} (from the list “${list}”)` });
    }
  }
  for (const { url, expect } of custom) {
    const { verdict } = service.explain(url, policyId, at);
    const blocked = verdict.action === 'block';
    items.push({ category: 'custom', categoryName: 'Address chosen by the checker', url, expected: expect, actual: verdict.action, passed: expect === 'block' ? blocked : !blocked, detail: verdict.reason });
  }
  return items;
}

/**
 * The running enforcement points, tried for real: one name the engine blocks for this server's own
 * address is asked of the DNS resolver (expecting NXDOMAIN or the block page's address) and fetched
 * through the proxy (expecting its 403 block page). Only what this server runs is tried.
 */
export async function probeEnforcementPoints(rt: Runtime, service: FilterService, at: Date, candidates: string[]): Promise<CheckResultItem[]> {
  const { config } = rt;
  if (config.dnsPort === undefined && config.proxyPort === undefined) return [];
  const own = service.policyFor({ ip: '127.0.0.1' });
  // A name blocked as a whole (the resolver sees names, not paths).
  const blocked = candidates.filter((host) => !host.includes('/')).find((host) => service.explain(`http://${host}/`, own.policyId, at).verdict.action === 'block');
  const items: CheckResultItem[] = [];
  const local = (host: string | undefined) => (!host || host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host);
  if (!blocked) {
    for (const point of [config.dnsPort !== undefined ? 'dns' : null, config.proxyPort !== undefined ? 'proxy' : null].filter(Boolean) as string[]) {
      items.push({ category: point, categoryName: point === 'dns' ? 'The DNS resolver answers and blocks' : 'The web proxy answers and blocks', url: null, expected: 'block', actual: 'not_covered', passed: false, detail: 'No address in the lists is blocked for this server’s own address, so the running resolver and proxy could not be tried.' });
    }
    return items;
  }
  if (config.dnsPort !== undefined) {
    const host = local(config.dnsHost ?? config.host);
    const answer = await askDns(host, config.dnsPort, blocked).catch((error: unknown) => ({ error: (error as Error).message }));
    const name = `The DNS resolver at ${host}:${config.dnsPort} answers and blocks`;
    if ('error' in answer) items.push({ category: 'dns', categoryName: name, url: blocked, expected: 'block', actual: 'no_answer', passed: false, detail: `No answer: ${answer.error}` });
    else {
      const isBlock = answer.rcode === 'NXDOMAIN' || (config.dnsBlockAddress !== undefined && answer.addresses.includes(config.dnsBlockAddress));
      items.push({ category: 'dns', categoryName: name, url: blocked, expected: 'block', actual: isBlock ? 'block' : 'allow', passed: isBlock, detail: isBlock ? `Answered ${answer.rcode}${answer.addresses.length ? ` ${answer.addresses.join(', ')}` : ''}: blocked.` : `Answered ${answer.rcode} ${answer.addresses.join(', ')}: the resolver did not block it.` });
    }
  }
  if (config.proxyPort !== undefined) {
    const host = local(config.proxyHost ?? config.host);
    const name = `The web proxy at ${host}:${config.proxyPort} answers and blocks`;
    const result = await askProxy(host, config.proxyPort, `http://${blocked}/`).catch((error: unknown) => ({ error: (error as Error).message }));
    if ('error' in result) items.push({ category: 'proxy', categoryName: name, url: `http://${blocked}/`, expected: 'block', actual: 'no_answer', passed: false, detail: `No answer: ${result.error}` });
    else {
      const isBlock = result.status === 403 && result.gatehouse;
      items.push({ category: 'proxy', categoryName: name, url: `http://${blocked}/`, expected: 'block', actual: isBlock ? 'block' : 'allow', passed: isBlock, detail: isBlock ? 'Answered with the block page (403).' : `Answered ${result.status}: the proxy did not block it.` });
    }
  }
  return items;
}

function askDns(host: string, port: number, name: string): Promise<{ rcode: string; addresses: string[] }> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const id = Math.floor(Math.random() * 65_535);
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error('no answer within 3 seconds'));
    }, 3000);
    socket.on('error', (error) => {
      clearTimeout(timer);
      socket.close();
      reject(error);
    });
    socket.on('message', (message) => {
      try {
        const packet = dnsPacket.decode(message);
        if (packet.id !== id) return;
        clearTimeout(timer);
        socket.close();
        const addresses = (packet.answers ?? []).filter((a) => a.type === 'A' || a.type === 'AAAA').map((a) => String((a as { data: unknown }).data));
        resolve({ rcode: (packet as { rcode?: string }).rcode ?? 'NOERROR', addresses });
      } catch {
        // not an answer to us; keep waiting
      }
    });
    socket.send(dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name }] }), port, host);
  });
}

function askProxy(host: string, port: number, url: string): Promise<{ status: number; gatehouse: boolean }> {
  return new Promise((resolve, reject) => {
    const request = http.request({ host, port, method: 'GET', path: url, headers: { host: new URL(url).host }, timeout: 5000 }, (response) => {
      response.resume();
      resolve({ status: response.statusCode ?? 0, gatehouse: response.headers['x-gatehouse-category'] !== undefined });
    });
    request.on('timeout', () => request.destroy(new Error('no answer within 5 seconds')));
    request.on('error', reject);
    request.end();
  });
}
