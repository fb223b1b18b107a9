import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { dialects } from '../helpers/databases.js';
import { startTestApp } from '../helpers/runtime.js';

/** Runs a PAC file as a browser does: FindProxyForURL with the standard helper functions. */
function pacRunner(source: string): (url: string) => string {
  const ip = (s: string) => s.split('.').reduce((n, p) => n * 256 + Number(p), 0);
  const sandbox = {
    isPlainHostName: (h: string) => !h.includes('.'),
    dnsDomainIs: (h: string, d: string) => h.endsWith(d),
    isInNet: (h: string, net: string, mask: string) => {
      const m = ip(mask);
      // eslint-disable-next-line no-bitwise
      return ((ip(h) & m) >>> 0) === ((ip(net) & m) >>> 0);
    },
    dnsResolve: () => {
      throw new Error('the PAC file must not resolve names');
    },
  };
  vm.createContext(sandbox);
  vm.runInContext(source, sandbox);
  return (url: string) => vm.runInContext(`FindProxyForURL(${JSON.stringify(url)}, ${JSON.stringify(new URL(url).hostname)})`, sandbox) as string;
}

describe('proxy auto-configuration', async () => {
  for (const dialect of await dialects()) {
    describe(dialect, () => {
      it('FI-01 FI-05 /proxy.pac and /wpad.dat send local and private destinations direct and everything else to the proxy, with no unfiltered fallback', async () => {
        const t = await startTestApp(dialect, { config: { proxyPort: 3128, proxyPublicHost: 'proxy.school.internal', publicUrl: 'https://gatehouse.school.internal', proxyDirectDomains: 'intranet.school.example, school.lan' } });
        try {
          const pac = await t.app.inject({ method: 'GET', url: '/proxy.pac' });
          expect(pac.statusCode).toBe(200);
          expect(pac.headers['content-type']).toBe('application/x-ns-proxy-autoconfig');
          const wpad = await t.app.inject({ method: 'GET', url: '/wpad.dat' });
          expect(wpad.body).toBe(pac.body);
          const find = pacRunner(pac.body);
          for (const url of ['http://printer/', 'http://10.1.2.3/', 'http://172.20.0.5:8080/', 'http://192.168.1.1/', 'http://127.0.0.1:8080/', 'http://[fd00::5]/', 'https://gatehouse.school.internal/blocked?host=x', 'http://www.intranet.school.example/', 'http://nas.school.lan/', 'http://host.local/']) {
            expect(find(url), url).toBe('DIRECT');
          }
          for (const url of ['https://www.bbc.co.uk/', 'http://8.8.8.8/', 'http://172.32.0.1/', 'https://evil.school.internal.example.com/', 'https://notschool.lan.example/']) {
            expect(find(url), url).toBe('PROXY proxy.school.internal:3128');
          }
          expect(pac.body).not.toContain('DIRECT";\n}');
        } finally {
          await t.close();
        }
      });

      it('FI-01 /proxy.pac says clearly when no proxy is set up', async () => {
        const t = await startTestApp(dialect);
        try {
          const r = await t.app.inject({ method: 'GET', url: '/proxy.pac' });
          expect(r.statusCode).toBe(404);
          expect(r.json().error.message).toContain('GATEHOUSE_PROXY_PORT');
        } finally {
          await t.close();
        }
      });
    });
  }
});
