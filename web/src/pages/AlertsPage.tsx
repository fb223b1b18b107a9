import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, type Account } from '../api';
import { ErrorMessage, Field, fieldErrors, formProblems } from '../components';
import { Link } from '../router';

const may = (account: Account, permission: string) => account.permissions.includes(permission);
const when = (iso: string) => new Date(iso).toLocaleString('en-GB', { day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit' });

interface Alert {
  id: string;
  kind: 'safeguarding' | 'security';
  rule: string;
  severity: 'high' | 'medium' | 'low';
  firstAt: string;
  lastAt: string;
  count: number;
  username: string | null;
  device: string | null;
  clientIp: string | null;
  what: string;
  why: string;
  status: 'new' | 'acknowledged' | 'closed';
  acknowledgedAt: string | null;
  acknowledgedBy: string | null;
  closedAt: string | null;
  closedBy: string | null;
  action: string | null;
  outcome: string | null;
  escalations: number;
}
interface Outcome {
  id: string;
  label: string;
}

const ruleWords: Record<string, string> = {
  concern: 'Category of concern',
  repeated: 'Repeated attempts',
  circumvention: 'Getting round the filter',
  search_term: 'Watch-list search',
  port_scan: 'Scan',
  privileged_sign_in: 'Failed privileged sign-in',
  lockout: 'Account locked',
  backup_missed: 'Backup missed',
  backup_failed: 'Backup failed',
};
const statusWords = { new: 'New', acknowledged: 'Acknowledged', closed: 'Closed' } as const;

/** FI-11, MO-02, MO-03, MO-07: the alerts this person's role is for; acknowledge, close with an outcome, record an incident. */
export function AlertsPage({ account }: { account: Account }) {
  const [alerts, setAlerts] = useState<Alert[] | null>(null);
  const [outcomes, setOutcomes] = useState<Outcome[]>([]);
  const [kinds, setKinds] = useState<string[]>([]);
  const [filter, setFilter] = useState({ status: 'open', kind: '', severity: '', person: '' });
  const [error, setError] = useState<unknown>(null);
  const [selected, setSelected] = useState<string | null>(() => new URLSearchParams(window.location.search).get('id'));
  const canHandle = may(account, 'alerts.handle');

  const load = useCallback(async () => {
    try {
      setError(null);
      const q = new URLSearchParams(Object.entries(filter).filter(([, v]) => v !== ''));
      const r = await api<{ alerts: Alert[]; kinds: string[]; outcomes: Outcome[] }>('GET', `/api/alerts?${q.toString()}`);
      setAlerts(r.alerts);
      setKinds(r.kinds);
      setOutcomes(r.outcomes);
    } catch (e) {
      setError(e);
    }
  }, [filter]);
  useEffect(() => {
    void load();
  }, [load]);

  // The alert opened (from the list or a mail's link) is fetched on its own: it stays shown once closed.
  const [open, setOpen] = useState<Alert | null>(null);
  const loadOne = useCallback(async (id: string | null) => {
    if (!id) return setOpen(null);
    try {
      setOpen(await api<Alert>('GET', `/api/alerts/${id}`));
    } catch (e) {
      setOpen(null);
      setError(e);
    }
  }, []);
  useEffect(() => {
    void loadOne(selected);
  }, [selected, loadOne]);
  return (
    <section>
      <h1>Alerts</h1>
      <p className="muted">
        {kinds.length === 2 ? 'Safeguarding and security alerts' : kinds[0] === 'security' ? 'Security alerts' : 'Safeguarding alerts'} raised from the filter’s activity and sign-in events. Each
        carries only who, which device, what, when and why — no page content is kept. Acknowledge an alert when you start looking into it, then close it with what was done
        and the outcome; alerts nobody acknowledges are escalated.
      </p>
      <ErrorMessage error={error} />
      <form className="toolbar" aria-label="Filter alerts" onSubmit={(e) => e.preventDefault()}>
        <label>
          Status{' '}
          <select value={filter.status} onChange={(e) => setFilter({ ...filter, status: e.target.value })}>
            <option value="open">Open</option>
            <option value="new">New</option>
            <option value="acknowledged">Acknowledged</option>
            <option value="closed">Closed</option>
            <option value="all">All</option>
          </select>
        </label>
        {kinds.length > 1 ? (
          <label>
            Kind{' '}
            <select value={filter.kind} onChange={(e) => setFilter({ ...filter, kind: e.target.value })}>
              <option value="">Both</option>
              <option value="safeguarding">Safeguarding</option>
              <option value="security">Security</option>
            </select>
          </label>
        ) : null}
        <label>
          Severity{' '}
          <select value={filter.severity} onChange={(e) => setFilter({ ...filter, severity: e.target.value })}>
            <option value="">Any</option>
            <option value="high">High</option>
            <option value="medium">Medium</option>
            <option value="low">Low</option>
          </select>
        </label>
        <label>
          Person{' '}
          <input value={filter.person} onChange={(e) => setFilter({ ...filter, person: e.target.value })} placeholder="username" maxLength={100} />
        </label>
      </form>
      {open ? <AlertDetail alert={open} outcomes={outcomes} canHandle={canHandle} onChanged={() => { void load(); void loadOne(open.id); }} onClose={() => setSelected(null)} /> : null}
      {alerts === null ? (
        <p className="muted">Loading…</p>
      ) : alerts.length === 0 ? (
        <p className="muted" data-testid="no-alerts">{filter.status === 'open' ? 'No open alerts. New ones appear here and are e-mailed to the people the school’s policy names.' : 'No alerts match.'}</p>
      ) : (
        <table className="table" data-testid="alerts">
          <thead>
            <tr>
              <th>When</th>
              <th>Who</th>
              <th>What</th>
              <th>Why</th>
              <th>Status</th>
            </tr>
          </thead>
          <tbody>
            {alerts.map((a) => (
              <tr key={a.id} data-alert={a.id} className={a.severity === 'high' && a.status === 'new' ? 'severity-high' : undefined}>
                <td className="nowrap">
                  <button type="button" className="link-button" onClick={() => setSelected(a.id)}>
                    {when(a.firstAt)}
                  </button>
                  <div className="small muted">
                    <span className={`tag ${a.severity === 'high' ? 'tag-bad' : a.severity === 'medium' ? 'tag-warn' : ''}`}>{a.severity}</span> {a.kind}
                  </div>
                </td>
                <td>
                  {a.username ?? <span className="muted">{a.rule.startsWith('backup_') ? 'no person (a backup job)' : 'unknown person'}</span>}
                  <div className="small muted">{a.device ?? a.clientIp ?? ''}</div>
                </td>
                <td>
                  {a.what}
                  {a.count > 1 ? <div className="small muted">seen {a.count} times, last {when(a.lastAt)}</div> : null}
                </td>
                <td>
                  {ruleWords[a.rule] ?? a.rule}
                  <div className="small muted">{a.why}</div>
                </td>
                <td className="nowrap">
                  {statusWords[a.status]}
                  {a.escalations > 0 && a.status === 'new' ? <div className="small"><span className="tag tag-bad">escalated</span></div> : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function AlertDetail({ alert, outcomes, canHandle, onChanged, onClose }: { alert: Alert; outcomes: Outcome[]; canHandle: boolean; onChanged: () => void; onClose: () => void }) {
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [values, setValues] = useState({ action: '', outcome: '' });
  const acknowledge = async () => {
    setBusy(true);
    setError(null);
    try {
      await api('POST', `/api/alerts/${alert.id}/acknowledge`);
      onChanged();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const close = async (e: FormEvent) => {
    e.preventDefault();
    const problems = formProblems({ action: !values.action.trim() && 'say what was done', outcome: !values.outcome && 'choose the outcome' });
    if (problems) {
      setError(problems);
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await api('POST', `/api/alerts/${alert.id}/close`, values);
      onChanged();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const errors = fieldErrors(error);
  return (
    <div className="card" data-testid="alert-detail" aria-label="Alert">
      <h2>
        {ruleWords[alert.rule] ?? alert.rule}: {alert.what}
      </h2>
      <dl className="facts">
        <dt>Who</dt>
        <dd>{alert.username ?? (alert.rule.startsWith('backup_') ? 'no person (a backup job)' : 'unknown person')}</dd>
        <dt>Device</dt>
        <dd>{[alert.device, alert.clientIp].filter(Boolean).join(' · ') || '—'}</dd>
        <dt>When</dt>
        <dd>
          {when(alert.firstAt)}
          {alert.count > 1 ? ` (seen ${alert.count} times, last ${when(alert.lastAt)})` : ''}
        </dd>
        <dt>Why</dt>
        <dd>{alert.why}</dd>
        <dt>Severity</dt>
        <dd>{alert.severity}</dd>
        <dt>Status</dt>
        <dd>
          {statusWords[alert.status]}
          {alert.acknowledgedBy ? ` · acknowledged by ${alert.acknowledgedBy} ${when(alert.acknowledgedAt!)}` : ''}
          {alert.closedBy ? ` · closed by ${alert.closedBy} ${when(alert.closedAt!)}` : ''}
        </dd>
        {alert.status === 'closed' ? (
          <>
            <dt>Action</dt>
            <dd>{alert.action}</dd>
            <dt>Outcome</dt>
            <dd>{outcomes.find((o) => o.id === alert.outcome)?.label ?? alert.outcome}</dd>
          </>
        ) : null}
      </dl>
      <ErrorMessage error={error} inline={(f) => f in errors} />
      <div className="actions">
        {canHandle && alert.status === 'new' ? (
          <button type="button" className="button" disabled={busy} onClick={() => void acknowledge()}>
            Acknowledge
          </button>
        ) : null}
        {alert.kind === 'safeguarding' ? <Link href={`/incidents/new?alert=${alert.id}`}>Record an incident</Link> : null}
        <button type="button" className="button secondary" onClick={onClose}>
          Back to the list
        </button>
      </div>
      {canHandle && alert.status === 'acknowledged' ? (
        <form className="form" onSubmit={(e) => void close(e)} aria-label="Close the alert" noValidate>
          <h3>Close with the outcome</h3>
          <Field label="What was done" error={errors['body.action'] ?? errors.action}>
            <textarea rows={3} value={values.action} onChange={(e) => setValues({ ...values, action: e.target.value })} maxLength={4000} />
          </Field>
          <Field label="Outcome" error={errors['body.outcome'] ?? errors.outcome}>
            <select value={values.outcome} onChange={(e) => setValues({ ...values, outcome: e.target.value })}>
              <option value="">Choose…</option>
              {outcomes.map((o) => (
                <option key={o.id} value={o.id}>
                  {o.label}
                </option>
              ))}
            </select>
          </Field>
          <div className="actions">
            <button type="submit" className="button" disabled={busy}>
              Close the alert
            </button>
          </div>
        </form>
      ) : null}
    </div>
  );
}
