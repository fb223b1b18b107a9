import type { Runtime } from '../runtime.js';
import { startDnsServer, type DnsServerHandle } from './dns/server.js';
import { startProxy, type ProxyHandle } from './proxy/proxy.js';
import { filterServiceFor, filteringConfigured } from './service.js';

/**
 * Filtering inside `serve`: the FilterService (lists on their schedules, policies, who is where,
 * the activity log) and, when their ports are set, the protective DNS resolver (GATEHOUSE_DNS_PORT)
 * and the filtering proxy (GATEHOUSE_PROXY_PORT), both reading the service's snapshot. Off by
 * default: without the ports, `serve` answers the console and the API only.
 */
export interface RunningFiltering {
  dns: DnsServerHandle | null;
  proxy: ProxyHandle | null;
  stop(): Promise<void>;
}

const listOf = (text: string | undefined) => (text ?? '').split(',').map((n) => n.trim()).filter(Boolean);

export async function startFiltering(rt: Runtime, consoleUrl: string): Promise<RunningFiltering> {
  const { config, logger } = rt;
  const service = filterServiceFor(rt);
  const configured = await filteringConfigured(rt);
  // The service runs whether or not lists exist yet: an administrator may add the first in the console.
  await service.start({ fetch: configured });
  const now = () => rt.clock.now().getTime();
  let dns: DnsServerHandle | null = null;
  let proxy: ProxyHandle | null = null;
  try {
    if (config.dnsPort !== undefined) {
      dns = await startDnsServer(service, {
        host: config.dnsHost ?? config.host,
        port: config.dnsPort,
        upstreams: config.dnsUpstreams.split(',').map((u) => u.trim()).filter(Boolean),
        blockAnswer: config.dnsBlockAddress ? 'address' : 'nxdomain',
        blockPage: { ipv4: config.dnsBlockAddress ?? null },
        now,
        onError: (error) => logger.warn({ err: error }, 'DNS resolver: socket error'),
        // Finding 9: only the school's devices are answered; the same networks as the proxy's.
        clientNetworks: listOf(config.filterClientNetworks),
        outsideClients: config.dnsOutsideClients,
        clientRateLimit: config.dnsClientRateLimit,
        logger,
      });
      logger.info({ dns: { address: dns.address, port: dns.port, udp: dns.udpTransport } }, 'protective DNS resolver answering');
    }
    if (config.proxyPort !== undefined) {
      proxy = await startProxy(service, {
        host: config.proxyHost ?? config.host,
        port: config.proxyPort,
        consoleUrl,
        timeZone: rt.profile.timeZone,
        directDomains: (config.proxyDirectDomains ?? '').split(',').map((d) => d.trim()).filter(Boolean),
        forwardedFor: config.proxyForwardedFor,
        connectPorts: config.proxyConnectPorts.split(',').map((p) => Number(p.trim())),
        auth: 'optional',
        authenticate: (user, password, ip) => service.checkProxyPassword(user, password, ip),
        now,
        logger,
        // Finding 9: only the school's devices, never this server or loopback as a destination, and caps.
        clientNetworks: config.filterClientNetworks.split(',').map((n) => n.trim()).filter(Boolean),
        destinations: {
          allowed: listOf(config.proxyAllowedDestinations),
          refused: listOf(config.proxyRefusedDestinations),
          ownAddresses: [config.host, config.dnsHost ?? config.host],
        },
        maxConnections: config.proxyMaxConnections,
        maxConnectionsPerClient: config.proxyMaxConnectionsPerClient,
        maxHeaderBytes: config.proxyMaxHeaderBytes,
        headTimeoutMs: config.proxyHeadTimeoutSeconds * 1000,
        clientIdleMs: config.proxyIdleTimeoutSeconds * 1000,
      });
      logger.info({ proxy: { host: proxy.host, port: proxy.port } }, 'filtering proxy listening');
    }
  } catch (error) {
    await dns?.close().catch(() => undefined);
    await service.stop();
    throw error;
  }
  return {
    dns,
    proxy,
    async stop() {
      await Promise.all([dns?.close(), proxy?.close()]);
      await service.stop();
    },
  };
}
