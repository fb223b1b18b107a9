import type { Readable, Writable } from 'node:stream';
import type { Verdict } from '../engine/snapshot.js';
import { activityRecord, withExceptions, decideConnect, searchTermOf, type FilterPoint } from '../point.js';

/**
 * `gatehouse squid-helper`: Squid's external ACL helper protocol (Squid 3.2 and later), so a school
 * that already runs Squid filters with Gatehouse's lists and per-group policies (FI-01, FI-03,
 * FI-10) and records every decision (MO-01).
 *
 * squid.conf (docs/squid.md has the whole snippet):
 *
 *   external_acl_type gatehouse ttl=60 negative_ttl=60 concurrency=50 children-max=2 children-startup=2 \
 *       %SRC %>ru %un %METHOD /usr/local/bin/gatehouse squid-helper --policy /etc/gatehouse/filter.yaml
 *   acl gatehouse external gatehouse
 *   http_access deny !gatehouse
 *   deny_info ERR_GATEHOUSE_BLOCKED gatehouse
 *
 * Each request line is `[channel-ID] client-IP URL user method [anything Squid appends, e.g. %DATA]`,
 * every value %-encoded by Squid (a missing value is "-"). With `concurrency=n` the channel ID comes
 * first and is echoed first on the answer. For CONNECT, the URL is `host:port`, decided as the proxy
 * decides a CONNECT (`decideConnect`): on the host alone, and port 853 (DNS over TLS) refused
 * whatever the host (FI-10).
 *
 * Answers, one line per request, in the order the requests came (decisions are synchronous):
 *   `[ID] OK log=…`                                   allowed (SafeSearch rewrites too: the resolver rewrites)
 *   `[ID] ERR message=<reason> tag=<category> log=…` blocked; %o on Squid's error page, %et in access.log
 *   `[ID] BH message=<what was wrong>`               a line the helper cannot read (Squid denies it)
 * Values are %-encoded ASCII: Squid shows %o byte by byte, so typographic quotes are made plain.
 */

export interface SquidRequest {
  channel: string | null;
  clientIp: string;
  /** as Squid sent it (a URL, %-escapes kept); `host:port` for CONNECT */
  url: string;
  user: string | null;
  method: string | null;
}

export interface SquidStats {
  requests: number;
  allowed: number;
  blocked: number;
  broken: number;
}

const FORMAT_HINT = 'expected "[channel-ID] %SRC %>ru %un %METHOD" (see docs/squid.md)';

/** Squid's %-encoding undone, tolerating stray % signs (decoded as UTF-8 where valid). */
export function squidDecode(value: string): string {
  if (!value.includes('%')) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    return value.replace(/(?:%[0-9a-fA-F]{2})+/g, (run) => {
      try {
        return decodeURIComponent(run);
      } catch {
        return run;
      }
    });
  }
}

/** Text as Squid's error pages show it (ASCII: %o is escaped byte by byte). */
export function plainAscii(text: string): string {
  return text
    .replace(/[\u2018\u2019]/g, "'")
    .replace(/[\u201c\u201d]/g, '"')
    .replace(/[\u2013\u2014]/g, '-')
    .replace(/\u2026/g, '...')
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[^\x20-\x7e]/g, '?');
}

/** A keyword value for Squid: one %-encoded token. */
export function squidEncode(value: string): string {
  return encodeURIComponent(plainAscii(value));
}

/** Splits a request line; `error` says what is wrong with a line that cannot be answered OK/ERR. */
export function parseRequest(line: string): { channel: string | null; request: SquidRequest | null; error: string | null } {
  const tokens = line.trim().split(/[ \t]+/);
  let channel: string | null = null;
  // Squid's channel IDs are numbers; a client address never is.
  if (tokens.length > 0 && /^\d{1,9}$/.test(tokens[0]!)) channel = tokens.shift()!;
  if (tokens.length === 0 || tokens[0] === '') return { channel, request: null, error: `empty request; ${FORMAT_HINT}` };
  if (tokens.length < 2) return { channel, request: null, error: `no URL; ${FORMAT_HINT}` };
  const clientIp = squidDecode(tokens[0]!);
  if (!looksLikeIp(clientIp)) return { channel, request: null, error: `"${clientIp.slice(0, 60)}" is not a client address; ${FORMAT_HINT}` };
  // Squid escapes the characters a URL may not hold (space, quotes, <, >, [, ] …) and leaves the
  // URL's own %-escapes alone: already a valid URL, but for the brackets of an IPv6 host.
  const url = tokens[1]!.replace(/%5[bB]/g, '[').replace(/%5[dD]/g, ']');
  if (url === '-' || url === '') return { channel, request: null, error: `no URL; ${FORMAT_HINT}` };
  const user = tokens[2] === undefined || tokens[2] === '-' ? null : squidDecode(tokens[2]);
  const method = tokens[3] === undefined || tokens[3] === '-' ? null : squidDecode(tokens[3]).toUpperCase();
  return { channel, request: { channel, clientIp, url, user: user || null, method }, error: null };
}

function looksLikeIp(s: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(s) || (/^[0-9a-fA-F:.]+(%[\w.-]+)?$/.test(s) && s.includes(':'));
}

/** `host:port` (CONNECT's authority form, `[v6]:port` too), or null without a port. */
export function splitAuthority(authority: string): { host: string; port: number } | null {
  let host: string;
  let rest: string;
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close === -1) return null;
    host = authority.slice(1, close);
    rest = authority.slice(close + 1);
  } else {
    const colon = authority.lastIndexOf(':');
    if (colon === -1) return null;
    host = authority.slice(0, colon);
    rest = authority.slice(colon);
  }
  // Squid always sends CONNECT's port.
  if (!/^:\d{1,5}$/.test(rest)) return null;
  const port = Number(rest.slice(1));
  if (!host || port < 1 || port > 65535 || host.includes('/') || host.includes('@')) return null;
  return { host, port };
}

export class SquidHelper {
  readonly stats: SquidStats = { requests: 0, allowed: 0, blocked: 0, broken: 0 };
  private readonly now: () => number;
  private readonly warn: (message: string) => void;

  constructor(
    private readonly point: FilterPoint,
    options: { now?: () => number; warn?: (message: string) => void } = {},
  ) {
    this.now = options.now ?? Date.now;
    this.warn = options.warn ?? (() => {});
  }

  /** One request line (without its newline) to one answer line (without one). Never throws. */
  answer(line: string): string {
    this.stats.requests++;
    let channel: string | null = null;
    try {
      const parsed = parseRequest(line);
      channel = parsed.channel;
      if (!parsed.request) return this.broken(channel, parsed.error!);
      return this.decide(parsed.request);
    } catch (error) {
      this.warn(`could not answer a request: ${(error as Error).stack ?? String(error)}`);
      return this.broken(channel, 'internal error in the Gatehouse helper; see the cache log');
    }
  }

  private broken(channel: string | null, message: string): string {
    this.stats.broken++;
    return `${channel === null ? '' : `${channel} `}BH message=${squidEncode(message)}`;
  }

  private decide(request: SquidRequest): string {
    const now = this.now();
    const point = this.point;
    const snapshot = point.snapshot();
    const identity = point.identify(request.clientIp, request.user);
    const connect = request.method === 'CONNECT' || (request.method === null && !request.url.includes('://'));
    let host: string;
    let verdict: Verdict;
    let url: URL | null = null;
    if (connect) {
      const authority = splitAuthority(squidDecode(request.url));
      if (!authority) return this.broken(request.channel, `"${request.url.slice(0, 100)}" is not host:port for CONNECT`);
      host = authority.host;
      verdict = withExceptions(point, decideConnect(snapshot, host, authority.port, identity.policyIndex, now), host, identity, request.clientIp, now);
    } else {
      try {
        url = new URL(request.url);
      } catch {
        return this.broken(request.channel, `"${request.url.slice(0, 100)}" is not a URL`);
      }
      host = url.hostname;
      if (host.startsWith('[')) host = host.slice(1, -1);
      if (!host) return this.broken(request.channel, `"${request.url.slice(0, 100)}" has no host`);
      verdict = withExceptions(point, snapshot.decideUrl(host, `${url.pathname}${url.search}`, identity.policyIndex, now), host, identity, request.clientIp, now);
    }
    point.record(activityRecord('squid', now, request.clientIp, identity, verdict, { host, url: url ? url.href : null, searchTerm: url ? searchTermOf(url.searchParams) : null, user: request.user }));
    const { category, rule } = verdict;
    const log = squidEncode(`action=${verdict.action},category=${category ?? '-'},rule=${rule},policy=${identity.policyId}`);
    const prefix = request.channel === null ? '' : `${request.channel} `;
    if (verdict.action !== 'block') {
      this.stats.allowed++;
      return `${prefix}OK log=${log}`;
    }
    this.stats.blocked++;
    return `${prefix}ERR message=${squidEncode(verdict.reason)} tag=${squidEncode(category ?? rule)} log=${log}`;
  }
}

/**
 * Reads request lines from `input` and writes each answer to `output` as soon as the lines that
 * arrived together are decided (one write per chunk read). Resolves when the input ends.
 */
export function serveSquidHelper(helper: SquidHelper, input: Readable, output: Writable, options: { maxLine?: number } = {}): Promise<void> {
  const maxLine = options.maxLine ?? 1 << 20;
  return new Promise((resolve) => {
    let pending = '';
    let skipping = false;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      resolve();
    };
    input.setEncoding('utf8');
    input.on('data', (chunk: string) => {
      let out = '';
      let start = 0;
      for (let nl = chunk.indexOf('\n', start); nl !== -1; nl = chunk.indexOf('\n', start)) {
        let line = pending + chunk.slice(start, nl);
        pending = '';
        start = nl + 1;
        if (skipping) {
          // The rest of an over-long line already answered.
          skipping = false;
          continue;
        }
        if (line.endsWith('\r')) line = line.slice(0, -1);
        out += `${line.length > maxLine ? tooLong(helper, line, maxLine) : helper.answer(line)}\n`;
      }
      if (start < chunk.length) {
        pending += chunk.slice(start);
        if (pending.length > maxLine && !skipping) {
          out += `${tooLong(helper, pending, maxLine)}\n`;
          pending = '';
          skipping = true;
        } else if (skipping) pending = '';
      }
      if (out && !output.write(out)) {
        input.pause();
        output.once('drain', () => input.resume());
      }
    });
    input.on('end', () => {
      // A last line without its newline still gets its answer.
      if (pending && !skipping) output.write(`${pending.length > maxLine ? tooLong(helper, pending, maxLine) : helper.answer(pending.replace(/\r$/, ''))}\n`);
      pending = '';
      finish();
    });
    input.on('error', finish);
    output.on('error', finish);
  });
}

function tooLong(helper: SquidHelper, line: string, maxLine: number): string {
  helper.stats.broken++;
  const channel = /^(\d{1,9})[ \t]/.exec(line)?.[1] ?? null;
  return `${channel === null ? '' : `${channel} `}BH message=${squidEncode(`request line longer than ${maxLine} characters`)}`;
}
