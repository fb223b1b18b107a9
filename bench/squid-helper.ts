/**
 * gatehouse squid-helper as Squid runs it (the built CLI through bin/gatehouse.js):
 *  - start-up: from spawning the process to the answer to its first request, median of rounds,
 *    with a small policy file and with the UT1 lists; the full CLI's `--version` for comparison;
 *  - throughput: answers per second over one pipe with concurrency channel IDs (half blocked).
 *   node --import tsx bench/squid-helper.ts [--rounds 7] [--requests 200000] [--ut1 FOLDER]
 * Prints JSON: medians and ratios. Needs `npm run build:server` first (bench/squid-helper.sh does it).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '7' }, requests: { type: 'string', default: '200000' }, ut1: { type: 'string' } } });
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const bin = path.join(root, 'bin', 'gatehouse.js');
const ut1 = values.ut1 ?? path.resolve(root, '..', 'shared', 'data', 'ut1');
const rounds = Number(values.rounds);
const requests = Number(values.requests);

const dir = mkdtempSync(path.join(os.tmpdir(), 'gh-bench-squid-'));
const small = path.join(dir, 'small.yaml');
writeFileSync(
  small,
  `unknownPolicy: pupils
lists:
  - { id: school-block, name: School block list, kind: block, domains: [blocked.example] }
  - { id: games, name: Games, kind: category, domains: [games.example] }
policies:
  pupils: { blockedCategories: [games] }
  staff: {}
clients:
  - { address: 10.2.0.0/16, policy: staff }
`,
);
const withUt1 = path.join(dir, 'ut1.json');
writeFileSync(withUt1, JSON.stringify({ ut1, unknownPolicy: 'pupils', policies: { pupils: { blockedCategories: ['gambling', 'vpn', 'mixed_adult', 'adult', 'games'] }, staff: {} } }));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** ms from spawn to the first answer line (or to exit, for --version). */
function timeToFirstLine(args: string[], input: string | null): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['pipe', 'pipe', 'ignore'] });
    let done = false;
    child.stdout.on('data', () => {
      if (done) return;
      done = true;
      resolve(performance.now() - started);
      child.stdin.end();
    });
    child.on('error', reject);
    child.on('close', () => {
      if (!done) resolve(performance.now() - started);
    });
    if (input !== null) child.stdin.write(input);
    else child.stdin.end();
  });
}

function throughput(count: number): Promise<{ seconds: number; answers: number; blocked: number }> {
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const host = i % 2 === 0 ? `www${i % 97}.games.example` : `site${i}.example.org`;
    lines.push(`${i % 50} 10.1.${(i >> 8) & 255}.${i & 255} http://${host}/page/${i}?q=x - GET -`);
  }
  const text = `${lines.join('\n')}\n`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, 'squid-helper', '--policy', small], { stdio: ['pipe', 'pipe', 'ignore'] });
    let started = 0;
    let answers = 0;
    let blocked = 0;
    let rest = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      if (started === 0) return;
      const parts = (rest + chunk).split('\n');
      rest = parts.pop()!;
      for (const p of parts) {
        answers++;
        if (p.includes(' ERR ')) blocked++;
      }
      if (answers === count) {
        const seconds = (performance.now() - started) / 1000;
        child.stdin.end();
        resolve({ seconds, answers, blocked });
      }
    });
    child.on('error', reject);
    // Wait for it to be ready (one answered warm-up line), then send everything.
    child.stdout.once('data', () => {
      started = performance.now();
      child.stdin.write(text);
    });
    child.stdin.write('0 10.0.0.1 http://warm.example/ - GET -\n');
  });
}

const results: Record<string, unknown> = { node: process.version, cpus: os.cpus().length, rounds };
const fullCli: number[] = [];
const smallStart: number[] = [];
const ut1Start: number[] = [];
for (let r = 0; r < rounds; r++) {
  fullCli.push(await timeToFirstLine(['--version'], null));
  smallStart.push(await timeToFirstLine(['squid-helper', '--policy', small], '0 10.0.0.1 http://games.example/ - GET -\n'));
  ut1Start.push(await timeToFirstLine(['squid-helper', '--policy', withUt1], '0 10.0.0.1 http://www.0-casino.info/ - GET -\n'));
}
results.startupMs = {
  fullCliVersion: Math.round(median(fullCli)),
  helperSmallPolicy: Math.round(median(smallStart)),
  helperWithUt1: Math.round(median(ut1Start)),
  ratioFullCliToHelper: Number((median(fullCli) / median(smallStart)).toFixed(2)),
};
const t = [];
for (let r = 0; r < 3; r++) t.push(await throughput(requests));
const rates = t.map((x) => x.answers / x.seconds);
results.throughput = { requests, answersPerSecondMedian: Math.round(median(rates)), blockedShare: Number((t[0]!.blocked / t[0]!.answers).toFixed(2)) };
rmSync(dir, { recursive: true, force: true });
process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
