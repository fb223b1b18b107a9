import { notFound } from '../../core/errors.js';
import type { App } from '../../http/app.js';
import type { Runtime } from '../../runtime.js';
import { pacFile } from './pac.js';

/**
 * GET /proxy.pac (and /wpad.dat, the name WPAD looks for): the proxy auto-configuration file for
 * device set-up (docs/proxy.md). Public: devices fetch it before anyone signs in.
 */
export function registerProxyPacRoutes(app: App, rt: Runtime): void {
  const handler = async (_request: unknown, reply: { header(name: string, value: string): typeof reply; send(body: string): unknown }) => {
    const { proxyPort, proxyPublicHost, publicUrl, proxyDirectDomains } = rt.config;
    const consoleHost = publicUrl ? new URL(publicUrl).hostname : null;
    const host = proxyPublicHost ?? consoleHost;
    if (proxyPort === undefined || proxyPort === 0 || !host) {
      throw notFound('The filtering proxy is not set up: set GATEHOUSE_PROXY_PORT and GATEHOUSE_PROXY_PUBLIC_HOST (or GATEHOUSE_PUBLIC_URL).');
    }
    const proxy = `${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${proxyPort}`;
    const body = pacFile({
      proxy,
      directDomains: (proxyDirectDomains ?? '').split(',').filter((d) => d.trim()),
      directHosts: consoleHost ? [consoleHost.replace(/^\[|\]$/g, '')] : [],
    });
    return reply.header('content-type', 'application/x-ns-proxy-autoconfig').header('cache-control', 'public, max-age=300').send(body);
  };
  const schema = { summary: 'The proxy auto-configuration (PAC) file: private addresses direct, everything else through the filtering proxy', tags: ['filtering'] };
  app.get('/proxy.pac', { config: { access: 'public' }, schema }, handler);
  app.get('/wpad.dat', { config: { access: 'public' }, schema: { ...schema, summary: 'The PAC file under the name WPAD (Web Proxy Auto-Discovery) looks for' } }, handler);
}
