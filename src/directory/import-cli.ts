import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import cliProgress from 'cli-progress';
import { cliActor, withCliRuntime } from '../core/cli-runtime.js';
import { Option, type Command } from 'commander';
import { GatehouseError } from '../core/errors.js';
import { groupKinds, type GroupKind } from './groups.js';
import {
  checkFileSize,
  csvFields,
  guessMapping,
  importableRoles,
  readCsv,
  readGenericCsv,
  readSds,
  sdsFiles,
  type ColumnMapping,
  type CsvField,
  type ImportData,
  type ImportSource,
} from './import-sources.js';
import { applyImport, countsOf, describePlan, planImport, type ImportPlan, type PlanSummary } from './imports.js';
import type { Role } from '../core/authz.js';

/**
 * `gatehouse import csv <file>` and `gatehouse import sds <folder>` (AC-12): a dry run by default,
 * `--commit` to apply. Exit code 0, or 2 when some rows were bad (the good ones are still imported
 * with --commit), 1 on errors.
 */

const cliError = (message: string) => new GatehouseError('cli', 400, message);
const number = (n: number) => n.toLocaleString('en-GB');

function readText(file: string): string {
  let size: number;
  try {
    const stat = statSync(file);
    if (!stat.isFile()) throw cliError(`${file} is not a file.`);
    size = stat.size;
  } catch (error) {
    if (error instanceof GatehouseError) throw error;
    throw cliError(`cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  checkFileSize(path.basename(file), size);
  return readFileSync(file, 'utf8');
}

/** Progress on standard error, only when it is a terminal: logs and pipes stay clean. */
function progressBar(enabled: boolean) {
  if (!enabled) return { update: (_phase: string, _done: number, _total: number) => undefined, stop: () => undefined };
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: '  {phase} [{bar}] {value}/{total}', hideCursor: true, clearOnComplete: true, etaBuffer: 50, fps: 10 },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  let current = '';
  return {
    update(phase: string, done: number, total: number) {
      if (!started) {
        bar.start(total, done, { phase: phase.padEnd(10) });
        started = true;
      } else if (phase !== current) {
        bar.setTotal(total);
      }
      current = phase;
      bar.update(done, { phase: phase.padEnd(10) });
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function mappingFrom(headers: string[], maps: string[]): ColumnMapping {
  const mapping: ColumnMapping = guessMapping(headers);
  for (const m of maps) {
    const eq = m.indexOf('=');
    if (eq < 1) throw cliError(`--map ${m}: write field=Column header, e.g. --map username=Login`);
    const field = m.slice(0, eq).trim() as CsvField;
    if (!(csvFields as readonly string[]).includes(field)) throw cliError(`--map ${m}: "${field}" is not a field; use one of ${csvFields.join(', ')}`);
    const header = m.slice(eq + 1).trim();
    if (header) mapping[field] = header;
    else delete mapping[field];
  }
  return mapping;
}

function printSummary(summary: PlanSummary, data: ImportData, mapping: ColumnMapping | null, committed: boolean, show: number): void {
  const out: string[] = [];
  const c = summary.counts;
  out.push(`${committed ? 'Imported' : 'Dry run of'} ${summary.files.join(', ')} (${summary.source === 'sds' ? 'School Data Sync v2.1' : 'CSV'})${committed ? '.' : ': nothing has been changed.'}`);
  if (mapping) out.push(`Columns: ${Object.entries(mapping).map(([field, header]) => `${field} ← "${header}"`).join(', ')}`);
  out.push(`Read ${number(c.rows)} row${c.rows === 1 ? '' : 's'}.`);
  const verb = (done: string, would: string) => (committed ? done : would);
  out.push(`  ${verb('created', 'to create').padEnd(12)} ${number(c.created).padStart(7)}`);
  out.push(`  ${verb('updated', 'to update').padEnd(12)} ${number(c.updated).padStart(7)}`);
  out.push(`  ${verb('disabled', 'to disable').padEnd(12)} ${number(c.disabled).padStart(7)}${summary.disableMissing ? '' : '   (people no longer in the file are disabled only with --disable-missing)'}`);
  out.push(`  ${'unchanged'.padEnd(12)} ${number(c.unchanged).padStart(7)}`);
  if (c.held) out.push(`  ${'held back'.padEnd(12)} ${number(c.held).padStart(7)}   (leavers and disabled people are not re-activated by an import)`);
  out.push(`  ${'bad rows'.padEnd(12)} ${number(c.bad).padStart(7)}${c.bad ? `   (left out; ${committed ? 'the other rows were imported' : 'the other rows would be imported'})` : ''}`);
  out.push(`  groups: ${number(c.groupsCreated)} ${verb('created', 'to create')}, ${number(c.groupsRenamed)} renamed; memberships: ${number(c.membershipsAdded)} ${verb('added', 'to add')}, ${number(c.membershipsRemoved)} ${verb('removed', 'to remove')}`);
  for (const note of summary.notes) out.push(`Note: ${note}`);
  if (summary.bad.length) {
    out.push('', 'Bad rows:');
    for (const b of summary.bad) out.push(`  ${b.file} line ${b.line}: ${b.reason}`);
  }
  const list = <T>(title: string, items: T[], total: number, line: (item: T) => string) => {
    if (!items.length) return;
    out.push('', `${title}${total > items.length ? ` (first ${items.length} of ${number(total)})` : ''}:`);
    for (const item of items) out.push(`  ${line(item)}`);
  };
  list(verb('Created', 'To create'), summary.created.slice(0, show), c.created, (p) => `${p.username.padEnd(20)} ${p.displayName.padEnd(28)} ${p.role.padEnd(8)} ${p.groups.join(', ')}`);
  list(verb('Updated', 'To update'), summary.updated.slice(0, show), c.updated, (u) =>
    `${u.username.padEnd(20)} ${[...Object.entries(u.changes).map(([f, v]) => `${f}: ${v!.from ?? '—'} → ${v!.to ?? '—'}`), ...(u.groupsAdded.length ? [`joins ${u.groupsAdded.join(', ')}`] : []), ...(u.groupsRemoved.length ? [`leaves ${u.groupsRemoved.join(', ')}`] : [])].join('; ')}`,
  );
  list(verb('Disabled', 'To disable'), summary.disabled.slice(0, show), c.disabled, (d) => `${d.username.padEnd(20)} ${d.displayName}`);
  list('Held back', summary.held.slice(0, show), c.held, (h) => `${h.username.padEnd(20)} ${h.file} line ${h.line}: ${h.reason}`);
  if (!committed) out.push('', data.people.length ? 'Nothing was changed. Run again with --commit to import.' : 'Nothing to import.');
  process.stdout.write(`${out.join('\n')}\n`);
}

async function runImport(source: ImportSource, read: () => { data: ImportData; mapping: ColumnMapping | null }, options: { disableMissing?: boolean; commit?: boolean; json?: boolean; show: string }): Promise<void> {
  const show = Number(options.show);
  if (!Number.isInteger(show) || show < 0) throw cliError(`--show: "${options.show}" is not a whole number`);
  const bar = progressBar(process.stderr.isTTY === true && !options.json);
  let plan: ImportPlan;
  let data: ImportData;
  let mapping: ColumnMapping | null;
  let importId: string | null = null;
  try {
    bar.update('reading', 0, 1);
    ({ data, mapping } = read());
    bar.update('reading', 1, 1);
    plan = await withCliRuntime(async (runtime) => {
      const planned = await planImport(runtime, source, data, { disableMissing: options.disableMissing === true }, (phase, done, total) => bar.update(phase, done, total));
      if (options.commit) {
        const result = await applyImport(runtime, cliActor(), planned, {}, (phase, done, total) => bar.update(phase, done, total));
        importId = result.importId;
      }
      return planned;
    });
  } finally {
    bar.stop();
  }
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ committed: options.commit === true, importId, mapping, ...describePlan(plan, Number.POSITIVE_INFINITY) }, null, 2)}\n`);
  } else {
    printSummary(describePlan(plan, show), data, mapping, options.commit === true, show);
  }
  if (countsOf(plan).bad > 0) process.exitCode = 2;
}

export function registerImportCommands(program: Command): void {
  const imports = program
    .command('import')
    .description('bring people, groups and classes in from files (AC-12): a dry run unless --commit; exit 2 when some rows were bad');

  const common = (command: Command) =>
    command
      .option('--disable-missing', 'disable people from earlier imports of this kind who are no longer in the file')
      .option('--commit', 'apply the changes (without it, nothing is changed)')
      .option('--json', 'print the whole plan as JSON')
      .option('--show <n>', 'how many of each kind of change to list', '10');

  common(
    imports
      .command('csv <file>')
      .description('any CSV of people (an MIS export): columns are matched by their headers; --map sets or corrects a match')
      .option('--map <field=Column>', `which column holds a field (repeat it); fields: ${csvFields.join(', ')}`, collect, [])
      .addOption(new Option('--role <role>', 'the role of people whose row has none (or when no column holds roles)').choices(importableRoles as string[]))
      .addOption(new Option('--group-kind <kind>', 'the kind of groups in the groups column ("Year 7" is always a year group)').choices([...groupKinds]).default('class')),
  ).action(async (file: string, options: { map: string[]; role?: Role; groupKind: GroupKind; disableMissing?: boolean; commit?: boolean; json?: boolean; show: string }) => {
    await runImport(
      'csv',
      () => {
        const table = readCsv(path.basename(file), readText(file));
        const mapping = mappingFrom(table.headers, options.map);
        return { data: readGenericCsv(table, { mapping, defaultRole: options.role, groupKind: options.groupKind }), mapping };
      },
      options,
    );
  });

  common(
    imports
      .command('sds <folder>')
      .description('Microsoft School Data Sync v2.1 CSV files in a folder: users.csv and roles.csv, with classes.csv and enrollments.csv for classes'),
  ).action(async (folder: string, options: { disableMissing?: boolean; commit?: boolean; json?: boolean; show: string }) => {
    await runImport(
      'sds',
      () => {
        let names: string[];
        try {
          names = readdirSync(folder);
        } catch (error) {
          throw cliError(`cannot read the folder ${folder} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
        }
        const files: Record<string, string> = {};
        for (const name of names) {
          if (name.toLowerCase() in sdsFiles) files[name] = readText(path.join(folder, name));
        }
        const data = readSds(files);
        const others = names.filter((n) => n.toLowerCase().endsWith('.csv') && !(n.toLowerCase() in sdsFiles));
        if (others.length) data.notes.push(`Not read: ${others.join(', ')} (Gatehouse reads users.csv, roles.csv, classes.csv and enrollments.csv).`);
        return { data, mapping: null };
      },
      options,
    );
  });
}
