import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, type Account } from '../api';
import { ErrorMessage, Field } from '../components';

interface Group {
  id: string;
  name: string;
  kind: string;
  source: string;
  externalId: string | null;
  members: number;
  teachers: number;
}
interface Member {
  accountId: string;
  username: string;
  displayName: string;
  role: string;
  status: string;
  memberRole: string;
}

const kinds: Array<[string, string]> = [
  ['year', 'Year group'],
  ['class', 'Class'],
  ['department', 'Department'],
  ['other', 'Other'],
];
const kindName = (k: string) => kinds.find(([v]) => v === k)?.[1] ?? k;

/**
 * Year groups, classes and departments (AC-12). A class's teachers may reset its pupils' passwords
 * (AC-03); groups are also what the access-rights matrix and filtering policies are given to.
 */
export function GroupsPage({ account }: { account: Account }) {
  const canManage = account.permissions.includes('directory.manage');
  const [groups, setGroups] = useState<Group[]>([]);
  const [open, setOpen] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [form, setForm] = useState({ name: '', kind: 'class' });

  const load = useCallback(async () => {
    try {
      setGroups((await api<{ groups: Group[] }>('GET', '/api/groups')).groups);
    } catch (e) {
      setError(e);
    }
  }, []);
  useEffect(() => {
    void load();
  }, [load]);

  const create = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    try {
      const g = await api<Group>('POST', '/api/groups', form);
      setForm({ name: '', kind: form.kind });
      await load();
      setOpen(g.id);
    } catch (e) {
      setError(e);
    }
  };

  return (
    <section>
      <h1>Groups</h1>
      <p className="muted">Year groups, classes and departments. The teachers of a class can reset its pupils’ passwords under My pupils.</p>
      <ErrorMessage error={error} />
      {canManage ? (
        <form className="row-form" onSubmit={create} aria-label="New group">
          <input aria-label="Group name" placeholder="e.g. 7A or Year 7" value={form.name} onChange={(e) => setForm({ ...form, name: e.target.value })} required />
          <select aria-label="Kind" value={form.kind} onChange={(e) => setForm({ ...form, kind: e.target.value })}>
            {kinds.map(([v, l]) => <option key={v} value={v}>{l}</option>)}
          </select>
          <button type="submit" className="button">Add group</button>
        </form>
      ) : null}
      <table className="table" data-testid="groups">
        <thead>
          <tr><th>Group</th><th>Kind</th><th>Members</th><th>Teachers</th><th>From</th><th aria-label="Actions" /></tr>
        </thead>
        <tbody>
          {groups.map((g) => (
            <tr key={g.id} data-group={g.name}>
              <td>{g.name}</td>
              <td>{kindName(g.kind)}</td>
              <td>{g.members}</td>
              <td>{g.teachers}</td>
              <td className="small">{g.source === 'manual' ? 'entered here' : g.source.toUpperCase()}</td>
              <td className="actions">
                <button type="button" className="link-button" onClick={() => setOpen(open === g.id ? null : g.id)} aria-expanded={open === g.id}>
                  {open === g.id ? 'Close' : 'Members'}
                </button>
                {canManage ? (
                  <button type="button" className="link-button" onClick={async () => {
                    if (!window.confirm(`Delete the group ${g.name}? Its ${g.members + g.teachers} people stay in the directory.`)) return;
                    try { await api('DELETE', `/api/groups/${g.id}`); setOpen(null); await load(); } catch (e) { setError(e); }
                  }}>Delete</button>
                ) : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {groups.length === 0 ? <p className="muted">No groups yet. Add them here, or import them from the school’s MIS (Import).</p> : null}
      {open ? <Members groupId={open} canManage={canManage} onChanged={() => void load()} /> : null}
    </section>
  );
}

function Members({ groupId, canManage, onChanged }: { groupId: string; canManage: boolean; onChanged: () => void }) {
  const [data, setData] = useState<{ group: { name: string; kind: string }; members: Member[] } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [search, setSearch] = useState('');
  const [matches, setMatches] = useState<Array<{ id: string; username: string; displayName: string; role: string }>>([]);
  const [as, setAs] = useState('member');
  const load = useCallback(async () => {
    try {
      setData(await api('GET', `/api/groups/${groupId}/members`));
    } catch (e) {
      setError(e);
    }
  }, [groupId]);
  useEffect(() => {
    void load();
  }, [load]);
  useEffect(() => {
    if (search.trim().length < 2) {
      setMatches([]);
      return;
    }
    const timer = setTimeout(() => {
      api<{ accounts: Array<{ id: string; username: string; displayName: string; role: string }> }>('GET', `/api/accounts?status=active&limit=10&q=${encodeURIComponent(search.trim())}`).then((r) => setMatches(r.accounts), setError);
    }, 200);
    return () => clearTimeout(timer);
  }, [search]);
  const change = async (work: () => Promise<unknown>) => {
    setError(null);
    try {
      await work();
      await load();
      onChanged();
    } catch (e) {
      setError(e);
    }
  };
  if (!data) return <ErrorMessage error={error} />;
  return (
    <div className="card" data-testid="group-members">
      <h2>{data.group.name} <span className="muted small">{kindName(data.group.kind)}</span></h2>
      <ErrorMessage error={error} />
      {canManage ? (
        <div className="inline-form">
          <Field label="Add a person">
            <input value={search} onChange={(e) => setSearch(e.target.value)} placeholder="Name or username" autoComplete="off" />
          </Field>
          <Field label="As">
            <select value={as} onChange={(e) => setAs(e.target.value)}>
              <option value="member">Member (pupil or staff)</option>
              <option value="teacher">Teacher of this group</option>
            </select>
          </Field>
          {matches.length > 0 ? (
            <ul className="picker">
              {matches.map((m) => (
                <li key={m.id}>
                  <button type="button" className="link-button" onClick={() => void change(async () => { await api('PUT', `/api/groups/${groupId}/members/${m.id}`, { role: as }); setSearch(''); })}>
                    Add {m.displayName} ({m.username})
                  </button>
                </li>
              ))}
            </ul>
          ) : null}
        </div>
      ) : null}
      <table className="table">
        <thead><tr><th>Name</th><th>Username</th><th>In the group as</th><th aria-label="Actions" /></tr></thead>
        <tbody>
          {data.members.map((m) => (
            <tr key={m.accountId}>
              <td>{m.displayName}{m.status !== 'active' ? <span className="tag">{m.status}</span> : null}</td>
              <td><code>{m.username}</code></td>
              <td>{m.memberRole === 'teacher' ? 'Teacher' : 'Member'}</td>
              <td className="actions">
                {canManage ? <button type="button" className="link-button" onClick={() => void change(() => api('DELETE', `/api/groups/${groupId}/members/${m.accountId}`))}>Remove</button> : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {data.members.length === 0 ? <p className="muted">Nobody is in this group yet.</p> : null}
    </div>
  );
}
