import { Option, type Command } from 'commander';
import { privilegedRoles } from '../core/authz.js';
import { GatehouseError } from '../core/errors.js';
import { cliActor, cliMeta, withCliRuntime } from '../core/cli-runtime.js';
import { createScimToken, listScimTokens, newScimTokenSchema, provisionableRoles, revokeScimToken, type ScimGrant } from './scim-tokens.js';

/**
 * `gatehouse scim token create|list|revoke`: SCIM tokens for Entra ID or Google from the command
 * line, the same use cases as the console's Provisioning page. A new token is printed once.
 */

const optionName = (path: PropertyKey[]) =>
  ({ roles: 'roles', role: 'role', allowPrivileged: 'allow-privileged', adoptExisting: 'adopt-existing', source: 'source', name: 'name' })[String(path[0])] ?? String(path[0]);

/** "roles pupil, staff (new people: pupil); privileged; adopts existing accounts; source Entra ID" */
export function describeGrant(t: ScimGrant): string {
  return [
    `roles ${t.roles.join(', ')} (new people: ${t.defaultRole})`,
    ...(t.allowPrivileged ? ['privileged roles allowed'] : []),
    ...(t.adoptExisting ? ['adopts existing accounts'] : []),
    `source "${t.source}"`,
  ].join('; ');
}

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
    .option('--roles <roles>', `the roles it may give and change, separated by commas (its grant), from: ${provisionableRoles.join(', ')}`)
    .addOption(new Option('--role <role>', 'the role of people it creates when their userType names none (one of --roles; alone, the whole grant)').choices(provisionableRoles))
    .option('--allow-privileged', `let the grant hold privileged roles (${privilegedRoles.filter((r) => r !== 'administrator').join(', ')}); recorded as a high-severity event`)
    .option('--adopt-existing', 'let it see and change accounts of its roles that it did not make (made by hand, imported, or by another source), taking them over')
    .option('--source <source>', 'its provisioning source: tokens with the same source share the people and groups they made (default: --name; give the old name when replacing a token)')
    .action(async (options: { name: string; roles?: string; role?: string; allowPrivileged?: boolean; adoptExisting?: boolean; source?: string }) => {
      const roleList = options.roles?.split(',').map((r) => r.trim().toLowerCase().replace(/[\s-]+/g, '_')).filter(Boolean);
      const parsed = newScimTokenSchema.safeParse({
        name: options.name,
        ...(roleList ? { roles: roleList } : {}),
        ...(options.role ? { role: options.role } : {}),
        ...(options.allowPrivileged ? { allowPrivileged: true } : {}),
        ...(options.adoptExisting ? { adoptExisting: true } : {}),
        ...(options.source !== undefined ? { source: options.source } : {}),
      });
      if (!parsed.success) throw new GatehouseError('cli', 400, parsed.error.issues.map((i) => `--${optionName(i.path)}: ${i.message}`).join('; '));
      const { token: made, secret } = await withCliRuntime((rt) => createScimToken(rt, cliActor(), parsed.data, cliMeta));
      process.stdout.write(
        `SCIM token "${made.name}" (id ${made.id}), ${describeGrant(made)}:\n\n  ${secret}\n\n` +
          'It is shown only now: paste it into the provisioning settings (Entra ID: Secret Token) and keep no other copy.\n' +
          'Tenant URL: https://<this server>/scim/v2\n',
      );
    });

  token
    .command('list')
    .description('list the tokens and what each may reach (never the tokens themselves)')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      const tokens = await withCliRuntime((rt) => listScimTokens(rt.db.kysely));
      if (options.json) {
        process.stdout.write(`${JSON.stringify({ tokens }, null, 2)}\n`);
        return;
      }
      if (tokens.length === 0) {
        process.stdout.write('No SCIM tokens. Make one with: gatehouse scim token create --name "Entra ID" --roles pupil,staff\n');
        return;
      }
      for (const t of tokens) {
        const state = t.revokedAt ? `revoked ${t.revokedAt}` : t.lastUsedAt ? `last used ${t.lastUsedAt}` : 'never used';
        process.stdout.write(`${t.id}  ${t.name.padEnd(24)} ${describeGrant(t)}; made ${t.createdAt} by ${t.createdBy ?? '-'}; ${state}\n`);
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
