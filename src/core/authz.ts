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
 * What a route requires: `public` (no sign-in: health, setup, sign-in itself), `signing_in` (a
 * sign-in in progress: its cookie and CSRF header), `authenticated` (any signed-in person, for
 * their own things), or one permission.
 */
export type RouteAccess = 'public' | 'signing_in' | 'authenticated' | Permission;

export function isRole(value: string): value is Role {
  return (roles as readonly string[]).includes(value);
}
