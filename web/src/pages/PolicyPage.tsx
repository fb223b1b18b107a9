import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, type AupVersion } from '../api';
import { ErrorMessage, Field } from '../components';

interface ProfileView {
  name: string;
  description: string | null;
  source: string | null;
  lineage: string[];
  terms: Array<{ name: string; starts: string; ends: string }>;
  groups: Record<string, Array<{ label: string; value: string }>>;
  warnings: Array<{ setting: string; groups: string[]; message: string; guidance: string }>;
}

const groupNames: Record<string, string> = { pupils: 'Pupils', staff: 'Staff', guests: 'Guests', administrators: 'Administrators' };

export function PolicyPage({ canManageAup }: { canManageAup: boolean }) {
  const [profile, setProfile] = useState<ProfileView | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    api<ProfileView>('GET', '/api/profile').then(setProfile, setError);
  }, []);
  if (!profile) return <ErrorMessage error={error} />;
  const groupKeys = Object.keys(profile.groups);
  const labels = profile.groups[groupKeys[0]!]!.map((r) => r.label);
  return (
    <section>
      <h1>Policy in force</h1>
      <p>
        <strong>{profile.name}</strong>
        {profile.lineage.length > 1 ? <span className="muted"> — builds on {profile.lineage.slice(0, -1).join(', ')}</span> : null}
      </p>
      {profile.source ? <p className="muted small">Source: {profile.source}</p> : null}
      {profile.warnings.length ? (
        <div className="warnings" data-testid="profile-warnings">
          <h2>Where this policy departs from national guidance</h2>
          {profile.warnings.map((w) => (
            <div key={w.setting + w.message} className="alert alert-warn">
              <strong>{w.setting}</strong> ({w.groups.map((g) => groupNames[g] ?? g).join(', ')}): {w.message}
              <div className="small muted">Guidance: {w.guidance}</div>
            </div>
          ))}
        </div>
      ) : (
        <div className="alert alert-ok">Every setting follows NCSC and NIST guidance.</div>
      )}
      <h2>Sign-in rules by group</h2>
      <table className="table" data-testid="profile-table">
        <thead>
          <tr>
            <th>Rule</th>
            {groupKeys.map((g) => <th key={g}>{groupNames[g] ?? g}</th>)}
          </tr>
        </thead>
        <tbody>
          {labels.map((label) => (
            <tr key={label}>
              <td>{label}</td>
              {groupKeys.map((g) => <td key={g}>{profile.groups[g]!.find((r) => r.label === label)?.value}</td>)}
            </tr>
          ))}
        </tbody>
      </table>
      {profile.terms.length ? (
        <p className="muted small">Term dates: {profile.terms.map((t) => `${t.name} from ${t.starts}`).join('; ')}.</p>
      ) : null}
      <AcceptableUse canManage={canManageAup} />
    </section>
  );
}

function AcceptableUse({ canManage }: { canManage: boolean }) {
  const [versions, setVersions] = useState<AupVersion[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [form, setForm] = useState({ audience: 'staff', title: 'Acceptable Use Policy', body: '' });
  const [published, setPublished] = useState(false);
  const load = useCallback(() => api<{ versions: AupVersion[] }>('GET', '/api/aup').then((r) => setVersions(r.versions), setError), []);
  useEffect(() => {
    void load();
  }, [load]);
  const publish = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    setPublished(false);
    try {
      await api('POST', '/api/aup', form);
      setPublished(true);
      setForm({ ...form, body: '' });
      await load();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <div className="card section-card">
      <h2>Acceptable Use Policy</h2>
      <ErrorMessage error={error} />
      <ul data-testid="aup-versions">
        {versions.length === 0 ? <li className="muted">No version published yet.</li> : null}
        {versions.map((v) => (
          <li key={v.id}>
            {groupNames[v.audience] ?? v.audience}: <strong>{v.title}</strong>, version {v.version}, published {new Date(v.publishedAt).toLocaleDateString('en-GB')}
          </li>
        ))}
      </ul>
      {canManage ? (
        <form onSubmit={publish} aria-label="Publish a new version">
          <h3>Publish a new version</h3>
          <p className="muted small">Everyone in the audience accepts the new version at their next sign-in, where the policy requires it.</p>
          {published ? <div className="alert alert-ok" role="status">Published.</div> : null}
          <Field label="Audience">
            <select name="audience" value={form.audience} onChange={(e) => setForm({ ...form, audience: e.target.value })}>
              {Object.entries(groupNames).map(([k, v]) => <option key={k} value={k}>{v}</option>)}
            </select>
          </Field>
          <Field label="Title">
            <input name="title" value={form.title} onChange={(e) => setForm({ ...form, title: e.target.value })} required />
          </Field>
          <Field label="Text">
            <textarea name="body" rows={8} value={form.body} onChange={(e) => setForm({ ...form, body: e.target.value })} required />
          </Field>
          <button type="submit" className="button">Publish</button>
        </form>
      ) : null}
    </div>
  );
}
