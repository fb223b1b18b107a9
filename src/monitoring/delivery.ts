import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { parseListAllowList, refusedAddress } from '../core/address-ranges.js';
import { systemResolve, type Resolve } from '../filtering/list-origin.js';

/**
 * Webhooks (Teams, Slack, generic JSON) for alerts (MO-02). A webhook is typed by an administrator
 * into the profile, so the server must not become a way to reach its own network: the same guard as
 * the list fetcher (core/address-ranges `refusedAddress`) refuses this machine, private, link-local
 * and metadata addresses, every address the name resolves to is checked, and the connection is made
 * to the address that was checked. Only https (http only to a public address is refused too: alerts
 * name pupils).
 */

const NO_EXCEPTIONS = parseListAllowList('').allow;

export interface WebhookTarget {
  url: URL;
  address: string;
  family: 4 | 6;
}

/** Why this webhook may not be called, or the checked address to connect to. */
export async function checkWebhook(raw: string, resolve: Resolve = systemResolve): Promise<{ problem: string } | { target: WebhookTarget }> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { problem: 'not a web address' };
  }
  if (url.protocol !== 'https:') return { problem: 'webhooks must use https' };
  if (url.username || url.password) return { problem: 'a webhook address must not carry a user name or password' };
  const host = url.hostname.replace(/^\[|\]$/g, '');
  let addresses: Array<{ address: string; family: 4 | 6 }>;
  if (isIP(host)) addresses = [{ address: host, family: isIP(host) === 6 ? 6 : 4 }];
  else {
    try {
      addresses = await resolve(host);
    } catch {
      return { problem: `${host} does not resolve` };
    }
  }
  if (addresses.length === 0) return { problem: `${host} does not resolve` };
  for (const a of addresses) {
    const refused = refusedAddress(a.address, isIP(host) ? null : host, NO_EXCEPTIONS);
    if (refused) return { problem: `${host} is ${refused}; alerts are sent only to public addresses` };
  }
  return { target: { url, address: addresses[0]!.address, family: addresses[0]!.family } };
}

/** POSTs JSON to a checked target, connecting to the checked address; true on a 2xx. */
export function postJson(target: WebhookTarget, body: unknown, timeoutMs = 10_000): Promise<boolean> {
  const payload = Buffer.from(JSON.stringify(body));
  const client = target.url.protocol === 'https:' ? https : http;
  return new Promise((resolve) => {
    const req = client.request(
      target.url,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': payload.length },
        timeout: timeoutMs,
        lookup: (_host, _opts, cb) => (cb as (e: null, a: string, f: number) => void)(null, target.address, target.family),
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve((res.statusCode ?? 500) >= 200 && (res.statusCode ?? 500) < 300));
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end(payload);
  });
}

export interface AlertMessage {
  id: string;
  kind: string;
  severity: string;
  rule: string;
  at: string;
  who: string;
  device: string | null;
  what: string;
  why: string;
  count: number;
  link: string;
}

/** The body for each webhook format: the minimum (who, device, what, when, why) and a link. */
export function webhookBody(format: 'teams' | 'slack' | 'json', alerts: AlertMessage[]): unknown {
  const lines = alerts.map((a) => `[${a.severity}] ${a.who}${a.device ? ` on ${a.device}` : ''}: ${a.what} (${a.why}) at ${a.at}${a.count > 1 ? ` ×${a.count}` : ''} ${a.link}`);
  const title = `Gatehouse: ${alerts.length} new alert${alerts.length === 1 ? '' : 's'}`;
  if (format === 'slack') return { text: `*${title}*\n${lines.join('\n')}` };
  if (format === 'teams') return { '@type': 'MessageCard', '@context': 'https://schema.org/extensions', summary: title, title, text: lines.join('<br>') };
  return { source: 'gatehouse', alerts };
}
