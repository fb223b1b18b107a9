import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { Resolver } from 'node:dns/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addressKind, parseListAllowList, refusedAddress } from '../../src/core/address-ranges.js';
import { describeSettings, loadConfig } from '../../src/core/config.js';
import { checkUrlTarget, downloadList, listOrigins, type Resolve } from '../../src/filtering/list-origin.js';
import { ROOT, runCli } from '../helpers/cli.js';
import { selfSignedCertificate } from '../helpers/tls.js';
import { startStubUpstream, type StubRecord, type StubUpstream } from '../helpers/dns-upstream.js';

/** Names resolved by a real DNS server (the stub upstream), over the DNS protocol, as the fetcher would. */
function resolverFor(stub: StubUpstream): Resolve {
  const resolver = new Resolver({ timeout: 2000, tries: 1 });
  resolver.setServers([stub.spec]);
  return async (host) => {
    const v4 = await resolver.resolve4(host).catch(() => [] as string[]);
    const v6 = await resolver.resolve6(host).catch(() => [] as string[]);
    return [...v4.map((address) => ({ address, family: 4 as const })), ...v6.map((address) => ({ address, family: 6 as const }))];
  };
}

/** An HTTP server answering `body` on host:port, counting requests. */
function serve(host: string, port: number, body: string): Promise<{ server: Server; port: number; hits: () => number }> {
  let hits = 0;
  const server = createServer((_req, res) => {
    hits++;
    res.end(body);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve({ server, port: (server.address() as AddressInfo).port, hits: () => hits }));
  });
}
const close = (s: Server) => new Promise<void>((r) => s.close(() => r()));

describe('FI-04 where lists may be downloaded from', () => {
  const none = parseListAllowList(undefined).allow;

  it('FI-04 attack: every address that reaches this machine, its LAN or a metadata service is refused, in every IPv6 form that carries it; public addresses pass', () => {
    const refused: Array<[string, string]> = [
      ['127.0.0.1', 'loopback'],
      ['127.8.9.10', 'loopback'],
      ['::1', 'loopback'],
      ['::ffff:127.0.0.1', 'loopback'],
      ['::ffff:7f00:1', 'loopback'],
      ['::127.0.0.1', 'loopback'],
      ['64:ff9b::7f00:1', 'loopback'],
      ['2002:7f00:1::1', 'loopback'],
      ['0.0.0.0', 'unspecified'],
      ['::', 'unspecified'],
      ['::ffff:0.0.0.0', 'unspecified'],
      ['169.254.169.254', 'metadata'],
      ['::ffff:169.254.169.254', 'metadata'],
      ['::ffff:a9fe:a9fe', 'metadata'],
      ['fd00:ec2::254', 'metadata'],
      ['fd00:ec2:0:0:0:0:0:254', 'metadata'],
      ['100.100.100.200', 'metadata'],
      ['169.254.1.1', 'link-local'],
      ['fe80::1', 'link-local'],
      ['fe80::1%eth0', 'link-local'],
      ['febf::1', 'link-local'],
      ['10.0.0.1', 'private'],
      ['172.16.0.1', 'private'],
      ['172.31.255.255', 'private'],
      ['192.168.1.1', 'private'],
      ['::ffff:10.1.2.3', 'private'],
      ['::ffff:192.168.0.1', 'private'],
      ['100.64.0.1', 'shared'],
      ['100.127.255.254', 'shared'],
      ['fc00::1', 'unique-local'],
      ['fd12:3456::1', 'unique-local'],
      ['224.0.0.1', 'multicast'],
      ['255.255.255.255', 'multicast'],
      ['ff02::1', 'multicast'],
      ['192.0.2.1', 'reserved'],
      ['240.0.0.1', 'reserved'],
      ['2001:db8::1', 'reserved'],
    ];
    for (const [address, kind] of refused) {
      expect(addressKind(address), address).toBe(kind);
      expect(refusedAddress(address, null, none), address).not.toBeNull();
    }
    for (const address of ['9.9.9.9', '1.1.1.1', '172.32.0.1', '100.128.0.1', '::ffff:9.9.9.9', '2a00:1450:4009:81f::200e', '64:ff9b::909:909', '2002:909:909::1']) {
      expect(refusedAddress(address, null, none), address).toBeNull();
    }
  });

  it('FI-04 the school’s own LAN only when listed: a network is reached as written, a listed host name may resolve to a private address but never to this machine or a metadata address', () => {
    const { allow, problem } = parseListAllowList('10.20.0.0/16, 127.0.0.2, lists.school.internal, fd00:5c::/48');
    expect(problem).toBeNull();
    expect(refusedAddress('10.20.1.1', null, allow)).toBeNull();
    expect(refusedAddress('::ffff:10.20.1.1', null, allow)).toBeNull();
    expect(refusedAddress('10.21.0.1', null, allow)).toMatch(/private network/);
    expect(refusedAddress('127.0.0.2', null, allow)).toBeNull();
    expect(refusedAddress('127.0.0.1', null, allow)).toMatch(/loopback/);
    expect(refusedAddress('fd00:5c::10', null, allow)).toBeNull();
    expect(refusedAddress('192.168.4.5', 'lists.school.internal', allow)).toBeNull();
    expect(refusedAddress('192.168.4.5', 'other.school.internal', allow)).toMatch(/private network/);
    expect(refusedAddress('127.0.0.1', 'lists.school.internal', allow)).toMatch(/loopback/);
    expect(refusedAddress('169.254.169.254', 'lists.school.internal', allow)).toMatch(/metadata/);
    // A metadata address stays refused inside a listed network.
    expect(refusedAddress('169.254.169.254', null, parseListAllowList('169.254.0.0/16').allow)).toMatch(/metadata/);
    for (const [text, message] of [
      ['0.0.0.0/0', /too wide/],
      ['::/0', /too wide/],
      ['169.254.169.254', /never fetched from/],
      ['0.0.0.0', /never fetched from/],
      ['metadata.google.internal', /metadata service/],
      ['not a host!', /neither a network/],
      ['10.0.0.0/33', /prefix is too long/],
    ] as const) {
      expect(parseListAllowList(text).problem, text).toMatch(message);
    }
  });

  it('FI-04 GATEHOUSE_LIST_FOLDER (default <dataDir>/lists) and GATEHOUSE_LIST_ALLOWED_NETWORKS are settings: validated, described, and a list folder holding the data folder or its keys is refused', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-listcfg-'));
    try {
      const { config, sources } = loadConfig({ GATEHOUSE_DATA_DIR: dataDir });
      expect(config.listFolder).toBe(path.join(dataDir, 'lists'));
      expect(sources.listFolder).toBe('derived');
      expect(config.listAllowedNetworks).toBeUndefined();
      expect(() => loadConfig({ GATEHOUSE_DATA_DIR: dataDir, GATEHOUSE_LIST_FOLDER: dataDir })).toThrow(/GATEHOUSE_LIST_FOLDER: .* holds the data folder, a key or the database/);
      expect(() => loadConfig({ GATEHOUSE_DATA_DIR: dataDir, GATEHOUSE_LIST_FOLDER: '/' })).toThrow(/holds the data folder/);
      expect(() => loadConfig({ GATEHOUSE_DATA_DIR: dataDir, GATEHOUSE_LIST_FOLDER: '/srv/lists', GATEHOUSE_SECRET_KEY_FILE: '/srv/lists/secret.key' })).toThrow(/holds the data folder, a key or the database/);
      expect(() => loadConfig({ GATEHOUSE_LIST_ALLOWED_NETWORKS: '0.0.0.0/0' })).toThrow(/GATEHOUSE_LIST_ALLOWED_NETWORKS: 0\.0\.0\.0\/0 is too wide/);
      expect(loadConfig({ GATEHOUSE_LIST_ALLOWED_NETWORKS: '10.20.0.0/16,lists.school.internal' }).config.listAllowedNetworks).toBe('10.20.0.0/16,lists.school.internal');
      expect(describeSettings().map((s) => s.env)).toEqual(expect.arrayContaining(['GATEHOUSE_LIST_FOLDER', 'GATEHOUSE_LIST_ALLOWED_NETWORKS']));
      const described = await runCli(['config', '--describe'], {});
      expect(described.stdout).toContain('GATEHOUSE_LIST_FOLDER');
      expect(described.stdout).toContain('GATEHOUSE_LIST_ALLOWED_NETWORKS');
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 30_000);

  it('FI-04 attack: an https list whose server redirects to plain http is refused at the redirect (real TLS; the fetcher runs in a child process that trusts the test certificate)', async () => {
    // A certificate for 127.0.0.1, trusted by the child through NODE_EXTRA_CA_CERTS: Node reads that
    // only at start, so the download runs in a child process of the built code, as `serve` would.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-tls-'));
    try {
      const tls = await selfSignedCertificate(dir, '127.0.0.1', '127.0.0.1');
      const plain = await serve('127.0.0.1', 0, 'plain-http.example\n');
      const secure = createHttpsServer({ key: readFileSync(tls.key), cert: readFileSync(tls.cert) }, (req, res) => {
        if (req.url === '/list.txt') res.end('over-tls.example\nother.over-tls.example\n');
        else res.writeHead(302, { location: `http://127.0.0.1:${plain.port}/list.txt` }).end();
      });
      await new Promise<void>((r) => secure.listen(0, '127.0.0.1', () => r()));
      const securePort = (secure.address() as AddressInfo).port;
      const fetchIn = async (url: string) => {
        const script = `
          import { downloadList, listOrigins } from ${JSON.stringify(path.join(ROOT, 'dist', 'filtering', 'list-origin.js'))};
          const origins = listOrigins({ listFolder: ${JSON.stringify(dir)}, listAllowedNetworks: '127.0.0.1/32' });
          try { const bytes = await downloadList(${JSON.stringify(url)}, ${JSON.stringify(path.join(dir, 'out.txt'))}, origins, { timeoutMs: 5000, maxDownloadBytes: 1048576 }); console.log(JSON.stringify({ bytes })); }
          catch (e) { console.log(JSON.stringify({ error: e.message })); }`;
        // Asynchronously: the servers answering it run in this process.
        const run = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, NODE_EXTRA_CA_CERTS: tls.cert }, encoding: 'utf8', timeout: 20_000 });
        return JSON.parse(run.stdout.trim().split('\n').pop() ?? '{}') as { bytes?: number; error?: string };
      };
      try {
        // The TLS path itself works: a list over https is fetched.
        expect(await fetchIn(`https://127.0.0.1:${securePort}/list.txt`)).toEqual({ bytes: 'over-tls.example\nother.over-tls.example\n'.length });
        // The same server sending it to plain http (where anyone on the path could change the list) is refused.
        expect(await fetchIn(`https://127.0.0.1:${securePort}/moved.txt`)).toEqual({ error: `127.0.0.1:${securePort} redirected from https to plain http, which is not followed` });
        expect(plain.hits()).toBe(0);
      } finally {
        await new Promise<void>((r) => secure.close(() => r()));
        await close(plain.server);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('names resolved by a DNS server', () => {
    const records: Record<string, StubRecord[]> = {
      'evil.test': [{ type: 'A', data: '127.0.0.1', ttl: 0 }],
      'rebind.test': [{ type: 'A', data: '127.0.0.2', ttl: 0 }],
      'mapped.test': [{ type: 'AAAA', data: '::ffff:127.0.0.1', ttl: 0 }],
    };
    let dns: StubUpstream;
    let work: string;
    beforeAll(async () => {
      dns = await startStubUpstream({ records });
      work = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-origin-'));
    });
    afterAll(async () => {
      await dns.close();
      rmSync(work, { recursive: true, force: true });
    });

    it('FI-04 attack: a name that resolves to 127.0.0.1 (or ::ffff:127.0.0.1) is refused before any connection is made', async () => {
      const target = await serve('127.0.0.1', 0, 'secret_metric_total 42\n');
      try {
        const origins = listOrigins({ listFolder: work, listAllowedNetworks: '127.0.0.2/32' }, resolverFor(dns));
        await expect(checkUrlTarget(new URL(`http://evil.test:${target.port}/metrics`), origins)).rejects.toThrow(/^evil\.test resolves to 127\.0\.0\.1, an address of this machine \(loopback\)/);
        await expect(downloadList(`http://evil.test:${target.port}/metrics`, path.join(work, 'evil'), origins, { timeoutMs: 5000, maxDownloadBytes: 1_000_000 })).rejects.toThrow(/loopback/);
        await expect(downloadList(`http://mapped.test:${target.port}/metrics`, path.join(work, 'mapped'), origins, { timeoutMs: 5000, maxDownloadBytes: 1_000_000 })).rejects.toThrow(/mapped\.test resolves to ::ffff:127\.0\.0\.1, an address of this machine/);
        expect(target.hits()).toBe(0);
      } finally {
        await close(target.server);
      }
    });

    it('FI-04 attack: DNS rebinding — the name answers the allowed 127.0.0.2 when checked and 127.0.0.1 right after; the download connects to the address that was checked', async () => {
      // The same port on both addresses: only the address decides which answers.
      let good!: Awaited<ReturnType<typeof serve>>;
      let evil!: Awaited<ReturnType<typeof serve>>;
      for (let attempt = 0; ; attempt++) {
        good = await serve('127.0.0.2', 0, 'rebind-good.example\n');
        try {
          evil = await serve('127.0.0.1', good.port, 'secret_metric_total 42\n');
          break;
        } catch (error) {
          await close(good.server);
          if (attempt > 10) throw error;
        }
      }
      try {
        const system = resolverFor(dns);
        // The DNS server changes its answer as soon as the fetcher has checked the first one.
        const rebinding: Resolve = async (host) => {
          const answer = await system(host);
          records['rebind.test']![0]!.data = '127.0.0.1';
          return answer;
        };
        const origins = listOrigins({ listFolder: work, listAllowedNetworks: '127.0.0.2/32' }, rebinding);
        const file = path.join(work, 'rebind');
        await downloadList(`http://rebind.test:${good.port}/list.txt`, file, origins, { timeoutMs: 5000, maxDownloadBytes: 1_000_000 });
        expect(readFileSync(file, 'utf8')).toBe('rebind-good.example\n');
        expect(good.hits()).toBe(1);
        expect(evil.hits()).toBe(0);
        // The name really did re-point: a second check refuses it.
        expect((await system('rebind.test')).map((a) => a.address)).toEqual(['127.0.0.1']);
        await expect(checkUrlTarget(new URL(`http://rebind.test:${good.port}/`), origins)).rejects.toThrow(/loopback/);
      } finally {
        await close(good.server);
        await close(evil.server);
      }
    });
  });
});
