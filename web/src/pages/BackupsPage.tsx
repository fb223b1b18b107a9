import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, type Account } from '../api';
import { ErrorMessage, Field, fieldErrors } from '../components';

interface Job { id: string; name: string; what: string; location: string; encrypted: boolean; intervalMinutes: number; graceMinutes: number; lastSuccessAt: string | null; dueBy: string; state: string }
interface RestoreTest { id: string; testedAt: string; result: string; testedBy: string; notes: string }
interface Plan { title: string; documentLink: string; reviewedAt: string; nextReviewAt: string }

const day = (iso: string | null) => (iso ? new Date(iso).toLocaleDateString('en-GB', { day: 'numeric', month: 'short', year: 'numeric' }) : '—');
const stateLabel: Record<string, string> = { ok: 'On schedule', missed: 'Missed', failing: 'Failed', waiting: 'Waiting for first check-in' };
const locationLabel: Record<string, string> = { on_site: 'On site', off_site: 'Off site', offline: 'Offline', cloud: 'Cloud' };

/** BK-01..05: backup jobs with their check-ins, test restores and the continuity plan. */
export function BackupsPage({ account }: { account: Account }) {
  const canManage = account.permissions.includes('backups.manage');
  const canRecord = account.permissions.includes('backups.record');
  const [data, setData] = useState<{ jobs: Job[]; restoreTests: RestoreTest[]; plan: Plan | null } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [issued, setIssued] = useState<string | null>(null);
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
      setIssued(r.checkinUrl);
      setForm({ ...form, name: '', what: '' });
      await load();
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
      {issued ? (
        <div className="card" role="status" data-testid="checkin-url">
          <p>Add this to the end of the backup script. It is shown only now:</p>
          <code>curl -fsS {issued}</code>
        </div>
      ) : null}
      {data && data.jobs.length === 0 ? <p className="empty">No backup job is registered yet.</p> : null}
      {data && data.jobs.length > 0 ? (
        <table className="table" data-testid="backup-jobs">
          <thead><tr><th>Job</th><th>What</th><th>Where</th><th>Encrypted</th><th>Every</th><th>Last success</th><th>State</th></tr></thead>
          <tbody>
            {data.jobs.map((j) => (
              <tr key={j.id} className={j.state === 'missed' || j.state === 'failing' ? 'overdue' : undefined}>
                <td>{j.name}</td><td>{j.what}</td><td>{locationLabel[j.location] ?? j.location}</td><td>{j.encrypted ? 'Yes' : 'No'}</td>
                <td>{Math.round(j.intervalMinutes / 60)} h</td><td>{day(j.lastSuccessAt)}</td><td>{stateLabel[j.state] ?? j.state}</td>
              </tr>
            ))}
          </tbody>
        </table>
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
      {data?.plan ? <p><a href={data.plan.documentLink} rel="noreferrer noopener">{data.plan.title}</a>, reviewed {day(data.plan.reviewedAt)}; next review {day(data.plan.nextReviewAt)}.</p> : <p className="empty">No plan recorded (BK-05).</p>}
    </section>
  );
}
