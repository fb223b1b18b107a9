import { useState, type FormEvent } from 'react';
import { api } from '../api';
import { ErrorMessage, Field } from '../components';
import { Link } from '../router';
import './ImportPage.css';

/** The import wizard (AC-12): kind → files → columns → dry run → import → result. */

type Kind = 'csv' | 'sds';
type Mapping = Partial<Record<string, string>>;

interface BadRow {
  file: string;
  line: number;
  reason: string;
}

interface Plan {
  source: Kind;
  files: string[];
  disableMissing: boolean;
  counts: Record<'rows' | 'created' | 'updated' | 'unchanged' | 'disabled' | 'held' | 'bad' | 'groupsCreated' | 'groupsRenamed' | 'membershipsAdded' | 'membershipsRemoved', number>;
  created: Array<{ file: string; line: number; username: string; displayName: string; role: string; status: string; groups: string[] }>;
  updated: Array<{ file: string; line: number; username: string; displayName: string; changes: Record<string, { from: string | null; to: string | null }>; groupsAdded: string[]; groupsRemoved: string[] }>;
  disabled: Array<{ username: string; displayName: string }>;
  held: Array<{ file: string; line: number; username: string; displayName: string; reason: string }>;
  groups: { created: Array<{ name: string; kind: string }>; renamed: Array<{ name: string; from: string }> };
  bad: BadRow[];
  notes: string[];
}

interface Preview {
  headers: Record<string, string[]>;
  guessedMapping: Mapping | null;
  mapping: Mapping | null;
  problem: string | null;
  plan: Plan | null;
}

const fields: Array<[string, string, string?]> = [
  ['username', 'Username', 'Required. What the person signs in with.'],
  ['givenName', 'First name'],
  ['familyName', 'Last name'],
  ['displayName', 'Display name', 'If there is none, first and last name are used.'],
  ['email', 'E-mail'],
  ['role', 'Role', 'Pupil, staff, teacher, student…; administrator is refused.'],
  ['externalId', 'External id', 'UPN, admission number or MIS id: how the same person is recognised next time.'],
  ['groups', 'Groups', 'Classes or forms, several separated by ; (e.g. 7A;Year 7).'],
  ['year', 'Year group', 'A number (7) becomes "Year 7".'],
  ['status', 'Status', 'active or disabled.'],
];

const roleChoices: Array<[string, string]> = [
  ['', '— from the file —'],
  ['pupil', 'Pupil'],
  ['staff', 'Staff'],
  ['senior_leader', 'Senior leader'],
  ['office', 'School office'],
  ['governor', 'Governor'],
  ['guest', 'Guest'],
];

const SDS_FILES = ['users.csv', 'roles.csv', 'classes.csv', 'enrollments.csv'];
const LIMIT_MB = 25;

const stepNames = ['Kind of file', 'Choose files', 'Match columns', 'Dry run', 'Done'];

export function ImportPage() {
  const [step, setStep] = useState(0);
  const [kind, setKind] = useState<Kind>('csv');
  const [files, setFiles] = useState<Record<string, string>>({});
  const [preview, setPreview] = useState<Preview | null>(null);
  const [mapping, setMapping] = useState<Mapping>({});
  const [defaultRole, setDefaultRole] = useState('');
  const [disableMissing, setDisableMissing] = useState(false);
  const [result, setResult] = useState<{ importId: string; plan: Plan } | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const body = (overrides: { mapping?: Mapping; disableMissing?: boolean } = {}) => ({
    kind,
    files,
    ...(kind === 'csv' ? { mapping: overrides.mapping ?? mapping, ...(defaultRole ? { defaultRole } : {}) } : {}),
    disableMissing: overrides.disableMissing ?? disableMissing,
  });

  const run = async <T,>(work: () => Promise<T>): Promise<T | undefined> => {
    setError(null);
    setBusy(true);
    try {
      return await work();
    } catch (e) {
      setError(e);
      return undefined;
    } finally {
      setBusy(false);
    }
  };

  const chooseFiles = async (list: FileList | null) => {
    if (!list || list.length === 0) return;
    setError(null);
    const chosen = [...list];
    const bytes = chosen.reduce((n, f) => n + f.size, 0);
    if (bytes > LIMIT_MB * 1024 * 1024) {
      setError(new Error(`These files are ${(bytes / 1024 / 1024).toFixed(1)} MB altogether; the console imports at most ${LIMIT_MB} MB at once. Split them, or use the gatehouse import command on the server.`));
      return;
    }
    const read: Record<string, string> = {};
    for (const f of chosen) read[f.name] = await f.text();
    setFiles(read);
  };

  const readFiles = async (event: FormEvent) => {
    event.preventDefault();
    if (kind === 'sds') {
      const names = Object.keys(files).map((n) => n.toLowerCase());
      const missing = ['users.csv', 'roles.csv'].filter((n) => !names.includes(n));
      if (missing.length) {
        setError(new Error(`School Data Sync needs ${missing.join(' and ')} (and classes.csv with enrollments.csv for classes).`));
        return;
      }
    }
    const p = await run(() => api<Preview>('POST', '/api/imports/preview', { kind, files, disableMissing }));
    if (!p) return;
    setPreview(p);
    if (kind === 'csv') {
      setMapping(p.mapping ?? {});
      setStep(2);
    } else {
      setStep(3);
    }
  };

  const dryRun = async (event?: FormEvent, options: { disableMissing?: boolean } = {}) => {
    event?.preventDefault();
    const p = await run(() => api<Preview>('POST', '/api/imports/preview', body(options)));
    if (!p) return;
    setPreview(p);
    if (p.plan) setStep(3);
  };

  const commit = async () => {
    const r = await run(() => api<{ importId: string; plan: Plan }>('POST', '/api/imports/commit', body()));
    if (!r) return;
    setResult(r);
    setStep(4);
  };

  const restart = () => {
    setStep(0);
    setFiles({});
    setPreview(null);
    setMapping({});
    setDefaultRole('');
    setDisableMissing(false);
    setResult(null);
    setError(null);
  };

  const headers = preview ? Object.values(preview.headers)[0] ?? [] : [];
  const plan = preview?.plan ?? null;

  return (
    <section>
      <h1>Import people</h1>
      <p className="muted">
        Bring pupils and staff in from your MIS export or from School Data Sync files. Nothing changes until you press Import: first you see what would happen,
        and every row that cannot be imported, with its line number. Imported people have no password until you issue them a temporary one.
      </p>
      <ol className="wizard-steps" aria-label="Steps">
        {stepNames.map((name, i) =>
          kind === 'sds' && i === 2 ? null : (
            <li key={name} className={i === step ? 'current' : i < step ? 'done' : ''} aria-current={i === step ? 'step' : undefined}>
              {name}
            </li>
          ),
        )}
      </ol>
      <ErrorMessage error={error} />

      {step === 0 ? (
        <form className="card" onSubmit={(e) => { e.preventDefault(); setStep(1); }} aria-label="Kind of file">
          <fieldset>
            <legend>What are you importing?</legend>
            <label className="check">
              <input type="radio" name="kind" value="csv" checked={kind === 'csv'} onChange={() => setKind('csv')} />
              <span>
                <strong>A CSV file</strong> in any layout, such as an export from SIMS, Arbor or Bromcom. You match its columns in the next steps.
              </span>
            </label>
            <label className="check">
              <input type="radio" name="kind" value="sds" checked={kind === 'sds'} onChange={() => setKind('sds')} />
              <span>
                <strong>Microsoft School Data Sync (v2.1)</strong> files: users.csv and roles.csv, with classes.csv and enrollments.csv to bring classes and their teachers.
              </span>
            </label>
          </fieldset>
          <button type="submit" className="button">Next</button>
        </form>
      ) : null}

      {step === 1 ? (
        <form className="card" onSubmit={readFiles} aria-label="Choose files">
          <Field label={kind === 'csv' ? 'CSV file' : 'School Data Sync files'} hint={kind === 'csv' ? 'One file, with a header row naming its columns.' : `Choose ${SDS_FILES.join(', ')} together (orgs.csv is not needed).`}>
            <input type="file" accept=".csv,text/csv" multiple={kind === 'sds'} onChange={(e) => void chooseFiles(e.target.files)} />
          </Field>
          {Object.keys(files).length ? <p className="small">Chosen: {Object.keys(files).join(', ')}</p> : null}
          <div className="row">
            <button type="button" className="link-button" onClick={() => setStep(0)}>Back</button>
            <button type="submit" className="button" disabled={busy || Object.keys(files).length === 0}>{busy ? 'Reading…' : 'Next'}</button>
          </div>
        </form>
      ) : null}

      {step === 2 && preview ? (
        <form className="card import-card" onSubmit={(e) => void dryRun(e)} aria-label="Match columns">
          <h2>Match the columns of {Object.keys(preview.headers)[0]}</h2>
          <p className="small muted">Gatehouse has guessed from the column names; check each one. Columns not chosen here are not imported.</p>
          {preview.problem && JSON.stringify(mapping) === JSON.stringify(preview.mapping ?? {}) ? <div className="alert alert-warn" role="status">{preview.problem}</div> : null}
          <div className="mapping-grid">
            {fields.map(([field, label, hint]) => (
              <Field key={field} label={label} hint={hint}>
                <select value={mapping[field] ?? ''} onChange={(e) => setMapping({ ...mapping, [field]: e.target.value || undefined })}>
                  <option value="">— not in this file —</option>
                  {headers.filter(Boolean).map((h) => <option key={h} value={h}>{h}</option>)}
                </select>
              </Field>
            ))}
            <Field label="Role of everyone without one" hint="Used when the file has no role column, or a row's role is empty.">
              <select value={defaultRole} onChange={(e) => setDefaultRole(e.target.value)}>
                {roleChoices.map(([value, label]) => <option key={value} value={value}>{label}</option>)}
              </select>
            </Field>
          </div>
          <div className="row">
            <button type="button" className="link-button" onClick={() => setStep(1)}>Back</button>
            <button type="submit" className="button" disabled={busy}>{busy ? 'Checking…' : 'Dry run'}</button>
          </div>
        </form>
      ) : null}

      {step === 3 && plan ? (
        <div data-testid="dry-run">
          <div className="card import-card">
            <h2>Dry run: nothing has been changed yet</h2>
            <p className="small muted">{plan.files.join(', ')} — {plan.counts.rows} rows read.</p>
            <Counts plan={plan} future />
            <label className="checkbox">
              <input
                type="checkbox"
                checked={disableMissing}
                onChange={(e) => {
                  setDisableMissing(e.target.checked);
                  void dryRun(undefined, { disableMissing: e.target.checked });
                }}
              />
              Disable people from earlier {plan.source === 'sds' ? 'School Data Sync' : 'CSV'} imports who are no longer in the file
            </label>
            {plan.notes.map((n) => <p key={n} className="small muted">{n}</p>)}
          </div>
          <BadRows bad={plan.bad} />
          <Changes plan={plan} future />
          <div className="row">
            <button type="button" className="link-button" onClick={() => setStep(kind === 'csv' ? 2 : 1)}>Back</button>
            <button type="button" className="button" onClick={() => void commit()} disabled={busy || plan.counts.created + plan.counts.updated + plan.counts.disabled + plan.counts.groupsCreated + plan.counts.groupsRenamed === 0}>
              {busy ? 'Importing…' : plan.counts.bad ? `Import (leaving out ${plan.counts.bad} bad row${plan.counts.bad === 1 ? '' : 's'})` : 'Import'}
            </button>
          </div>
        </div>
      ) : null}

      {step === 4 && result ? (
        <div data-testid="import-result">
          <div className="alert alert-ok" role="status">
            Imported: {result.plan.counts.created} created, {result.plan.counts.updated} updated, {result.plan.counts.disabled} disabled, {result.plan.counts.unchanged} unchanged.
            {result.plan.counts.bad ? ` ${result.plan.counts.bad} bad row${result.plan.counts.bad === 1 ? ' was' : 's were'} left out.` : ''}
          </div>
          <div className="card">
            <Counts plan={result.plan} />
            <p className="small">
              New people have no password yet: issue each a temporary password from <Link href="/accounts">Accounts</Link> when they need to sign in. The import is recorded in the{' '}
              <Link href="/audit">audit trail</Link>.
            </p>
          </div>
          <BadRows bad={result.plan.bad} />
          <Changes plan={result.plan} />
          <button type="button" className="button" onClick={restart}>Import another file</button>
        </div>
      ) : null}
    </section>
  );
}

function Counts({ plan, future = false }: { plan: Plan; future?: boolean }) {
  const c = plan.counts;
  const items: Array<[string, number, string]> = [
    [future ? 'To create' : 'Created', c.created, 'created'],
    [future ? 'To update' : 'Updated', c.updated, 'updated'],
    [future ? 'To disable' : 'Disabled', c.disabled, 'disabled'],
    ['Unchanged', c.unchanged, 'unchanged'],
    ['Held back', c.held, 'held'],
    ['Bad rows', c.bad, 'bad'],
  ];
  return (
    <>
      <dl className="import-counts" data-testid="counts">
        {items.map(([label, n, key]) => (
          <div key={key} className={key === 'bad' && n > 0 ? 'bad' : ''} data-count={key}>
            <dt>{label}</dt>
            <dd>{n.toLocaleString('en-GB')}</dd>
          </div>
        ))}
      </dl>
      <p className="small muted">
        Groups: {c.groupsCreated} {future ? 'to create' : 'created'}, {c.groupsRenamed} renamed. Memberships: {c.membershipsAdded} {future ? 'to add' : 'added'}, {c.membershipsRemoved} {future ? 'to remove' : 'removed'}.
      </p>
    </>
  );
}

function BadRows({ bad }: { bad: BadRow[] }) {
  if (bad.length === 0) return null;
  return (
    <div className="section-card">
      <h2>Rows that cannot be imported ({bad.length})</h2>
      <p className="small muted">These rows are left out; every other row is imported. Correct them in the file and import it again: rows already imported stay as they are.</p>
      <table className="table" data-testid="bad-rows">
        <thead>
          <tr>
            <th>File</th>
            <th>Line</th>
            <th>Reason</th>
          </tr>
        </thead>
        <tbody>
          {bad.map((b) => (
            <tr key={`${b.file}:${b.line}:${b.reason}`}>
              <td>{b.file}</td>
              <td className="num">{b.line}</td>
              <td>{b.reason}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

const fieldNames: Record<string, string> = { username: 'username', givenName: 'first name', familyName: 'last name', displayName: 'display name', email: 'e-mail', role: 'role', status: 'status', externalId: 'external id', source: 'managed by' };

function Changes({ plan, future = false }: { plan: Plan; future?: boolean }) {
  const more = (shown: number, total: number) => (total > shown ? <p className="small muted">…and {total - shown} more.</p> : null);
  return (
    <>
      {plan.created.length ? (
        <div className="section-card">
          <h2>{future ? 'To create' : 'Created'}</h2>
          <table className="table" data-testid="to-create">
            <thead>
              <tr>
                <th>Name</th>
                <th>Username</th>
                <th>Role</th>
                <th>Groups</th>
              </tr>
            </thead>
            <tbody>
              {plan.created.map((p) => (
                <tr key={p.username}>
                  <td>{p.displayName}</td>
                  <td><code>{p.username}</code></td>
                  <td>{p.role}</td>
                  <td>{p.groups.join(', ')}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {more(plan.created.length, plan.counts.created)}
        </div>
      ) : null}
      {plan.updated.length ? (
        <div className="section-card">
          <h2>{future ? 'To update' : 'Updated'}</h2>
          <table className="table">
            <thead>
              <tr>
                <th>Name</th>
                <th>Username</th>
                <th>Changes</th>
              </tr>
            </thead>
            <tbody>
              {plan.updated.map((u) => (
                <tr key={u.username}>
                  <td>{u.displayName}</td>
                  <td><code>{u.username}</code></td>
                  <td>
                    {[
                      ...Object.entries(u.changes).map(([f, v]) => `${fieldNames[f] ?? f}: ${v.from ?? '—'} → ${v.to ?? '—'}`),
                      ...(u.groupsAdded.length ? [`joins ${u.groupsAdded.join(', ')}`] : []),
                      ...(u.groupsRemoved.length ? [`leaves ${u.groupsRemoved.join(', ')}`] : []),
                    ].join('; ')}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {more(plan.updated.length, plan.counts.updated)}
        </div>
      ) : null}
      {plan.disabled.length ? (
        <div className="section-card">
          <h2>{future ? 'To disable' : 'Disabled'} (no longer in the file)</h2>
          <ul>
            {plan.disabled.map((d) => <li key={d.username}>{d.displayName} (<code>{d.username}</code>)</li>)}
          </ul>
          {more(plan.disabled.length, plan.counts.disabled)}
        </div>
      ) : null}
      {plan.held.length ? (
        <div className="section-card">
          <h2>Held back</h2>
          <ul>
            {plan.held.map((h) => <li key={h.username}>{h.displayName} (<code>{h.username}</code>, {h.file} line {h.line}): {h.reason}</li>)}
          </ul>
          {more(plan.held.length, plan.counts.held)}
        </div>
      ) : null}
    </>
  );
}
