import type { Command } from 'commander';
import { cliActor, withCliRuntime } from '../core/cli-runtime.js';
import { purgeActivity } from './activity.js';
import { describeAge, listSources } from './lists-service.js';
import { FilterService } from './service.js';

/**
 * `gatehouse filtering …`: the CLI twins of filtering's scheduled work (fetching lists, purging old
 * activity) for when the server is down or for a cron job, and the state of the lists.
 */
export function registerFilteringCommands(program: Command): void {
  const filtering = program.command('filtering').description('internet filtering: the lists and their state, fetching them now, purging old activity (docs/filtering.md)');

  filtering
    .command('lists')
    .description('every list source with its entries, age and last result; exit 1 when one is stale, failed or held')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      await withCliRuntime(async (rt) => {
        const sources = await listSources(rt);
        if (options.json) process.stdout.write(`${JSON.stringify({ sources }, null, 2)}\n`);
        else if (sources.length === 0) process.stdout.write('No lists yet: add them in the console (Filtering → Lists).\n');
        else {
          for (const s of sources) {
            const state = s.editable ? 'edited here' : s.held ? `HELD (update has ${s.held.entries} entries)` : s.stale ? 'OUT OF DATE' : s.lastResult === 'error' ? 'LAST UPDATE FAILED' : s.lastResult ?? 'not fetched';
            const age = s.currentAt ? `${describeAge(rt.clock.now().getTime() - Date.parse(s.currentAt))} old` : 'never fetched';
            process.stdout.write(`${s.name} [${s.kind}] ${s.entries} entries, ${age}, ${state}${s.lastError ? ` — ${s.lastError}` : ''}\n`);
          }
        }
        if (sources.some((s) => s.held || s.stale || s.lastResult === 'error')) process.exitCode = 1;
      });
    });

  filtering
    .command('fetch')
    .description('fetch every list now (or the one named), as the server does on schedule; an update that shrinks a list by half is held')
    .option('--list <name>', 'only this list')
    .action(async (options: { list?: string }) => {
      await withCliRuntime(async (rt) => {
        const service = new FilterService(rt);
        const sources = (await listSources(rt)).filter((s) => s.location && (!options.list || s.name === options.list));
        if (options.list && sources.length === 0) throw new Error(`There is no fetched list called "${options.list}".`);
        try {
          for (const s of sources) {
            const outcome = await service.fetchNow(s.id, cliActor());
            process.stdout.write(`${s.name}: ${outcome.status === 'failed' ? `failed — ${outcome.error}` : `${outcome.status}, ${outcome.entries} entries (was ${outcome.previous})`}\n`);
            if (outcome.status !== 'updated') process.exitCode = 1;
          }
        } finally {
          // Its timers would otherwise keep the command from exiting after an error.
          await service.stop();
        }
      });
    });

  filtering
    .command('purge-activity')
    .description('delete activity older than the profile’s filtering.activityRetentionDays (the server does this daily)')
    .action(async () => {
      await withCliRuntime(async (rt) => {
        const deleted = await purgeActivity(rt);
        process.stdout.write(`${deleted} activity records older than ${rt.profile.filtering.activityRetentionDays} days deleted.\n`);
      });
    });
}
