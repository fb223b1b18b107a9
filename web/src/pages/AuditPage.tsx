import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api } from '../api';
import { ErrorMessage } from '../components';
import './AuditPage.css';

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
  external: { fingerprints: number; summary: string };
  problems: Array<{ seq: number; message: string }>;
  seconds: number;
}
/** A signed checkpoint and its fingerprint, as printed for the governors. */
interface Fingerprint {
  seq: number;
  hash: string;
  at: string;
  keyId: string;
  note: string;
  school: string | null;
  fingerprint: { text: string; grouped: string };
}

/**
 * The governors' fingerprint: printed here (a sheet the governor keeps), e-mailed to the headteacher
 * and the responsible governor, and checked later against the trail. Evidence kept off the server,
 * so a rewrite by someone holding the server and its keys shows (docs/audit.md).
 */
function FingerprintSection({ onChecked }: { onChecked: (report: VerifyReport) => void }) {
  const [sheet, setSheet] = useState<Fingerprint | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [mailed, setMailed] = useState<string | null>(null);
  const [written, setWritten] = useState('');

  const run = async (work: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await work();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const print = () =>
    run(async () => {
      setSheet(await api<Fingerprint>('POST', '/api/audit/fingerprint'));
      // Let the sheet render before the print dialog opens.
      setTimeout(() => window.print(), 50);
    });
  const email = () =>
    run(async () => {
      const r = await api<{ sent: string[]; failed: Array<{ to: string; error: string }> }>('POST', '/api/audit/fingerprint/email');
      setMailed(
        [r.sent.length ? `Sent to ${r.sent.join(' and ')}.` : '', ...r.failed.map((f) => `Not sent to ${f.to}: ${f.error}.`)].filter(Boolean).join(' '),
      );
    });
  const check = (event: FormEvent) => {
    event.preventDefault();
    void run(async () => onChecked(await api<VerifyReport>('POST', '/api/audit/verify', { heads: [written] })));
  };

  return (
    <div className="card fingerprint-card" data-testid="fingerprint-section">
      <h2>Fingerprint for the governors</h2>
      <p className="muted">
        A fingerprint is the trail’s event count and the start of its newest hash, signed now. Whoever keeps one (on paper, or the
        e-mail sent to the headteacher and the responsible governor) can later check that nobody rewrote the trail up to that point —
        not even someone in control of this server.
      </p>
      <div className="actions-row">
        <button type="button" className="button" onClick={() => void print()} disabled={busy} data-testid="print-fingerprint">
          Print the trail’s fingerprint
        </button>
        <button type="button" className="button secondary" onClick={() => void email()} disabled={busy}>
          E-mail it to the headteacher and governor now
        </button>
      </div>
      {mailed ? <p role="status">{mailed}</p> : null}
      <form className="fingerprint-check" onSubmit={check}>
        <label htmlFor="fingerprint-written">Check a fingerprint written down earlier</label>
        <input id="fingerprint-written" value={written} onChange={(e) => setWritten(e.target.value)} placeholder="1234:9f3a 1c0b 77de 42a0" />
        <button type="submit" className="button secondary" disabled={busy || written.trim() === ''}>
          Check
        </button>
      </form>
      <ErrorMessage error={error} />
      {sheet ? (
        <div className="fingerprint-sheet" data-testid="fingerprint-sheet">
          <h2>{sheet.school ?? 'Gatehouse'}: audit trail fingerprint</h2>
          <dl>
            <dt>Event</dt>
            <dd data-testid="fingerprint-seq">{sheet.seq.toLocaleString('en-GB')}</dd>
            <dt>Fingerprint</dt>
            <dd className="fingerprint-hex" data-testid="fingerprint-grouped">{sheet.fingerprint.grouped}</dd>
            <dt>Signed</dt>
            <dd>{new Date(sheet.at).toLocaleString('en-GB')} (key {sheet.keyId})</dd>
          </dl>
          <p>
            Keep this sheet with the governors’ papers. To check the trail against it later, the person checking runs{' '}
            <code>gatehouse audit verify --head "{sheet.fingerprint.text}"</code>, or types the two lines above into the Audit page. If
            it does not match, the trail has been altered since this sheet was printed.
          </p>
          <p className="fingerprint-full">Full head hash: {sheet.hash}</p>
          <pre className="fingerprint-note">{sheet.note}</pre>
          <p className="muted">Printed by ____________________ on ____________ · Received by ____________________</p>
          <button type="button" className="link-button sheet-close" onClick={() => setSheet(null)}>
            Close
          </button>
        </div>
      ) : null}
    </div>
  );
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
            {report.checkpoints.checked === 1 ? '' : 's'} verified{report.external.fingerprints > 0 ? `; ${report.external.summary}` : ''}.
          </div>
        ) : (
          <div className="alert alert-error" role="alert" data-testid="verify-result">
            Broken at event {report.firstBrokenSeq}: {report.problems[0]?.message}
          </div>
        )
      ) : null}
      <FingerprintSection onChecked={setReport} />
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
