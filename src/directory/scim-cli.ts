import { Option, type Command } from 'commander';
import { roles } from '../core/authz.js';
import { GatehouseError } from '../core/errors.js';
import { cliActor, cliMeta, withCliRuntime } from '../core/cli-runtime.js';
import { createScimToken, listScimTokens, newScimTokenSchema, revokeScimToken } from './scim-tokens.js';

/**
 * `gatehouse scim token create|list|revoke`: SCIM tokens for Entra ID or Google from the command
 * line, the same use cases as the console's Provisioning page. A new token is printed once.
 */



export function registerScimCommands(program: Command): void {
  const token = program
    .command('scim')
    .description('SCIM 2.0 provisioning from Entra ID or Google (AC-12): see docs/scim.md')
    .command('token')
    .description('the bearer tokens SCIM clients use');

  token
    .command('create')
    .description('make a token for a SCIM client; it is printed once and stored only as its SHA-256')
    .requiredOption('--name <name>', 'what uses it, e.g. "Entra ID" (the audit trail names it scim:<name>)')
    .addOption(new Option('--role <role>', 'the role of people it creates when their userType names none').choices(roles.filter((r) => r !== 'administrator')).makeOptionMandatory())
    .action(async (options: { name: string; role: string }) => {
      const parsed = newScimTokenSchema.safeParse({ name: options.name, role: options.role });
      if (!parsed.success) throw new GatehouseError('cli', 400, parsed.error.issues.map((i) => `--${String(i.path[0])}: ${i.message}`).join('; '));
      const { token: made, secret } = await withCliRuntime((rt) => createScimToken(rt, cliActor(), parsed.data, cliMeta));
      process.stdout.write(
        `SCIM token "${made.name}" (id ${made.id}), default role ${made.defaultRole}:\n\n  ${secret}\n\n` +
          'It is shown only now: paste it into the provisioning settings (Entra ID: Secret Token) and keep no other copy.\n' +
          'Tenant URL: https://<this server>/scim/v2\n',
      );
    });

  token
    .command('list')
    .description('list the tokens (never the tokens themselves)')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      const tokens = await withCliRuntime((rt) => listScimTokens(rt.db.kysely));
      if (options.json) {
        process.stdout.write(`${JSON.stringify({ tokens }, null, 2)}\n`);
        return;
      }
      if (tokens.length === 0) {
        process.stdout.write('No SCIM tokens. Make one with: gatehouse scim token create --name "Entra ID" --role staff\n');
        return;
      }
      for (const t of tokens) {
        const state = t.revokedAt ? `revoked ${t.revokedAt}` : t.lastUsedAt ? `last used ${t.lastUsedAt}` : 'never used';
        process.stdout.write(`${t.id}  ${t.name.padEnd(24)} ${t.defaultRole.padEnd(14)} made ${t.createdAt} by ${t.createdBy ?? '-'}; ${state}\n`);
      }
    });

  token
    .command('revoke <id>')
    .description('stop a token working at once')
    .action(async (id: string) => {
      if (!/^[0-9a-f-]{36}$/i.test(id)) throw new GatehouseError('cli', 400, `"${id}" is not a token id; see gatehouse scim token list`);
      const revoked = await withCliRuntime((rt) => revokeScimToken(rt, cliActor(), id, cliMeta));
      process.stdout.write(`SCIM token "${revoked.name}" revoked at ${revoked.revokedAt}; it no longer works.\n`);
    });
}
