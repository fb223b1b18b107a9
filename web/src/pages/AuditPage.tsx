import { useCallback, useEffect, useState } from 'react';
import { api } from '../api';
import { ErrorMessage } from '../components';

interface AuditEvent {
  seq: number;
  at: string;
  actor: string;
  action: string;
  target: string | null;
  severity: string;
  details: Record<string, unknown>;
}
interface VerifyReport {
  ok: boolean;
  events: number;
  firstBrokenSeq: number | null;
  checkpoints: { checked: number; lastSeq: number | null };
  problems: Array<{ seq: number; message: string }>;
  seconds: number;
}

function summary(details: Record<string, unknown>): string {
  return Object.entries(details)
    .filter(([, v]) => v !== null && v !== undefined)
    .map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
    .join(' · ');
}

export function AuditPage() {
  const [events, setEvents] = useState<AuditEvent[]>([]);
  const [next, setNext] = useState<number | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [report, setReport] = useState<VerifyReport | null>(null);
  const [verifying, setVerifying] = useState(false);

  const load = useCallback(async (before?: number) => {
    try {
      const page = await api<{ events: AuditEvent[]; nextBefore: number | null }>('GET', `/api/audit/events?limit=50${before ? `&before=${before}` : ''}`);
      setEvents((old) => (before ? [...old, ...page.events] : page.events));
      setNext(page.nextBefore);
    } catch (e) {
      setError(e);
    }
  }, []);
  useEffect(() => {
    void load();
  }, [load]);

  const verify = async () => {
    setVerifying(true);
    setError(null);
    try {
      setReport(await api<VerifyReport>('POST', '/api/audit/verify'));
      await load();
    } catch (e) {
      setError(e);
    } finally {
      setVerifying(false);
    }
  };

  return (
    <section>
      <div className="section-head">
        <h1>Audit trail</h1>
        <button type="button" className="button" onClick={verify} disabled={verifying}>
          {verifying ? 'Checking…' : 'Verify the trail'}
        </button>
      </div>
      <p className="muted">Every change, sign-in and export, in order. Each entry is chained to the one before it, so an altered or removed entry shows.</p>
      <ErrorMessage error={error} />
      {report ? (
        report.ok ? (
          <div className="alert alert-ok" role="status" data-testid="verify-result">
            Intact: {report.events.toLocaleString('en-GB')} events checked, {report.checkpoints.checked} signed checkpoint
            {report.checkpoints.checked === 1 ? '' : 's'} verified.
          </div>
        ) : (
          <div className="alert alert-error" role="alert" data-testid="verify-result">
            Broken at event {report.firstBrokenSeq}: {report.problems[0]?.message}
          </div>
        )
      ) : null}
      <table className="table" data-testid="audit-events">
        <thead>
          <tr>
            <th>#</th>
            <th>When</th>
            <th>Who</th>
            <th>What</th>
            <th>Details</th>
          </tr>
        </thead>
        <tbody>
          {events.map((e) => (
            <tr key={e.seq} className={e.severity === 'high' ? 'severity-high' : undefined}>
              <td className="num">{e.seq}</td>
              <td className="nowrap">{new Date(e.at).toLocaleString('en-GB')}</td>
              <td>{e.actor}</td>
              <td>
                <code>{e.action}</code>
                {e.severity === 'high' ? <span className="tag tag-warn">high</span> : null}
              </td>
              <td className="details">{summary(e.details)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {next ? (
        <button type="button" className="button secondary" onClick={() => void load(next)}>
          Older events
        </button>
      ) : null}
    </section>
  );
}
