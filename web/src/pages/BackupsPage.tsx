import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, ApiError, type Account } from '../api';
import { ErrorMessage, Field, fieldErrors } from '../components';

interface Job { id: string; name: string; what: string; location: string; encrypted: boolean; intervalMinutes: number; graceMinutes: number; lastSuccessAt: string | null; dueBy: string; state: string; system: string | null }
interface RestoreTest { id: string; testedAt: string; result: string; testedBy: string; notes: string }
interface Plan { id: string; title: string; documentLink: string | null; ransomwareResponse: string; contacts: string; reviewedAt: string; nextReviewAt: string; recordedBy: string; changeNote: string | null }
interface Issued { name: string; checkinUrl: string }
const emptyPlan = { title: 'Business continuity and disaster recovery plan', documentLink: '', ransomwareResponse: '', contacts: '', nextReviewAt: '', changeNote: '' };

/** The per-line problems of a refused CSV import, if the server listed them. */
function importProblems(error: unknown): Array<{ line: number; column: string | null; message: string }> {
  if (!(error instanceof ApiError)) return [];
  const details = (error.body as unknown as { details?: { errors?: Array<{ line: number; column: string | null; message: string }> } }).details;
  return details?.errors ?? [];
}

const day = (iso: string | null) => (iso ? new Date(iso).toLocaleDateString('en-GB', { day: 'numeric', month: 'short', year: 'numeric' }) : '—');
const stateLabel: Record<string, string> = { ok: 'On schedule', missed: 'Missed', failing: 'Failed', waiting: 'Waiting for first check-in' };
const locationLabel: Record<string, string> = { on_site: 'On site', off_site: 'Off site', offline: 'Offline', cloud: 'Cloud' };

/** BK-01..05: backup jobs with their check-ins, test restores and the continuity plan. */
export function BackupsPage({ account }: { account: Account }) {
  const canManage = account.permissions.includes('backups.manage');
  const canRecord = account.permissions.includes('backups.record');
  const [data, setData] = useState<{ jobs: Job[]; restoreTests: RestoreTest[]; plan: Plan | null } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [issued, setIssued] = useState<Issued[]>([]);
  const [plan, setPlan] = useState(emptyPlan);
  const [editingPlan, setEditingPlan] = useState(false);
  const [history, setHistory] = useState<Plan[] | null>(null);
  const [importError, setImportError] = useState<unknown>(null);
  const [form, setForm] = useState({ name: '', what: '', location: 'off_site', encrypted: true, intervalMinutes: '1440', graceMinutes: '120' });
  const [restore, setRestore] = useState({ result: 'pass', notes: '' });
  const load = useCallback(async () => {
    try {
      setData(await api('GET', '/api/backups'));
    } catch (e) {
      setError(e);
    }
  }, []);
  useEffect(() => void load(), [load]);
  const errors = fieldErrors(error);

  async function addJob(event: FormEvent) {
    event.preventDefault();
    setError(null);
    try {
      const r = await api<{ checkinUrl: string }>('POST', '/api/backups', { ...form, intervalMinutes: Number(form.intervalMinutes), graceMinutes: Number(form.graceMinutes) });
      setIssued([{ name: form.name, checkinUrl: r.checkinUrl }]);
      setForm({ ...form, name: '', what: '' });
      await load();
    } catch (e) {
      setError(e);
    }
  }
  async function importCsv(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setImportError(null);
    const file = (event.currentTarget.elements.namedItem('csv') as HTMLInputElement).files?.[0];
    if (!file) {
      setImportError(new Error('Choose a CSV file first.'));
      return;
    }
    try {
      const r = await api<{ imported: number; jobs: Array<{ job: Job; checkinUrl: string }> }>('POST', '/api/backups/import', { csv: await file.text() });
      setIssued(r.jobs.map((j) => ({ name: j.job.name, checkinUrl: j.checkinUrl })));
      await load();
    } catch (e) {
      setImportError(e);
    }
  }
  function editPlan() {
    const p = data?.plan;
    setPlan(p ? { title: p.title, documentLink: p.documentLink ?? '', ransomwareResponse: p.ransomwareResponse, contacts: p.contacts, nextReviewAt: p.nextReviewAt.slice(0, 10), changeNote: '' } : emptyPlan);
    setEditingPlan(true);
  }
  async function savePlan(event: FormEvent) {
    event.preventDefault();
    setError(null);
    try {
      await api('PUT', '/api/backups/plan', { ...plan, documentLink: plan.documentLink.trim() || null, changeNote: plan.changeNote.trim() || null });
      setEditingPlan(false);
      setHistory(null);
      await load();
    } catch (e) {
      setError(e);
    }
  }
  async function showHistory() {
    try {
      setHistory((await api<{ versions: Plan[] }>('GET', '/api/backups/plan/history')).versions);
    } catch (e) {
      setError(e);
    }
  }
  async function addRestore(event: FormEvent) {
    event.preventDefault();
    setError(null);
    try {
      await api('POST', '/api/backups/restore-tests', restore);
      setRestore({ result: 'pass', notes: '' });
      await load();
    } catch (e) {
      setError(e);
    }
  }

  return (
    <section>
      <h1>Backups</h1>
      <ErrorMessage error={error} inline={(f) => f in errors} />
      {issued.length === 1 ? (
        <div className="card" role="status" data-testid="checkin-url">
          <p>Add this to the end of the backup script. It is shown only now:</p>
          <code>curl -fsS {issued[0]!.checkinUrl}</code>
        </div>
      ) : null}
      {issued.length > 1 ? (
        <div className="card" role="status" data-testid="checkin-urls">
          <p>Imported {issued.length} jobs. Add each check-in to the end of its backup script. They are shown only now:</p>
          <ul>{issued.map((i) => <li key={i.name}>{i.name}: <code>curl -fsS {i.checkinUrl}</code></li>)}</ul>
        </div>
      ) : null}
      {data && data.jobs.length === 0 ? <p className="empty">No backup job is registered yet.</p> : null}
      {data && data.jobs.length > 0 ? (
        <table className="table" data-testid="backup-jobs">
          <thead><tr><th>Job</th><th>What</th><th>Where</th><th>Encrypted</th><th>Every</th><th>Last success</th><th>State</th></tr></thead>
          <tbody>
            {data.jobs.map((j) => (
              <tr key={j.id} className={j.state === 'missed' || j.state === 'failing' ? 'overdue' : undefined}>
                <td>{j.name}{j.system ? <div className="small muted">built in: the server backs itself up</div> : null}</td><td>{j.what}</td><td>{locationLabel[j.location] ?? j.location}</td><td>{j.encrypted ? 'Yes' : 'No'}</td>
                <td>{Math.round(j.intervalMinutes / 60)} h</td><td>{day(j.lastSuccessAt)}</td><td>{stateLabel[j.state] ?? j.state}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <p><a className="button secondary" href="/api/backups/export.csv" download>Export as CSV</a></p>
      {canManage ? (
        <form className="card" onSubmit={importCsv} aria-label="Import backup jobs">
          <h2>Import backup jobs from CSV</h2>
          <p className="small muted">Columns: name, what, location (on_site, off_site, offline, cloud), encrypted (yes or no), interval_minutes, grace_minutes — as in the export. Every row is checked first: one problem and nothing is imported.</p>
          <input type="file" name="csv" accept=".csv,text/csv" aria-label="CSV file" />
          <p><button type="submit" className="button">Import</button></p>
          {importError ? (
            <div className="alert alert-error" role="alert" data-testid="import-problems">
              {importProblems(importError).length > 0 ? (
                <ul>{importProblems(importError).map((p, i) => <li key={i}>line {p.line}{p.column ? `, ${p.column}` : ''}: {p.message}</li>)}</ul>
              ) : importError instanceof Error ? importError.message : String(importError)}
            </div>
          ) : null}
        </form>
      ) : null}
      {canManage ? (
        <form className="card" onSubmit={addJob} aria-label="Add a backup job">
          <h2>Add a backup job</h2>
          <Field label="Name" error={errors.name}><input value={form.name} onChange={(e) => setForm({ ...form, name: e.target.value })} /></Field>
          <Field label="What is backed up" error={errors.what}><input value={form.what} onChange={(e) => setForm({ ...form, what: e.target.value })} /></Field>
          <Field label="Where the copies are" error={errors.location}>
            <select value={form.location} onChange={(e) => setForm({ ...form, location: e.target.value })}>
              {Object.entries(locationLabel).map(([v, l]) => <option key={v} value={v}>{l}</option>)}
            </select>
          </Field>
          <Field label="Runs every (minutes)" error={errors.intervalMinutes}><input inputMode="numeric" value={form.intervalMinutes} onChange={(e) => setForm({ ...form, intervalMinutes: e.target.value })} /></Field>
          <Field label="Grace (minutes)" error={errors.graceMinutes}><input inputMode="numeric" value={form.graceMinutes} onChange={(e) => setForm({ ...form, graceMinutes: e.target.value })} /></Field>
          <label className="checkbox"><input type="checkbox" checked={form.encrypted} onChange={(e) => setForm({ ...form, encrypted: e.target.checked })} /> The copies are encrypted</label>
          <p><button type="submit" className="button">Add job</button></p>
        </form>
      ) : null}
      <h2>Test restores</h2>
      {data && data.restoreTests.length === 0 ? <p className="empty">No test restore is recorded. One is due at least every year (BK-03).</p> : null}
      <ul>{data?.restoreTests.map((r) => <li key={r.id}>{day(r.testedAt)}: {r.result} — {r.notes} ({r.testedBy})</li>)}</ul>
      {canRecord ? (
        <form className="card" onSubmit={addRestore} aria-label="Record a test restore">
          <Field label="Result" error={errors.result}>
            <select value={restore.result} onChange={(e) => setRestore({ ...restore, result: e.target.value })}><option value="pass">Passed</option><option value="partial">Partly</option><option value="fail">Failed</option></select>
          </Field>
          <Field label="What was restored and how it went" error={errors.notes}><textarea value={restore.notes} onChange={(e) => setRestore({ ...restore, notes: e.target.value })} /></Field>
          <p><button type="submit" className="button">Record test restore</button></p>
        </form>
      ) : null}
      <h2>Continuity and disaster recovery plan</h2>
      {data?.plan ? (
        <div className="card" data-testid="continuity-plan">
          <h3>{data.plan.documentLink ? <a href={data.plan.documentLink} rel="noreferrer noopener">{data.plan.title}</a> : data.plan.title}</h3>
          <p className="small muted">Reviewed {day(data.plan.reviewedAt)} by {data.plan.recordedBy}; next review {day(data.plan.nextReviewAt)}.</p>
          <h4>Response to ransomware</h4>
          <p style={{ whiteSpace: 'pre-wrap' }}>{data.plan.ransomwareResponse}</p>
          <h4>Who to call</h4>
          <p style={{ whiteSpace: 'pre-wrap' }}>{data.plan.contacts || '—'}</p>
        </div>
      ) : <p className="empty">No plan recorded (BK-05).</p>}
      <p>
        {canRecord && !editingPlan ? <button type="button" className="button" onClick={editPlan}>{data?.plan ? 'Review the plan' : 'Write the plan'}</button> : null}{' '}
        {data?.plan ? <button type="button" className="button secondary" onClick={() => void showHistory()}>Earlier versions</button> : null}
      </p>
      {canRecord && editingPlan ? (
        <form className="card" onSubmit={savePlan} aria-label="Continuity plan">
          <Field label="Title" error={errors.title}><input value={plan.title} onChange={(e) => setPlan({ ...plan, title: e.target.value })} /></Field>
          <Field label="Response to ransomware (who does what, in which order)" error={errors.ransomwareResponse}><textarea rows={6} value={plan.ransomwareResponse} onChange={(e) => setPlan({ ...plan, ransomwareResponse: e.target.value })} /></Field>
          <Field label="Who to call (one a line)" error={errors.contacts}><textarea rows={4} value={plan.contacts} onChange={(e) => setPlan({ ...plan, contacts: e.target.value })} /></Field>
          <Field label="Link to the full plan (optional)" error={errors.documentLink}><input value={plan.documentLink} onChange={(e) => setPlan({ ...plan, documentLink: e.target.value })} placeholder="https://" /></Field>
          <Field label="Next review" error={errors.nextReviewAt}><input type="date" value={plan.nextReviewAt} onChange={(e) => setPlan({ ...plan, nextReviewAt: e.target.value })} /></Field>
          <Field label="What changed (optional)" error={errors.changeNote}><input value={plan.changeNote} onChange={(e) => setPlan({ ...plan, changeNote: e.target.value })} /></Field>
          <p><button type="submit" className="button">Save this version</button> <button type="button" className="button secondary" onClick={() => setEditingPlan(false)}>Cancel</button></p>
        </form>
      ) : null}
      {history ? (
        <table className="table" data-testid="plan-history">
          <thead><tr><th>Reviewed</th><th>By</th><th>What changed</th><th>Next review</th><th>Who to call</th></tr></thead>
          <tbody>{history.map((v) => <tr key={v.id}><td>{day(v.reviewedAt)}</td><td>{v.recordedBy}</td><td>{v.changeNote ?? '—'}</td><td>{day(v.nextReviewAt)}</td><td style={{ whiteSpace: 'pre-wrap' }}>{v.contacts || '—'}</td></tr>)}</tbody>
        </table>
      ) : null}
    </section>
  );
}
