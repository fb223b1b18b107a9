import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError } from './errors.js';
import { parseListAllowList } from './address-ranges.js';
import { DEFAULT_FILTER_CLIENT_NETWORKS, parseAddressList, parseCidrList } from './networks.js';

/**
 * Deployment settings: where data lives, how to reach the database, ports, keys. The school's
 * *policy* (lockout thresholds, expiry, filtering) lives in the policy profile, not here.
 *
 * Sources, later winning: built-in defaults < config file (GATEHOUSE_CONFIG, YAML or JSON) <
 * environment variables (GATEHOUSE_*). Every setting is declared once below with its variable,
 * its schema and whether it is secret; `gatehouse config` prints them all with secrets redacted.
 */

const PORT_RULE = 'must be a whole number between 1 and 65535 (or 0 for any free port)';
const port = z.coerce.number({ error: PORT_RULE }).int(PORT_RULE).min(0, PORT_RULE).max(65535, PORT_RULE);

const positiveInt = (what: string, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce
    .number({ error: `must be a whole number of ${what}` })
    .int(`must be a whole number of ${what}`)
    .min(1, `must be at least 1 ${what.replace(/s$/, '')}`)
    .max(max, `must be at most ${max} ${what}`);

const bool = z
  .union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no'])], {
    error: 'must be true or false',
  })
  .transform((v) => v === true || v === 'true' || v === '1' || v === 'yes');

const databaseUrl = z
  .string()
  .refine((v) => /^(sqlite:|postgres:\/\/|postgresql:\/\/)/.test(v), {
    message: 'must start with sqlite: (a file path) or postgres:// (a PostgreSQL connection URL)',
  });

const url = z.string().refine((v) => {
  try {
    const u = new URL(v);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}, 'must be an http:// or https:// URL');

const TRUST_EVERYONE = /^(true|yes|on|1|\*|all|any|everyone)$/i;
const TRUST_NOBODY = /^(false|no|off|0|none)?$/i;

/**
 * GATEHOUSE_TRUST_PROXY: the reverse proxies' addresses or networks → CIDRs ([] = none). `true`
 * and its like are refused, since believing X-Forwarded-For from everyone lets any client claim
 * a school address (skipping off-site MFA), spread guesses over made-up addresses, or read who is
 * signed in at another device's address (issue 10, finding 5).
 */
const trustedProxies = z
  .union([z.boolean(), z.string(), z.array(z.string())], { error: 'must be the addresses of your reverse proxies, e.g. 10.0.0.5,10.1.0.0/24' })
  .transform((value, ctx) => {
    const text = Array.isArray(value) ? value.join(',') : String(value).trim();
    if (value === true || TRUST_EVERYONE.test(text)) {
      ctx.addIssue({
        code: 'custom',
        message:
          'believing X-Forwarded-For from everyone is no longer allowed: anyone could then claim to be on the school network (skipping off-site MFA) or at another device’s address. Write the address of each reverse proxy in front of Gatehouse instead, e.g. GATEHOUSE_TRUST_PROXY=10.0.0.5 or 10.0.0.5,10.1.0.0/24 (127.0.0.1 for a proxy on this machine); leave it unset when nothing is in front',
      });
      return z.NEVER;
    }
    if (value === false || TRUST_NOBODY.test(text)) return [] as string[];
    const cidrs = parseAddressList(text);
    if (cidrs === null) {
      ctx.addIssue({ code: 'custom', message: 'must be the addresses or networks of your reverse proxies separated by commas, e.g. 10.0.0.5,10.1.0.0/24' });
      return z.NEVER;
    }
    return cidrs;
  });

/** Networks in CIDR form separated by commas ("10.0.0.0/8, fd00::/8"); each checked by node:net. */
const cidrList = z.string().refine((v) => parseCidrList(v) !== null, 'must be networks in CIDR form separated by commas, e.g. 10.0.0.0/8,192.168.0.0/16');

/** Networks and host names list downloads may reach although private (src/filtering/list-origin.ts). */
const listAllowList = z.string().superRefine((v, ctx) => {
  const problem = parseListAllowList(v).problem;
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

const smtpUrl = z.string().refine((v) => {
  try {
    const u = new URL(v);
    return u.protocol === 'smtp:' || u.protocol === 'smtps:';
  } catch {
    return false;
  }
}, 'must be an smtp:// or smtps:// URL, e.g. smtp://user:password@mail.example.org:587');

interface SettingSpec {
  env: string;
  schema: z.ZodType;
  default?: unknown;
  secret?: boolean;
  description: string;
}

/** Every setting, once. The key is the name used in the config file. */
export const settings = {
  dataDir: {
    env: 'GATEHOUSE_DATA_DIR',
    schema: z.string().min(1, 'must be a folder path'),
    default: './data',
    description: 'Folder for the SQLite database, the audit signing key and the process lock.',
  },
  databaseUrl: {
    env: 'GATEHOUSE_DATABASE_URL',
    schema: databaseUrl,
    secret: true,
    description:
      'sqlite:PATH (default: sqlite:<dataDir>/gatehouse.db) or postgres://user:password@host:5432/db.',
  },
  profile: {
    env: 'GATEHOUSE_PROFILE',
    schema: z.string().min(1, 'must name a shipped profile (ncsc, p0…p4) or a profile file'),
    default: 'ncsc',
    description: 'The school’s policy profile: a shipped one (ncsc, p0, p1, p2, p3, p4) or the path of a YAML/JSON profile file.',
  },
  host: {
    env: 'GATEHOUSE_HOST',
    schema: z.string().min(1, 'must be an interface address such as 127.0.0.1 or 0.0.0.0'),
    default: '127.0.0.1',
    description: 'Address the HTTP server listens on. Use 0.0.0.0 to serve the whole network.',
  },
  port: {
    env: 'GATEHOUSE_PORT',
    schema: port,
    default: 8080,
    description: 'TCP port of the HTTP server (console and API).',
  },
  publicUrl: {
    env: 'GATEHOUSE_PUBLIC_URL',
    schema: url,
    description: 'The address people use to reach Gatehouse: links (setup, e-mails, SCIM meta.location) and the passkey relying party come from it, never from a request\'s Host header. Unset: SCIM links are relative, and passkeys work only in a browser on the server itself at http://localhost:<port>.',
  },
  logLevel: {
    env: 'GATEHOUSE_LOG_LEVEL',
    schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
      error: 'must be one of fatal, error, warn, info, debug, trace, silent',
    }),
    default: 'info',
    description: 'Log detail. Logs are JSON lines on standard output; secrets are redacted.',
  },
  trustProxy: {
    env: 'GATEHOUSE_TRUST_PROXY',
    schema: trustedProxies,
    default: [],
    description:
      'The reverse proxies in front of Gatehouse, by address or network, separated by commas (e.g. 10.0.0.5,10.1.0.0/24). X-Forwarded-For is believed only from these, and the client is the right-most address in it that is not one of them. Empty (the default): no proxy, the connecting address is the client. `true` is refused: it would let anyone claim any address.',
  },
  tlsCertFile: {
    env: 'GATEHOUSE_TLS_CERT_FILE',
    schema: z.string().min(1, 'must be a file path'),
    description: 'PEM certificate chain; with tlsKeyFile, the server speaks HTTPS itself.',
  },
  tlsKeyFile: {
    env: 'GATEHOUSE_TLS_KEY_FILE',
    schema: z.string().min(1, 'must be a file path'),
    description: 'PEM private key for tlsCertFile.',
  },
  sqliteSynchronous: {
    env: 'GATEHOUSE_SQLITE_SYNCHRONOUS',
    schema: z.enum(['full', 'normal'], { error: 'must be full or normal' }),
    default: 'normal',
    description:
      'SQLite durability. normal (WAL, the default): every commit survives a crash of Gatehouse; a power cut may lose the last commits before the next checkpoint, never corrupting the database. full: every commit is flushed to disk before it is acknowledged, at the cost of an fsync on each (sign-in p99 rose from 51 to 358 ms in bench/login.sh).',
  },
  postgresPoolSize: {
    env: 'GATEHOUSE_POSTGRES_POOL_SIZE',
    schema: positiveInt('connections', 200),
    default: 10,
    description: 'Maximum PostgreSQL connections this node opens.',
  },
  auditCheckpointEvery: {
    env: 'GATEHOUSE_AUDIT_CHECKPOINT_EVERY',
    schema: positiveInt('events', 10_000_000),
    default: 1000,
    description: 'Sign an audit checkpoint after this many new events.',
  },
  auditCheckpointMinutes: {
    env: 'GATEHOUSE_AUDIT_CHECKPOINT_MINUTES',
    schema: positiveInt('minutes', 10_080),
    default: 15,
    description: 'Sign an audit checkpoint at least this often when there are new events.',
  },
  auditCheckpointLogFile: {
    env: 'GATEHOUSE_AUDIT_CHECKPOINT_LOG_FILE',
    schema: z.string().min(1, 'must be a file path'),
    description:
      'Also append every signed checkpoint to this file; put it on other storage (a network share, a syslog-shipped path) so truncation of the trail shows.',
  },
  metricsToken: {
    env: 'GATEHOUSE_METRICS_TOKEN',
    schema: z.string().min(16, 'must be at least 16 characters'),
    secret: true,
    description:
      'Bearer token for /metrics. Without it, /metrics answers only clients on this machine.',
  },
  smtpUrl: {
    env: 'GATEHOUSE_SMTP_URL',
    schema: smtpUrl,
    secret: true,
    description: 'Outgoing mail server for alerts and notices, e.g. smtp://user:pass@mail:587.',
  },
  smtpFrom: {
    env: 'GATEHOUSE_SMTP_FROM',
    schema: z.email('must be an e-mail address'),
    description: 'Sender address of mail from Gatehouse.',
  },
  argon2MemoryKiB: {
    env: 'GATEHOUSE_ARGON2_MEMORY_KIB',
    schema: positiveInt('KiB', 4_194_304).refine((v) => v >= 8192, 'must be at least 8192 KiB'),
    default: 19456,
    description: 'argon2id memory cost (OWASP: 19456 KiB with t=2, p=1).',
  },
  argon2Iterations: {
    env: 'GATEHOUSE_ARGON2_ITERATIONS',
    schema: positiveInt('iterations', 100),
    default: 2,
    description: 'argon2id time cost.',
  },
  argon2Parallelism: {
    env: 'GATEHOUSE_ARGON2_PARALLELISM',
    schema: positiveInt('lanes', 16),
    default: 1,
    description: 'argon2id parallelism.',
  },
  signInFailuresPerAddress: {
    env: 'GATEHOUSE_SIGN_IN_FAILURES_PER_ADDRESS',
    schema: positiveInt('failures', 1_000_000),
    default: 200,
    description:
      'Failed sign-ins allowed from one network address in 5 minutes before it must wait (checked before any password hashing). Counts failures only, so a school behind one address is not slowed by its morning rush.',
  },
  secretKeyFile: {
    env: 'GATEHOUSE_SECRET_KEY_FILE',
    schema: z.string().min(1, 'must be a file path'),
    description:
      'Key that encrypts stored second-factor secrets (default: <dataDir>/secret.key, created at first start). Nodes sharing one PostgreSQL database need the same file. Rotate it with `gatehouse secret-key rotate` (docs/security-keys.md).',
  },
  hmacKeyFile: {
    env: 'GATEHOUSE_HMAC_KEY_FILE',
    schema: z.string().min(1, 'must be a file path'),
    description:
      'Key for the one-way keyed hashes of recovery codes and of unknown usernames in the audit trail (default: <dataDir>/hmac.key, created at first start). Nodes sharing one PostgreSQL database need the same file; it is never rotated (docs/security-keys.md).',
  },
  shutdownGraceSeconds: {
    env: 'GATEHOUSE_SHUTDOWN_GRACE_SECONDS',
    schema: positiveInt('seconds', 600),
    default: 20,
    description: 'On SIGTERM, how long in-flight requests may take before the server stops anyway.',
  },
  proxyPort: {
    env: 'GATEHOUSE_PROXY_PORT',
    schema: port,
    description: 'TCP port of the filtering web proxy (`gatehouse proxy`; devices set up by the PAC file at /proxy.pac). Unset: no proxy, and /proxy.pac answers 404.',
  },
  proxyHost: {
    env: 'GATEHOUSE_PROXY_HOST',
    schema: z.string().min(1, 'must be an interface address such as 0.0.0.0'),
    description: 'Address the filtering proxy listens on (default: the HTTP server’s host). Use 0.0.0.0 to serve the school network.',
  },
  proxyPublicHost: {
    env: 'GATEHOUSE_PROXY_PUBLIC_HOST',
    schema: z.string().regex(/^[A-Za-z0-9.:[\]_-]+$/, 'must be a host name or address, e.g. proxy.school.internal'),
    description: 'The name or address devices use to reach the proxy, written into the PAC file (default: the host of GATEHOUSE_PUBLIC_URL).',
  },
  proxyForwardedFor: {
    env: 'GATEHOUSE_PROXY_FORWARDED_FOR',
    schema: z.enum(['delete', 'append', 'transparent'], { error: 'must be delete, append or transparent' }),
    default: 'delete',
    description: 'X-Forwarded-For towards websites: delete (devices’ addresses stay inside the school), append (add the device’s address), transparent (pass on what the device sent).',
  },
  proxyConnectPorts: {
    env: 'GATEHOUSE_PROXY_CONNECT_PORTS',
    schema: z.string().regex(/^\d{1,5}(,\s*\d{1,5})*$/, 'must be port numbers separated by commas, e.g. 443,80'),
    default: '443,80',
    description: 'Ports HTTPS tunnels (CONNECT) may reach through the proxy. Port 853 (DNS over TLS) is refused whatever is listed.',
  },
  proxyDirectDomains: {
    env: 'GATEHOUSE_PROXY_DIRECT_DOMAINS',
    schema: z.string().regex(/^[A-Za-z0-9.,\s_-]+$/, 'must be domain names separated by commas, e.g. school.internal,intranet.example.org'),
    description: 'Domains the PAC file sends directly rather than through the proxy (the school’s own intranet), besides private addresses and plain host names.',
  },
  filterClientNetworks: {
    env: 'GATEHOUSE_FILTER_CLIENT_NETWORKS',
    schema: cidrList,
    default: DEFAULT_FILTER_CLIENT_NETWORKS.join(','),
    description:
      'Networks whose devices may use the filtering proxy and the DNS resolver, in CIDR form separated by commas. Default: this machine and the private ranges (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7, fe80::/10); anything else is refused, so the filter is never an open proxy or open resolver.',
  },
  dnsPort: {
    env: 'GATEHOUSE_DNS_PORT',
    schema: port,
    description: 'UDP and TCP port of the protective DNS resolver that `serve` runs with the policies and lists in the database (53 for devices; DHCP hands out this server). Unset: no resolver in `serve`.',
  },
  dnsHost: {
    env: 'GATEHOUSE_DNS_HOST',
    schema: z.string().min(1, 'must be an interface address such as 0.0.0.0'),
    description: 'Address the DNS resolver in `serve` answers on (default: the HTTP server’s host). Use 0.0.0.0 (or ::) to serve the school network.',
  },
  dnsUpstreams: {
    env: 'GATEHOUSE_DNS_UPSTREAMS',
    schema: z.string().regex(/^[0-9A-Fa-f.:[\]]+(,\s*[0-9A-Fa-f.:[\]]+)*$/, 'must be resolver addresses separated by commas, e.g. 9.9.9.9,149.112.112.112'),
    default: '9.9.9.9,149.112.112.112',
    description: 'Resolvers the DNS resolver in `serve` forwards allowed names to, in order of preference (address or address:port).',
  },
  dnsOutsideClients: {
    env: 'GATEHOUSE_DNS_OUTSIDE_CLIENTS',
    schema: z.enum(['refuse', 'drop'], { error: 'must be refuse or drop' }),
    default: 'refuse',
    description:
      'What the DNS resolver gives a device outside GATEHOUSE_FILTER_CLIENT_NETWORKS: refuse (an answer REFUSED, as unbound does by default, so the device gives up at once; at most 10 a second per address and never larger than the query, so the resolver is no reflector) or drop (no answer at all). A TCP connection from outside is closed at once either way.',
  },
  dnsClientRateLimit: {
    env: 'GATEHOUSE_DNS_CLIENT_RATE_LIMIT',
    schema: z.coerce.number({ error: 'must be a whole number of queries a second (0 for no limit)' }).int('must be a whole number of queries a second (0 for no limit)').min(0, 'must be 0 or more').max(1_000_000, 'must be at most 1000000'),
    default: 0,
    description:
      'Queries a second one device (an IPv4 address, or an IPv6 /64) may ask the DNS resolver; more are dropped and counted (gatehouse_dns_refused_total{reason="rate_limit"}). 0 (default): no limit, as a school’s own DNS server or NAT gateway may ask for many devices from one address.',
  },
  dnsBlockAddress: {
    env: 'GATEHOUSE_DNS_BLOCK_ADDRESS',
    schema: z.string().regex(/^[0-9.]+$/, 'must be an IPv4 address'),
    description: 'Answer blocked names with this address (the block page: this server’s address, with the proxy or a web server showing /blocked) instead of “no such name”.',
  },
  listFolder: {
    env: 'GATEHOUSE_LIST_FOLDER',
    schema: z.string().min(1, 'must be a folder path'),
    description:
      'The only folder on this server that filter lists may be read from (default: <dataDir>/lists). A list whose location is a file or folder elsewhere — or a symbolic link leading out of it, a device or a pipe — is refused when it is saved and when it is fetched.',
  },
  listAllowedNetworks: {
    env: 'GATEHOUSE_LIST_ALLOWED_NETWORKS',
    schema: listAllowList,
    description:
      'Private networks (CIDR, e.g. 10.20.0.0/16) and host names (e.g. lists.school.internal) that list downloads may reach, separated by commas. Default: none — lists are downloaded only from public addresses; this machine, link-local and cloud-metadata addresses, private networks (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7) and multicast are refused after the name is resolved and on every redirect. A host name listed here may resolve to a private network, never to this machine or a link-local address; a network listed here is reached as written.',
  },
  rateLimitSignInPerMinute: {
    env: 'GATEHOUSE_RATE_LIMIT_SIGN_IN_PER_MINUTE',
    schema: positiveInt('requests', 10_000_000),
    default: 6000,
    description:
      'Sign-in requests (password, second factor, AUP, passkey, re-authentication) one address may make per minute before 429. Generous on purpose: a whole school behind one NAT address signs in at 8:30 (bench/login.sh: 1,500 sign-ins in a minute, and 58 a second at capacity); the account lockout and GATEHOUSE_SIGN_IN_FAILURES_PER_ADDRESS do the fine-grained work.',
  },
  rateLimitResetPerMinute: {
    env: 'GATEHOUSE_RATE_LIMIT_RESET_PER_MINUTE',
    schema: positiveInt('requests', 10_000_000),
    default: 30,
    description: 'Self-service password-reset requests and confirmations, and first-run setup attempts, one address may make per minute before 429.',
  },
  rateLimitBlockPagePerMinute: {
    env: 'GATEHOUSE_RATE_LIMIT_BLOCK_PAGE_PER_MINUTE',
    schema: positiveInt('requests', 10_000_000),
    default: 600,
    description: 'Block-page explanations (/api/filtering/blocked) and captive-page connections (/api/filtering/connect) one address may ask for per minute before 429.',
  },
  rateLimitReportPerMinute: {
    env: 'GATEHOUSE_RATE_LIMIT_REPORT_PER_MINUTE',
    schema: positiveInt('requests', 10_000_000),
    default: 20,
    description: 'Unblock requests and reports sent from the block page one address may make per minute before 429 (each is stored and audited).',
  },
  rateLimitApiPerMinute: {
    env: 'GATEHOUSE_RATE_LIMIT_API_PER_MINUTE',
    schema: positiveInt('requests', 10_000_000),
    default: 6000,
    description: 'Requests one address may make per minute to the machine APIs: SCIM provisioning (/scim/v2) and the filtering identity API (RADIUS accounting, device agents), before 429.',
  },
  proxyMaxConnections: {
    env: 'GATEHOUSE_PROXY_MAX_CONNECTIONS',
    schema: positiveInt('connections', 1_000_000),
    default: 4096,
    description: 'Client connections the filtering proxy holds open at once (each process of `--workers`); more are answered 503 and closed. Each costs two file descriptors (client and website): raise the service’s open-files limit to match.',
  },
  proxyMaxConnectionsPerClient: {
    env: 'GATEHOUSE_PROXY_MAX_CONNECTIONS_PER_CLIENT',
    schema: positiveInt('connections', 1_000_000),
    default: 256,
    description: 'Client connections one device address may hold open through the proxy at once; more are answered 429 and closed. A browser uses a few dozen; raise it when many devices reach the proxy through one NAT address.',
  },
  proxyMaxHeaderBytes: {
    env: 'GATEHOUSE_PROXY_MAX_HEADER_BYTES',
    schema: positiveInt('bytes', 1_048_576).refine((v) => v >= 1024, 'must be at least 1024 bytes'),
    default: 16_384,
    description: 'Largest request head (request line and headers) the proxy reads; a larger one is answered 431 and the connection closed.',
  },
  proxyHeadTimeoutSeconds: {
    env: 'GATEHOUSE_PROXY_HEAD_TIMEOUT_SECONDS',
    schema: positiveInt('seconds', 3600),
    default: 10,
    description: 'A request head must arrive whole within this many seconds of the connection (or of the request’s first byte), or the proxy answers 408 and closes it (slowloris: a head sent a byte at a time).',
  },
  proxyIdleTimeoutSeconds: {
    env: 'GATEHOUSE_PROXY_IDLE_TIMEOUT_SECONDS',
    schema: positiveInt('seconds', 86_400),
    default: 60,
    description: 'A proxy client connection with nothing sent either way for this many seconds is closed (between requests, or a body sent too slowly). HTTPS tunnels have their own 15 minutes.',
  },
  proxyAllowedDestinations: {
    env: 'GATEHOUSE_PROXY_ALLOWED_DESTINATIONS',
    schema: cidrList,
    description:
      'Networks the proxy may reach even though it otherwise refuses them (loopback, link-local, this server’s own addresses, or GATEHOUSE_PROXY_REFUSED_DESTINATIONS), in CIDR form separated by commas, e.g. a service on this machine that devices must use through the proxy. Listed at start as a warning.',
  },
  proxyRefusedDestinations: {
    env: 'GATEHOUSE_PROXY_REFUSED_DESTINATIONS',
    schema: cidrList,
    description:
      'Networks the proxy refuses to reach besides loopback, link-local, unspecified, multicast and this server’s own addresses (always refused). Private ranges are the school’s intranet and allowed by default; list them here (10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7) to keep devices from reaching internal systems through the proxy.',
  },
  auditFingerprintEmail: {
    env: 'GATEHOUSE_AUDIT_FINGERPRINT_EMAIL',
    schema: z.enum(['off', 'daily', 'weekly', 'monthly'], { error: 'must be off, daily, weekly or monthly' }),
    default: 'weekly',
    description:
      'How often the audit trail’s fingerprint (a signed checkpoint’s event number and head hash) is e-mailed to the headteacher and the responsible governor (School > Named roles), who keep it as evidence outside the server. Nothing is sent without GATEHOUSE_SMTP_URL.',
  },
  auditCheckpointPublic: {
    env: 'GATEHOUSE_AUDIT_CHECKPOINT_PUBLIC',
    schema: bool,
    default: false,
    description:
      'Let anyone fetch the newest signed audit checkpoint at /api/audit/checkpoint (for `gatehouse audit witness --url` on another machine). It shows how many audit events there are and a hash, nothing else; off, it needs the audit.read permission.',
  },
  backupDir: {
    env: 'GATEHOUSE_BACKUP_DIR',
    schema: z.string().min(1, 'must be a folder path'),
    description:
      'DP-03: a folder for the scheduled backups of Gatehouse’s own database, made by `serve` (SQLite only; on PostgreSQL use pg_dump). Each run is a check-in of the built-in “Gatehouse database” job in the backups register, so a missed or failed run alerts like any other. Unset: no scheduled backups.',
  },
  backupEveryMinutes: {
    env: 'GATEHOUSE_BACKUP_EVERY_MINUTES',
    schema: positiveInt('minutes', 60 * 24 * 31),
    default: 1440,
    description: 'How often `serve` backs up its own database into GATEHOUSE_BACKUP_DIR (also the built-in job’s expected interval).',
  },
  backupKeep: {
    env: 'GATEHOUSE_BACKUP_KEEP',
    schema: positiveInt('backups', 10_000),
    default: 14,
    description: 'How many scheduled backups to keep in GATEHOUSE_BACKUP_DIR; older ones are deleted after each successful run.',
  },
  backupKeyFile: {
    env: 'GATEHOUSE_BACKUP_KEY_FILE',
    schema: z.string().min(1, 'must be a file path'),
    description:
      'DP-01: encrypt the scheduled backups (AES-256-GCM) with this backup key (`gatehouse backup-key FILE`); never the server’s secret.key, so a stolen backup and data folder do not give both. Unset: the backups are written unencrypted (0600), with a warning at start.',
  },
} satisfies Record<string, SettingSpec>;

export type SettingKey = keyof typeof settings;

export interface Config {
  dataDir: string;
  databaseUrl: string;
  profile: string;
  host: string;
  port: number;
  publicUrl: string | undefined;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** the reverse proxies X-Forwarded-For is believed from, as CIDRs; [] for none */
  trustProxy: string[];
  tlsCertFile: string | undefined;
  tlsKeyFile: string | undefined;
  sqliteSynchronous: 'full' | 'normal';
  postgresPoolSize: number;
  auditCheckpointEvery: number;
  auditCheckpointMinutes: number;
  auditCheckpointLogFile: string | undefined;
  metricsToken: string | undefined;
  smtpUrl: string | undefined;
  smtpFrom: string | undefined;
  argon2MemoryKiB: number;
  argon2Iterations: number;
  argon2Parallelism: number;
  signInFailuresPerAddress: number;
  secretKeyFile: string | undefined;
  hmacKeyFile: string | undefined;
  shutdownGraceSeconds: number;
  filterClientNetworks: string;
  dnsPort: number | undefined;
  dnsHost: string | undefined;
  dnsUpstreams: string;
  dnsBlockAddress: string | undefined;
  dnsOutsideClients: 'refuse' | 'drop';
  dnsClientRateLimit: number;
  proxyPort: number | undefined;
  proxyHost: string | undefined;
  proxyPublicHost: string | undefined;
  proxyForwardedFor: 'delete' | 'append' | 'transparent';
  proxyConnectPorts: string;
  proxyDirectDomains: string | undefined;
  listFolder: string;
  listAllowedNetworks: string | undefined;
  rateLimitSignInPerMinute: number;
  rateLimitResetPerMinute: number;
  rateLimitBlockPagePerMinute: number;
  rateLimitReportPerMinute: number;
  rateLimitApiPerMinute: number;
  proxyMaxConnections: number;
  proxyMaxConnectionsPerClient: number;
  proxyMaxHeaderBytes: number;
  proxyHeadTimeoutSeconds: number;
  proxyIdleTimeoutSeconds: number;
  proxyAllowedDestinations: string | undefined;
  proxyRefusedDestinations: string | undefined;
  auditFingerprintEmail: 'off' | 'daily' | 'weekly' | 'monthly';
  auditCheckpointPublic: boolean;
  backupDir: string | undefined;
  backupEveryMinutes: number;
  backupKeep: number;
  backupKeyFile: string | undefined;
}

export type SettingSource = 'default' | 'file' | 'environment' | 'derived';

export interface LoadedConfig {
  config: Config;
  sources: Record<SettingKey, SettingSource | undefined>;
  file: string | undefined;
}

const CONFIG_FILE_ENV = 'GATEHOUSE_CONFIG';
const keys = Object.keys(settings) as SettingKey[];
const envNames = new Map(keys.map((k) => [settings[k].env, k]));

function closest(name: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(name, c);
    if (d < bestDistance) {
      bestDistance = d;
      best = c;
    }
  }
  return bestDistance <= 3 ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(
      `${CONFIG_FILE_ENV}: cannot read the config file ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'}).`,
    );
  }
  let parsed: unknown;
  try {
    parsed = /\.json$/i.test(file) ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new ConfigError(`${file}: not valid ${/\.json$/i.test(file) ? 'JSON' : 'YAML'}: ${(error as Error).message}`);
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(`${file}: must be a mapping of setting names to values.`);
  }
  return parsed as Record<string, unknown>;
}

/**
 * Builds the configuration, or throws one ConfigError listing every bad setting by the name the
 * operator used (the variable or the file key) with what is allowed.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const problems: string[] = [];
  const raw: Partial<Record<SettingKey, unknown>> = {};
  const sources = {} as Record<SettingKey, SettingSource | undefined>;
  const origin = {} as Record<SettingKey, string>;

  for (const key of keys) {
    const spec: SettingSpec = settings[key];
    if (spec.default !== undefined) {
      raw[key] = spec.default;
      sources[key] = 'default';
      origin[key] = `${key} (default)`;
    }
  }

  const file = env[CONFIG_FILE_ENV] || undefined;
  if (file) {
    const values = readConfigFile(file);
    for (const [name, value] of Object.entries(values)) {
      if (!(name in settings)) {
        const hint = closest(name, keys);
        problems.push(`${file}: unknown setting "${name}"${hint ? ` (did you mean "${hint}"?)` : ''}`);
        continue;
      }
      const key = name as SettingKey;
      raw[key] = value;
      sources[key] = 'file';
      origin[key] = `${file}: ${key}`;
    }
  }

  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('GATEHOUSE_') || name === CONFIG_FILE_ENV) continue;
    const key = envNames.get(name);
    if (!key) {
      const hint = closest(name, [...envNames.keys()]);
      problems.push(`${name}: unknown setting${hint ? ` (did you mean ${hint}?)` : ''}`);
      continue;
    }
    if (value === undefined || value === '') continue;
    raw[key] = value;
    sources[key] = 'environment';
    origin[key] = name;
  }

  const config = {} as Record<SettingKey, unknown>;
  for (const key of keys) {
    if (raw[key] === undefined) {
      config[key] = undefined;
      continue;
    }
    const result = (settings[key] as SettingSpec).schema.safeParse(raw[key]);
    if (result.success) {
      config[key] = result.data;
    } else {
      const shown = settings[key as SettingKey] && (settings[key] as SettingSpec).secret ? '(hidden)' : JSON.stringify(raw[key]);
      problems.push(`${origin[key]}: ${result.error.issues[0]?.message ?? 'invalid'} (got ${shown})`);
    }
  }

  if (config.tlsCertFile && !config.tlsKeyFile) problems.push('GATEHOUSE_TLS_KEY_FILE: required when GATEHOUSE_TLS_CERT_FILE is set');
  if (config.tlsKeyFile && !config.tlsCertFile) problems.push('GATEHOUSE_TLS_CERT_FILE: required when GATEHOUSE_TLS_KEY_FILE is set');

  if (problems.length > 0) {
    throw new ConfigError(`Gatehouse cannot start: the configuration has ${problems.length === 1 ? 'a problem' : `${problems.length} problems`}:\n  - ${problems.join('\n  - ')}`);
  }

  const dataDir = path.resolve(config.dataDir as string);
  config.dataDir = dataDir;
  if (config.backupDir !== undefined && typeof config.databaseUrl === 'string' && config.databaseUrl.startsWith('postgres')) {
    throw new ConfigError(`Gatehouse cannot start: ${origin.backupDir}: the scheduled backup is for SQLite; on PostgreSQL back up with pg_dump (docs/backup.md) and record it as a job in the backups register`);
  }
  if (config.backupKeyFile !== undefined && config.backupDir === undefined) {
    throw new ConfigError(`Gatehouse cannot start: ${origin.backupKeyFile}: set GATEHOUSE_BACKUP_DIR too (the key encrypts the scheduled backups written there)`);
  }
  if (config.databaseUrl === undefined) {
    config.databaseUrl = `sqlite:${path.join(dataDir, 'gatehouse.db')}`;
    sources.databaseUrl = 'derived';
  }
  if (config.listFolder === undefined) {
    config.listFolder = path.join(dataDir, 'lists');
    sources.listFolder = 'derived';
  } else {
    // Lists are read from this folder on an administrator's say-so: it must not hold the data folder (its keys and database).
    const folder = path.resolve(config.listFolder as string);
    config.listFolder = folder;
    const holds = (child: string) => child === folder || child.startsWith(folder.endsWith(path.sep) ? folder : `${folder}${path.sep}`);
    const sqlite = typeof config.databaseUrl === 'string' && config.databaseUrl.startsWith('sqlite:') ? config.databaseUrl.slice('sqlite:'.length) : undefined;
    const secrets = [dataDir, config.secretKeyFile, config.tlsKeyFile, sqlite].filter((f): f is string => typeof f === 'string' && f !== '').map((f) => path.resolve(f));
    if (secrets.some(holds)) {
      throw new ConfigError(`Gatehouse cannot start: ${origin.listFolder}: ${folder} holds the data folder, a key or the database; give a folder of its own for the lists, e.g. ${path.join(dataDir, 'lists')}`);
    }
  }
  return { config: config as unknown as Config, sources, file };
}

const REDACTED = '(redacted)';

/** Secrets out: whole secret values, and the password part of any URL. */
export function redactedConfig(config: Config): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    const value = config[key];
    const spec: SettingSpec = settings[key];
    if (value === undefined) {
      out[key] = null;
    } else if (spec.secret && typeof value === 'string') {
      out[key] = redactUrlPassword(value) ?? REDACTED;
    } else {
      out[key] = value;
    }
  }
  return out;
}

/** For URL-shaped secrets, show the URL without its password; otherwise undefined (hide it all). */
function redactUrlPassword(value: string): string | undefined {
  if (value.startsWith('sqlite:')) return value;
  try {
    const u = new URL(value);
    if (!u.host) return undefined;
    if (u.password) u.password = 'redacted';
    for (const name of [...u.searchParams.keys()]) {
      if (/pass|secret|token|key/i.test(name)) u.searchParams.set(name, 'redacted');
    }
    return u.toString();
  } catch {
    return undefined;
  }
}

export function describeSettings(): Array<{ key: SettingKey; env: string; secret: boolean; default: unknown; description: string }> {
  return keys.map((key) => {
    const spec: SettingSpec = settings[key];
    return { key, env: spec.env, secret: spec.secret === true, default: spec.default, description: spec.description };
  });
}
