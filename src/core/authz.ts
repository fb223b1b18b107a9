/**
 * Who may do what in Gatehouse itself. Every HTTP route and CLI use case names one permission;
 * this table is the only place that maps roles to permissions, and the authorization test checks
 * every route against every role from it.
 */

export const roles = [
  'administrator',
  'senior_leader',
  'dsl',
  'dpo',
  'governor',
  'office',
  'staff',
  'pupil',
  'guest',
] as const;
export type Role = (typeof roles)[number];

export const roleLabels: Record<Role, string> = {
  administrator: 'IT administrator',
  senior_leader: 'Senior leader',
  dsl: 'Designated safeguarding lead',
  dpo: 'Data protection officer',
  governor: 'Governor',
  office: 'School office (reception)',
  staff: 'Staff',
  pupil: 'Pupil',
  guest: 'Guest',
};

export const permissions = {
  'school.read': 'See the school record and its named roles',
  'school.manage': 'Change the school record and its named roles',
  'audit.read': 'Read and verify the audit trail',
  'audit.export': 'Export the audit trail (for the local authority or police)',
  'system.read': 'See server configuration and health details',
  'accounts.read': 'See accounts, including locked ones',
  'accounts.manage': 'Create accounts and administrator accounts, issue temporary passwords, disable, delete, report compromise',
  'accounts.unlock': 'Unlock a locked account',
  'aup.read': 'See Acceptable Use Policy versions and who has accepted them',
  'aup.manage': 'Publish a new version of the Acceptable Use Policy',
  'profile.read': 'See the active policy profile and its warnings',
  'directory.read': 'See the directory: people, their groups, status and linked administrator accounts; export it',
  'directory.manage': 'Change groups and memberships, import people from CSV or School Data Sync, manage SCIM provisioning tokens',
  'access.read': 'See the access-rights matrix and the access reviews',
  'access.manage': 'Record the school systems and each group’s rights in them',
  'access.review': 'Carry out and sign off the annual access review',
  'guests.manage': 'Allocate guest accounts to visitors at reception, print slips, end visits',
  'resets.pupils': 'Reset the passwords of pupils in the classes one teaches (administrators: any pupil)',
  'resets.request': 'Ask for a staff member’s password to be reset',
  'resets.approve': 'Approve or refuse another person’s request to reset a staff password',
  'leavers.manage': 'Start and complete the leaver checklist',
  'secrets.read': 'See the shared-secrets register (never the secrets themselves)',
  'secrets.manage': 'Record shared secrets, their holders and their rotation',
  'filtering.read': 'See internet filtering: policies, lists and their state, devices, requests from the block page; test a web address',
  'filtering.manage': 'Change filtering policies, list sources and the school’s allow and block lists, devices and identity tokens; confirm held list updates',
  'activity.read': 'See filtering activity: who reached or was refused which site, when, from which device (MO-01)',
  'compliance.read': 'See where the school stands against the DfE standards, Cyber Essentials and its own policy, with the evidence (GV-08)',
  'reports.read': 'See the termly monitoring report (counts only, no pupil named) and download it as a PDF (MO-05)',
  'reports.issue': 'Issue the termly monitoring report to senior leaders and governors (its PDF kept as issued)',
  'checks.read': 'See the register of filtering and monitoring checks (GV-03, AU-04)',
  'checks.record': 'Run a guided filtering check or record one made by hand, and record the resulting actions',
  'compliance.signoff': 'Sign off a compliance clause by hand with the evidence seen, or withdraw a sign-off (each clause names who may)',
  // backups and risk registers (issue 12, src/registers/)
  'backups.read': 'See the backups register: jobs, check-ins, test restores and the continuity plan (BK-01..05)',
  'backups.manage': 'Add and retire backup jobs and issue their check-in tokens',
  'backups.record': 'Record test restores and the reviewed continuity and disaster recovery plan',
  'risks.read': 'See the risk register',
  'risks.manage': 'Add, review and close risks',
} as const;
export type Permission = keyof typeof permissions;

const everyone: Role[] = [...roles];

const grants: Record<Permission, readonly Role[]> = {
  'school.read': everyone,
  'school.manage': ['administrator', 'senior_leader'],
  'audit.read': ['administrator', 'senior_leader', 'dpo'],
  'audit.export': ['administrator', 'senior_leader', 'dpo'],
  'system.read': ['administrator'],
  'accounts.read': ['administrator', 'senior_leader'],
  'accounts.manage': ['administrator'],
  'accounts.unlock': ['administrator'],
  'aup.read': ['administrator', 'senior_leader', 'dpo'],
  'aup.manage': ['administrator', 'senior_leader'],
  'profile.read': ['administrator', 'senior_leader', 'dpo', 'governor'],
  'directory.read': ['administrator', 'senior_leader'],
  'directory.manage': ['administrator'],
  'access.read': ['administrator', 'senior_leader', 'dpo', 'governor'],
  'access.manage': ['administrator', 'senior_leader'],
  // A senior leader signs off, not the administrators whose own rights are under review.
  'access.review': ['senior_leader'],
  'guests.manage': ['administrator', 'office'],
  'resets.pupils': ['administrator', 'staff'],
  'resets.request': ['administrator', 'senior_leader'],
  'resets.approve': ['administrator', 'senior_leader'],
  'leavers.manage': ['administrator'],
  'secrets.read': ['administrator', 'senior_leader'],
  'secrets.manage': ['administrator'],
  // The DSL sees policies and activity for safeguarding; changing filtering is the IT administrator's.
  'filtering.read': ['administrator', 'senior_leader', 'dsl'],
  'filtering.manage': ['administrator'],
  'activity.read': ['administrator', 'dsl'],
  // MO-05: the report is for senior leaders and governors; the DSL and IT lead prepare it.
  'reports.read': ['administrator', 'senior_leader', 'dsl', 'dpo', 'governor'],
  'reports.issue': ['senior_leader', 'dsl'],
  // GV-03 (P4 9.18): checks from a safeguarding and an IT perspective; governors see that they happen.
  'checks.read': ['administrator', 'senior_leader', 'dsl', 'governor'],
  'checks.record': ['administrator', 'senior_leader', 'dsl'],
  // Governors and the DPO are who the compliance view is for; the DSL owns the filtering standards.
  'compliance.read': ['administrator', 'senior_leader', 'dsl', 'dpo', 'governor'],
  // Each clause names its signers (frameworks/*.yaml); administrators never attest their own work.
  'compliance.signoff': ['senior_leader', 'dsl', 'dpo', 'governor'],
  // backups and risk registers (issue 12): the IT lead runs backups; leaders and governors see them.
  'backups.read': ['administrator', 'senior_leader', 'dpo', 'governor'],
  'backups.manage': ['administrator'],
  'backups.record': ['administrator', 'senior_leader'],
  'risks.read': ['administrator', 'senior_leader', 'dsl', 'dpo', 'governor'],
  'risks.manage': ['administrator', 'senior_leader'],
};

const matrix = new Map<Role, Set<Permission>>(
  roles.map((role) => [
    role,
    new Set((Object.keys(grants) as Permission[]).filter((p) => grants[p].includes(role))),
  ]),
);

export function can(role: Role, permission: Permission): boolean {
  return matrix.get(role)?.has(permission) ?? false;
}

export function permissionsOf(role: Role): Permission[] {
  return [...(matrix.get(role) ?? [])];
}

/**
 * Privileged roles: every role holding a permission that staff do not hold (today administrator,
 * senior leader, DSL, DPO, governor and office). Derived from the table above, so a permission
 * given to a role later makes it privileged without anyone remembering to list it. A SCIM token
 * gives these only with an explicit grant (`--allow-privileged`); see docs/scim.md.
 */
export const privilegedRoles: readonly Role[] = roles.filter((role) => permissionsOf(role).some((p) => !can('staff', p)));

export function isPrivilegedRole(role: Role): boolean {
  return privilegedRoles.includes(role);
}

/**
 * What a route requires: `public` (no sign-in: health, setup, sign-in itself), `signing_in` (a
 * sign-in in progress: its cookie and CSRF header), `authenticated` (any signed-in person, for
 * their own things), `scim` (a SCIM client's bearer token, never a session), `filter_agent` (an
 * identity-API token: RADIUS accounting or a device agent saying who is at an address), or one
 * permission.
 */
export type RouteAccess = 'public' | 'signing_in' | 'authenticated' | 'scim' | 'filter_agent' | Permission;

export function isRole(value: string): value is Role {
  return (roles as readonly string[]).includes(value);
}
