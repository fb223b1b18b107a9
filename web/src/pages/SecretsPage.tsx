import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, type Account } from '../api';
import { ErrorMessage, Field } from '../components';
import { PersonSearch, type PersonChoice } from './PersonSearch';

interface Holder {
  id: string;
  username: string;
  displayName: string;
  status: string;
}

interface SharedSecret {
  id: string;
  name: string;
  kind: string;
  kindLabel: string;
  location: string;
  rotation: 'profile' | 'termly' | 'days';
  rotationDays: number | null;
  rotationLabel: string;
  lastRotatedAt: string | null;
  nextDueAt: string;
  overdue: boolean;
  dueSoon: boolean;
  flaggedAt: string | null;
  flagReason: string | null;
  notes: string | null;
  holders: Holder[];
  retiredAt: string | null;
}

interface Register {
  secrets: SharedSecret[];
  defaultRotation: { label: string; termsListed: boolean };
  /** the school's time zone: dates are shown as the school's calendar has them */
  timeZone: string;
}

const kinds: Array<[string, string]> = [
  ['wifi', 'Wi-Fi key'],
  ['master_password', 'Master password'],
  ['alarm_code', 'Alarm code'],
  ['admin_console', 'Administration console'],
  ['other', 'Other'],
];

const formatDate = (iso: string, timeZone: string | undefined) => new Date(iso).toLocaleDateString('en-GB', { day: 'numeric', month: 'short', year: 'numeric', timeZone });
const fieldNames = { name: 'the name', location: 'where it is kept', notes: 'the notes' } as const;

/**
 * The same narrow check the server makes (src/registers/shared-secrets.ts), so the warning shows
 * while typing: a labelled value ("code: 4821") or one long random-looking word.
 */
function looksLikeASecret(text: string): boolean {
  const m = /\b(password|passwd|pwd|passphrase|passcode|pin|psk|wpa2?|key|code|combination)\s*[:=]\s*(\S+)/i.exec(text);
  if (m) {
    const value = m[2]!;
    if (/\d/.test(value) || value.length >= 12 || (value.length >= 8 && /[a-z]/.test(value) && /[A-Z]/.test(value))) return true;
  }
  return text.split(/\s+/).some((w) => w.length >= 16 && !/[/\\@]|:\/\/|^www\./i.test(w) && /[a-z]/.test(w) && /[A-Z]/.test(w) && /\d/.test(w));
}

/** PW-12: the shared-secrets register — what each secret is for, where it is kept, who knows it, when it must change. */
export function SecretsPage({ account }: { account: Account }) {
  const canManage = account.permissions.includes('secrets.manage');
  const [register, setRegister] = useState<Register | null>(null);
  const [showRetired, setShowRetired] = useState(false);
  const [editing, setEditing] = useState<SharedSecret | 'new' | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [message, setMessage] = useState<string | null>(null);
  const date = (iso: string) => formatDate(iso, register?.timeZone);

  const load = useCallback(async () => {
    try {
      setRegister(await api<Register>('GET', `/api/secrets${showRetired ? '?includeRetired=true' : ''}`));
    } catch (e) {
      setError(e);
    }
  }, [showRetired]);
  useEffect(() => {
    void load();
  }, [load]);

  const act = async (work: () => Promise<string>) => {
    setError(null);
    setMessage(null);
    try {
      setMessage(await work());
      await load();
    } catch (e) {
      setError(e);
    }
  };
  const rotate = (s: SharedSecret) =>
    act(async () => {
      const r = await api<SharedSecret>('POST', `/api/secrets/${s.id}/rotation`);
      return `Recorded: “${r.name}” was changed today. Next due ${date(r.nextDueAt)}.`;
    });
  const retire = (s: SharedSecret) => {
    if (!window.confirm(`Retire “${s.name}”? Do this only when it is no longer in use (the alarm replaced, the console switched off). It leaves the register and the overview.`)) return;
    void act(async () => {
      await api('POST', `/api/secrets/${s.id}/retire`);
      return `“${s.name}” has been retired.`;
    });
  };

  return (
    <section>
      <h1>Shared secrets</h1>
      <div className="alert alert-info" data-testid="never-the-secret">
        Wi-Fi keys, master passwords, alarm codes and other secrets that several people know: where each is kept, who knows it and when it must next
        be changed. <strong>Never type a secret itself here</strong> — Gatehouse has no place for it. Change a secret at least{' '}
        {register ? register.defaultRotation.label.toLowerCase() : 'as often as the school’s policy says'}, and whenever someone who knew it leaves.
      </div>
      <ErrorMessage error={error} />
      {message ? <div className="alert alert-ok" role="status">{message}</div> : null}
      {canManage && editing ? (
        <SecretForm
          secret={editing === 'new' ? null : editing}
          defaults={register?.defaultRotation ?? { label: 'School default', termsListed: false }}
          onCancel={() => setEditing(null)}
          onSaved={(text) => {
            setEditing(null);
            setMessage(text);
            void load();
          }}
        />
      ) : null}
      <div className="toolbar">
        {canManage && !editing ? <button type="button" className="button" onClick={() => setEditing('new')}>Record a shared secret</button> : <span />}
        <label className="checkbox">
          <input type="checkbox" checked={showRetired} onChange={(e) => setShowRetired(e.target.checked)} /> Show retired secrets
        </label>
        <a className="button secondary" href={`/api/secrets/export.csv${showRetired ? '?includeRetired=true' : ''}`} download>Export CSV</a>
      </div>
      {register && register.secrets.length === 0 ? <p className="muted">No shared secrets are recorded yet.</p> : null}
      {register && register.secrets.length > 0 ? (
        <div className="matrix-wrap">
          <table className="table" data-testid="secrets">
            <thead>
              <tr>
                <th>Name</th>
                <th>Where it is kept</th>
                <th>Known by</th>
                <th>Rotation</th>
                <th>Last changed</th>
                <th>Next due</th>
                <th aria-label="Actions" />
              </tr>
            </thead>
            <tbody>
              {register.secrets.map((s) => (
                <tr key={s.id} data-name={s.name} className={s.overdue || s.flagReason ? 'severity-high' : undefined}>
                  <td>
                    <strong>{s.name}</strong>
                    <div className="small muted">{s.kindLabel}</div>
                    {s.flagReason ? (
                      <div className="small" data-testid="flag">
                        <span className="tag tag-bad">change now</span> {s.flagReason}
                      </div>
                    ) : null}
                    {s.notes ? <div className="small muted">{s.notes}</div> : null}
                  </td>
                  <td>{s.location}</td>
                  <td>
                    {s.holders.length === 0 ? <span className="muted">nobody recorded</span> : null}
                    {s.holders.map((h) => (
                      <div key={h.id}>
                        {h.displayName}
                        {h.status !== 'active' ? <span className="tag tag-warn">{h.status}</span> : null}
                      </div>
                    ))}
                  </td>
                  <td>{s.rotationLabel}</td>
                  <td className="nowrap">{s.lastRotatedAt ? date(s.lastRotatedAt) : <span className="muted">not known</span>}</td>
                  <td className="nowrap">
                    {s.retiredAt ? (
                      <span className="tag">retired {date(s.retiredAt)}</span>
                    ) : (
                      <>
                        {date(s.nextDueAt)}
                        {s.overdue ? <span className="tag tag-bad">overdue</span> : s.dueSoon ? <span className="tag tag-warn">due soon</span> : null}
                      </>
                    )}
                  </td>
                  <td className="secret-actions">
                    {canManage && !s.retiredAt ? (
                      <>
                        <button type="button" className="button small nowrap" onClick={() => void rotate(s)} aria-label={`Record rotation of ${s.name}`}>
                          Record rotation
                        </button>
                        <div className="small">
                          <button type="button" className="link-button" onClick={() => setEditing(s)} aria-label={`Edit ${s.name}`}>Edit</button>
                          {' · '}
                          <button type="button" className="link-button" onClick={() => retire(s)} aria-label={`Retire ${s.name}`}>Retire</button>
                        </div>
                      </>
                    ) : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      {canManage ? (
        <p className="small muted">
          “Record rotation” means the secret has been changed today (and the new one given only to the people who need it). Holders who have left are
          taken off the list, as they do not know the new one.
        </p>
      ) : null}
    </section>
  );
}

function SecretForm(props: { secret: SharedSecret | null; defaults: Register['defaultRotation']; onCancel: () => void; onSaved: (message: string) => void }) {
  const s = props.secret;
  const [form, setForm] = useState({
    name: s?.name ?? '',
    kind: s?.kind ?? 'wifi',
    location: s?.location ?? '',
    rotation: s?.rotation ?? 'profile',
    rotationDays: s?.rotationDays ? String(s.rotationDays) : '',
    lastRotatedOn: '',
    notes: s?.notes ?? '',
  });
  const [holders, setHolders] = useState<Array<Pick<PersonChoice, 'id' | 'displayName' | 'username'> & { status?: string }>>(s?.holders ?? []);
  const [error, setError] = useState<unknown>(null);
  const [saving, setSaving] = useState(false);
  const suspicious = (['name', 'location', 'notes'] as const).filter((k) => looksLikeASecret(form[k]));

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    setSaving(true);
    const rotation = { rotation: form.rotation, rotationDays: form.rotation === 'days' ? Number(form.rotationDays) || null : null };
    try {
      if (s) {
        await api('PATCH', `/api/secrets/${s.id}`, { name: form.name, kind: form.kind, location: form.location, notes: form.notes.trim() || null, ...rotation });
        await api('PUT', `/api/secrets/${s.id}/holders`, { accountIds: holders.map((h) => h.id) });
        props.onSaved(`“${form.name}” has been updated.`);
      } else {
        await api('POST', '/api/secrets', {
          name: form.name,
          kind: form.kind,
          location: form.location,
          notes: form.notes.trim() || null,
          lastRotatedOn: form.lastRotatedOn || null,
          holders: holders.map((h) => h.id),
          ...rotation,
        });
        props.onSaved(`“${form.name}” has been recorded.`);
      }
    } catch (e) {
      setError(e);
    } finally {
      setSaving(false);
    }
  };

  return (
    <form className="card" onSubmit={submit} aria-label={s ? `Edit ${s.name}` : 'Record a shared secret'}>
      <h2>{s ? `Edit “${s.name}”` : 'Record a shared secret'}</h2>
      <p className="small muted">Describe the secret and where it is kept. Do not type the secret itself: there is nowhere to keep it, and it would be refused.</p>
      <ErrorMessage error={error} />
      <div className="grid">
        <div>
          <Field label="Name" hint="What it unlocks, e.g. “Staff Wi-Fi” or “Intruder alarm”">
            <input value={form.name} onChange={(e) => setForm({ ...form, name: e.target.value })} required maxLength={200} />
          </Field>
          <Field label="Kind">
            <select value={form.kind} onChange={(e) => setForm({ ...form, kind: e.target.value })}>
              {kinds.map(([value, label]) => <option key={value} value={value}>{label}</option>)}
            </select>
          </Field>
          <Field label="Where it is kept" hint="e.g. “sealed envelope in the head’s safe”, “password manager, IT vault”">
            <input value={form.location} onChange={(e) => setForm({ ...form, location: e.target.value })} required maxLength={500} />
          </Field>
          <Field label="How often it is changed">
            <select value={form.rotation} onChange={(e) => setForm({ ...form, rotation: e.target.value as SharedSecret['rotation'] })}>
              <option value="profile">School default ({props.defaults.label.toLowerCase()})</option>
              {props.defaults.termsListed ? <option value="termly">Termly</option> : null}
              <option value="days">Every so many days</option>
            </select>
          </Field>
          {form.rotation === 'days' ? (
            <Field label="Days between changes">
              <input type="number" min={1} max={3650} value={form.rotationDays} onChange={(e) => setForm({ ...form, rotationDays: e.target.value })} required />
            </Field>
          ) : null}
          {!s ? (
            <Field label="Last changed (optional)" hint="Leave empty if nobody knows: it will be due for a change now.">
              <input type="date" value={form.lastRotatedOn} onChange={(e) => setForm({ ...form, lastRotatedOn: e.target.value })} />
            </Field>
          ) : null}
        </div>
        <div>
          <div className="field">
            <span className="field-label">Who knows it</span>
            {holders.length === 0 ? <p className="small muted">Nobody yet.</p> : null}
            <ul className="picker" aria-label="Holders">
              {holders.map((h) => (
                <li key={h.id}>
                  {h.displayName} <span className="muted small">({h.username})</span>
                  {h.status === 'left' ? <span className="tag tag-warn" title="Taken off when the change is recorded">left</span> : null}{' '}
                  <button type="button" className="link-button" onClick={() => setHolders(holders.filter((x) => x.id !== h.id))} aria-label={`Remove ${h.displayName}`}>
                    remove
                  </button>
                </li>
              ))}
            </ul>
            <PersonSearch label="Add a holder" actionLabel="Add" exclude={holders.map((h) => h.id)} onPick={(p) => setHolders([...holders, p])} />
          </div>
          <Field label="Notes (optional)" hint="e.g. who to ask, how it is changed. Never the secret.">
            <textarea rows={3} value={form.notes} onChange={(e) => setForm({ ...form, notes: e.target.value })} maxLength={2000} />
          </Field>
        </div>
      </div>
      {suspicious.length > 0 ? (
        <div className="alert alert-warn" role="alert" data-testid="secret-warning">
          What you typed in {suspicious.map((k) => fieldNames[k]).join(' and ')} looks like the secret itself. The register records only where a secret is
          kept and who knows it: please take the secret out.
        </div>
      ) : null}
      <div className="row">
        <button type="submit" className="button" disabled={saving}>{s ? 'Save changes' : 'Record it'}</button>
        <button type="button" className="link-button" onClick={props.onCancel}>Cancel</button>
      </div>
    </form>
  );
}
