import cluster from 'node:cluster';
import os from 'node:os';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { loadConfig } from '../../core/config.js';
import { GatehouseError } from '../../core/errors.js';
import { parseCidrList } from '../../core/networks.js';
import { nativeUdpUnavailable } from './native-udp.js';
import { startDnsServer, type BlockAnswerMode, type DnsServerHandle, type OutsideClientsMode } from './server.js';
import { JsonlActivityWriter, loadStandalone, type StandaloneFilterPoint } from '../standalone.js';
import { parseUpstream } from './upstream.js';

/**
 * `gatehouse dns`: the protective resolver on its own, from files (a UT1 folder, a policy file read
 * by src/filtering/standalone.ts as for `gatehouse proxy` and `gatehouse squid-helper`, upstreams), in several worker processes that share the port (node:cluster: the primary owns the
 * UDP socket and the TCP listener and hands them to every worker, so each query is answered by
 * whichever worker is free). Workers that die are restarted.
 */

interface DnsCliOptions {
  policies: string;
  ut1?: string;
  upstream: string[];
  host: string;
  port: string;
  workers: string;
  blockAnswer: BlockAnswerMode;
  blockIpv4?: string;
  blockIpv6?: string;
  blockTtl: string;
  cacheEntries: string;
  upstreamTimeout: string;
  activityLog?: string;
  clientNetworks?: string;
  outsideClients?: string;
  clientRateLimit?: string;
}

/**
 * Who may ask (finding 9 of issue 10): flags win over GATEHOUSE_FILTER_CLIENT_NETWORKS,
 * GATEHOUSE_DNS_OUTSIDE_CLIENTS and GATEHOUSE_DNS_CLIENT_RATE_LIMIT (environment or config file).
 */
function clientSettings(options: DnsCliOptions): { clientNetworks: string[]; outsideClients: OutsideClientsMode; clientRateLimit: number } {
  const { config } = loadConfig();
  const text = options.clientNetworks ?? config.filterClientNetworks;
  const clientNetworks = parseCidrList(text);
  if (clientNetworks === null) throw new DnsCliError(`--client-networks must be networks in CIDR form separated by commas, e.g. 10.0.0.0/8,192.168.0.0/16 (got ${text})`);
  const outsideClients = options.outsideClients ?? config.dnsOutsideClients;
  if (outsideClients !== 'refuse' && outsideClients !== 'drop') throw new DnsCliError(`--outside-clients must be refuse or drop (got ${outsideClients})`);
  const clientRateLimit = options.clientRateLimit !== undefined ? whole(options.clientRateLimit, '--client-rate-limit', 0, 1_000_000) : config.dnsClientRateLimit;
  return { clientNetworks, outsideClients, clientRateLimit };
}

/** A mistake the operator can fix: main() prints it as one line and exits 1. */
class DnsCliError extends GatehouseError {
  constructor(message: string) {
    super('dns_setup', 400, message);
  }
}

function whole(value: string, what: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new DnsCliError(`${what} must be a whole number from ${min} to ${max} (got "${value}")`);
  return n;
}

type WorkerMessage = { kind: 'listening'; port: number; udp: string } | { kind: 'failed'; message: string } | { kind: 'reloaded'; ok: boolean; message: string };

/** The lists and policies from the files; warnings (a category no list provides) go to `warn`. */
function load(options: DnsCliOptions, warn: (message: string) => void) {
  return loadStandalone({ ut1: options.ut1 ?? null, policyFile: options.policies, warn });
}

/**
 * Reads the files again and swaps the new lists, policies and clients in, whole; on a mistake the
 * old ones stay.
 */
async function reload(options: DnsCliOptions, point: StandaloneFilterPoint): Promise<{ ok: boolean; message: string }> {
  try {
    const warnings: string[] = [];
    const next = await load(options, (m) => warnings.push(m));
    point.adopt(next.point);
    return { ok: true, message: `lists and policies reloaded in ${(next.loadMs / 1000).toFixed(1)} s${warnings.map((w) => ` (warning: ${w})`).join('')}` };
  } catch (error) {
    return { ok: false, message: `reload failed, the previous lists and policies stay: ${(error as Error).message}` };
  }
}

function listenError(error: NodeJS.ErrnoException, host: string, port: number): string {
  if (error.code === 'EADDRINUSE') return `${host}:${port} is already in use (another resolver, e.g. systemd-resolved or dnsmasq?); stop it or choose --port`;
  if (error.code === 'EACCES') return `not allowed to listen on ${host}:${port}; ports below 1024 need root or the CAP_NET_BIND_SERVICE capability`;
  if (error.code === 'EADDRNOTAVAIL') return `${host} is not an address of this machine`;
  return error.message;
}

async function runWorker(options: DnsCliOptions, shared: boolean): Promise<{ server: DnsServerHandle; point: StandaloneFilterPoint; writer: JsonlActivityWriter | null }> {
  // Every worker reads the same files: only the first says what it left out.
  const loud = !shared || cluster.worker?.id === 1;
  const { point } = await load(options, (m) => {
    if (loud) process.stderr.write(`gatehouse dns: warning: ${m}\n`);
  });
  const log = options.activityLog ? `${path.resolve(options.activityLog)}${shared ? `.${cluster.worker?.id ?? 0}` : ''}` : null;
  // A full disk must not stop name resolution: the error is said once and answering goes on.
  let said = false;
  const writer = log
    ? new JsonlActivityWriter(log, (error) => {
        if (!said) process.stderr.write(`gatehouse dns: cannot write activity to ${log}: ${error.message}\n`);
        said = true;
      })
    : null;
  if (writer) point.onRecord((a) => writer.add(a));
  const port = whole(options.port, '--port', 0, 65535);
  const clients = clientSettings(options);
  try {
    const server = await startDnsServer(point, {
      host: options.host,
      port,
      upstreams: options.upstream.map((u) => parseUpstream(u)),
      blockAnswer: options.blockAnswer,
      blockPage: { ipv4: options.blockIpv4 ?? null, ipv6: options.blockIpv6 ?? null },
      blockTtl: whole(options.blockTtl, '--block-ttl', 0, 86_400),
      cacheEntries: whole(options.cacheEntries, '--cache-entries', 0, 10_000_000),
      upstreamTimeoutMs: whole(options.upstreamTimeout, '--upstream-timeout', 50, 30_000),
      exclusive: !shared,
      serverId: shared ? `gatehouse-${cluster.worker?.id ?? 0}` : 'gatehouse',
      onError: (error) => process.stderr.write(`gatehouse dns: ${error.message}\n`),
      ...clients,
      // Refusals from every worker; the start-up warning (the same in each) from the first only.
      logger: {
        warn: (fields, message) => {
          if (loud || (fields as { dns?: { refused?: string } }).dns?.refused) process.stderr.write(`gatehouse dns: warning: ${message}\n`);
        },
      },
    });
    return { server, point, writer };
  } catch (error) {
    writer?.close();
    throw new DnsCliError(listenError(error as NodeJS.ErrnoException, options.host, port));
  }
}

async function runPrimary(options: DnsCliOptions, workers: number): Promise<void> {
  let stopping = false;
  let listening = 0;
  const started = new Map<number, number>();
  const quickDeaths: number[] = [];
  const fork = () => {
    const worker = cluster.fork();
    started.set(worker.id, Date.now());
    worker.on('message', (message: WorkerMessage) => {
      if (message.kind === 'listening') {
        listening++;
        if (listening === workers) {
          process.stdout.write(`Gatehouse DNS: answering on ${hostAndPort(options.host, message.port)} (UDP and TCP) with ${workers} workers, forwarding to ${options.upstream.join(', ')}; ${message.udp}\n`);
        }
      } else if (message.kind === 'failed') {
        // Each worker reads the same files: the first to fail says why, once.
        if (stopping) return;
        stopping = true;
        process.stderr.write(`gatehouse: ${message.message}\n`);
        for (const w of Object.values(cluster.workers ?? {})) w?.kill();
        process.exitCode = 1;
      }
    });
  };
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    const lived = Date.now() - (started.get(worker.id) ?? 0);
    if (lived < 10_000) quickDeaths.push(Date.now());
    while (quickDeaths.length > 0 && quickDeaths[0]! < Date.now() - 60_000) quickDeaths.shift();
    if (quickDeaths.length >= 5) {
      stopping = true;
      process.stderr.write('gatehouse: DNS workers keep stopping soon after they start; giving up\n');
      for (const w of Object.values(cluster.workers ?? {})) w?.kill();
      process.exitCode = 1;
      return;
    }
    process.stderr.write(`gatehouse dns: worker ${worker.id} stopped (${signal ?? `exit ${code}`}); starting another\n`);
    fork();
  });
  for (let i = 0; i < workers; i++) fork();
  // SIGHUP: the workers reload one after another, so the others keep answering meanwhile.
  let reloading = false;
  process.on('SIGHUP', async () => {
    if (reloading || stopping) return;
    reloading = true;
    for (const worker of Object.values(cluster.workers ?? {})) {
      if (!worker) continue;
      const done = new Promise<WorkerMessage>((resolve) => {
        const onMessage = (message: WorkerMessage) => {
          if (message.kind !== 'reloaded') return;
          worker.off('message', onMessage);
          resolve(message);
        };
        worker.on('message', onMessage);
        worker.once('exit', () => resolve({ kind: 'reloaded', ok: false, message: 'the worker stopped' }));
      });
      worker.process.kill('SIGHUP');
      const result = await done;
      if (result.kind === 'reloaded') (result.ok ? process.stdout : process.stderr).write(`gatehouse dns: worker ${worker.id}: ${result.message}\n`);
    }
    reloading = false;
  });
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      stopping = true;
      for (const w of Object.values(cluster.workers ?? {})) w?.kill('SIGTERM');
    });
  }
}

export function registerDnsCommands(program: Command): void {
  program
    .command('dns')
    .description('run the protective DNS resolver from files (UT1 lists, a policy file, upstreams): see docs/dns.md')
    .requiredOption('--policies <file>', 'the policy file (YAML or JSON), as for gatehouse proxy and squid-helper: policies, clients by IP or CIDR, the school’s own lists')
    .option('--ut1 <folder>', 'a UT1 list folder (one sub-folder per category, each with a domains file)')
    .requiredOption('--upstream <address...>', 'upstream resolvers in order of preference, e.g. 9.9.9.9 149.112.112.112 or 192.0.2.53:5353')
    .option('--host <address>', 'address to answer on; :: for every IPv6 and IPv4 address', '0.0.0.0')
    .option('--port <port>', 'UDP and TCP port', '53')
    .option('--workers <n>', 'worker processes sharing the port', String(Math.max(1, Math.min(os.availableParallelism(), 4))))
    .addOption(new Option('--block-answer <mode>', 'how blocked names are answered').choices(['nxdomain', 'address']).default('nxdomain'))
    .option('--block-ipv4 <address>', 'the block page’s IPv4 address (with --block-answer address)')
    .option('--block-ipv6 <address>', 'the block page’s IPv6 address (with --block-answer address)')
    .option('--block-ttl <seconds>', 'TTL of block answers and SafeSearch CNAMEs', '10')
    .option('--cache-entries <n>', 'answers kept in each worker’s cache', '100000')
    .option('--upstream-timeout <ms>', 'wait this long for an upstream before trying the next', '1000')
    .option('--client-networks <list>', 'networks whose devices are answered, e.g. 10.0.0.0/8,192.168.0.0/16 (default GATEHOUSE_FILTER_CLIENT_NETWORKS, else loopback and the private ranges)')
    .option('--outside-clients <mode>', 'what a device outside them gets: refuse (answer REFUSED, as unbound) or drop (default GATEHOUSE_DNS_OUTSIDE_CLIENTS, else refuse)')
    .option('--client-rate-limit <n>', 'queries a second one device (IPv4 address, IPv6 /64) may ask, more dropped; 0 for none (default GATEHOUSE_DNS_CLIENT_RATE_LIMIT, else 0)')
    .option('--activity-log <file>', 'append every decision as a JSON line (one file per worker: FILE.1, FILE.2, …)')
    .action(async (options: DnsCliOptions) => {
      const workers = whole(options.workers, '--workers', 1, 64);
      try {
        clientSettings(options);
        for (const u of options.upstream) parseUpstream(u);
      } catch (error) {
        throw new DnsCliError((error as Error).message);
      }
      // With several workers the primary loads nothing: each worker loads the files, and a mistake
      // in them is reported once by the primary (see 'failed'), which then exits with status 1.
      if (workers > 1 && cluster.isPrimary) return runPrimary(options, workers);
      const shared = cluster.isWorker;
      let started: Awaited<ReturnType<typeof runWorker>>;
      try {
        started = await runWorker(options, shared);
      } catch (error) {
        if (shared) {
          process.send?.({ kind: 'failed', message: (error as Error).message } satisfies WorkerMessage);
          setTimeout(() => process.exit(1), 100);
          return;
        }
        throw error instanceof DnsCliError ? error : new DnsCliError((error as Error).message);
      }
      const { server, writer } = started;
      const point = started.point;
      const udp = udpDescription(server.udpTransport);
      if (shared) process.send?.({ kind: 'listening', port: server.port, udp } satisfies WorkerMessage);
      else process.stdout.write(`Gatehouse DNS: answering on ${hostAndPort(options.host, server.port)} (UDP and TCP), forwarding to ${options.upstream.join(', ')}; ${udp}\n`);
      const stop = () => {
        writer?.close();
        server.close().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
      if (shared) process.once('disconnect', stop);
      // One answer per SIGHUP: the primary waits for it before signalling the next worker.
      process.on('SIGHUP', async () => {
        const result = await reload(options, point);
        if (shared) process.send?.({ kind: 'reloaded', ...result } satisfies WorkerMessage);
        else (result.ok ? process.stdout : process.stderr).write(`gatehouse dns: ${result.message}\n`);
      });
    });
}

export { DnsCliError };

/** How UDP is served, for the start-up line: an operator should see when the slower path is in use, and why. */
function udpDescription(transport: 'batched' | 'dgram'): string {
  if (transport === 'batched') return 'UDP batched (recvmmsg/sendmmsg)';
  const why = nativeUdpUnavailable();
  return `UDP through node:dgram${why ? ` (batched UDP unavailable: ${why})` : ''}`;
}

function hostAndPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
