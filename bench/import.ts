// Importing a school's people from CSV (AC-12): 10,000 people with forms, year groups and teaching
// sets, as a dry run and as a commit, on SQLite and PostgreSQL, a fresh database each round.
// In process (read + plan, then apply), and through the command a school runs (`gatehouse import csv`).
// Run: bench/import.sh  (options: --people N --rounds N --no-cli)
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { loadConfig } from '../dist/core/config.js';
import { systemActor } from '../dist/core/context.js';
import { createLogger } from '../dist/core/logger.js';
import { guessMapping, readCsv, readGenericCsv } from '../dist/directory/import-sources.js';
import { applyImport, planImport } from '../dist/directory/imports.js';
import { openRuntime } from '../dist/runtime.js';

const args = process.argv.slice(2);
const arg = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const PEOPLE = arg('--people', 10_000);
const ROUNDS = arg('--rounds', 3);
const CLI = !args.includes('--no-cli');
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const PG_ADMIN = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/** One pupil in ten is staff; pupils are in a form, a year group and two teaching sets; staff teach four sets. */
function generate(people: number): { csv: string; memberships: number; groups: number } {
  const first = ['Amelia', 'Oliver', 'Isla', 'George', 'Ava', 'Noah', 'Mia', 'Arthur', 'Ivy', 'Leo', 'Zoë', 'Muhammad', 'Freya', 'Harry', 'Aoife', 'Siân'];
  const last = ['Smith', 'Jones', 'Williams', 'Taylor', 'Brown', 'Davies', 'Evans', "O'Neill", 'Patel', 'Khan', 'Wilson', 'Roberts', 'Nowak', 'Thomas'];
  const lines = ['Admission number,First name,Surname,Username,Email,Form,Year,Role'];
  const staff = Math.round(people / 10);
  const pupils = people - staff;
  const years = [7, 8, 9, 10, 11];
  const perForm = 30;
  const sets = new Set<string>();
  let memberships = 0;
  const forms = new Set<string>();
  for (let i = 0; i < pupils; i++) {
    const year = years[i % years.length]!;
    const form = `${year}${String.fromCharCode(65 + (Math.floor(i / years.length / perForm) % 26))}${Math.floor(i / years.length / perForm / 26) || ''}`;
    const maths = `${year} Maths set ${(i % 8) + 1}`;
    const science = `${year} Science set ${(Math.floor(i / 8) % 8) + 1}`;
    sets.add(maths).add(science);
    forms.add(form);
    const given = first[i % first.length]!;
    const family = last[(i * 7) % last.length]!;
    const username = `p${String(i + 1).padStart(5, '0')}`;
    lines.push(`A${100000 + i},${given},"${family}",${username},${username}@springfield.sch.uk,"${form};${maths};${science}",${year},Pupil`);
    memberships += 4;
  }
  const setList = [...sets];
  for (let i = 0; i < staff; i++) {
    const teaches = [0, 1, 2, 3].map((k) => setList[(i * 4 + k) % setList.length]!);
    const username = `s${String(i + 1).padStart(4, '0')}`;
    lines.push(`S${5000 + i},${first[(i * 3) % first.length]},${last[(i * 5) % last.length]},${username},${username}@springfield.sch.uk,"${teaches.join(';')}",,Teacher`);
    memberships += 4;
  }
  return { csv: `${lines.join('\r\n')}\r\n`, memberships, groups: forms.size + sets.size + years.length };
}

interface Round {
  read: number;
  plan: number;
  dryRun: number;
  apply: number;
  commit: number;
  rerun: number;
  cliDryRun?: number;
  cliCommit?: number;
}

async function once(url: string, dataDir: string, csv: string): Promise<Round> {
  const { config } = loadConfig({ GATEHOUSE_DATA_DIR: dataDir, GATEHOUSE_DATABASE_URL: url });
  const rt = await openRuntime(config, { logger: createLogger('warn', 2), signing: 'none' });
  try {
    const readAndPlan = async () => {
      const t0 = performance.now();
      const table = readCsv('people.csv', csv);
      const data = readGenericCsv(table, { mapping: guessMapping(table.headers) });
      const t1 = performance.now();
      const plan = await planImport(rt, 'csv', data, { disableMissing: true });
      return { plan, read: t1 - t0, planned: performance.now() - t1, total: performance.now() - t0 };
    };
    const dry = await readAndPlan();
    if (dry.plan.bad.length) throw new Error(`bad rows in the generated file: ${JSON.stringify(dry.plan.bad.slice(0, 3))}`);
    const t0 = performance.now();
    const committed = await readAndPlan();
    const t1 = performance.now();
    const result = await applyImport(rt, systemActor('bench'), committed.plan);
    const commit = performance.now() - t0;
    if (result.counts.created !== PEOPLE) throw new Error(`created ${result.counts.created}, expected ${PEOPLE}`);
    const r0 = performance.now();
    const again = await readAndPlan();
    await applyImport(rt, systemActor('bench'), again.plan);
    const rerun = performance.now() - r0;
    if (again.plan.unchanged.length !== PEOPLE) throw new Error(`re-run: ${again.plan.unchanged.length} unchanged, expected ${PEOPLE}`);
    return { read: dry.read, plan: dry.planned, dryRun: dry.total, apply: performance.now() - t1 - rerun, commit, rerun };
  } finally {
    await rt.close();
  }
}

/** The command itself, as a school runs it: a new process each time (start-up included). */
function cli(url: string, dataDir: string, file: string, commit: boolean): number {
  const t0 = performance.now();
  const run = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'gatehouse.js'), 'import', 'csv', file, ...(commit ? ['--commit'] : [])], {
    env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('GATEHOUSE_'))), GATEHOUSE_DATA_DIR: dataDir, GATEHOUSE_DATABASE_URL: url },
    encoding: 'utf8',
  });
  const ms = performance.now() - t0;
  if (run.status !== 0) throw new Error(`gatehouse import exited ${run.status}: ${run.stderr}`);
  return ms;
}

async function bench(label: string, fresh: () => Promise<{ url: string; dataDir: string; drop: () => Promise<void> }>, csv: string, file: string) {
  const rounds: Round[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const db = await fresh();
    try {
      rounds.push(await once(db.url, db.dataDir, csv));
    } finally {
      await db.drop();
    }
    if (CLI) {
      const cliDb = await fresh();
      try {
        rounds[i]!.cliDryRun = cli(cliDb.url, cliDb.dataDir, file, false);
        rounds[i]!.cliCommit = cli(cliDb.url, cliDb.dataDir, file, true);
      } finally {
        await cliDb.drop();
      }
    }
  }
  const m = (key: keyof Round) => median(rounds.map((r) => r[key] ?? NaN));
  const row = { database: label, read: m('read'), plan: m('plan'), dryRun: m('dryRun'), apply: m('apply'), commit: m('commit'), rerun: m('rerun'), cliDryRun: m('cliDryRun'), cliCommit: m('cliCommit'), rounds };
  console.log(
    `${label.padEnd(10)} ${s(row.read).padStart(8)} ${s(row.plan).padStart(8)} ${s(row.dryRun).padStart(9)} ${s(row.apply).padStart(8)} ${s(row.commit).padStart(8)} ${s(row.rerun).padStart(8)}` +
      (CLI ? ` ${s(row.cliDryRun).padStart(9)} ${s(row.cliCommit).padStart(9)}` : ''),
  );
  return row;
}

const work = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-import-bench-'));
const { csv, memberships, groups } = generate(PEOPLE);
const file = path.join(work, 'people.csv');
writeFileSync(file, csv);
console.log(`Import of ${PEOPLE.toLocaleString('en-GB')} people (${(csv.length / 1024 / 1024).toFixed(1)} MB CSV, ${groups} groups, ${memberships.toLocaleString('en-GB')} memberships), median of ${ROUNDS} rounds, a fresh database each`);
console.log(`(${os.cpus()[0]?.model ?? 'cpu'}, ${os.availableParallelism()} cores, Node ${process.versions.node})`);
console.log('read: parse and check the CSV; plan: match against the directory; dry run = read + plan; apply: write it; commit = read + plan + apply;');
console.log('re-run: the same file again (all unchanged); cli: `gatehouse import csv` as a new process, start-up included');
console.log(`${'database'.padEnd(10)} ${'read'.padStart(8)} ${'plan'.padStart(8)} ${'dry run'.padStart(9)} ${'apply'.padStart(8)} ${'commit'.padStart(8)} ${'re-run'.padStart(8)}${CLI ? ` ${'cli dry'.padStart(9)} ${'cli commit'.padStart(9)}` : ''}`);

const results = [];
try {
  results.push(
    await bench(
      'sqlite',
      async () => {
        const dataDir = mkdtempSync(path.join(work, 'sqlite-'));
        return { url: `sqlite:${path.join(dataDir, 'gatehouse.db')}`, dataDir, drop: async () => rmSync(dataDir, { recursive: true, force: true }) };
      },
      csv,
      file,
    ),
  );
  const admin = new pg.Client({ connectionString: PG_ADMIN });
  try {
    await admin.connect();
    results.push(
      await bench(
        'postgres',
        async () => {
          const name = `gatehouse_bench_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
          await admin.query(`CREATE DATABASE ${name}`);
          const url = new URL(PG_ADMIN);
          url.pathname = `/${name}`;
          const dataDir = mkdtempSync(path.join(work, 'pg-'));
          return { url: url.toString(), dataDir, drop: async () => { await admin.query(`DROP DATABASE ${name} WITH (FORCE)`); rmSync(dataDir, { recursive: true, force: true }); } };
        },
        csv,
        file,
      ),
    );
  } catch (error) {
    console.log(`postgres   skipped: ${(error as Error).message}`);
  } finally {
    await admin.end().catch(() => undefined);
  }
  const date = new Date().toISOString();
  mkdirSync(path.join(ROOT, 'bench', 'results'), { recursive: true });
  const out = path.join(ROOT, 'bench', 'results', `import-${date.slice(0, 19).replace(/:/g, '')}.json`);
  writeFileSync(out, JSON.stringify({ date, people: PEOPLE, rounds: ROUNDS, cpu: os.cpus()[0]?.model, cores: os.availableParallelism(), node: process.versions.node, results }, null, 2));
  console.log(`results: ${path.relative(ROOT, out)}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
