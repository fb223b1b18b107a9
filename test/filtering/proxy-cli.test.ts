import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { childEnv, ROOT } from '../helpers/cli.js';

/** `gatehouse proxy` as a process, from a policy file, with curl -x as the client. */

/** The built module, run directly (npm test builds first). */
const CLI = path.join(ROOT, 'dist', 'filtering', 'proxy', 'cli.js');
let dir: string;
let origin: http.Server;
let originPort: number;

function curl(args: string[]): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', '10', '-o', '-', '-w', '\n%{http_code}', ...args], { encoding: 'utf8' }, (_e, stdout) => {
      const cut = stdout.lastIndexOf('\n');
      resolve({ status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) });
    });
  });
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-proxy-cli-'));
  origin = http.createServer((req, res) => res.end(`origin ${req.url}`));
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', () => r()));
  originPort = (origin.address() as AddressInfo).port;
  writeFileSync(
    path.join(dir, 'filter.yaml'),
    `timeZone: Europe/London
unknownPolicy: pupils
lists:
  - { id: gambling, name: Gambling, kind: category, domains: [casino.example] }
  - { id: school-block, name: School block list, kind: block, domains: [blocked.example] }
policies:
  pupils: { name: Pupils, blockedCategories: [gambling] }
clients:
  - { address: 127.0.0.0/8, policy: pupils, name: Lab }
`,
  );
});

afterAll(() => {
  origin?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('gatehouse proxy (standalone)', () => {
  it('MO-01 FI-13 runs from a policy file: blocks with the block page, forwards the rest, writes every decision, reloads on SIGHUP, stops on SIGTERM', async () => {
    const activity = path.join(dir, 'activity.jsonl');
    const child = spawn(process.execPath, [CLI, '--policy', path.join(dir, 'filter.yaml'), '--port', '0', '--host', '127.0.0.1', '--console-url', 'https://gatehouse.school.example/', '--activity', activity], {
      cwd: ROOT,
      env: childEnv({ GATEHOUSE_PROXY_ALLOWED_DESTINATIONS: '127.0.0.1/32' /* the test origin is on loopback, otherwise refused */ }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    try {
      const port = await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`not ready: ${stderr}`)), 30_000);
        child.stderr!.on('data', () => {
          const m = /ready on 127\.0\.0\.1:(\d+)/.exec(stderr);
          if (m) {
            clearTimeout(timer);
            resolve(Number(m[1]));
          }
        });
      });
      expect(stderr).toContain('1 policy (pupils; unknown clients: pupils)');
      const proxy = ['-x', `http://127.0.0.1:${port}`];
      const blocked = await curl([...proxy, `http://www.casino.example:${originPort}/poker?q=royal+flush`]);
      expect(blocked.status).toBe(403);
      expect(blocked.body).toContain('<strong>Gambling</strong>');
      expect(blocked.body).toContain('href="https://gatehouse.school.example/blocked?host=www.casino.example&amp;');
      const allowed = await curl([...proxy, `http://127.0.0.1:${originPort}/lesson`]);
      expect(allowed).toEqual({ status: 200, body: 'origin /lesson' });
      expect((await curl([`http://127.0.0.1:${port}/healthz`])).body).toBe('ok\n');
      // The proxy serves its own PAC file, naming itself as devices reached it.
      const pac = await curl(['-H', `Host: proxy.school.internal:${port}`, `http://127.0.0.1:${port}/wpad.dat`]);
      expect(pac.status).toBe(200);
      expect(pac.body).toContain(`return "PROXY proxy.school.internal:${port}";`);
      expect(pac.body).toContain('"gatehouse.school.example"');

      // The policy file changes: blocked.example's list now also names the origin's address.
      writeFileSync(path.join(dir, 'filter.yaml'), readFileSync(path.join(dir, 'filter.yaml'), 'utf8').replace('domains: [blocked.example]', 'domains: [blocked.example, 127.0.0.1]'));
      child.kill('SIGHUP');
      await waitFor(() => stderr.includes('reloaded:'));
      expect((await curl([...proxy, `http://127.0.0.1:${originPort}/lesson`])).status).toBe(403);

      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(stderr).toMatch(/stopped after 3 requests and 0 tunnels: 2 blocked/);
      const lines = readFileSync(activity, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines.map((l) => [l.host, l.action, l.rule])).toEqual([
        ['www.casino.example', 'block', 'category'],
        ['127.0.0.1', 'allow', 'default'],
        ['127.0.0.1', 'block', 'school-block'],
      ]);
      expect(lines[0]).toMatchObject({ point: 'proxy', clientIp: '127.0.0.1', deviceName: 'Lab', url: `http://www.casino.example:${originPort}/poker?q=royal+flush`, searchTerm: 'royal flush', policy: 'Pupils' });
      expect(lines[0]!.at).toMatch(/^\d{4}-\d\d-\d\dT/);
    } finally {
      child.kill('SIGKILL');
    }
  }, 60_000);

  it('FI-01 --workers 2: two processes share the port, and SIGTERM stops them all', async () => {
    const child = spawn(process.execPath, [CLI, '--policy', path.join(dir, 'filter.yaml'), '--port', '0', '--host', '127.0.0.1', '--workers', '2'], { cwd: ROOT, env: childEnv({ GATEHOUSE_PROXY_ALLOWED_DESTINATIONS: '127.0.0.1/32' /* the test origin is on loopback, otherwise refused */ }), stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    try {
      await waitFor(() => stderr.includes('2 workers ready'), 30_000);
      const ports = [...stderr.matchAll(/\[(\d+)\]: ready on 127\.0\.0\.1:(\d+)/g)];
      expect(ports).toHaveLength(2);
      expect(ports[0]![1]).not.toBe(ports[1]![1]);
      expect(ports[0]![2]).toBe(ports[1]![2]);
      expect((await curl(['-x', `http://127.0.0.1:${ports[0]![2]}`, `http://casino.example:${originPort}/`])).status).toBe(403);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(stderr.match(/stopped after/g)).toHaveLength(2);
    } finally {
      child.kill('SIGKILL');
    }
  }, 60_000);

  it('says what is wrong with a bad policy file, and --check prints what was compiled', async () => {
    writeFileSync(path.join(dir, 'bad.yaml'), 'policies:\n  pupils: { name: Pupils, blockedCategories: [gambling], colour: red }\n');
    const bad = await run(['--policy', path.join(dir, 'bad.yaml'), '--port', '0']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('unknown setting "colour"');
    const check = await run(['--policy', path.join(dir, 'filter.yaml'), '--check']);
    expect(check.code).toBe(0);
    expect(check.stdout).toMatch(/^OK: 1 policy \(pupils; unknown clients: pupils\), 2 categories and lists/);
    const port = await run(['--policy', path.join(dir, 'filter.yaml'), '--port', 'eighty']);
    expect(port.code).toBe(2);
    expect(port.stderr).toContain('--port must be a whole number');
  }, 60_000);
});

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd: ROOT, env: childEnv({ GATEHOUSE_PROXY_ALLOWED_DESTINATIONS: '127.0.0.1/32' /* the test origin is on loopback, otherwise refused */ }), encoding: 'utf8', timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

async function waitFor(condition: () => boolean, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}
