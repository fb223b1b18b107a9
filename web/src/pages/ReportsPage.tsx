import { Fragment, useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, type Account } from '../api';
import { ErrorMessage, Field, fieldErrors } from '../components';
import { Link, navigate, usePath } from '../router';

const may = (account: Account, permission: string) => account.permissions.includes(permission);
const day = (iso: string) => new Date(iso).toLocaleDateString('en-GB', { day: 'numeric', month: 'short', year: 'numeric' });
const when = (iso: string) => new Date(iso).toLocaleString('en-GB', { day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit' });

// --- The termly monitoring report (MO-05) -----------------------------------------------------------------

interface Period {
  name: string;
  from: string;
  to: string;
}
interface Section {
  heading: string;
  paragraphs?: string[];
  facts?: Array<[string, string]>;
  table?: { columns: string[]; rows: Array<Array<string | number | null>>; empty?: string };
}
interface Report {
  period: Period;
  generatedAt: string;
  sections: Section[];
  issued: Array<{ id: string; issuedAt: string; issuedBy: string; sha256: string }>;
}

/** MO-05: the termly monitoring report for senior leaders and governors, on screen and as a PDF. */
export function TermlyReportPage({ account }: { account: Account }) {
  const [periods, setPeriods] = useState<Period[]>([]);
  const [period, setPeriod] = useState<string>('');
  const [report, setReport] = useState<Report | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [message, setMessage] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const load = useCallback(async (from: string) => {
    try {
      setError(null);
      const r = await api<{ periods: Period[]; report: Report }>('GET', `/api/reports/termly${from ? `?period=${from}` : ''}`);
      setPeriods(r.periods);
      setReport(r.report);
      setPeriod(r.report.period.from);
    } catch (e) {
      setError(e);
    }
  }, []);
  useEffect(() => {
    void load('');
  }, [load]);

  const issue = async () => {
    if (!report) return;
    setBusy(true);
    setMessage(null);
    try {
      const issued = await api<{ sha256: string }>('POST', '/api/reports/termly/issue', { period: report.period.from });
      setMessage(`Issued. The PDF is kept exactly as issued (SHA-256 ${issued.sha256.slice(0, 16)}…).`);
      await load(report.period.from);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section>
      <h1>Termly monitoring report</h1>
      <p className="muted">
        What the filter blocked, the requests from the block page and what was decided, changes to the filtering and the checks made — for senior leaders and
        governors. Counts only: no pupil is named.
      </p>
      <ErrorMessage error={error} />
      {message ? <div className="alert alert-ok" role="status">{message}</div> : null}
      <div className="toolbar">
        <label>
          Term{' '}
          <select value={period} onChange={(e) => void load(e.target.value)} aria-label="Term">
            {periods.map((p) => (
              <option key={p.from} value={p.from}>
                {p.name} ({day(p.from)} – {day(p.to)})
              </option>
            ))}
          </select>
        </label>
        {report ? (
          <a className="button secondary" href={`/api/reports/termly/pdf?period=${report.period.from}`} download>
            Download PDF
          </a>
        ) : null}
        {report && may(account, 'reports.issue') ? (
          <button type="button" className="button" disabled={busy} onClick={() => void issue()}>
            Issue to senior leaders and governors
          </button>
        ) : null}
      </div>
      {report ? (
        <>
          {report.issued.length > 0 ? (
            <div className="card">
              <h2>Issued</h2>
              <ul className="plain">
                {report.issued.map((i) => (
                  <li key={i.id}>
                    {when(i.issuedAt)} by {i.issuedBy} — <a href={`/api/reports/issued/${i.id}/pdf`} download>the PDF as issued</a> <span className="small muted">SHA-256 {i.sha256.slice(0, 16)}…</span>
                  </li>
                ))}
              </ul>
            </div>
          ) : (
            <p className="small muted">Not issued yet for {report.period.name}.</p>
          )}
          {report.sections.map((s) => (
            <ReportSection key={s.heading} section={s} />
          ))}
        </>
      ) : !error ? (
        <p className="muted">Working it out…</p>
      ) : null}
    </section>
  );
}

function ReportSection({ section }: { section: Section }) {
  return (
    <div className="card report-section" data-section={section.heading}>
      <h2>{section.heading}</h2>
      {section.facts && section.facts.length > 0 ? (
        <dl className="facts">
          {section.facts.map(([k, v]) => (
            <Fragment key={k}>
              <dt>{k}</dt>
              <dd>{v}</dd>
            </Fragment>
          ))}
        </dl>
      ) : null}
      {(section.paragraphs ?? []).map((p, i) => (
        <p key={i}>{p}</p>
      ))}
      {section.table ? (
        section.table.rows.length === 0 ? (
          <p className="muted">{section.table.empty ?? 'Nothing to show.'}</p>
        ) : (
          <table className="table">
            <thead>
              <tr>
                {section.table.columns.map((c) => (
                  <th key={c}>{c}</th>
                ))}
              </tr>
            </thead>
            <tbody>
              {section.table.rows.map((row, i) => (
                <tr key={i}>
                  {row.map((cell, j) => (
                    <td key={j}>{cell === null || cell === '' ? '—' : cell}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        )
      ) : null}
    </div>
  );
}

// --- The register of filtering checks (GV-03, AU-04) ------------------------------------------------------

interface ResultItem {
  category: string;
  categoryName: string;
  url: string | null;
  expected: 'block' | 'allow';
  actual: string;
  passed: boolean;
  detail: string;
}
interface Check {
  id: string;
  kind: 'guided' | 'manual';
  checkedAt: string;
  checkedBy: string;
  perspective: string;
  device: string;
  location: string;
  userGroup: string;
  what: string;
  results: ResultItem[] | null;
  passed: number;
  failed: number;
  outcome: 'pass' | 'fail';
  actions: string;
}
interface PolicyOption {
  id: string;
  name: string;
}

const perspectiveWords: Record<string, string> = { safeguarding: 'Safeguarding', it: 'IT' };
const actualWords: Record<string, string> = { block: 'blocked', allow: 'allowed', rewrite: 'allowed (safe search)', not_covered: 'nothing to try', no_answer: 'no answer' };

/** GV-03, AU-04 (P4 9.18-9.20): checks of the filtering, guided or by hand, with their results and actions. */
export function FilteringChecksPage({ account }: { account: Account }) {
  const path = usePath();
  const selected = path.startsWith('/reports/checks/') ? path.slice('/reports/checks/'.length) : null;
  const [checks, setChecks] = useState<Check[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [mode, setMode] = useState<'guided' | 'manual' | null>(null);
  const canRecord = may(account, 'checks.record');

  const load = useCallback(async () => {
    try {
      setChecks((await api<{ checks: Check[] }>('GET', '/api/checks')).checks);
    } catch (e) {
      setError(e);
    }
  }, []);
  useEffect(() => {
    void load();
  }, [load]);

  if (selected) {
    const check = checks?.find((c) => c.id === selected);
    if (checks && !check) {
      return (
        <section>
          <h1>Filtering check</h1>
          <div className="alert alert-error">There is no such check. <Link href="/reports/checks">See all checks</Link>.</div>
        </section>
      );
    }
    return check ? <CheckView check={check} canRecord={canRecord} onChanged={load} /> : <p className="muted">Loading…</p>;
  }

  return (
    <section>
      <h1>Filtering checks</h1>
      <p className="muted">
        Checks that the filtering and monitoring work, on different devices, in different places and for each group — who checked, what, the result and what
        was done about it (P4 9.18–9.20). A guided check tries real addresses from the UK Safer Internet Centre’s categories through the live filter.
      </p>
      <ErrorMessage error={error} />
      {canRecord ? (
        <div className="toolbar">
          <button type="button" className={mode === 'guided' ? 'button' : 'button secondary'} onClick={() => setMode(mode === 'guided' ? null : 'guided')}>
            Run a guided check
          </button>
          <button type="button" className={mode === 'manual' ? 'button' : 'button secondary'} onClick={() => setMode(mode === 'manual' ? null : 'manual')}>
            Record a check made by hand
          </button>
        </div>
      ) : null}
      {mode === 'guided' ? <GuidedForm account={account} onDone={(id) => { setMode(null); void load().then(() => navigate(`/reports/checks/${id}`)); }} /> : null}
      {mode === 'manual' ? <ManualForm onDone={() => { setMode(null); void load(); }} /> : null}
      {checks ? (
        checks.length === 0 ? (
          <p className="muted">No checks have been recorded yet.</p>
        ) : (
          <table className="table" data-testid="checks">
            <thead>
              <tr>
                <th>When</th>
                <th>By</th>
                <th>Group</th>
                <th>Device, location</th>
                <th>Result</th>
                <th>Action</th>
              </tr>
            </thead>
            <tbody>
              {checks.map((c) => (
                <tr key={c.id} data-check={c.id} className={c.outcome === 'fail' && !c.actions ? 'severity-high' : undefined}>
                  <td className="nowrap">
                    <Link href={`/reports/checks/${c.id}`}>{when(c.checkedAt)}</Link>
                    <div className="small muted">{c.kind === 'guided' ? 'guided' : 'by hand'} · {perspectiveWords[c.perspective] ?? c.perspective}</div>
                  </td>
                  <td>{c.checkedBy}</td>
                  <td>{c.userGroup}</td>
                  <td>
                    {c.device}
                    <div className="small muted">{c.location}</div>
                  </td>
                  <td className="nowrap">
                    {c.outcome === 'pass' ? <span className="tag tag-ok">pass</span> : <span className="tag tag-bad">{c.kind === 'guided' ? `${c.failed} failed` : 'problem found'}</span>}
                  </td>
                  <td>{c.actions || (c.outcome === 'fail' ? <span className="muted">none recorded yet</span> : '—')}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )
      ) : null}
    </section>
  );
}

function CommonFields({ values, set, errors }: { values: Record<string, string>; set: (k: string, v: string) => void; errors: Record<string, string> }) {
  return (
    <>
      <Field label="Device" hint="The device the check was made from, e.g. “Year 5 iPad 12”." error={errors['body.device']}>
        <input value={values.device} onChange={(e) => set('device', e.target.value)} maxLength={200} required />
      </Field>
      <Field label="Location" hint="Where, e.g. “Library”, “Block B Wi-Fi”, “off site”." error={errors['body.location']}>
        <input value={values.location} onChange={(e) => set('location', e.target.value)} maxLength={200} required />
      </Field>
      <Field label="Perspective" hint="P4 9.18: checks are made from a safeguarding and from an IT perspective." error={errors['body.perspective']}>
        <select value={values.perspective} onChange={(e) => set('perspective', e.target.value)}>
          <option value="safeguarding">Safeguarding</option>
          <option value="it">IT</option>
        </select>
      </Field>
    </>
  );
}

function GuidedForm({ account, onDone }: { account: Account; onDone: (id: string) => void }) {
  const [values, setValues] = useState<Record<string, string>>({ device: '', location: '', perspective: 'safeguarding', targetKind: 'policy', policy: 'role:pupils', person: '', ip: '', addresses: '', actions: '' });
  const [policies, setPolicies] = useState<PolicyOption[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const set = (k: string, v: string) => setValues((old) => ({ ...old, [k]: v }));
  useEffect(() => {
    if (may(account, 'filtering.read')) void api<{ policies: PolicyOption[] }>('GET', '/api/filtering/policies').then((r) => setPolicies(r.policies), () => setPolicies([]));
  }, [account]);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const addresses = values.addresses!
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean)
        .map((l) => {
          const [url, expect] = l.split(/\s+/);
          return { url: url!, expect: expect === 'allow' ? 'allow' : 'block' };
        });
      const target = values.targetKind === 'person' ? { person: values.person } : values.targetKind === 'ip' ? { ip: values.ip } : { policy: values.policy };
      const check = await api<Check>('POST', '/api/checks/guided', { device: values.device, location: values.location, perspective: values.perspective, target, addresses, actions: values.actions });
      onDone(check.id);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const errors = fieldErrors(error);
  return (
    <form className="card form" onSubmit={(e) => void submit(e)} aria-label="Guided check">
      <h2>Run a guided check</h2>
      <p className="small muted">Gatehouse tries real addresses of each category through the live filter for the group, person or device you choose, and the running DNS resolver and proxy.</p>
      <ErrorMessage error={error} inline={(f) => f in errors} />
      <Field label="Check for" error={errors['body.target']}>
        <select value={values.targetKind} onChange={(e) => set('targetKind', e.target.value)}>
          <option value="policy">a group</option>
          <option value="person">a person</option>
          <option value="ip">a device’s address</option>
        </select>
      </Field>
      {values.targetKind === 'policy' ? (
        <Field label="Group">
          <select value={values.policy} onChange={(e) => set('policy', e.target.value)}>
            {(policies.length ? policies : [{ id: 'role:pupils', name: 'Pupils' }]).map((p) => (
              <option key={p.id} value={p.id}>
                {p.name}
              </option>
            ))}
          </select>
        </Field>
      ) : values.targetKind === 'person' ? (
        <Field label="Username">
          <input value={values.person} onChange={(e) => set('person', e.target.value)} maxLength={100} required />
        </Field>
      ) : (
        <Field label="Address" hint="The device’s IP address on the school network, e.g. 10.0.5.23.">
          <input value={values.ip} onChange={(e) => set('ip', e.target.value)} maxLength={45} required />
        </Field>
      )}
      <CommonFields values={values} set={set} errors={errors} />
      <Field label="Addresses of your own (optional)" hint="One per line, then “block” or “allow”, e.g. “https://testfiltering.com block”." error={errors['body.addresses']}>
        <textarea rows={3} value={values.addresses} onChange={(e) => set('addresses', e.target.value)} />
      </Field>
      <div className="actions">
        <button type="submit" className="button" disabled={busy}>
          {busy ? 'Checking…' : 'Run the check'}
        </button>
      </div>
    </form>
  );
}

function ManualForm({ onDone }: { onDone: () => void }) {
  const [values, setValues] = useState<Record<string, string>>({ device: '', location: '', perspective: 'safeguarding', userGroup: '', what: '', outcome: 'pass', actions: '' });
  const [error, setError] = useState<unknown>(null);
  const set = (k: string, v: string) => setValues((old) => ({ ...old, [k]: v }));
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      await api('POST', '/api/checks', values);
      onDone();
    } catch (err) {
      setError(err);
    }
  };
  const errors = fieldErrors(error);
  return (
    <form className="card form" onSubmit={(e) => void submit(e)} aria-label="Check made by hand">
      <h2>Record a check made by hand</h2>
      <ErrorMessage error={error} inline={(f) => f in errors} />
      <CommonFields values={values} set={set} errors={errors} />
      <Field label="User group" hint="Who the check was for, e.g. pupils, staff, guests." error={errors['body.userGroup']}>
        <input value={values.userGroup} onChange={(e) => set('userGroup', e.target.value)} maxLength={200} required />
      </Field>
      <Field label="What was tested" error={errors['body.what']}>
        <textarea rows={3} value={values.what} onChange={(e) => set('what', e.target.value)} maxLength={4000} required />
      </Field>
      <Field label="Result" error={errors['body.outcome']}>
        <select value={values.outcome} onChange={(e) => set('outcome', e.target.value)}>
          <option value="pass">Everything worked as it should</option>
          <option value="fail">A problem was found</option>
        </select>
      </Field>
      <Field label="Resulting actions" error={errors['body.actions']}>
        <textarea rows={2} value={values.actions} onChange={(e) => set('actions', e.target.value)} maxLength={4000} />
      </Field>
      <div className="actions">
        <button type="submit" className="button">Record the check</button>
      </div>
    </form>
  );
}

function CheckView({ check, canRecord, onChanged }: { check: Check; canRecord: boolean; onChanged: () => Promise<void> }) {
  const [actions, setActions] = useState(check.actions);
  const [error, setError] = useState<unknown>(null);
  const [saved, setSaved] = useState(false);
  const save = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    setSaved(false);
    try {
      await api('PUT', `/api/checks/${check.id}/actions`, { actions });
      setSaved(true);
      await onChanged();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <section>
      <div className="small">
        <Link href="/reports/checks">Filtering checks</Link> ›
      </div>
      <h1>
        Check of {when(check.checkedAt)} {check.outcome === 'pass' ? <span className="tag tag-ok">pass</span> : <span className="tag tag-bad">problems found</span>}
      </h1>
      <dl className="facts">
        <dt>By</dt><dd>{check.checkedBy}</dd>
        <dt>Group</dt><dd>{check.userGroup}</dd>
        <dt>Device</dt><dd>{check.device}</dd>
        <dt>Location</dt><dd>{check.location}</dd>
        <dt>Perspective</dt><dd>{perspectiveWords[check.perspective] ?? check.perspective}</dd>
      </dl>
      <p>{check.what}</p>
      {check.results ? (
        <table className="table" data-testid="results">
          <thead>
            <tr>
              <th>Category</th>
              <th>Address tried</th>
              <th>Expected</th>
              <th>The filter</th>
              <th>Why</th>
            </tr>
          </thead>
          <tbody>
            {check.results.map((r, i) => (
              <tr key={i} data-category={r.category} className={r.passed ? undefined : 'severity-high'}>
                <td>{r.categoryName}</td>
                <td className="mono small">{r.url ?? '—'}</td>
                <td>{r.expected === 'block' ? 'blocked' : 'allowed'}</td>
                <td className="nowrap">{r.passed ? <span className="tag tag-ok">{actualWords[r.actual] ?? r.actual}</span> : <span className="tag tag-bad">{actualWords[r.actual] ?? r.actual}</span>}</td>
                <td className="small">{r.detail}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <form className="card form" onSubmit={(e) => void save(e)} aria-label="Resulting actions">
        <h2>Resulting actions</h2>
        <ErrorMessage error={error} />
        {saved ? <div className="alert alert-ok" role="status">Saved.</div> : null}
        {canRecord ? (
          <>
            <Field label="What will be done" hint="Who does what, and by when.">
              <textarea rows={3} value={actions} onChange={(e) => setActions(e.target.value)} maxLength={4000} />
            </Field>
            <div className="actions">
              <button type="submit" className="button">Save the actions</button>
            </div>
          </>
        ) : (
          <p>{check.actions || 'None recorded.'}</p>
        )}
      </form>
    </section>
  );
}
