import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, type Account } from '../api';
import { ErrorMessage, Field, fieldErrors, formProblems } from '../components';
import './Filter.css';

/** Filter exceptions in the console (issue 11): FI-07, FI-08, FI-12, FI-13, IN-06. */

interface Exception {
  id: string;
  kind: string;
  scope: string;
  subject: string | null;
  subjectName: string | null;
  targetKind: string | null;
  target: string | null;
  status: string;
  startsAt: string;
  endsAt: string | null;
  reason: string;
  incidentId: string | null;
  createdBy: string;
  decidedBy: string | null;
  endedBy: string | null;
  endedAt: string | null;
}
interface FilterRequest { id: string; kind: string; host: string; reason: string; status: string; username: string | null; clientIp: string | null; createdAt: string }
interface Decision { id: string; host: string; status: string; username: string | null; reason: string; decidedBy: string | null; decidedAt: string | null; note: string | null; reviewedBy: string | null; reviewedAt: string | null }
interface Outcome { id: string; host: string; status: string; decidedAt: string | null; note: string | null; allowedUntil: string | null }

const may = (account: Account, permission: string) => account.permissions.includes(permission);
const when = (iso: string | null) => (iso ? new Date(iso).toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'short' }) : '—');
const KIND: Record<string, string> = { allow: 'Unblocked', lesson: 'Lesson allowance', 'filter-off': 'Filtering off', quarantine: 'Quarantine' };

/** The requester's page, linked from the block page: what happened to their request (FI-13). Public. */
export function RequestStatusPage() {
  const id = new URLSearchParams(window.location.search).get('id') ?? '';
  const [outcome, setOutcome] = useState<Outcome | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    if (id) api<Outcome>('GET', `/api/filtering/requests/${encodeURIComponent(id)}/outcome`).then(setOutcome, setError);
  }, [id]);
  return (
    <div className="card public-card" data-testid="request-status">
      <h1>Your request</h1>
      <ErrorMessage error={error} />
      {!id ? <p>No request was given.</p> : null}
      {outcome ? (
        <>
          <p>You asked for <strong>{outcome.host}</strong> to be unblocked.</p>
          {outcome.status === 'open' ? <div className="alert alert-info" role="status">Not decided yet. Check this page again later.</div> : null}
          {outcome.status === 'approved' ? (
            <div className="alert alert-ok" role="status">
              Allowed{outcome.allowedUntil ? ` until ${when(outcome.allowedUntil)}` : ''}. {outcome.note ? `Note: ${outcome.note}` : ''}
            </div>
          ) : null}
          {outcome.status === 'refused' ? <div className="alert alert-warn" role="status">Refused. Reason: {outcome.note}</div> : null}
        </>
      ) : null}
    </div>
  );
}

/** Filtering → Unblock requests: decide them, and the log of decisions with their review (FI-13, FI-08). */
export function UnblockRequestsPage({ account }: { account: Account }) {
  const [requests, setRequests] = useState<FilterRequest[]>([]);
  const [decisions, setDecisions] = useState<Decision[]>([]);
  const [error, setError] = useState<unknown>(null);
  const load = useCallback(async () => {
    try {
      setRequests((await api<{ requests: FilterRequest[] }>('GET', '/api/filtering/requests?status=open')).requests.filter((r) => r.kind === 'request'));
      setDecisions((await api<{ decisions: Decision[] }>('GET', '/api/filtering/decisions')).decisions);
    } catch (e) {
      setError(e);
    }
  }, []);
  useEffect(() => {
    void load();
  }, [load]);
  const review = async (id: string) => {
    setError(null);
    try {
      await api('POST', `/api/filtering/decisions/${id}/review`, {});
      await load();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <section className="filter-page">
      <h1>Unblock decisions</h1>
      <p className="muted">Requests from the block page. Allow a site for the person, a group or everyone for a set time, or refuse it with a reason: the person sees the outcome on the link the block page gave them. Illegal content can never be allowed.</p>
      <ErrorMessage error={error} />
      <h2>Waiting for a decision</h2>
      {requests.length === 0 ? <p className="muted" data-testid="no-requests">No requests are waiting.</p> : requests.map((r) => <DecideCard key={r.id} request={r} onDone={load} />)}
      <h2>Decisions</h2>
      {decisions.length === 0 ? (
        <p className="muted">No decisions yet.</p>
      ) : (
        <table className="table" aria-label="Decisions">
          <thead>
            <tr><th>Site</th><th>Asked by</th><th>Decision</th><th>Decided by, when</th><th>Reviewed by, when</th></tr>
          </thead>
          <tbody>
            {decisions.map((d) => (
              <tr key={d.id}>
                <td>{d.host}</td>
                <td>{d.username ?? 'not signed in'}</td>
                <td>{d.status === 'approved' ? 'Allowed' : 'Refused'}{d.note ? ` — ${d.note}` : ''}</td>
                <td>{d.decidedBy} · {when(d.decidedAt)}</td>
                <td>{d.reviewedBy ? `${d.reviewedBy} · ${when(d.reviewedAt)}` : may(account, 'exceptions.review') && d.decidedBy !== account.username ? <button type="button" className="button small" onClick={() => void review(d.id)}>Mark reviewed</button> : 'not yet'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function DecideCard({ request, onDone }: { request: FilterRequest; onDone: () => Promise<void> }) {
  const [scope, setScope] = useState(request.username ? 'person' : 'everyone');
  const [minutes, setMinutes] = useState('60');
  const [note, setNote] = useState('');
  const [error, setError] = useState<unknown>(null);
  const decide = async (decision: 'allow' | 'refuse') => {
    const n = Number(minutes);
    const problems = formProblems(decision === 'refuse' ? { note: note.trim().length >= 3 ? null : 'Give the reason for refusing: the person will see it.' } : { minutes: Number.isInteger(n) && n >= 5 ? null : 'Give a number of minutes, at least 5.' });
    setError(problems);
    if (problems) return;
    try {
      await api('POST', `/api/filtering/requests/${request.id}/decision`, decision === 'allow' ? { decision, scope, minutes: n, note: note.trim() || undefined } : { decision, note: note.trim() });
      await onDone();
    } catch (e) {
      setError(e);
    }
  };
  const errors = fieldErrors(error);
  return (
    <div className="card" data-testid="request-card">
      <p><strong>{request.host}</strong> — asked by {request.username ?? `a device at ${request.clientIp ?? '?'}`}, {when(request.createdAt)}</p>
      <p className="muted">“{request.reason}”</p>
      <ErrorMessage error={error} inline={(f) => f in errors} />
      <div className="inline-form">
        <Field label="Allow for">
          <select value={scope} onChange={(e) => setScope(e.target.value)}>
            {request.username ? <option value="person">{request.username} only</option> : null}
            <option value="everyone">everyone</option>
          </select>
        </Field>
        <Field label="For (minutes)" error={errors.minutes}>
          <input inputMode="numeric" value={minutes} onChange={(e) => setMinutes(e.target.value)} />
        </Field>
        <Field label="Note or reason (shown to the person)" error={errors.note}>
          <input value={note} onChange={(e) => setNote(e.target.value)} />
        </Field>
      </div>
      <div className="actions">
        <button type="button" className="button" onClick={() => void decide('allow')}>Allow</button>
        <button type="button" className="button secondary" onClick={() => void decide('refuse')}>Refuse</button>
      </div>
    </div>
  );
}

/** Filtering → Exceptions: what is open now, filtering turned off (second approver), quarantined devices (IN-06). */
export function ExceptionsPage({ account }: { account: Account }) {
  const [items, setItems] = useState<Exception[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [q, setQ] = useState({ address: '', reason: '' });
  const [qError, setQError] = useState<unknown>(null);
  const [off, setOff] = useState({ scope: 'person', subject: '', hours: '2', reason: '' });
  const [offError, setOffError] = useState<unknown>(null);
  const [offSent, setOffSent] = useState<string | null>(null);
  const [maxHours, setMaxHours] = useState<number | null>(null);
  const load = useCallback(async () => {
    try {
      const data = await api<{ exceptions: Exception[]; limits: { filterOffMaxHours: number } }>('GET', '/api/filtering/exceptions');
      setMaxHours(data.limits.filterOffMaxHours);
      setItems(data.exceptions);
    } catch (e) {
      setError(e);
    }
  }, []);
  useEffect(() => {
    void load();
  }, [load]);
  const act = async (url: string, body: unknown = {}) => {
    setError(null);
    try {
      await api('POST', url, body);
      await load();
    } catch (e) {
      setError(e);
    }
  };
  const quarantine = async (event: FormEvent) => {
    event.preventDefault();
    const value = q.address.trim();
    const isMac = /^([0-9a-f]{2}[:-]){5}[0-9a-f]{2}$/i.test(value);
    const problems = formProblems({
      address: !value ? 'Give the device’s IP address or MAC address.' : isMac || /^[0-9a-f:.]+$/i.test(value) ? null : 'That is not an IP address or a MAC address.',
      reason: q.reason.trim().length >= 3 ? null : 'Say why (e.g. the incident).',
    });
    setQError(problems);
    if (problems) return;
    try {
      await api('POST', '/api/filtering/quarantine', isMac ? { mac: value, reason: q.reason.trim() } : { address: value, reason: q.reason.trim() });
      setQ({ address: '', reason: '' });
      await load();
    } catch (e) {
      setQError(e);
    }
  };
  /** FI-07: turning filtering off is a request with a reason and an end; a second approver makes it start. */
  const requestOff = async (event: FormEvent) => {
    event.preventDefault();
    setOffSent(null);
    const hours = Number(off.hours);
    const problems = formProblems({
      subject: off.subject.trim() ? null : off.scope === 'person' ? 'Give the username.' : off.scope === 'group' ? 'Give the group’s name.' : 'Give the IP address.',
      hours: Number.isInteger(hours) && hours >= 1 && (maxHours === null || hours <= maxHours) ? null : `A whole number of hours from 1 to ${maxHours ?? '…'}.`,
      reason: off.reason.trim().length >= 10 ? null : 'Give the reason (at least a few words).',
    });
    setOffError(problems);
    if (problems) return;
    try {
      const made = await api<Exception>('POST', '/api/filtering/filter-off', { scope: off.scope, subject: off.subject.trim(), hours, reason: off.reason.trim() });
      setOff({ ...off, subject: '', reason: '' });
      setOffSent(`Asked: filtering off for ${made.subjectName ?? off.subject.trim()} for ${hours} hour${hours === 1 ? '' : 's'}. It starts when a second person approves it.`);
      await load();
    } catch (e) {
      setOffError(e);
    }
  };
  const offErrors = fieldErrors(offError);
  const qErrors = fieldErrors(qError);
  const quarantined = items.filter((e) => e.kind === 'quarantine' && e.status === 'active');
  const others = items.filter((e) => e.kind !== 'quarantine');
  return (
    <section className="filter-page">
      <h1>Exceptions</h1>
      <p className="muted">Sites opened for a person, a class or everyone, filtering turned off, and quarantined devices. Each ends by itself at its end time; a quarantine lasts until a named person releases it. Illegal content is never opened.</p>
      <ErrorMessage error={error} />
      <h2>Quarantined devices</h2>
      {quarantined.length === 0 ? <p className="muted" data-testid="no-quarantine">No device is quarantined.</p> : (
        <table className="table" aria-label="Quarantined devices">
          <thead><tr><th>Device</th><th>Why</th><th>By, since</th><th></th></tr></thead>
          <tbody>
            {quarantined.map((e) => (
              <tr key={e.id}>
                <td>{e.subjectName}</td><td>{e.reason}{e.incidentId ? ` (incident ${e.incidentId})` : ''}</td><td>{e.createdBy} · {when(e.startsAt)}</td>
                <td>{may(account, 'quarantine.manage') ? <button type="button" className="button" onClick={() => void act(`/api/filtering/quarantine/${e.id}/release`)}>Release</button> : null}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {may(account, 'quarantine.manage') ? (
        <form onSubmit={quarantine} aria-label="Quarantine a device" noValidate className="card">
          <h3>Quarantine a device</h3>
          <p className="small muted">Everything is blocked for it at the resolver and the proxy at once, except the school’s remediation sites (updates, anti-malware).</p>
          <ErrorMessage error={qError} inline={(f) => f in qErrors} />
          <div className="inline-form">
            <Field label="IP address or MAC address" error={qErrors.address ?? qErrors.mac}>
              <input value={q.address} onChange={(e) => setQ({ ...q, address: e.target.value })} placeholder="10.1.20.15" />
            </Field>
            <Field label="Reason" error={qErrors.reason}>
              <input value={q.reason} onChange={(e) => setQ({ ...q, reason: e.target.value })} />
            </Field>
          </div>
          <button type="submit" className="button">Quarantine</button>
        </form>
      ) : null}
      {may(account, 'filter_off.request') ? (
        <form onSubmit={requestOff} aria-label="Turn filtering off" noValidate className="card">
          <h3>Turn filtering off</h3>
          <p className="small muted">For a person, a group or a device’s address, with a reason and an end{maxHours ? ` (at most ${maxHours} hours)` : ''}. It starts only when a second person named in the school’s policy approves it, and ends by itself. Illegal content stays blocked.</p>
          <ErrorMessage error={offError} inline={(f) => f in offErrors} />
          {offSent ? <p className="alert alert-ok" role="status" data-testid="filter-off-sent">{offSent}</p> : null}
          <div className="inline-form">
            <Field label="For">
              <select value={off.scope} onChange={(e) => setOff({ ...off, scope: e.target.value })}>
                <option value="person">a person (username)</option>
                <option value="group">a group (name)</option>
                <option value="address">a device (IP address)</option>
              </select>
            </Field>
            <Field label="Who or which" error={offErrors.subject}>
              <input value={off.subject} onChange={(e) => setOff({ ...off, subject: e.target.value })} maxLength={100} />
            </Field>
            <Field label="Hours" error={offErrors.hours}>
              <input type="number" min={1} max={maxHours ?? undefined} value={off.hours} onChange={(e) => setOff({ ...off, hours: e.target.value })} />
            </Field>
            <Field label="Reason for turning it off" error={offErrors.reason}>
              <input value={off.reason} onChange={(e) => setOff({ ...off, reason: e.target.value })} maxLength={1000} />
            </Field>
          </div>
          <button type="submit" className="button">Ask for approval</button>
        </form>
      ) : null}
      <h2>Open now</h2>
      {others.length === 0 ? <p className="muted" data-testid="no-exceptions">Nothing is open beyond the policies.</p> : (
        <table className="table" aria-label="Exceptions">
          <thead><tr><th>What</th><th>For</th><th>Site or category</th><th>Until</th><th>By</th><th></th></tr></thead>
          <tbody>
            {others.map((e) => (
              <tr key={e.id}>
                <td>{KIND[e.kind] ?? e.kind}{e.status === 'pending' ? ' (waiting for approval)' : ''}</td>
                <td>{e.scope === 'everyone' ? 'everyone' : e.subjectName}</td>
                <td>{e.target ?? 'everything (not illegal content)'}</td>
                <td>{when(e.endsAt)}</td>
                <td>{e.createdBy}{e.decidedBy && e.decidedBy !== e.createdBy ? `, approved by ${e.decidedBy}` : ''}</td>
                <td>
                  {e.status === 'pending' && may(account, 'filter_off.approve') && e.createdBy !== account.username ? <button type="button" className="button" onClick={() => void act(`/api/filtering/filter-off/${e.id}/approve`)}>Approve</button> : null}
                  {may(account, 'exceptions.decide') ? <button type="button" className="button secondary" onClick={() => void act(`/api/filtering/exceptions/${e.id}/end`)}>End now</button> : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** A teacher's "Open for my class" (FI-12): a site or category for a class they teach, for the lesson. */
export function LessonAllowancePage() {
  const [data, setData] = useState<{ classes: Array<{ id: string; name: string }>; open: Exception[]; maxMinutes: number } | null>(null);
  const [form, setForm] = useState({ groupId: '', targetKind: 'domain', target: '', minutes: '', reason: '' });
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<string | null>(null);
  const load = useCallback(async () => {
    try {
      const d = await api<{ classes: Array<{ id: string; name: string }>; open: Exception[]; maxMinutes: number }>('GET', '/api/filtering/lessons');
      setData(d);
      setForm((f) => ({ ...f, groupId: f.groupId || d.classes[0]?.id || '', minutes: f.minutes || String(d.maxMinutes) }));
    } catch (e) {
      setError(e);
    }
  }, []);
  useEffect(() => {
    void load();
  }, [load]);
  if (!data) return <section className="filter-page"><h1>Open for my class</h1><ErrorMessage error={error} /></section>;
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const minutes = Number(form.minutes);
    const problems = formProblems({
      groupId: form.groupId ? null : 'Choose the class.',
      target: form.target.trim() ? null : form.targetKind === 'domain' ? 'Type the site, e.g. www.example.org.' : 'Type the category, e.g. games.',
      minutes: Number.isInteger(minutes) && minutes >= 1 && minutes <= data.maxMinutes ? null : `Between 1 and ${data.maxMinutes} minutes.`,
      reason: form.reason.trim().length >= 3 ? null : 'Say what the lesson needs it for.',
    });
    setError(problems);
    setDone(null);
    if (problems) return;
    try {
      const made = await api<Exception>('POST', '/api/filtering/lessons', { groupId: form.groupId, targetKind: form.targetKind, target: form.target.trim(), minutes, reason: form.reason.trim() });
      setDone(`${made.target} is open for ${made.subjectName} until ${when(made.endsAt)}.`);
      setForm({ ...form, target: '', reason: '' });
      await load();
    } catch (e) {
      setError(e);
    }
  };
  const errors = fieldErrors(error);
  return (
    <section className="filter-page">
      <h1>Open for my class</h1>
      <p className="muted">Open a site or a category for a class you teach, for the lesson: at most {data.maxMinutes} minutes. It closes by itself. Illegal content can never be opened. Recorded with your name.</p>
      {data.classes.length === 0 ? <p className="muted" data-testid="no-classes">You are not recorded as teaching any class. Ask the office to add you as a teacher of your classes.</p> : (
        <form onSubmit={submit} aria-label="Open for my class" noValidate className="card">
          <ErrorMessage error={error} inline={(f) => f in errors} />
          {done ? <div className="alert alert-ok" role="status">{done}</div> : null}
          <div className="inline-form">
            <Field label="Class" error={errors.groupId}>
              <select value={form.groupId} onChange={(e) => setForm({ ...form, groupId: e.target.value })}>
                {data.classes.map((c) => <option key={c.id} value={c.id}>{c.name}</option>)}
              </select>
            </Field>
            <Field label="Open">
              <select value={form.targetKind} onChange={(e) => setForm({ ...form, targetKind: e.target.value })}>
                <option value="domain">a site</option>
                <option value="category">a category</option>
              </select>
            </Field>
            <Field label={form.targetKind === 'domain' ? 'Site' : 'Category'} error={errors.target}>
              <input value={form.target} onChange={(e) => setForm({ ...form, target: e.target.value })} />
            </Field>
            <Field label="Minutes" error={errors.minutes}>
              <input inputMode="numeric" value={form.minutes} onChange={(e) => setForm({ ...form, minutes: e.target.value })} />
            </Field>
          </div>
          <Field label="What the lesson needs it for" error={errors.reason}>
            <input value={form.reason} onChange={(e) => setForm({ ...form, reason: e.target.value })} />
          </Field>
          <button type="submit" className="button">Open for the lesson</button>
        </form>
      )}
      <h2>Open now for your classes</h2>
      {data.open.length === 0 ? <p className="muted" data-testid="no-open">Nothing is open now.</p> : (
        <ul>{data.open.map((e) => <li key={e.id}>{e.target} for {e.subjectName} until {when(e.endsAt)} ({e.createdBy})</li>)}</ul>
      )}
    </section>
  );
}
