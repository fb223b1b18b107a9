import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api } from '../api';
import { ErrorMessage, Field } from '../components';

interface ScimToken {
  id: string;
  name: string;
  defaultRole: string;
  roles: string[];
  allowPrivileged: boolean;
  adoptExisting: boolean;
  source: string;
  createdAt: string;
  createdBy: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

const roles: Array<[string, string]> = [
  ['pupil', 'Pupil'],
  ['staff', 'Staff'],
  ['senior_leader', 'Senior leader'],
  ['dsl', 'Designated safeguarding lead'],
  ['dpo', 'Data protection officer'],
  ['governor', 'Governor'],
  ['office', 'School office (reception)'],
  ['guest', 'Guest'],
];
/** Roles a token gives only with an explicit privileged grant (core/authz privilegedRoles). */
const privileged = new Set(['senior_leader', 'dsl', 'dpo', 'governor', 'office']);
const roleName = (r: string) => roles.find(([k]) => k === r)?.[1] ?? r;
const grantText = (t: ScimToken) => t.roles.map(roleName).join(', ');
const when = (iso: string | null) => (iso ? new Date(iso).toLocaleString('en-GB', { day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit' }) : '—');

/** The address Entra ID and Google call: this server's own, as the browser reached it. */
const scimBaseUrl = () => `${location.origin}/scim/v2`;

/** A new token, shown once (AC-12): with what to paste where in Entra ID. */
function NewToken({ made, onClose }: { made: { token: ScimToken; secret: string }; onClose: () => void }) {
  return (
    <div className="alert alert-info" role="status" data-testid="scim-secret">
      <p>
        <strong>Token for “{made.token.name}”</strong> — shown only now. Copy it into your identity provider and keep no other copy.
      </p>
      <p>
        Tenant URL (SCIM base URL): <code className="secret" data-testid="scim-url">{scimBaseUrl()}</code>
      </p>
      <p>
        Secret token: <code className="secret" data-testid="scim-token">{made.secret}</code>
      </p>
      <p className="small">
        <strong>Microsoft Entra ID:</strong> Enterprise applications → New application → Create your own application (“Integrate any other application
        you don’t find in the gallery”) → Provisioning → Provisioning Mode <em>Automatic</em>. Paste the Tenant URL and Secret token, choose Test
        Connection, then Save. Under Mappings, map <code>userName</code> to <code>mailNickname</code> (Gatehouse usernames cannot contain “@”), and assign
        the users and groups to provision. Set the provisioning status to On.
      </p>
      <p className="small">
        It may give and change <strong>{grantText(made.token)}</strong> only{made.token.adoptExisting ? ', and may take over existing accounts of those roles' : ', and only people it makes'}.
        People it creates are <strong>{roleName(made.token.defaultRole)}</strong> unless their <code>userType</code> names another of those roles (e.g. Student,
        Teacher). They have no password until you issue a temporary one. See docs/scim.md for Google Workspace and the full attribute mapping.
      </p>
      <button type="button" className="button small" onClick={onClose}>I have copied it</button>
    </div>
  );
}

/** Provisioning (AC-12): bearer tokens for SCIM clients such as Entra ID or Google. */
export function ScimPage() {
  const [tokens, setTokens] = useState<ScimToken[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [made, setMade] = useState<{ token: ScimToken; secret: string } | null>(null);
  const [form, setForm] = useState({ name: '', role: 'pupil', roles: ['pupil'], allowPrivileged: false, adoptExisting: false, source: '' });
  const grant = [...new Set([form.role, ...form.roles])];
  const privilegedChosen = grant.filter((r) => privileged.has(r));

  const load = useCallback(async () => {
    try {
      setTokens((await api<{ tokens: ScimToken[] }>('GET', '/api/scim/tokens')).tokens);
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
      setMade(
        await api<{ token: ScimToken; secret: string }>('POST', '/api/scim/tokens', {
          name: form.name,
          role: form.role,
          roles: grant,
          ...(privilegedChosen.length ? { allowPrivileged: form.allowPrivileged } : {}),
          ...(form.adoptExisting ? { adoptExisting: true } : {}),
          ...(form.source.trim() ? { source: form.source.trim() } : {}),
        }),
      );
      setForm({ ...form, name: '', allowPrivileged: false, adoptExisting: false, source: '' });
      await load();
    } catch (e) {
      setError(e);
    }
  };

  const revoke = async (token: ScimToken) => {
    if (!window.confirm(`Revoke the token “${token.name}”? ${token.name} stops provisioning at once, until you give it a new token.`)) return;
    setError(null);
    try {
      await api('DELETE', `/api/scim/tokens/${token.id}`);
      await load();
    } catch (e) {
      setError(e);
    }
  };

  const live = tokens?.filter((t) => !t.revokedAt) ?? [];
  return (
    <section>
      <h1>Provisioning</h1>
      <p className="muted">
        Microsoft Entra ID or Google Workspace can keep the directory up to date over SCIM 2.0: people joining, changing name, being disabled and
        leaving, and their groups. Each system that provisions needs a token of its own, and gives only the roles you grant it, to the people it made. Administrator accounts are never created or changed this way.
      </p>
      <ErrorMessage error={error} />
      {made ? <NewToken made={made} onClose={() => setMade(null)} /> : null}

      <form className="card inline-form" onSubmit={create} aria-label="New SCIM token">
        <Field label="Used by" hint="e.g. Entra ID. The audit trail names its changes scim:<this name>.">
          <input name="name" value={form.name} maxLength={100} onChange={(e) => setForm({ ...form, name: e.target.value })} required />
        </Field>
        <Field label="Role for new people" hint="When their userType names no role.">
          <select name="role" value={form.role} onChange={(e) => setForm({ ...form, role: e.target.value, roles: [...new Set([...form.roles, e.target.value])] })}>
            {roles.map(([value, label]) => <option key={value} value={value}>{label}</option>)}
          </select>
        </Field>
        <fieldset className="field" aria-label="Roles it may give">
          <legend className="field-label">Roles it may give and change</legend>
          {roles.map(([value, label]) => (
            <label key={value} className="checkbox">
              <input
                type="checkbox"
                checked={grant.includes(value)}
                disabled={value === form.role}
                onChange={(e) => setForm({ ...form, roles: e.target.checked ? [...form.roles, value] : form.roles.filter((r) => r !== value) })}
              />{' '}
              {label}
              {privileged.has(value) ? <span className="muted small"> (privileged)</span> : null}
            </label>
          ))}
        </fieldset>
        {privilegedChosen.length ? (
          <label className="checkbox">
            <input type="checkbox" checked={form.allowPrivileged} onChange={(e) => setForm({ ...form, allowPrivileged: e.target.checked })} /> Allow it to give privileged roles ({privilegedChosen.map(roleName).join(', ')}): recorded in the audit trail as a
            high-severity event
          </label>
        ) : null}
        <label className="checkbox">
          <input type="checkbox" checked={form.adoptExisting} onChange={(e) => setForm({ ...form, adoptExisting: e.target.checked })} /> Let it take over existing accounts of these roles (made by hand, imported, or by another
          token)
        </label>
        <Field label="Provisioning source" hint="Tokens with the same source share the people they made. Leave empty for a new source; give the old token’s source when replacing it.">
          <input name="source" value={form.source} maxLength={100} onChange={(e) => setForm({ ...form, source: e.target.value })} />
        </Field>
        <button type="submit" className="button">Make a token</button>
      </form>

      <h2>Tokens</h2>
      <table className="table" data-testid="scim-tokens">
        <thead>
          <tr>
            <th>Used by</th>
            <th>May give</th>
            <th>Role for new people</th>
            <th>Made</th>
            <th>Last used</th>
            <th>State</th>
            <th aria-label="Actions" />
          </tr>
        </thead>
        <tbody>
          {(tokens ?? []).map((t) => (
            <tr key={t.id} data-token={t.name}>
              <td>{t.name}</td>
              <td>
                {grantText(t)}
                {t.allowPrivileged ? <span className="tag">privileged</span> : null}
                {t.adoptExisting ? <span className="tag">adopts existing</span> : null}
                {t.source !== t.name ? <span className="muted small"> source {t.source}</span> : null}
              </td>
              <td>{roleName(t.defaultRole)}</td>
              <td>{when(t.createdAt)}{t.createdBy ? <span className="muted small"> by {t.createdBy}</span> : null}</td>
              <td>{t.lastUsedAt ? when(t.lastUsedAt) : <span className="muted">never</span>}</td>
              <td>{t.revokedAt ? <span className="tag">revoked {when(t.revokedAt)}</span> : <span className="tag tag-ok">in use</span>}</td>
              <td className="actions">
                {t.revokedAt ? null : (
                  <button type="button" className="link-button" onClick={() => void revoke(t)} aria-label={`Revoke ${t.name}`}>Revoke</button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {tokens && tokens.length === 0 ? <p className="muted">No tokens yet: nothing is provisioning people into Gatehouse.</p> : null}
      {tokens && tokens.length > 0 && live.length === 0 ? <p className="muted">Every token is revoked: nothing can provision people until you make a new one.</p> : null}
      <p className="small muted">SCIM base URL: <code>{scimBaseUrl()}</code></p>
    </section>
  );
}
