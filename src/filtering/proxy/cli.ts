import cluster from 'node:cluster';
import { parseArgs } from 'node:util';
import { loadConfig } from '../../core/config.js';
import { parseCidrList } from '../../core/networks.js';
import {
  describeStandalone,
  isEntryModule,
  loadStandaloneFiles,
  recordActivityTo,
  reloadOnSighup,
  StandaloneError,
  STANDALONE_ARGS,
  type Standalone,
  type StandaloneFileOptions,
} from '../standalone.js';
import { startProxy, type ForwardedFor, type ProxyHandle } from './proxy.js';

/**
 * `gatehouse proxy`: the filtering proxy on its own, from files — a UT1 folder and the policy file
 * the Squid helper reads (src/filtering/standalone.ts: lists, policies, clients by address, proxy
 * user names) — without the database. Settings come from the GATEHOUSE_PROXY_* variables (or the
 * config file), flags winning. With --workers N, N processes share the port (node:cluster).
 * SIGHUP reloads the files; SIGTERM and SIGINT stop.
 */

export interface ProxyCliOptions extends StandaloneFileOptions {
  host?: string | undefined;
  port?: string | undefined;
  consoleUrl?: string | undefined;
  forwardedFor?: string | undefined;
  connectPorts?: string | undefined;
  workers?: string | undefined;
  clientNetworks?: string | undefined;
  maxConnections?: string | undefined;
  maxConnectionsPerClient?: string | undefined;
  maxHeaderBytes?: string | undefined;
  headTimeout?: string | undefined;
  idleTimeout?: string | undefined;
  allowedDestinations?: string | undefined;
  refusedDestinations?: string | undefined;
}

export const PROXY_USAGE = `Usage: gatehouse proxy [--ut1 FOLDER] [--policy FILE] [--port N] [--host ADDRESS] [--workers N] [options]

The filtering web proxy (docs/proxy.md), run from files without the Gatehouse server.

Options:
  --ut1 FOLDER            a UT1 list folder (categories); overrides the policy file's ut1
  --policy FILE           the policy file (YAML or JSON): lists, policies, clients, users (docs/squid.md)
  --unknown-policy ID     the policy for clients the file does not list
  --activity FILE         append every decision to FILE as JSON lines (MO-01)
  --port N                listening port (default GATEHOUSE_PROXY_PORT, else 3128)
  --host ADDRESS          listening address (default GATEHOUSE_PROXY_HOST, else GATEHOUSE_HOST)
  --console-url URL       the Gatehouse console, for the block page's links (default GATEHOUSE_PUBLIC_URL)
  --forwarded-for MODE    delete | append | transparent (default GATEHOUSE_PROXY_FORWARDED_FOR, else delete)
  --connect-ports LIST    ports CONNECT may reach, e.g. 443,80 (853 is always refused)
  --client-networks LIST  networks whose devices may use the proxy, e.g. 10.0.0.0/8,192.168.0.0/16
                          (default GATEHOUSE_FILTER_CLIENT_NETWORKS, else loopback and the private ranges);
                          a connection from anywhere else is closed unanswered
  --allowed-destinations LIST   networks reachable although otherwise refused (GATEHOUSE_PROXY_ALLOWED_DESTINATIONS)
  --refused-destinations LIST   networks refused besides loopback, link-local, multicast and this
                          server's own addresses (GATEHOUSE_PROXY_REFUSED_DESTINATIONS; e.g. the private ranges)
  --max-connections N     client connections at once, per process (GATEHOUSE_PROXY_MAX_CONNECTIONS, else 4096)
  --max-connections-per-client N   per device address (GATEHOUSE_PROXY_MAX_CONNECTIONS_PER_CLIENT, else 256)
  --max-header-bytes N    largest request head, else 431 (GATEHOUSE_PROXY_MAX_HEADER_BYTES, else 16384)
  --head-timeout S        seconds for a whole request head, else 408 (GATEHOUSE_PROXY_HEAD_TIMEOUT_SECONDS, else 10)
  --idle-timeout S        seconds a connection may sit idle (GATEHOUSE_PROXY_IDLE_TIMEOUT_SECONDS, else 60)
  --workers N             processes sharing the port (default 1)
  --check                 load the files, print what was compiled, and exit
`;

const say = (message: string) => process.stderr.write(`gatehouse proxy[${process.pid}]: ${message}\n`);

class UsageError extends Error {}

function settings(options: ProxyCliOptions) {
  const { config } = loadConfig();
  const port = options.port !== undefined ? Number(options.port) : (config.proxyPort ?? 3128);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port must be a whole number between 0 and 65535 (got ${options.port})`);
  const forwardedFor = (options.forwardedFor ?? config.proxyForwardedFor) as ForwardedFor;
  if (!['delete', 'append', 'transparent'].includes(forwardedFor)) throw new UsageError('--forwarded-for must be delete, append or transparent');
  const portsText = options.connectPorts ?? config.proxyConnectPorts;
  const connectPorts = portsText.split(',').map((p) => Number(p.trim()));
  if (connectPorts.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) throw new UsageError(`--connect-ports must be port numbers separated by commas (got ${portsText})`);
  const workers = options.workers !== undefined ? Number(options.workers) : 1;
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) throw new UsageError('--workers must be a whole number from 1 to 64');
  let consoleUrl = options.consoleUrl ?? config.publicUrl ?? null;
  if (consoleUrl !== null) {
    try {
      if (!/^https?:$/.test(new URL(consoleUrl).protocol)) throw new Error('scheme');
    } catch {
      throw new UsageError(`--console-url must be an http:// or https:// address (got ${consoleUrl})`);
    }
    consoleUrl = consoleUrl.replace(/\/+$/, '');
  }
  const directDomains = (config.proxyDirectDomains ?? '').split(',').map((d) => d.trim()).filter(Boolean);
  // Flags win over settings (finding 9: who may use the proxy, where it may go, and its caps).
  const networks = (flag: string, text: string | undefined): string[] | undefined => {
    if (text === undefined) return undefined;
    const list = parseCidrList(text);
    if (list === null) throw new UsageError(`--${flag} must be networks in CIDR form separated by commas, e.g. 10.0.0.0/8,192.168.0.0/16 (got ${text})`);
    return list;
  };
  const whole = (flag: string, text: string | undefined, fallback: number, min: number, max: number): number => {
    if (text === undefined) return fallback;
    const n = Number(text);
    if (!/^\d+$/.test(text) || n < min || n > max) throw new UsageError(`--${flag} must be a whole number from ${min} to ${max} (got ${text})`);
    return n;
  };
  const clientNetworks = networks('client-networks', options.clientNetworks ?? config.filterClientNetworks)!;
  const allowedDestinations = networks('allowed-destinations', options.allowedDestinations ?? config.proxyAllowedDestinations);
  const refusedDestinations = networks('refused-destinations', options.refusedDestinations ?? config.proxyRefusedDestinations);
  const maxConnections = whole('max-connections', options.maxConnections, config.proxyMaxConnections, 1, 1_000_000);
  const maxConnectionsPerClient = whole('max-connections-per-client', options.maxConnectionsPerClient, config.proxyMaxConnectionsPerClient, 1, 1_000_000);
  const maxHeaderBytes = whole('max-header-bytes', options.maxHeaderBytes, config.proxyMaxHeaderBytes, 1024, 1_048_576);
  const headTimeoutMs = whole('head-timeout', options.headTimeout, config.proxyHeadTimeoutSeconds, 1, 3600) * 1000;
  const idleMs = whole('idle-timeout', options.idleTimeout, config.proxyIdleTimeoutSeconds, 1, 86_400) * 1000;
  return {
    port,
    host: options.host ?? config.proxyHost ?? config.host,
    forwardedFor,
    connectPorts,
    workers,
    consoleUrl,
    directDomains,
    clientNetworks,
    allowedDestinations,
    refusedDestinations,
    maxConnections,
    maxConnectionsPerClient,
    maxHeaderBytes,
    headTimeoutMs,
    idleMs,
  };
}

/** Runs the proxy until SIGTERM/SIGINT; returns the exit code. */
export async function runProxyCli(options: ProxyCliOptions): Promise<number> {
  let s: ReturnType<typeof settings>;
  try {
    s = settings(options);
  } catch (error) {
    say((error as Error).message);
    return 2;
  }
  if (s.workers > 1 && cluster.isPrimary && !options.check) return runPrimary(s.workers, `${s.host}:${s.port}`);

  const load = () => loadStandaloneFiles(options, say);
  let loaded: Standalone;
  try {
    loaded = await load();
  } catch (error) {
    say(`cannot start: ${error instanceof StandaloneError ? error.message : ((error as Error).stack ?? String(error))}`);
    return 1;
  }
  if (options.check) {
    process.stdout.write(`OK: ${describeStandalone(loaded)}\n`);
    return 0;
  }
  const writer = recordActivityTo(loaded.point, options.activity, say);

  let handle: ProxyHandle;
  try {
    handle = await startProxy(loaded.point, {
      host: s.host,
      port: s.port,
      consoleUrl: s.consoleUrl,
      timeZone: loaded.timeZone,
      directDomains: s.directDomains,
      forwardedFor: s.forwardedFor,
      connectPorts: s.connectPorts,
      clientNetworks: s.clientNetworks,
      destinations: { allowed: s.allowedDestinations, refused: s.refusedDestinations },
      maxConnections: s.maxConnections,
      maxConnectionsPerClient: s.maxConnectionsPerClient,
      maxHeaderBytes: s.maxHeaderBytes,
      headTimeoutMs: s.headTimeoutMs,
      clientIdleMs: s.idleMs,
      logger: { warn: (_f, m) => say(`warning: ${m}`), info: (_f, m) => say(m) },
    });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    say(`cannot listen on ${s.host}:${s.port}: ${code === 'EADDRINUSE' ? 'the port is in use' : code === 'EACCES' ? 'not allowed (ports below 1024 need privileges)' : (error as Error).message}`);
    writer?.close();
    return 1;
  }
  say(`ready on ${handle.host}:${handle.port}: ${describeStandalone(loaded)}`);
  if (cluster.isWorker) process.send?.({ ready: true, port: handle.port });

  const stopReloading = reloadOnSighup(load, loaded.point, say, 'restart the proxy');
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
    if (cluster.isWorker) process.once('disconnect', resolve);
  });
  stopReloading();
  await handle.close();
  writer?.close();
  const { requests, tunnels, blocked, upstreamErrors, refused } = handle.stats;
  const turnedAway = Object.entries(refused).filter(([, n]) => n > 0).map(([reason, n]) => `${n} ${reason.replace(/_/g, ' ')}`);
  say(`stopped after ${requests} requests and ${tunnels} tunnels: ${blocked} blocked, ${upstreamErrors} origin errors${turnedAway.length ? `; refused: ${turnedAway.join(', ')}` : ''}`);
  // A worker's channel to the primary would keep it running.
  if (cluster.isWorker && process.connected) process.disconnect();
  return 0;
}

/** The primary of --workers N: starts the workers, restarts one that dies, passes SIGHUP on. */
function runPrimary(workers: number, where: string): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    let ready = 0;
    const fork = () => {
      const worker = cluster.fork();
      worker.on('message', (m: { ready?: boolean; port?: number }) => {
        if (m.ready && ++ready === workers) say(`${workers} workers ready on ${where.replace(/:0$/, `:${m.port}`)}`);
      });
    };
    for (let i = 0; i < workers; i++) fork();
    cluster.on('exit', (worker, code, signal) => {
      if (stopping) {
        if (Object.keys(cluster.workers ?? {}).length === 0) resolve(0);
        return;
      }
      if (code === 1 && ready === 0) {
        // Failed at start (bad files, port in use): the worker said why; do not loop.
        stopping = true;
        for (const w of Object.values(cluster.workers ?? {})) w?.kill();
        resolve(1);
        return;
      }
      say(`worker ${worker.process.pid} stopped (${signal ?? code}); starting another`);
      fork();
    });
    process.on('SIGHUP', () => {
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGHUP');
    });
    const stop = () => {
      stopping = true;
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
      if (Object.keys(cluster.workers ?? {}).length === 0) resolve(0);
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}

/** `gatehouse proxy …` arguments (after the command name), for running this file directly. */
export async function proxyMain(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        ...STANDALONE_ARGS,
        host: { type: 'string' },
        port: { type: 'string' },
        'console-url': { type: 'string' },
        'forwarded-for': { type: 'string' },
        'connect-ports': { type: 'string' },
        workers: { type: 'string' },
        'client-networks': { type: 'string' },
        'max-connections': { type: 'string' },
        'max-connections-per-client': { type: 'string' },
        'max-header-bytes': { type: 'string' },
        'head-timeout': { type: 'string' },
        'idle-timeout': { type: 'string' },
        'allowed-destinations': { type: 'string' },
        'refused-destinations': { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    process.stderr.write(`gatehouse proxy: ${(error as Error).message}\n\n${PROXY_USAGE}`);
    return 2;
  }
  const v = parsed.values;
  if (v.help) {
    process.stdout.write(PROXY_USAGE);
    return 0;
  }
  return runProxyCli({
    ut1: v.ut1,
    policy: v.policy,
    unknownPolicy: v['unknown-policy'],
    activity: v.activity,
    host: v.host,
    port: v.port,
    consoleUrl: v['console-url'],
    forwardedFor: v['forwarded-for'],
    connectPorts: v['connect-ports'],
    workers: v.workers,
    clientNetworks: v['client-networks'],
    maxConnections: v['max-connections'],
    maxConnectionsPerClient: v['max-connections-per-client'],
    maxHeaderBytes: v['max-header-bytes'],
    headTimeout: v['head-timeout'],
    idleTimeout: v['idle-timeout'],
    allowedDestinations: v['allowed-destinations'],
    refusedDestinations: v['refused-destinations'],
    check: v.check,
  });
}

// Run directly (`node --import tsx src/filtering/proxy/cli.ts …`, as the benchmark does).
if (isEntryModule(import.meta.url)) process.exitCode = await proxyMain(process.argv.slice(2));
