import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, type Account } from '../api';
import { ErrorMessage, Field } from '../components';
import { Link } from '../router';

interface AccountRow {
  id: string;
  username: string;
  displayName: string;
  email: string | null;
  role: string;
  status: string;
  isBreakGlass: boolean;
  linkedAccountId: string | null;
  locked: boolean;
  lockedAt: string | null;
  failedAttempts: number;
  mfaEnrolled: boolean;
  mustChangePassword: boolean;
  temporaryExpiresAt: string | null;
  passwordExpiresAt: string | null;
  source: string;
  externalId: string | null;
  groups: Array<{ groupId: string; name: string; kind: string; role: string }>;
}

interface GroupOption {
  id: string;
  name: string;
  kind: string;
}

const roles: Array<[string, string]> = [
  ['staff', 'Staff'],
  ['pupil', 'Pupil'],
  ['senior_leader', 'Senior leader'],
  ['dsl', 'Designated safeguarding lead'],
  ['dpo', 'Data protection officer'],
  ['governor', 'Governor'],
  ['office', 'School office (reception)'],
  ['guest', 'Guest'],
];
/** The guest desk's own accounts (AC-05): their passwords and state change only at the guest desk. */
const GUEST_POOL_SOURCE = 'guest-pool';

const roleName = (r: string) => (r === 'administrator' ? 'Administrator' : roles.find(([k]) => k === r)?.[1] ?? r);

/** A temporary password, shown once to the person who issued it (AC-09). */
function Issued({ issued, onClose }: { issued: { username: string; password: string }; onClose: () => void }) {
  return (
    <div className="alert alert-info" role="status" data-testid="temporary-password">
      <p>
        Temporary password for <strong>{issued.username}</strong>: <code className="secret">{issued.password}</code>
      </p>
      <p className="small">
        Give it to them in person. It is shown only now, works once, must be changed at first sign-in, and stops working if unused.
      </p>
      <button type="button" className="button small" onClick={onClose}>Done</button>
    </div>
  );
}

export function AccountsPage({ account }: { account: Account }) {
  const canManage = account.permissions.includes('accounts.manage');
  const canUnlock = account.permissions.includes('accounts.unlock');
  const canOpenGuestDesk = account.permissions.includes('guests.manage');
  const [rows, setRows] = useState<AccountRow[]>([]);
  const [total, setTotal] = useState(0);
  const [filter, setFilter] = useState<'' | 'active' | 'locked' | 'disabled' | 'left'>('');
  const [role, setRole] = useState('');
  const [group, setGroup] = useState('');
  const [groups, setGroups] = useState<GroupOption[]>([]);
  const [search, setSearch] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [issued, setIssued] = useState<{ username: string; password: string } | null>(null);

  const params = new URLSearchParams();
  if (filter) params.set('status', filter);
  if (role) params.set('role', role);
  if (group) params.set('group', group);
  if (search.trim()) params.set('q', search.trim());
  const query = params.toString();
  const load = useCallback(async () => {
    try {
      const r = await api<{ accounts: AccountRow[]; total: number }>('GET', `/api/accounts?${query}`);
      setRows(r.accounts);
      setTotal(r.total);
    } catch (e) {
      setError(e);
    }
  }, [query]);
  useEffect(() => {
    void load();
  }, [load]);
  useEffect(() => {
    if (!account.permissions.includes('directory.read')) return;
    api<{ groups: GroupOption[] }>('GET', '/api/groups').then((r) => setGroups(r.groups), setError);
  }, [account]);

  const act = async (work: () => Promise<unknown>) => {
    setError(null);
    try {
      await work();
      await load();
    } catch (e) {
      setError(e);
    }
  };
  const temporary = (row: AccountRow) =>
    act(async () => {
      const r = await api<{ account: AccountRow; temporaryPassword: string }>('POST', `/api/accounts/${row.id}/temporary-password`);
      setIssued({ username: r.account.username, password: r.temporaryPassword });
    });
  const adminAccount = (row: AccountRow) =>
    act(async () => {
      const r = await api<{ account: AccountRow; temporaryPassword: string }>('POST', `/api/accounts/${row.id}/administrator-account`);
      setIssued({ username: r.account.username, password: r.temporaryPassword });
    });

  return (
    <section>
      <h1>Accounts</h1>
      <p className="muted">The directory of everyone who can sign in (AC-12): search, filter by role, group or state, and export to CSV.</p>
      <ErrorMessage error={error} />
      {issued ? <Issued issued={issued} onClose={() => setIssued(null)} /> : null}
      {canManage ? <NewAccount onCreated={(username, password) => { setIssued({ username, password }); void load(); }} /> : null}
      <div className="toolbar">
        <input aria-label="Search accounts" placeholder="Search by name, username, e-mail or MIS id" value={search} onChange={(e) => setSearch(e.target.value)} />
        <select aria-label="Role" value={role} onChange={(e) => setRole(e.target.value)}>
          <option value="">Every role</option>
          <option value="administrator">Administrator</option>
          {roles.map(([value, label]) => <option key={value} value={value}>{label}</option>)}
        </select>
        {groups.length > 0 ? (
          <select aria-label="Group" value={group} onChange={(e) => setGroup(e.target.value)}>
            <option value="">Every group</option>
            {groups.map((g) => <option key={g.id} value={g.id}>{g.name} ({g.kind})</option>)}
          </select>
        ) : null}
        <div className="segmented" role="group" aria-label="Show">
          {([['', 'All'], ['active', 'Active'], ['locked', 'Locked'], ['disabled', 'Disabled'], ['left', 'Left']] as const).map(([value, label]) => (
            <button key={value} type="button" className={filter === value ? 'active' : ''} aria-pressed={filter === value} onClick={() => setFilter(value)}>
              {label}
            </button>
          ))}
        </div>
      </div>
      <p className="muted small" data-testid="accounts-count">
        {total === rows.length ? `${total} ${total === 1 ? 'person' : 'people'}` : `Showing ${rows.length} of ${total} people — narrow the search to see the rest`}
        {account.permissions.includes('directory.read') ? (
          <>
            {' · '}
            <a href={`/api/directory/export.csv?${query}`} download>Export these to CSV</a>
          </>
        ) : null}
      </p>
      <table className="table" data-testid="accounts">
        <thead>
          <tr>
            <th>Name</th>
            <th>Username</th>
            <th>Role</th>
            <th>Groups</th>
            <th>State</th>
            <th aria-label="Actions" />
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr key={row.id} data-username={row.username}>
              <td>
                {row.displayName}
                {row.isBreakGlass ? <span className="tag tag-warn">master account</span> : null}
              </td>
              <td><code>{row.username}</code></td>
              <td>{roleName(row.role)}</td>
              <td className="small">
                {row.groups.map((g) => (g.role === 'teacher' ? `${g.name} (teaches)` : g.name)).join(', ')}
              </td>
              <td>
                {row.locked ? <span className="tag tag-bad">locked after {row.failedAttempts} failures</span> : null}
                {row.status === 'disabled' ? <span className="tag">disabled</span> : null}
                {row.status === 'left' ? <span className="tag">left</span> : null}
                {row.source === GUEST_POOL_SOURCE ? <span className="tag">guest pool</span> : row.source !== 'manual' ? <span className="tag" title={row.externalId ?? undefined}>from {row.source.toUpperCase()}</span> : null}
                {row.mustChangePassword ? <span className="tag">{row.temporaryExpiresAt ? 'temporary password' : 'must change password'}</span> : null}
                {row.mfaEnrolled ? <span className="tag tag-ok">MFA</span> : null}
              </td>
              <td className="actions">
                {row.locked && canUnlock ? <button type="button" className="button small" onClick={() => void act(() => api('POST', `/api/accounts/${row.id}/unlock`))} aria-label={`Unlock ${row.username}`}>Unlock</button> : null}
                {row.source === GUEST_POOL_SOURCE ? (
                  // Their passwords, state and visits are the guest desk's (the API refuses them here); a visitor's
                  // password that may have leaked is dealt with there too, by ending the visit.
                  <span className="muted small" data-testid="guest-desk-note">
                    Managed at the {canOpenGuestDesk ? <Link href="/guests">guest desk</Link> : 'guest desk'}
                  </span>
                ) : canManage && !row.isBreakGlass && row.id !== account.accountId && row.status !== 'left' ? (
                  <>
                    <button type="button" className="link-button" onClick={() => void temporary(row)} aria-label={`New temporary password for ${row.username}`}>Temporary password</button>
                    {row.role !== 'administrator' && row.status === 'active' ? (
                      <button type="button" className="link-button" onClick={() => void adminAccount(row)} aria-label={`Administrator account for ${row.username}`}>Admin account</button>
                    ) : null}
                    <button type="button" className="link-button" onClick={() => void act(() => api('PATCH', `/api/accounts/${row.id}`, { status: row.status === 'active' ? 'disabled' : 'active' }))}>
                      {row.status === 'active' ? 'Disable' : 'Enable'}
                    </button>
                    <button type="button" className="link-button" onClick={() => void act(() => api('POST', `/api/accounts/${row.id}/compromised`))} aria-label={`Report ${row.username} compromised`}>Compromised</button>
                  </>
                ) : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {rows.length === 0 ? <p className="muted">No accounts match.</p> : null}
    </section>
  );
}

function NewAccount({ onCreated }: { onCreated: (username: string, password: string) => void }) {
  const [open, setOpen] = useState(false);
  const [form, setForm] = useState({ username: '', displayName: '', email: '', role: 'staff' });
  const [error, setError] = useState<unknown>(null);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    try {
      const r = await api<{ account: AccountRow; temporaryPassword: string }>('POST', '/api/accounts', { ...form, email: form.email.trim() || null });
      onCreated(r.account.username, r.temporaryPassword);
      setForm({ username: '', displayName: '', email: '', role: 'staff' });
      setOpen(false);
    } catch (e) {
      setError(e);
    }
  };
  if (!open) return <button type="button" className="button" onClick={() => setOpen(true)}>New account</button>;
  return (
    <form className="card inline-form" onSubmit={submit} aria-label="New account">
      <ErrorMessage error={error} />
      <Field label="Full name">
        <input name="displayName" value={form.displayName} onChange={(e) => setForm({ ...form, displayName: e.target.value })} required />
      </Field>
      <Field label="Username">
        <input name="username" value={form.username} onChange={(e) => setForm({ ...form, username: e.target.value })} required />
      </Field>
      <Field label="E-mail">
        <input name="email" type="email" value={form.email} onChange={(e) => setForm({ ...form, email: e.target.value })} />
      </Field>
      <Field label="Role">
        <select name="role" value={form.role} onChange={(e) => setForm({ ...form, role: e.target.value })}>
          {roles.map(([value, label]) => <option key={value} value={value}>{label}</option>)}
        </select>
      </Field>
      <button type="submit" className="button">Create with a temporary password</button>
      <button type="button" className="link-button" onClick={() => setOpen(false)}>Cancel</button>
    </form>
  );
}
