import { createHash, randomBytes } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net, { type LookupFunction, type Socket } from 'node:net';
import { domainToASCII } from 'node:url';
import { DEFAULT_FILTER_CLIENT_NETWORKS, everyInterfaceWarning, TrustedNetworks } from '../../core/networks.js';
import type { Verdict } from '../engine/snapshot.js';
import { activityRecord, withExceptions, decideConnect, DOT_PORT, searchTermOf, type ClientIdentity, type FilterPoint } from '../point.js';
import { blockPageHtml, proxyErrorHtml } from './block-page.js';
import { readClientHello, TLS_ACCESS_DENIED } from './client-hello.js';
import { pacFile } from './pac.js';
import { executableResponse, isExecutablePath } from './downloads.js';
import { UpstreamError, UpstreamPool, type ForwardHandlers, type UpstreamConnection } from './upstream.js';
import { DestinationGuard, DestinationRefused } from './guard.js';

/**
 * The filtering forward proxy (issue 5, point 6): plain HTTP in absolute form (GET http://host/…)
 * decided on host and URL and forwarded over keep-alive connections, and CONNECT tunnels decided on
 * the host — or, when the client names only an IP address, on the server name in its TLS
 * ClientHello. Nothing is decrypted: an HTTPS request can be refused, never shown a page.
 *
 * Hot path: the snapshot and the client's identity are read from memory (FilterPoint), the verdict
 * is interned, and the decision is appended to the activity buffer; no database, no awaits.
 */

export type ForwardedFor = 'delete' | 'append' | 'transparent';
export type ProxyAuthMode = 'off' | 'optional' | 'required';

export interface ProxyLogger {
  warn(fields: object, message: string): void;
  info(fields: object, message: string): void;
}

export interface ProxyOptions {
  /** listening address (default 127.0.0.1) */
  host?: string;
  /** listening port (default 0: any free port) */
  port?: number;
  /** the Gatehouse console's address, for the block page's "Request access" and "Report" links */
  consoleUrl?: string | null;
  /** ports CONNECT may reach (default 443 and 80); 853 (DNS over TLS) is always refused (FI-10) */
  connectPorts?: number[];
  /** X-Forwarded-For towards origins: delete (default: devices' addresses stay inside the school), append, transparent */
  forwardedFor?: ForwardedFor;
  /**
   * Proxy authentication (FI-02): off (default without `authenticate`), optional (a signed-in
   * person gets their own policy; others are identified by address), required (407 until signed in).
   */
  auth?: ProxyAuthMode;
  /** checks a Proxy-Authorization Basic user and password; the username is then given to identify() */
  authenticate?: (user: string, password: string, clientIp: string) => boolean | Promise<boolean>;
  /** how long a successful proxy sign-in is remembered (default 5 minutes) */
  authCacheMs?: number;
  /** CONNECT to an IP address whose first bytes carry no TLS server name: block (default) or allow */
  namelessTunnels?: 'block' | 'allow';
  /** the school's own domains the PAC file served by the proxy (/proxy.pac, /wpad.dat) sends direct */
  directDomains?: string[];
  /** the school's time zone, for the time on the block page (default: this machine's) */
  timeZone?: string;
  /** epoch milliseconds now (the runtime's clock) */
  now?: () => number;
  /** how origin names resolve (tests and benchmarks point them at local servers) */
  lookup?: LookupFunction;
  /** wait this long for an origin's response headers (default 30 s) */
  upstreamTimeoutMs?: number;
  /** an idle client keep-alive connection is closed after this (default 60 s) */
  clientIdleMs?: number;
  /** an idle CONNECT tunnel is closed after this (default 15 minutes) */
  tunnelIdleMs?: number;
  /** wait this long for a ClientHello on an IP-address tunnel (default 10 s) */
  helloTimeoutMs?: number;
  /** idle connections kept per origin (default 64) */
  maxIdlePerOrigin?: number;
  /**
   * Networks (CIDR) whose devices may use the proxy (default: loopback and the private ranges,
   * DEFAULT_FILTER_CLIENT_NETWORKS); a connection from anywhere else is closed at once, unanswered.
   */
  clientNetworks?: string[];
  /** where the proxy may not connect, besides the built-in rules (src/filtering/proxy/guard.ts) */
  destinations?: {
    /** networks reachable even though a rule refuses them (they win over every rule) */
    allowed?: string[] | undefined;
    /** networks refused besides the built-in ones (e.g. the private ranges) */
    refused?: string[] | undefined;
    /** this server's other listening addresses (the console's, the DNS resolver's) */
    ownAddresses?: string[] | undefined;
  };
  /** connections open at once from all devices (default 4096): more are answered 503 and closed */
  maxConnections?: number;
  /** connections open at once from one device address (default 256): more are answered 429 and closed */
  maxConnectionsPerClient?: number;
  /** the largest request head, request line and headers together (default 16 KiB): more is 431 */
  maxHeaderBytes?: number;
  /** a request head must arrive whole within this (default 10 s), or 408 and closed (slowloris) */
  headTimeoutMs?: number;
  logger?: ProxyLogger;
}

/** Why the proxy turned something away; each is counted in ProxyStats.refused. */
export type ProxyRefusal = 'client_network' | 'client_connections' | 'total_connections' | 'destination' | 'header_too_large' | 'head_timeout' | 'bad_request';

export interface ProxyStats {
  requests: number;
  tunnels: number;
  blocked: number;
  upstreamErrors: number;
  /** client connections open now */
  connections: number;
  /** what was turned away, by reason */
  refused: Record<ProxyRefusal, number>;
}

export interface ProxyHandle {
  host: string;
  port: number;
  stats: ProxyStats;
  /** stops listening, ends tunnels and idle connections; in-flight requests are cut */
  close(): Promise<void>;
}

/** Headers that belong to one connection, never forwarded (RFC 9110 §7.6.1), plus the proxy's own. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'expect']);

const DOWNLOAD_CATEGORY = 'downloads';
const DOWNLOAD_CATEGORY_NAME = 'Programs and installers';
const CONNECT_TIMEOUT_MS = 10_000;
/** a refusal is logged at most this often per client address and reason */
const LOG_EVERY_MS = 60_000;
const REALM = 'Basic realm="Gatehouse web filter", charset="UTF-8"';

interface Target {
  /** the name or address decided on: lower case, IPv6 without brackets */
  host: string;
  port: number;
  /** Host header / authority as it goes to the origin */
  authority: string;
  /** path and query as sent (origin form) */
  path: string;
}

/** "::ffff:10.0.0.7" → "10.0.0.7" */
export function clientAddress(socket: Socket): string {
  const a = socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

const HOST_CHARS = /^[a-z0-9._-]+$/;
const IPV6_CHARS = /^[0-9a-f:.]+$/;

/** Host and port from an authority ("Example.com:8080", "[2001:db8::1]:443"); null when malformed. */
export function parseAuthority(authority: string, defaultPort: number): { host: string; port: number } | null {
  let host: string;
  let portText = '';
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close === -1) return null;
    host = authority.slice(1, close).toLowerCase();
    if (!IPV6_CHARS.test(host) || net.isIPv6(host) === false) return null;
    const rest = authority.slice(close + 1);
    if (rest.length > 0) {
      if (rest[0] !== ':') return null;
      portText = rest.slice(1);
    }
  } else {
    const colon = authority.lastIndexOf(':');
    if (colon !== -1) {
      portText = authority.slice(colon + 1);
      host = authority.slice(0, colon);
    } else host = authority;
    host = host.toLowerCase();
    if (host.endsWith('.')) host = host.slice(0, -1);
    if (!HOST_CHARS.test(host)) {
      // eslint-disable-next-line no-control-regex
      if (!/[^\x00-\x7f]/.test(host)) return null;
      const ascii = domainToASCII(host);
      // An IDN comes back as xn--…; anything else it lets through ("é}" → "xn--}-…") is no host name (found by fuzzing).
      if (!ascii || !HOST_CHARS.test(ascii)) return null;
      host = ascii;
    }
  }
  let port = defaultPort;
  if (portText.length > 0) {
    if (!/^\d{1,5}$/.test(portText)) return null;
    port = Number(portText);
    if (port < 1 || port > 65535) return null;
  }
  if (host.length === 0 || host.length > 253) return null;
  return { host, port };
}

// eslint-disable-next-line no-control-regex
const SPACE_OR_CONTROL = /[\x00-\x20\x7f]/;

/** An absolute-form request target "http://host[:port]/path?query"; null when not one. */
export function parseAbsoluteUrl(raw: string): Target | null | 'unsupported' {
  // The path is written into the request line towards the origin: a space, CR, LF or NUL there
  // would split it. Node's parser refuses them before this; this refuses them again (found by fuzzing).
  if (SPACE_OR_CONTROL.test(raw)) return null;
  const sep = raw.indexOf('://');
  if (sep === -1) return null;
  const scheme = raw.slice(0, sep).toLowerCase();
  if (scheme !== 'http') return /^[a-z][a-z0-9+.-]*$/.test(scheme) ? 'unsupported' : null;
  const start = sep + 3;
  let end = raw.length;
  for (let i = start; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === 47 || c === 63 || c === 35) {
      end = i;
      break;
    }
  }
  let authority = raw.slice(start, end);
  const at = authority.lastIndexOf('@');
  if (at !== -1) authority = authority.slice(at + 1);
  const hp = parseAuthority(authority, 80);
  if (!hp) return null;
  let path = raw.slice(end);
  const hash = path.indexOf('#');
  if (hash !== -1) path = path.slice(0, hash);
  if (path.length === 0) path = '/';
  else if (path.charCodeAt(0) === 63) path = `/${path}`;
  return { host: hp.host, port: hp.port, authority, path };
}

interface AuthResult {
  ok: boolean;
  user: string | null;
}
const ANONYMOUS: AuthResult = { ok: true, user: null };
const REFUSED: AuthResult = { ok: false, user: null };

export async function startProxy(point: FilterPoint, options: ProxyOptions = {}): Promise<ProxyHandle> {
  const proxy = new FilterProxy(point, options);
  return proxy.listen();
}

class FilterProxy {
  private readonly server: http.Server;
  private readonly pool: UpstreamPool;
  private readonly now: () => number;
  private readonly via: string;
  private readonly connectPorts: Set<number>;
  private readonly forwardedFor: ForwardedFor;
  private readonly authMode: ProxyAuthMode;
  private readonly authCache = new Map<string, { user: string; until: number }>();
  private readonly socketAuth = new WeakMap<Socket, { header: string; user: string }>();
  private readonly tunnels = new Set<Socket>();
  /** Every client connection, so close() can end those a CONNECT or an upgrade took from the HTTP server's tracking. */
  private readonly clientSockets = new Set<Socket>();
  private readonly consoleUrl: string | null;
  private readonly upstreamTimeoutMs: number;
  private readonly tunnelIdleMs: number;
  private readonly helloTimeoutMs: number;
  private readonly guard: DestinationGuard;
  private readonly clients: TrustedNetworks;
  private readonly clientNetworks: string[];
  private readonly maxConnections: number;
  private readonly maxPerClient: number;
  private readonly perClient = new Map<string, number>();
  /** connections refused for a cap: answered at once, and whatever they send is ignored */
  private readonly turnedAway = new WeakSet<Socket>();
  private readonly lastLogged = new Map<string, number>();
  readonly stats: ProxyStats = {
    requests: 0,
    tunnels: 0,
    blocked: 0,
    upstreamErrors: 0,
    connections: 0,
    refused: { client_network: 0, client_connections: 0, total_connections: 0, destination: 0, header_too_large: 0, head_timeout: 0, bad_request: 0 },
  };
  private port = 0;

  constructor(
    private readonly point: FilterPoint,
    private readonly options: ProxyOptions,
  ) {
    this.now = options.now ?? Date.now;
    // A token of this process in Via, so a request that loops back through it is recognised.
    this.via = `1.1 gatehouse-${randomBytes(3).toString('hex')}`;
    this.connectPorts = new Set(options.connectPorts ?? [443, 80]);
    this.connectPorts.delete(DOT_PORT);
    this.forwardedFor = options.forwardedFor ?? 'delete';
    this.authMode = options.authenticate ? (options.auth ?? 'optional') : 'off';
    if (options.auth === 'required' && !options.authenticate) throw new Error('proxy authentication "required" needs an authenticate function');
    this.consoleUrl = options.consoleUrl ?? null;
    this.upstreamTimeoutMs = options.upstreamTimeoutMs ?? 30_000;
    this.tunnelIdleMs = options.tunnelIdleMs ?? 15 * 60_000;
    this.helloTimeoutMs = options.helloTimeoutMs ?? 10_000;
    this.guard = new DestinationGuard({ ...options.destinations, lookup: options.lookup });
    this.clientNetworks = options.clientNetworks ?? DEFAULT_FILTER_CLIENT_NETWORKS;
    this.clients = new TrustedNetworks(this.clientNetworks);
    this.maxConnections = options.maxConnections ?? 4096;
    this.maxPerClient = options.maxConnectionsPerClient ?? 256;
    this.pool = new UpstreamPool({ connect: (o) => this.guard.connect(o), maxIdlePerOrigin: options.maxIdlePerOrigin ?? 64, idleMs: 30_000, activeTimeoutMs: 60_000 });
    const idleMs = options.clientIdleMs ?? 60_000;
    const headMs = options.headTimeoutMs ?? 10_000;
    this.server = http.createServer({
      keepAliveTimeout: idleMs,
      // Slowloris: the whole head within headMs, checked often enough to hold to it.
      headersTimeout: headMs,
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(headMs / 4))),
      requestTimeout: 0,
      maxHeaderSize: options.maxHeaderBytes ?? 16 * 1024,
      noDelay: true,
    });
    this.server.keepAliveTimeout = idleMs;
    // A connection with no bytes either way for idleMs is closed (a body sent a byte a minute, too).
    this.server.timeout = idleMs;
    this.server.on('connection', (socket: Socket) => {
      this.clientSockets.add(socket);
      socket.once('close', () => this.clientSockets.delete(socket));
      this.admit(socket);
    });
    this.server.on('request', (req, res) => this.onRequest(req, res));
    this.server.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) => this.onConnect(req, socket, head));
    this.server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.onUpgrade(req, socket, head));
    this.server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
      if (this.turnedAway.has(socket)) return socket.destroy();
      // A response already under way on this connection: an error answer now would land inside it.
      if ((socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage?.headersSent) return socket.destroy();
      const ip = clientAddress(socket);
      if (error.code === 'HPE_HEADER_OVERFLOW') {
        this.refuse('header_too_large', ip, `a request head larger than ${options.maxHeaderBytes ?? 16 * 1024} bytes`);
        if (socket.writable) return refuseRaw(socket, 431, 'Request Header Fields Too Large', 'The request’s headers are too large for the school’s web filter.');
      } else if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
        this.refuse('head_timeout', ip, `no complete request head within ${headMs} ms`);
        if (socket.writable) return refuseRaw(socket, 408, 'Request Timeout', 'The request took too long to arrive.');
      } else if (socket.writable && error.code !== 'ECONNRESET') {
        this.refuse('bad_request', ip, `a malformed request (${error.code ?? 'error'})`, false);
        return refuseRaw(socket, 400, 'Bad Request', 'The school’s web filter could not read this request.');
      }
      socket.destroy();
    });
  }

  /**
   * At accept time (FI-01, finding 9): a device outside the client networks is closed at once,
   * unanswered (nothing of its is read, and a scanner learns nothing, not even that a proxy is
   * here); past a connection cap, a short 429 (this device) or 503 (everyone) is written and the
   * connection closed, so a person sees why.
   */
  private admit(socket: Socket): void {
    const ip = clientAddress(socket);
    if (!this.clients.contains(ip)) {
      this.refuse('client_network', ip, 'a device outside the networks the proxy serves');
      socket.destroy();
      return;
    }
    if (this.stats.connections >= this.maxConnections) {
      this.refuse('total_connections', ip, `the proxy already has ${this.maxConnections} connections open`);
      return this.turnAway(socket, 503, 'Service Unavailable', 'The school’s web filter is too busy right now. Try again in a moment.');
    }
    const open = this.perClient.get(ip) ?? 0;
    if (open >= this.maxPerClient) {
      this.refuse('client_connections', ip, `this device already has ${this.maxPerClient} connections open`);
      return this.turnAway(socket, 429, 'Too Many Requests', 'This device has too many connections open through the school’s web filter. Close some tabs or programs and try again.');
    }
    this.perClient.set(ip, open + 1);
    this.stats.connections++;
    socket.once('close', () => {
      this.stats.connections--;
      const left = (this.perClient.get(ip) ?? 1) - 1;
      if (left <= 0) this.perClient.delete(ip);
      else this.perClient.set(ip, left);
    });
  }

  private turnAway(socket: Socket, status: number, text: string, body: string): void {
    this.turnedAway.add(socket);
    socket.on('error', () => socket.destroy());
    refuseRaw(socket, status, text, body, 'Retry-After: 5\r\n');
    // Read (and drop) what the client sends meanwhile, so the close is a clean one; then go.
    socket.setTimeout(2_000, () => socket.destroy());
  }

  /** Counts a refusal; logs it at most once a minute per address and reason. */
  private refuse(reason: ProxyRefusal, ip: string, what: string, log = true): void {
    this.stats.refused[reason]++;
    if (!log || !this.options.logger) return;
    const key = `${reason}|${ip}`;
    const now = this.now();
    const last = this.lastLogged.get(key);
    if (last !== undefined && now - last < LOG_EVERY_MS) return;
    if (this.lastLogged.size >= 10_000) {
      for (const [k, at] of this.lastLogged) if (now - at >= LOG_EVERY_MS) this.lastLogged.delete(k);
      if (this.lastLogged.size >= 10_000) this.lastLogged.clear();
    }
    this.lastLogged.set(key, now);
    this.options.logger.warn({ proxy: { refused: reason, client: ip } }, `filtering proxy refused ${ip}: ${what} (counted in the proxy's refusals; logged at most once a minute per address)`);
  }

  listen(): Promise<ProxyHandle> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port ?? 0, this.options.host ?? '127.0.0.1', () => {
        this.server.off('error', reject);
        const address = this.server.address() as net.AddressInfo;
        this.port = address.port;
        this.guard.addOwnAddress(address.address);
        this.warnAtStart(address.address);
        resolve({ host: address.address, port: address.port, stats: this.stats, close: () => this.close() });
      });
    });
  }

  private warnAtStart(host: string): void {
    const logger = this.options.logger;
    if (!logger) return;
    const warning = everyInterfaceWarning('the filtering proxy', host, this.clientNetworks);
    if (warning) logger.warn({ proxy: { host, clientNetworks: this.clientNetworks } }, warning);
    const opened = this.guard.opened();
    if (opened.length > 0) {
      logger.warn({ proxy: { allowedDestinations: opened } }, `the filtering proxy may reach ${opened.join(', ')}, which it otherwise refuses (loopback, link-local or this server's own addresses), because GATEHOUSE_PROXY_ALLOWED_DESTINATIONS lists it`);
    }
  }

  private close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
      for (const s of this.tunnels) s.destroy();
      this.tunnels.clear();
      for (const s of this.clientSockets) s.destroy();
      this.clientSockets.clear();
      this.pool.destroy();
    });
  }

  // ---- identification -------------------------------------------------------------------------

  /** Proxy-Authorization (FI-02): the user, or a refusal; a promise only when the password must be checked. */
  private authenticate(header: string | undefined, socket: Socket, ip: string): AuthResult | Promise<AuthResult> {
    if (this.authMode === 'off') return ANONYMOUS;
    if (!header) return this.authMode === 'required' ? REFUSED : ANONYMOUS;
    const known = this.socketAuth.get(socket);
    if (known && known.header === header) return { ok: true, user: known.user };
    const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
    if (!match) return REFUSED;
    const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) return REFUSED;
    const user = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    const key = createHash('sha256').update(header).digest('base64');
    const now = this.now();
    const cached = this.authCache.get(key);
    if (cached && cached.until > now) {
      this.socketAuth.set(socket, { header, user: cached.user });
      return { ok: true, user: cached.user };
    }
    const remember = (ok: boolean): AuthResult => {
      if (!ok) return REFUSED;
      if (this.authCache.size > 10_000) this.authCache.clear();
      this.authCache.set(key, { user, until: this.now() + (this.options.authCacheMs ?? 5 * 60_000) });
      this.socketAuth.set(socket, { header, user });
      return { ok: true, user };
    };
    try {
      const result = this.options.authenticate!(user, password, ip);
      if (typeof result === 'boolean') return remember(result);
      return result.then(remember, (error: unknown) => {
        this.options.logger?.warn({ err: error }, 'proxy sign-in check failed');
        return REFUSED;
      });
    } catch (error) {
      this.options.logger?.warn({ err: error }, 'proxy sign-in check failed');
      return REFUSED;
    }
  }

  private record(identity: ClientIdentity, ip: string, user: string | null, at: number, host: string, url: string | null, verdict: Pick<Verdict, 'action' | 'category' | 'rule' | 'policy'>): void {
    // The URL was parsed on the way in (parseAbsoluteUrl, no fragment): only its query is read here.
    const query = url === null ? -1 : url.indexOf('?');
    const searchTerm = query === -1 ? null : searchTermOf(new URLSearchParams(url!.slice(query + 1)));
    if (verdict.action === 'block') this.stats.blocked++;
    this.point.record(activityRecord('proxy', at, ip, identity, verdict, { host, url, searchTerm, user }));
  }

  // ---- plain HTTP ------------------------------------------------------------------------------

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    if (this.turnedAway.has(req.socket)) return void req.socket.destroy();
    const raw = req.url ?? '/';
    if (raw.charCodeAt(0) === 47) return this.direct(req, res);
    const target = parseAbsoluteUrl(raw);
    if (target === 'unsupported') return this.sendError(res, 501, 'Not supported', 'The school’s web filter passes on http:// addresses only; https:// goes through a secure tunnel (CONNECT).');
    if (target === null) return this.sendError(res, 400, 'Bad address', 'The address asked for is not a valid web address.');
    if (this.loopsBack(req)) return this.sendError(res, 508, 'Loop', 'This request came back to the web filter that sent it.');
    const socket = req.socket;
    const ip = clientAddress(socket);
    const auth = this.authenticate(req.headers['proxy-authorization'], socket, ip);
    if (auth instanceof Promise) {
      req.pause();
      auth.then((a) => this.decideRequest(req, res, target, ip, a), () => res.destroy());
    } else this.decideRequest(req, res, target, ip, auth);
  }

  private decideRequest(req: IncomingMessage, res: ServerResponse, target: Target, ip: string, auth: AuthResult): void {
    if (!auth.ok) return this.askForSignIn(res);
    this.stats.requests++;
    const snapshot = this.point.snapshot();
    const identity = this.point.identify(ip, auth.user);
    const at = this.now();
    const verdict = withExceptions(this.point, snapshot.decideUrl(target.host, target.path, identity.policyIndex, at), target.host, identity, ip, at);
    const url = `http://${target.authority}${target.path}`;
    if (verdict.action === 'block') {
      this.record(identity, ip, auth.user, at, target.host, url, verdict);
      return this.sendBlockPage(res, target.host, url, verdict, at);
    }
    const downloadsAllowed = snapshot.downloadsAllowed(identity.policyIndex);
    if (!downloadsAllowed && isExecutablePath(target.path)) {
      const refused = downloadVerdict(verdict.policy);
      this.record(identity, ip, auth.user, at, target.host, url, refused);
      return this.sendBlockPage(res, target.host, url, refused, at);
    }
    this.record(identity, ip, auth.user, at, target.host, url, verdict);
    this.forward(req, res, target, ip, verdict, downloadsAllowed ? null : () => this.record(identity, ip, auth.user, this.now(), target.host, url, downloadVerdict(verdict.policy)), url, 0);
  }

  private forward(req: IncomingMessage, res: ServerResponse, target: Target, ip: string, verdict: Verdict, onDownloadRefused: (() => void) | null, url: string, attempt: number): void {
    // SafeSearch (FI-09) the standard way: connect to the engine's enforcing name, Host unchanged.
    const connectHost = verdict.action === 'rewrite' && verdict.target ? verdict.target : target.host;
    const te = req.headers['transfer-encoding'];
    const cl = req.headers['content-length'];
    const bodyMode = te !== undefined ? 'chunked' : cl !== undefined && cl !== '0' ? 'length' : 'none';
    const head = this.requestHead(req, target, ip, verdict, bodyMode === 'chunked');
    let conn: UpstreamConnection | null = null;
    let settled = false;
    const fail = (error: NodeJS.ErrnoException) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const refused = error instanceof DestinationRefused;
      if (refused) this.refuse('destination', ip, error.message);
      else this.stats.upstreamErrors++;
      if (res.headersSent || res.destroyed) {
        res.destroy();
        return;
      }
      const name = connectHost;
      const code = error.code;
      if (refused) {
        return this.sendError(res, 403, 'Not reachable through the web filter', `The school’s web filter does not connect to ${error.destination}: ${error.message}.`);
      }
      if (code === 'ETIMEDOUT') return this.sendError(res, 504, 'The site took too long', `${name} did not answer in time. Try again in a moment.`);
      if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return this.sendError(res, 502, 'Site not found', `The name ${name} could not be found.`);
      if (code === 'ECONNREFUSED') return this.sendError(res, 502, 'The site is not answering', `${name} refused the connection.`);
      if (error instanceof UpstreamError) return this.sendError(res, 502, 'The site sent a broken answer', `${name}: ${error.message}.`);
      return this.sendError(res, 502, 'The site could not be reached', `The connection to ${name} failed (${code ?? 'error'}).`);
    };
    const timer = setTimeout(() => {
      conn?.abandon();
      fail(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' }));
    }, this.upstreamTimeoutMs);
    const handlers: ForwardHandlers = {
      onHead: (h) => {
        clearTimeout(timer);
        if (res.destroyed) return false;
        if (onDownloadRefused && executableResponse(h.contentType, h.contentDisposition) !== null) {
          settled = true;
          onDownloadRefused();
          this.sendBlockPage(res, target.host, url, downloadVerdict(verdict.policy), this.now());
          return false;
        }
        try {
          res.writeHead(h.status, h.reason, this.responseHeaders(h.rawHeaders, h.connection));
        } catch (error) {
          fail(new UpstreamError(`its headers could not be passed on (${(error as Error).message})`, 'EBADRESPONSE'));
          return false;
        }
        return true;
      },
      onBody: (chunk, resume) => {
        if (res.write(chunk)) return true;
        res.once('drain', resume);
        return false;
      },
      onEnd: () => {
        settled = true;
        res.end();
      },
      onError: (error, beforeHead, retryable) => {
        clearTimeout(timer);
        // A pooled connection the origin had just closed: once more on a fresh one.
        if (beforeHead && retryable && attempt === 0 && bodyMode === 'none' && !res.destroyed && !settled) {
          settled = true;
          res.off('close', onClientClose);
          return this.forward(req, res, target, ip, verdict, onDownloadRefused, url, 1);
        }
        fail(error);
      },
    };
    const onClientClose = () => {
      if (!res.writableFinished) {
        settled = true;
        clearTimeout(timer);
        conn?.abandon();
      }
    };
    res.once('close', onClientClose);
    this.pool.acquire(
      connectHost,
      target.port,
      (error, c) => {
        if (error || !c) return fail(error ?? new Error('no connection'));
        if (settled || res.destroyed) {
          this.pool.release(c);
          return;
        }
        conn = c;
        c.start(head, req.method === 'HEAD', handlers);
        if (bodyMode !== 'none') this.pumpBody(req, c, bodyMode === 'chunked');
      },
      attempt > 0,
    );
  }

  /** The request body to the origin, with backpressure; re-chunked when the client sent it chunked. */
  private pumpBody(req: IncomingMessage, conn: UpstreamConnection, chunked: boolean): void {
    const resume = () => req.resume();
    req.on('data', (chunk: Buffer) => {
      if (chunked) conn.writeBody(`${chunk.length.toString(16)}\r\n`, resume);
      const ok = conn.writeBody(chunk, resume);
      if (chunked) conn.writeBody('\r\n', resume);
      if (!ok) req.pause();
    });
    if (chunked) req.on('end', () => conn.writeBody('0\r\n\r\n', resume));
    req.resume();
  }

  /**
   * The request head towards the origin, for every request the proxy passes on: hop-by-hop headers
   * and those the client's Connection lists removed, Via and X-Forwarded-For as configured, YouTube
   * Restricted Mode added. An Upgrade request (WebSocket) names `upgrade`, the protocols asked for:
   * Connection: Upgrade and Upgrade are hop-by-hop too, so they are sent afresh for this hop.
   */
  private requestHead(req: IncomingMessage, target: Target, ip: string, verdict: Verdict, chunked: boolean, upgrade: string | null = null): string {
    const raw = req.rawHeaders;
    const listed = connectionTokens(req.headers.connection);
    let head = `${req.method} ${target.path} HTTP/1.1\r\nHost: ${target.authority}\r\n`;
    let via: string | null = null;
    let forwarded: string | null = null;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      const lower = name.toLowerCase();
      if (HOP_BY_HOP.has(lower)) continue;
      if (listed !== null && listed.includes(lower)) continue;
      if (lower === 'via') {
        via = via === null ? raw[i + 1]! : `${via}, ${raw[i + 1]!}`;
        continue;
      }
      if (lower === 'x-forwarded-for') {
        if (this.forwardedFor === 'delete') continue;
        if (this.forwardedFor === 'append') {
          forwarded = forwarded === null ? raw[i + 1]! : `${forwarded}, ${raw[i + 1]!}`;
          continue;
        }
      }
      if (lower === 'youtube-restrict' && verdict.action === 'rewrite') continue;
      if (chunked && lower === 'content-length') continue;
      head += `${name}: ${raw[i + 1]!}\r\n`;
    }
    head += `Via: ${via === null ? this.via : `${via}, ${this.via}`}\r\n`;
    if (this.forwardedFor === 'append') head += `X-Forwarded-For: ${forwarded === null ? ip : `${forwarded}, ${ip}`}\r\n`;
    // YouTube Restricted Mode by header, as Google documents for proxies (FI-09).
    if (verdict.action === 'rewrite' && verdict.target !== null && verdict.target.startsWith('restrict')) {
      head += `YouTube-Restrict: ${verdict.target.startsWith('restrictmoderate') ? 'Moderate' : 'Strict'}\r\n`;
    }
    if (chunked) head += 'Transfer-Encoding: chunked\r\n';
    if (upgrade !== null) head += `Connection: Upgrade\r\nUpgrade: ${upgrade}\r\n`;
    return `${head}\r\n`;
  }

  private responseHeaders(raw: string[], connection: string | undefined): string[] {
    const listed = connectionTokens(connection);
    const out: string[] = [];
    let via: string | null = null;
    let chunked = false;
    for (let i = 0; i < raw.length; i += 2) {
      const lower = raw[i]!.toLowerCase();
      if (lower === 'transfer-encoding') chunked = true;
    }
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      const lower = name.toLowerCase();
      if (lower !== 'host' && lower !== 'expect' && HOP_BY_HOP.has(lower)) continue;
      if (listed !== null && listed.includes(lower)) continue;
      // The body is passed on de-chunked; Node frames it afresh (a length only when it is sure).
      if (chunked && lower === 'content-length') continue;
      if (lower === 'via') {
        via = via === null ? raw[i + 1]! : `${via}, ${raw[i + 1]!}`;
        continue;
      }
      out.push(name, raw[i + 1]!);
    }
    out.push('Via', via === null ? this.via : `${via}, ${this.via}`);
    return out;
  }

  /** A request to the proxy itself (origin form): a health check, or an explanation. */
  private direct(req: IncomingMessage, res: ServerResponse): void {
    if (req.url === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
      res.end('ok\n');
      return;
    }
    if (req.method === 'GET' && (req.url === '/proxy.pac' || req.url === '/wpad.dat')) {
      // The PAC file from the proxy itself (a standalone proxy has no Gatehouse server to serve it):
      // the proxy is wherever the device reached it.
      const hostHeader = req.headers.host ?? '';
      const at = parseAuthority(hostHeader, this.port);
      if (!at) return this.sendError(res, 400, 'Bad request', 'The Host header is not a host name or address.');
      const proxyAddress = `${at.host.includes(':') ? `[${at.host}]` : at.host}:${at.port}`;
      const consoleHost = this.consoleUrl ? new URL(this.consoleUrl).hostname : null;
      const body = pacFile({ proxy: proxyAddress, directDomains: this.options.directDomains ?? [], directHosts: consoleHost ? [consoleHost] : [] });
      res.writeHead(200, { 'content-type': 'application/x-ns-proxy-autoconfig', 'content-length': Buffer.byteLength(body), 'cache-control': 'public, max-age=300' });
      res.end(body);
      return;
    }
    this.sendError(res, 400, 'This is the school’s web filter', 'Gatehouse’s filtering proxy answers requests from browsers set to use it as their proxy (by the PAC file or by hand); it is not a website itself.');
  }

  private sendBlockPage(res: ServerResponse, host: string, url: string, verdict: Pick<Verdict, 'category' | 'categoryName' | 'reason' | 'policy' | 'unblockable'>, at: number): void {
    if (res.headersSent || res.destroyed) return;
    const body = blockPageHtml({ host, url, category: verdict.category, categoryName: verdict.categoryName, reason: verdict.reason, policy: verdict.policy, unblockable: verdict.unblockable, consoleUrl: this.consoleUrl, at, timeZone: this.options.timeZone });
    res.writeHead(403, 'Forbidden', {
      'content-type': 'text/html; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      'cache-control': 'no-store',
      'x-gatehouse-category': verdict.category ?? '',
      via: this.via,
    });
    res.end(body);
  }

  private sendError(res: ServerResponse, status: number, title: string, message: string): void {
    if (res.headersSent || res.destroyed) return;
    const body = proxyErrorHtml(title, message);
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', via: this.via });
    res.end(body);
  }

  /**
   * What the 407 says (finding 4): the proxy accepts only a password with nothing left to do, so a
   * new, temporary or expired password, or a policy to accept, sends the person to the console.
   */
  private signInHelp(): string {
    const where = this.consoleUrl ? `Gatehouse at ${this.consoleUrl}` : 'Gatehouse on a school computer';
    return `Enter your school username and password when your browser asks for them. If they are not accepted, sign in to ${where} first: a new, temporary or expired password is changed there, and the school’s rules accepted. Too many wrong passwords lock your account.`;
  }

  private askForSignIn(res: ServerResponse): void {
    const body = proxyErrorHtml('Sign in to use the internet', this.signInHelp());
    res.writeHead(407, { 'proxy-authenticate': REALM, 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
    res.end(body);
  }

  // ---- WebSocket over plain HTTP (Upgrade) ------------------------------------------------------

  /** A request whose Via already carries this process's token has come round again (a proxy pointed at itself). */
  private loopsBack(req: IncomingMessage): boolean {
    const via = req.headers.via;
    return via !== undefined && via.includes(this.via.slice(4));
  }

  private onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    if (this.turnedAway.has(socket)) return void socket.destroy();
    const target = parseAbsoluteUrl(req.url ?? '');
    if (target === null || target === 'unsupported') return refuseRaw(socket, 400, 'Bad Request', 'Only absolute http:// addresses can be upgraded through the web filter.');
    const protocols = req.headers.upgrade;
    if (!protocols) return refuseRaw(socket, 400, 'Bad Request', 'An upgrade names the protocol it asks for, e.g. Upgrade: websocket.');
    if (this.loopsBack(req)) return refuseRaw(socket, 508, 'Loop Detected', 'This request came back to the web filter that sent it.');
    const ip = clientAddress(socket);
    const auth = this.authenticate(req.headers['proxy-authorization'], socket, ip);
    const go = (a: AuthResult) => {
      if (!a.ok) return refuseRaw(socket, 407, 'Proxy Authentication Required', this.signInHelp(), `Proxy-Authenticate: ${REALM}\r\n`);
      const snapshot = this.point.snapshot();
      const identity = this.point.identify(ip, a.user);
      const at = this.now();
      const verdict = withExceptions(this.point, snapshot.decideUrl(target.host, target.path, identity.policyIndex, at), target.host, identity, ip, at);
      const url = `http://${target.authority}${target.path}`;
      this.record(identity, ip, a.user, at, target.host, url, verdict);
      if (verdict.action === 'block') return refuseRaw(socket, 403, 'Forbidden', `Blocked by the school’s web filter: ${verdict.reason}`);
      const connectHost = verdict.action === 'rewrite' && verdict.target ? verdict.target : target.host;
      const upstream = this.guard.connect({ host: connectHost, port: target.port });
      upstream.once('connect', () => {
        // Any body bytes pass through the tunnel as the client framed them.
        upstream.write(this.requestHead(req, target, ip, verdict, req.headers['transfer-encoding'] !== undefined, protocols));
        if (head.length > 0) upstream.write(head);
        this.splice(socket, upstream);
      });
      upstream.once('error', (error) => {
        if (error instanceof DestinationRefused) {
          this.refuse('destination', ip, error.message);
          return refuseRaw(socket, 403, 'Forbidden', `The school’s web filter does not connect to ${error.destination}: ${error.message}.`);
        }
        this.stats.upstreamErrors++;
        refuseRaw(socket, 502, 'Bad Gateway', `${connectHost} could not be reached.`);
      });
    };
    if (auth instanceof Promise) auth.then(go, () => socket.destroy());
    else go(auth);
  }

  // ---- CONNECT tunnels -------------------------------------------------------------------------

  private onConnect(req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    if (this.turnedAway.has(socket)) return void socket.destroy();
    socket.setNoDelay(true);
    const hp = parseAuthority(req.url ?? '', 0);
    if (!hp || hp.port === 0) return refuseRaw(socket, 400, 'Bad Request', 'CONNECT needs a host and a port, e.g. CONNECT example.org:443.');
    const ip = clientAddress(socket);
    const auth = this.authenticate(req.headers['proxy-authorization'], socket, ip);
    if (auth instanceof Promise) auth.then((a) => this.decideTunnel(socket, head, hp.host, hp.port, ip, a), () => socket.destroy());
    else this.decideTunnel(socket, head, hp.host, hp.port, ip, auth);
  }

  private decideTunnel(socket: Socket, head: Buffer, host: string, port: number, ip: string, auth: AuthResult): void {
    if (!auth.ok) return refuseRaw(socket, 407, 'Proxy Authentication Required', this.signInHelp(), `Proxy-Authenticate: ${REALM}\r\n`);
    this.stats.tunnels++;
    const snapshot = this.point.snapshot();
    const identity = this.point.identify(ip, auth.user);
    const at = this.now();
    const verdict = withExceptions(this.point, decideConnect(snapshot, host, port, identity.policyIndex, at), host, identity, ip, at);
    if (port === DOT_PORT) {
      // FI-10: DNS over TLS would bypass the school's resolver, for everyone.
      this.record(identity, ip, auth.user, at, host, null, verdict);
      return refuseRaw(socket, 403, 'Forbidden', verdict.reason);
    }
    if (!this.connectPorts.has(port)) {
      this.record(identity, ip, auth.user, at, host, null, { action: 'block', category: null, rule: 'port', policy: verdict.policy });
      return refuseRaw(socket, 403, 'Forbidden', `Secure connections through the school’s web filter may use ports ${listPorts([...this.connectPorts])} only.`);
    }
    if (verdict.action === 'block') {
      this.record(identity, ip, auth.user, at, host, null, verdict);
      return refuseRaw(socket, 403, 'Forbidden', `Blocked by the school’s web filter: ${verdict.reason}`, verdict.category ? `X-Gatehouse-Category: ${verdict.category}\r\n` : '');
    }
    if (net.isIP(host) === 0) {
      this.record(identity, ip, auth.user, at, host, null, verdict);
      const connectHost = verdict.action === 'rewrite' && verdict.target ? verdict.target : host;
      return this.openTunnel(socket, head, connectHost, port, true, ip);
    }
    // An IP address says little: decide on the name the client asks the server for (SNI). Where
    // the address may not be reached at all, say so before answering 200.
    const unreachable = this.guard.check(host);
    if (unreachable !== null) {
      this.refuse('destination', ip, `${host} is ${unreachable}`);
      return refuseRaw(socket, 403, 'Forbidden', `The school’s web filter does not connect to ${host}: it is ${unreachable}.`);
    }
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    readClientHello(socket, head, this.helloTimeoutMs).then(
      (hello) => {
        if (socket.destroyed) return;
        const now = this.now();
        if (hello.serverName === null) {
          if ((this.options.namelessTunnels ?? 'block') === 'block') {
            this.record(identity, ip, auth.user, now, host, null, { action: 'block', category: null, rule: 'no-server-name', policy: verdict.policy });
            if (hello.tls) socket.write(TLS_ACCESS_DENIED);
            socket.end();
            return;
          }
          this.record(identity, ip, auth.user, now, host, null, verdict);
          return this.openTunnel(socket, hello.data, host, port, false, ip);
        }
        const byName = withExceptions(this.point, decideConnect(snapshot, hello.serverName, port, identity.policyIndex, now), hello.serverName, identity, ip, now);
        this.record(identity, ip, auth.user, now, hello.serverName, null, byName);
        if (byName.action === 'block') {
          socket.write(TLS_ACCESS_DENIED);
          socket.end();
          return;
        }
        const connectHost = byName.action === 'rewrite' && byName.target ? byName.target : host;
        this.openTunnel(socket, hello.data, connectHost, port, false, ip);
      },
      () => socket.destroy(),
    );
  }

  private openTunnel(client: Socket, first: Buffer, host: string, port: number, answer: boolean, ip: string): void {
    const upstream = this.guard.connect({ host, port, noDelay: true });
    const timer = setTimeout(() => upstream.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })), CONNECT_TIMEOUT_MS);
    upstream.once('connect', () => {
      clearTimeout(timer);
      if (client.destroyed) {
        upstream.destroy();
        return;
      }
      if (answer) client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (first.length > 0) upstream.write(first);
      this.splice(client, upstream);
    });
    upstream.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (error instanceof DestinationRefused) {
        this.refuse('destination', ip, error.message);
        if (answer && !client.destroyed) return refuseRaw(client, 403, 'Forbidden', `The school’s web filter does not connect to ${host}: ${error.message}.`);
        return client.destroy();
      }
      this.stats.upstreamErrors++;
      if (answer && !client.destroyed) {
        if (error.code === 'ETIMEDOUT') return refuseRaw(client, 504, 'Gateway Timeout', `${host}:${port} did not answer in time.`);
        const status = error.code === 'ENOTFOUND' || error.code === 'EAI_AGAIN' ? 'the name could not be found' : 'it could not be reached';
        return refuseRaw(client, 502, 'Bad Gateway', `${host}:${port}: ${status}.`);
      }
      client.destroy();
    });
  }

  /** Bytes both ways until either side closes or the tunnel sits idle. */
  private splice(client: Socket, upstream: Socket): void {
    this.tunnels.add(client);
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
    const idle = () => {
      client.destroy();
      upstream.destroy();
    };
    client.setTimeout(this.tunnelIdleMs, idle);
    upstream.setTimeout(this.tunnelIdleMs, idle);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    upstream.on('close', () => {
      if (!client.destroyed) client.end();
    });
    client.on('close', () => {
      this.tunnels.delete(client);
      upstream.destroy();
    });
  }
}

/** AS-08: the verdict for a program or installer refused to a policy without downloads. */
function downloadVerdict(policy: string): Verdict {
  return {
    action: 'block',
    reason: `Blocked: downloading programs and installers is not allowed for ${policy}`,
    category: DOWNLOAD_CATEGORY,
    categoryName: DOWNLOAD_CATEGORY_NAME,
    rule: 'download',
    policy,
    target: null,
    unblockable: true,
  };
}

function listPorts(ports: number[]): string {
  return ports.length === 1 ? String(ports[0]) : `${ports.slice(0, -1).join(', ')} and ${ports.at(-1)}`;
}

function connectionTokens(value: string | undefined): string[] | null {
  if (value === undefined) return null;
  const lower = value.toLowerCase();
  if (lower === 'keep-alive' || lower === 'close') return null;
  return lower.split(',').map((t) => t.trim());
}

/** A short HTTP answer on a raw socket (CONNECT, Upgrade), then close. */
function refuseRaw(socket: Socket, status: number, text: string, body: string, extra = ''): void {
  if (socket.destroyed) return;
  const bytes = Buffer.from(`${body}\n`, 'utf8');
  socket.end(`HTTP/1.1 ${status} ${text}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${bytes.length}\r\nConnection: close\r\n${extra}\r\n${bytes.toString('utf8')}`);
}
