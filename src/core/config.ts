import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError } from './errors.js';

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
    description: 'The address people use to reach Gatehouse, used in links (setup, e-mails).',
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
    schema: bool,
    default: false,
    description: 'Trust X-Forwarded-For from a reverse proxy in front of Gatehouse.',
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
      'Key that encrypts stored second-factor secrets (default: <dataDir>/secret.key, created at first start). Nodes sharing one PostgreSQL database need the same file.',
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
  dnsBlockAddress: {
    env: 'GATEHOUSE_DNS_BLOCK_ADDRESS',
    schema: z.string().regex(/^[0-9.]+$/, 'must be an IPv4 address'),
    description: 'Answer blocked names with this address (the block page: this server’s address, with the proxy or a web server showing /blocked) instead of “no such name”.',
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
  trustProxy: boolean;
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
  shutdownGraceSeconds: number;
  dnsPort: number | undefined;
  dnsHost: string | undefined;
  dnsUpstreams: string;
  dnsBlockAddress: string | undefined;
  proxyPort: number | undefined;
  proxyHost: string | undefined;
  proxyPublicHost: string | undefined;
  proxyForwardedFor: 'delete' | 'append' | 'transparent';
  proxyConnectPorts: string;
  proxyDirectDomains: string | undefined;
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
  if (config.databaseUrl === undefined) {
    config.databaseUrl = `sqlite:${path.join(dataDir, 'gatehouse.db')}`;
    sources.databaseUrl = 'derived';
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
