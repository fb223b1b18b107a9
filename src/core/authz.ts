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
  // Issue 11: change control (src/governance/)
  'changes.read': 'See the filtering change-control log and export it as CSV or PDF (MO-06)',
  'changes.request': 'Ask for a change to filtering (policies, lists, entries, devices), or make an emergency block at once',
  'changes.approve': 'Approve, refuse or roll back another person’s filtering change (only the roles the profile names as change approvers)',
  // filter exceptions (issue 11)
  'exceptions.read': 'See filter exceptions (allowances, filtering turned off, quarantined devices) and the log of unblock decisions',
  'exceptions.decide': 'Decide unblock requests from the block page (allow for a person, group or everyone, or refuse) and end an exception early',
  'exceptions.review': 'Review the log of unblock decisions (FI-08: reviewed by, when)',
  'filter_off.request': 'Ask for filtering to be turned off for a person, group or address, with a reason and an end',
  'filter_off.approve': 'Approve turning filtering off (a second person among the profile’s change approvers)',
  'lessons.open': 'Open a site or category for a class one teaches, for a lesson (FI-12)',
  'quarantine.manage': 'Quarantine a device (address or MAC) and release it (IN-06)',
  // issue 11: safeguarding alerts (FI-11, MO-02, MO-03, MO-07)
  'alerts.read': 'Open the alerts page (each person sees only the kinds of alert their role is for)',
  'alerts.handle': 'Acknowledge an alert and close it with the action taken and the outcome',
  'alerts.safeguarding': 'See and handle safeguarding alerts (concerning sites, searches, circumvention): who, device, what, when, why',
  'alerts.security': 'See and handle security alerts (lockouts, failed sign-ins to privileged accounts, scans)',
  // incidents and breaches (issue 11: IN-01..IN-07, MO-03)
  'concerns.read': 'See the concerns reported by anyone (online-safety ones: the DSL; technical ones: the IT lead) and take them up as incidents',
  'incidents.record': 'Record an incident by hand or from an alert (given back its reference; reading it needs incidents.read and its category)',
  'incidents.read': 'See the incident register: only the categories one’s role is told about (safeguarding: the DSL; security and cyber: IT, headteacher, DPO; data breaches: DPO, IT, headteacher)',
  'incidents.manage': 'Add to an incident’s timeline, record containment, cause, actions, policy updates and outcome, report to Action Fraud or the NCSC, close it (its categories only)',
  'incidents.breach': 'Record the ICO decision on a personal-data breach (reportable or not, why, the ICO reference) and export the Art 33(5) breach record',
  // equipment registers (issue 12: AS-01..AS-07, AS-10..AS-13)
  'registers.read': 'See the equipment, disposal, software and licence, removable media and device health registers; export them as CSV',
  'registers.manage': 'Record equipment, loans, stock-takes, certificates, software titles, licences and removable media; import inventory CSVs',
  'registers.dispose': 'Authorise and record the disposal of an item (its certificates must be attached first)',
  'software.approve': 'Approve or refuse a software title before use, as the headteacher (AS-07)',
  'software.gdpr': 'Record the GDPR check of a software title before use, as the DPO (AS-07)',
  // backups and risk registers (issue 12, src/registers/)
  'backups.read': 'See the backups register: jobs, check-ins, test restores and the continuity plan (BK-01..05)',
  'backups.manage': 'Add and retire backup jobs and issue their check-in tokens',
  'backups.record': 'Record test restores and the reviewed continuity and disaster recovery plan',
  'risks.read': 'See the risk register',
  'risks.manage': 'Add, review and close risks',
  // governance registers (issue 12: GV-01, GV-02, GV-05..07, GV-09, GV-10)
  'governance.read': 'See the governance registers: reviews and audits with recommendations, the filtering and monitoring review, walks, physical checks, policy reviews, shortfalls and everyone’s training; export them as CSV',
  'governance.manage': 'Record reviews, audits, the filtering and monitoring review, data-protection walks, physical-security checks, policy reviews and resource shortfalls',
  'training.manage': 'Record staff training and import training records from a spreadsheet',
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
  // Issue 11: change control. Governors, senior leaders and the DPO read the log (MO-06); the profile's
  // governance.changeApprovers narrows who of the approvers may approve (FI-06), never the requester.
  'changes.read': ['administrator', 'senior_leader', 'dsl', 'dpo', 'governor'],
  'changes.request': ['administrator'],
  'changes.approve': ['administrator', 'senior_leader'],
  // filter exceptions (issue 11): the IT administrator and safeguarding decide; teachers open for their class.
  'exceptions.read': ['administrator', 'senior_leader', 'dsl'],
  'exceptions.decide': ['administrator', 'senior_leader', 'dsl'],
  'exceptions.review': ['senior_leader', 'dsl'],
  'filter_off.request': ['administrator', 'senior_leader', 'dsl'],
  'filter_off.approve': ['administrator', 'senior_leader', 'dsl'],
  'lessons.open': ['administrator', 'senior_leader', 'dsl', 'staff'],
  'quarantine.manage': ['administrator', 'senior_leader', 'dsl'],
  // issue 11: safeguarding alerts go to the DSL (and the senior leaders who deputise); security
  // alerts to the IT administrators, the DPO (a possible breach) and senior leaders. Pupils, staff,
  // governors and the office never see alerts; a profile's recipients cannot widen this.
  'alerts.read': ['administrator', 'senior_leader', 'dsl', 'dpo'],
  'alerts.handle': ['administrator', 'senior_leader', 'dsl', 'dpo'],
  'alerts.safeguarding': ['senior_leader', 'dsl'],
  'alerts.security': ['administrator', 'senior_leader', 'dpo'],
  // incidents and breaches (issue 11). Anyone reports a concern (a public form, no permission).
  // Staff record what they see (IN-01, MO-03) but read nothing back beyond the reference; which
  // categories each reader sees is decided in src/incidents/access.ts (docs/incidents.md).
  'concerns.read': ['administrator', 'dsl'],
  'incidents.record': ['administrator', 'senior_leader', 'dsl', 'dpo', 'staff'],
  'incidents.read': ['administrator', 'senior_leader', 'dsl', 'dpo'],
  'incidents.manage': ['administrator', 'senior_leader', 'dsl', 'dpo'],
  // The DPO decides on reporting to the ICO (P3 8.4); the headteacher may record it in their absence.
  'incidents.breach': ['senior_leader', 'dpo'],
  // equipment registers (issue 12): the IT administrator and the school office (business manager)
  // keep them; a senior leader authorises disposals and approves software, the DPO checks it.
  'registers.read': ['administrator', 'senior_leader', 'dpo', 'office'],
  'registers.manage': ['administrator', 'office'],
  'registers.dispose': ['senior_leader'],
  'software.approve': ['senior_leader'],
  'software.gdpr': ['dpo'],
  // backups and risk registers (issue 12): the IT lead runs backups; leaders and governors see them.
  'backups.read': ['administrator', 'senior_leader', 'dpo', 'governor'],
  'backups.manage': ['administrator'],
  'backups.record': ['administrator', 'senior_leader'],
  'risks.read': ['administrator', 'senior_leader', 'dsl', 'dpo', 'governor'],
  'risks.manage': ['administrator', 'senior_leader'],
  // governance registers (issue 12): senior leaders, the DSL (filtering review, P4 9.14), the DPO
  // (data-protection walks) and the IT lead record; governors read. Staff see only their own
  // training (GET /api/my/training, any signed-in person).
  'governance.read': ['administrator', 'senior_leader', 'dsl', 'dpo', 'governor'],
  'governance.manage': ['administrator', 'senior_leader', 'dsl', 'dpo'],
  'training.manage': ['administrator', 'senior_leader'],
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
