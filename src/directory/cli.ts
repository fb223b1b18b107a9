import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { Option, type Command } from 'commander';
import { roles, roleLabels, type Role } from '../core/authz.js';
import { GatehouseError } from '../core/errors.js';
import { listAccounts } from '../identity/accounts.js';
import { notifyContact } from '../identity/notify.js';
import { settingsFor } from '../identity/policy.js';
import { listResetRequests } from '../identity/resets.js';
import { issueTemporaryPassword } from '../identity/temporary-password.js';
import type { Runtime } from '../runtime.js';
import { cliActor, cliMeta, withCliRuntime } from '../core/cli-runtime.js';
import { exportDirectoryCsv } from './export.js';
import { listGroups, membershipsOf } from './groups.js';

/**
 * `gatehouse directory list|export|groups`, `gatehouse resets list` and `gatehouse accounts
 * recover`: the directory and resets from the server's command line, the same use cases as the
 * console. `accounts recover` is the way back in when every administrator is locked out.
 */

const cliError = (message: string) => new GatehouseError('cli', 400, message);


const statusOption = () => new Option('--status <status>', 'only people in this state').choices(['active', 'disabled', 'left', 'locked']);
const roleOption = () => new Option('--role <role>', 'only people with this role').choices([...roles]);

async function groupId(rt: Runtime, name: string | undefined): Promise<string | undefined> {
  if (!name) return undefined;
  const matches = (await listGroups(rt.db.kysely)).filter((g) => g.name.toLowerCase() === name.toLowerCase());
  if (matches.length === 0) throw cliError(`--group: there is no group called "${name}" (see gatehouse directory groups)`);
  if (matches.length > 1) throw cliError(`--group: ${matches.length} groups are called "${name}"; use the console to pick one`);
  return matches[0]!.id;
}

export function registerDirectoryCommands(program: Command): void {
  const directory = program.command('directory').description('the directory of people and groups (AC-12)');

  directory
    .command('list')
    .description('list people with their role, state and groups')
    .addOption(roleOption())
    .addOption(statusOption())
    .option('--group <name>', 'only members and teachers of this group')
    .option('--search <text>', 'name, username, e-mail or MIS id')
    .option('--json', 'print JSON')
    .action(async (options: { role?: Role; status?: 'active'; group?: string; search?: string; json?: boolean }) => {
      await withCliRuntime(async (rt) => {
        const { accounts, total } = await listAccounts(rt, { role: options.role, status: options.status, group: await groupId(rt, options.group), q: options.search, limit: 100_000, offset: 0 });
        const groups = await membershipsOf(rt.db.kysely, accounts.map((a) => a.id));
        if (options.json) {
          process.stdout.write(`${JSON.stringify({ total, people: accounts.map((a) => ({ ...a, groups: groups.get(a.id) ?? [] })) }, null, 2)}\n`);
          return;
        }
        for (const a of accounts) {
          const g = (groups.get(a.id) ?? []).map((m) => (m.role === 'teacher' ? `${m.name} (teaches)` : m.name)).join(', ');
          process.stdout.write(`${a.username.padEnd(24)} ${a.displayName.padEnd(28)} ${(roleLabels[a.role] ?? a.role).padEnd(18)} ${(a.locked ? 'locked' : a.status).padEnd(9)} ${g}\n`);
        }
        process.stdout.write(`${total} ${total === 1 ? 'person' : 'people'}.\n`);
      });
    });

  directory
    .command('export')
    .description('write the directory as CSV (the export is recorded in the audit trail)')
    .addOption(roleOption())
    .addOption(statusOption())
    .option('--group <name>', 'only members and teachers of this group')
    .option('--output <file>', 'write here instead of standard output')
    .action(async (options: { role?: Role; status?: 'active'; group?: string; output?: string }) => {
      await withCliRuntime(async (rt) => {
        const csv = await exportDirectoryCsv(rt, cliActor(), { role: options.role, status: options.status, group: await groupId(rt, options.group) }, cliMeta);
        if (options.output) {
          writeFileSync(options.output, csv, { mode: 0o600 });
          process.stderr.write(`Wrote ${csv.trim().split('\r\n').length - 1} people to ${options.output}.\n`);
        } else process.stdout.write(csv);
      });
    });

  directory
    .command('groups')
    .description('list year groups, classes, departments and other groups')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      await withCliRuntime(async (rt) => {
        const groups = await listGroups(rt.db.kysely);
        if (options.json) {
          process.stdout.write(`${JSON.stringify({ groups }, null, 2)}\n`);
          return;
        }
        if (groups.length === 0) process.stdout.write('No groups yet: add them in the console (Groups) or import them (gatehouse import).\n');
        for (const g of groups) process.stdout.write(`${g.name.padEnd(28)} ${g.kind.padEnd(11)} ${String(g.members).padStart(5)} members ${String(g.teachers).padStart(3)} teachers  ${g.source}\n`);
      });
    });

  const resets = program.command('resets').description('password reset requests (AC-10)');
  resets
    .command('list')
    .description('staff reset requests: open ones, or all with --all')
    .option('--all', 'include closed requests')
    .option('--json', 'print JSON')
    .action(async (options: { all?: boolean; json?: boolean }) => {
      await withCliRuntime(async (rt) => {
        const requests = await listResetRequests(rt, { status: options.all ? 'all' : 'open' });
        if (options.json) {
          process.stdout.write(`${JSON.stringify({ requests }, null, 2)}\n`);
          return;
        }
        if (requests.length === 0) process.stdout.write(options.all ? 'No reset requests.\n' : 'No open reset requests.\n');
        for (const r of requests) {
          process.stdout.write(`${r.createdAt.slice(0, 16).replace('T', ' ')}  ${r.account.username.padEnd(20)} ${r.status.padEnd(9)} asked by ${r.requestedBy ?? '-'}${r.decidedBy ? `, decided by ${r.decidedBy}` : ''}: ${r.reason ?? ''}\n`);
        }
      });
    });

  program
    .command('accounts')
    .description('accounts, from the server itself')
    .command('recover <username>')
    .description('issue a temporary password from the server (e.g. for the master account when every administrator is locked out); recorded at high severity and e-mailed to the headteacher')
    .action(async (username: string) => {
      await withCliRuntime(async (rt) => {
        const account = await rt.db.kysely.selectFrom('account').selectAll().where('username', '=', username.trim().toLowerCase()).executeTakeFirst();
        if (!account) throw cliError(`there is no account "${username}"`);
        if (account.status !== 'active') throw cliError(`${account.username} is ${account.status}; enable it first`);
        const settings = settingsFor(rt.profile, account.role as Role);
        const { temporaryPassword } = await issueTemporaryPassword(rt, cliActor(), account, {
          reason: 'recovered_from_server',
          meta: cliMeta,
          alsoIn: (ctx) =>
            ctx.audit.record({ action: 'account.recovered', target: `account:${account.id}`, severity: 'high', details: { username: account.username, breakGlass: account.is_break_glass === 1, by: os.userInfo().username } }),
        });
        await notifyContact(rt, 'headteacher', {
          about: 'account_recovered',
          target: `account:${account.id}`,
          compose: (name) => ({
            subject: `Gatehouse: the password of ${account.username} was reset from the server`,
            text: `Dear ${name},\n\nThe password of ${account.display_name} (${account.username}) was reset from the Gatehouse server's command line by the operating-system user "${os.userInfo().username}" at ${rt.clock.now().toISOString()}.\n\nIf you did not expect this, ask the IT lead why at once.\n\n— Gatehouse`,
          }),
        });
        process.stdout.write(
          `Temporary password for ${account.username}:\n\n  ${temporaryPassword}\n\n` +
            `It must be changed at the next sign-in and stops working in ${settings.passwords.temporaryExpiresHours} hours if unused. The headteacher has been told (if an e-mail address is recorded).\n`,
        );
      });
    });
}
