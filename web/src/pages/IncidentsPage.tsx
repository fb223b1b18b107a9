import { Fragment, useCallback, useEffect, useState, type FormEvent } from 'react';
import { ApiError, api, type Account } from '../api';
import { ErrorMessage, Field, fieldErrors, formProblems } from '../components';
import { Link, navigate, usePath } from '../router';

/** Incidents and breaches (issue 11: IN-01..IN-07, MO-03). */

const categoryLabels: Record<string, string> = {
  safeguarding: 'Safeguarding / online safety',
  security: 'Security',
  data_breach: 'Personal-data breach',
  cyber: 'Cyber incident',
};

interface TimelineEntry { id: string; at: string; by: string; kind: string; text: string }
interface Breach { awareAt: string; deadline: string; hoursLeft: number; overdue: boolean; icoDecision: string | null; icoReasoning: string | null; icoReference: string | null; icoDecidedAt: string | null; icoDecidedBy: string | null }
interface Incident {
  id: string; reference: string; category: string; categoryLabel: string; title: string; summary: string; status: 'open' | 'closed'; source: string; alertRef: string | null; concernReference: string | null;
  people: string; devices: string; containment: string; cause: string; actions: string; policyUpdates: string; outcome: string; recordedBy: string; createdAt: string; updatedAt: string; closedAt: string | null;
  breach: Breach | null; authorityReport: { authority: string; reference: string; reportedAt: string } | null; timeline?: TimelineEntry[];
}
interface Concern { id: string; reference: string; kind: string; source: string; reporterName: string | null; details: string; blockedHost: string | null; createdAt: string; status: string; incidentId: string | null }

const when = (iso: string) => new Date(iso).toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'short' });
const may = (account: Account, permission: string) => account.permissions.includes(permission);

/** IN-04: the 72 hours from awareness, in hours left (or how late), until the ICO decision is recorded. */
export function BreachClock({ breach }: { breach: Breach }) {
  if (breach.icoDecision) {
    return (
      <span className="tag tag-ok" data-testid="breach-clock">
        ICO decision recorded: {breach.icoDecision === 'reportable' ? 'reported' : 'not reportable'}
      </span>
    );
  }
  const hours = Math.floor(Math.abs(breach.hoursLeft));
  const cls = breach.overdue ? 'tag tag-bad' : breach.hoursLeft <= 24 ? 'tag tag-warn' : 'tag';
  return (
    <span className={cls} data-testid="breach-clock" title={`Aware ${when(breach.awareAt)}; due by ${when(breach.deadline)}`}>
      {breach.overdue ? `72 hours passed ${hours} h ago: decide on the ICO now` : `${hours} h left to decide on reporting to the ICO`}
    </span>
  );
}

// ---------------------------------------------------------------- public concern form (IN-01)

/** /concern?from=sign_in|block_page&host=…: anyone, signed in or not, named or anonymous. */
export function ConcernPage() {
  const params = new URLSearchParams(location.search);
  const from = params.get('from') === 'block_page' ? 'block_page' : 'sign_in';
  const host = params.get('host')?.slice(0, 300) ?? '';
  const [kind, setKind] = useState<'online_safety' | 'technical'>(from === 'block_page' ? 'technical' : 'online_safety');
  const [details, setDetails] = useState('');
  const [name, setName] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [reference, setReference] = useState<string | null>(null);
  const errors = fieldErrors(error);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const problems = formProblems({ details: details.trim() ? (details.length > 4000 ? 'must be at most 4000 characters' : null) : 'say what happened' });
    if (problems) return setError(problems);
    setBusy(true);
    setError(null);
    try {
      const response = await fetch('/api/concerns', {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json', 'x-gatehouse-concern': '1' },
        body: JSON.stringify({ kind, details, ...(name.trim() ? { name } : {}), source: from, ...(host ? { blockedHost: host } : {}) }),
        credentials: 'same-origin',
      });
      const data = (await response.json().catch(() => ({}))) as { reference?: string; error?: ApiError['body'] };
      if (!response.ok) throw new ApiError(response.status, data.error ?? { code: 'http_error', message: response.status === 429 ? 'Too many reports from this device just now: wait a minute and try again.' : `The server answered ${response.status}.` });
      setReference(data.reference ?? '');
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  if (reference !== null) {
    return (
      <div className="card narrow" data-testid="concern-sent">
        <h1>Thank you</h1>
        <div className="alert alert-ok" role="status">
          Your concern has been passed to the {kind === 'online_safety' ? 'designated safeguarding lead' : 'IT lead'}. Your reference is <strong className="mono">{reference}</strong>.
        </div>
        <p>If you are in danger now, or worried about someone who is, tell a member of staff you trust straight away.</p>
        <Link href="/" className="link-button">Back to sign-in</Link>
      </div>
    );
  }
  return (
    <form className="card narrow" onSubmit={(e) => void submit(e)} noValidate>
      <h1>Report a concern</h1>
      <p>Anyone can tell the school about something online that worried them, or a problem with the school’s computers or network. You do not have to give your name.</p>
      <ErrorMessage error={error} inline={(f) => f in errors || f === 'details'} />
      <fieldset className="field">
        <legend className="field-label">What is it about?</legend>
        <label className="checkbox"><input type="radio" name="kind" checked={kind === 'online_safety'} onChange={() => setKind('online_safety')} /> Something online that worried me or someone else (goes to the safeguarding lead)</label>
        <label className="checkbox"><input type="radio" name="kind" checked={kind === 'technical'} onChange={() => setKind('technical')} /> A technical or security problem (goes to the IT lead)</label>
      </fieldset>
      {host ? <p className="muted">About the blocked site <span className="mono">{host}</span>.</p> : null}
      <Field label="What happened?" hint="As much as you can: what, where, when. Up to 4000 characters." error={errors.details}>
        <textarea name="details" rows={6} maxLength={4000} value={details} onChange={(e) => setDetails(e.target.value)} />
      </Field>
      <Field label="Your name (optional)" hint="Leave blank to report anonymously.">
        <input name="name" maxLength={100} value={name} onChange={(e) => setName(e.target.value)} autoComplete="off" />
      </Field>
      <div className="row">
        <button type="submit" className="button" disabled={busy}>{busy ? 'Sending…' : 'Send the concern'}</button>
        <Link href="/" className="link-button">Cancel</Link>
      </div>
    </form>
  );
}

// ---------------------------------------------------------------- the register

export function IncidentsPage({ account }: { account: Account }) {
  const path = usePath();
  if (path === '/incidents/new') return <NewIncident account={account} />;
  const id = /^\/incidents\/([0-9a-f-]{36})$/.exec(path)?.[1];
  if (id) return <IncidentDetail account={account} id={id} />;
  return <IncidentList account={account} />;
}

function IncidentList({ account }: { account: Account }) {
  const [tab, setTab] = useState<'incidents' | 'concerns'>(new URLSearchParams(location.search).get('tab') === 'concerns' && may(account, 'concerns.read') ? 'concerns' : 'incidents');
  const [incidents, setIncidents] = useState<Incident[] | null>(null);
  const [concerns, setConcerns] = useState<Concern[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const load = useCallback(async () => {
    try {
      if (may(account, 'incidents.read')) setIncidents((await api<{ incidents: Incident[] }>('GET', '/api/incidents')).incidents);
      if (may(account, 'concerns.read')) setConcerns((await api<{ concerns: Concern[] }>('GET', '/api/concerns')).concerns);
    } catch (e) {
      setError(e);
    }
  }, [account]);
  useEffect(() => void load(), [load]);
  const newConcerns = concerns?.filter((c) => c.status === 'new').length ?? 0;
  return (
    <div className="page">
      <div className="section-head">
        <h1>Incidents</h1>
        <div className="toolbar">
          {may(account, 'incidents.breach') ? <a className="button secondary" href="/api/incidents/breach-record" download>Breach record (Art 33(5), CSV)</a> : null}
          {may(account, 'incidents.record') ? <Link className="button" href="/incidents/new">Record an incident</Link> : null}
        </div>
      </div>
      {may(account, 'concerns.read') ? (
        <div className="tabs" role="tablist">
          <button type="button" role="tab" aria-selected={tab === 'incidents'} className={tab === 'incidents' ? 'tab active' : 'tab'} onClick={() => setTab('incidents')}>Register</button>
          <button type="button" role="tab" aria-selected={tab === 'concerns'} className={tab === 'concerns' ? 'tab active' : 'tab'} onClick={() => setTab('concerns')}>Concerns{newConcerns ? ` (${newConcerns} new)` : ''}</button>
        </div>
      ) : null}
      <ErrorMessage error={error} />
      {tab === 'concerns' ? <ConcernList concerns={concerns} onChanged={() => void load()} /> : null}
      {tab === 'incidents' && !may(account, 'incidents.read') ? (
        <p>You can record an incident; the people responsible for it (the DSL, the IT lead or the DPO) will see it and follow it up.</p>
      ) : null}
      {tab === 'incidents' && may(account, 'incidents.read') ? (
        incidents === null ? <p className="muted">Loading…</p> : incidents.length === 0 ? (
          <p className="muted" data-testid="incidents-empty">No incidents recorded that you can see. Incidents of other kinds are seen only by the people responsible for them.</p>
        ) : (
          <table className="table" data-testid="incidents">
            <thead><tr><th>Reference</th><th>Category</th><th>Title</th><th>Recorded</th><th>Status</th></tr></thead>
            <tbody>
              {incidents.map((i) => (
                <tr key={i.id}>
                  <td className="mono nowrap"><Link href={`/incidents/${i.id}`}>{i.reference}</Link></td>
                  <td>{i.categoryLabel}</td>
                  <td>{i.title} {i.breach && i.status === 'open' ? <BreachClock breach={i.breach} /> : null}</td>
                  <td className="nowrap">{when(i.createdAt)}</td>
                  <td><span className={i.status === 'open' ? 'tag tag-warn' : 'tag tag-ok'}>{i.status}</span></td>
                </tr>
              ))}
            </tbody>
          </table>
        )
      ) : null}
    </div>
  );
}

function ConcernList({ concerns, onChanged }: { concerns: Concern[] | null; onChanged: () => void }) {
  const [dismissing, setDismissing] = useState<string | null>(null);
  const [reason, setReason] = useState('');
  const [error, setError] = useState<unknown>(null);
  if (concerns === null) return <p className="muted">Loading…</p>;
  if (concerns.length === 0) return <p className="muted">No concerns have been reported.</p>;
  const dismiss = async (e: FormEvent, id: string) => {
    e.preventDefault();
    try {
      await api('POST', `/api/concerns/${id}/dismiss`, { reason });
      setDismissing(null);
      setReason('');
      onChanged();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <table className="table" data-testid="concerns">
      <thead><tr><th>Reference</th><th>Kind</th><th>From</th><th>What they said</th><th>Status</th><th /></tr></thead>
      <tbody>
        {concerns.map((c) => (
          <tr key={c.id}>
            <td className="mono nowrap">{c.reference}<div className="small muted">{when(c.createdAt)}</div></td>
            <td>{c.kind === 'online_safety' ? 'Online safety' : 'Technical'}</td>
            <td>{c.reporterName ?? <em>anonymous</em>}<div className="small muted">{c.source === 'block_page' ? `block page${c.blockedHost ? ` (${c.blockedHost})` : ''}` : c.source === 'sign_in' ? 'sign-in page' : 'console'}</div></td>
            <td className="incident-text">{c.details}</td>
            <td>{c.status === 'new' ? <span className="tag tag-warn">new</span> : c.status === 'taken_up' ? <Link href={`/incidents/${c.incidentId}`}>taken up</Link> : <span className="tag">dismissed</span>}</td>
            <td>
              {c.status === 'new' ? (
                dismissing === c.id ? (
                  <form className="inline-form" onSubmit={(e) => void dismiss(e, c.id)}>
                    <ErrorMessage error={error} />
                    <Field label="Why no incident is needed"><input value={reason} maxLength={2000} onChange={(e) => setReason(e.target.value)} /></Field>
                    <button type="submit" className="button secondary">Dismiss</button>
                  </form>
                ) : (
                  <div className="actions">
                    <Link className="button" href={`/incidents/new?concern=${c.id}&kind=${c.kind}`}>Take up</Link>
                    <button type="button" className="link-button" onClick={() => setDismissing(c.id)}>Dismiss…</button>
                  </div>
                )
              ) : null}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function NewIncident({ account }: { account: Account }) {
  const params = new URLSearchParams(location.search);
  const alertRef = params.get('alert')?.slice(0, 200) ?? '';
  const concernId = params.get('concern') ?? '';
  const [category, setCategory] = useState(params.get('kind') === 'online_safety' ? 'safeguarding' : params.get('kind') === 'technical' ? 'security' : '');
  const [title, setTitle] = useState('');
  const [summary, setSummary] = useState('');
  const [people, setPeople] = useState('');
  const [devices, setDevices] = useState('');
  const [containment, setContainment] = useState('');
  const [awareAt, setAwareAt] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<string | null>(null);
  const errors = fieldErrors(error);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const problems = formProblems({ category: category ? null : 'choose a category', title: title.trim() ? null : 'say what the incident is, in a few words', summary: summary.trim() ? null : 'say what happened' });
    if (problems) return setError(problems);
    try {
      const created = await api<{ id: string; reference: string; readable: boolean }>('POST', '/api/incidents', {
        category, title, summary, people, devices, containment,
        ...(alertRef ? { alertRef } : {}), ...(concernId ? { concernId } : {}),
        ...(category === 'data_breach' && awareAt ? { awareAt: new Date(awareAt).toISOString() } : {}),
      });
      if (created.readable) navigate(`/incidents/${created.id}`);
      else setDone(created.reference);
    } catch (err) {
      setError(err);
    }
  };
  if (done) {
    return (
      <div className="card narrow">
        <h1>Incident recorded</h1>
        <div className="alert alert-ok" role="status">Recorded as <strong className="mono">{done}</strong>. The people responsible for it have it now.</div>
        <Link href="/" className="link-button">Back to the overview</Link>
      </div>
    );
  }
  return (
    <form className="card" onSubmit={(e) => void submit(e)} noValidate>
      <h1>Record an incident</h1>
      {alertRef ? <p className="muted">From alert <span className="mono">{alertRef}</span>.</p> : null}
      {concernId ? <p className="muted">Taking up a reported concern.</p> : null}
      <ErrorMessage error={error} inline={(f) => f in errors} />
      <Field label="Category" error={errors.category} hint={category === 'data_breach' ? 'A personal-data breach starts the 72-hour clock for deciding whether to report it to the ICO; the DPO is told at once.' : 'Safeguarding incidents are seen only by the DSL; security and cyber incidents by the IT lead, headteacher and DPO.'}>
        <select name="category" value={category} onChange={(e) => setCategory(e.target.value)}>
          <option value="">Choose…</option>
          {Object.entries(categoryLabels).map(([v, l]) => <option key={v} value={v}>{l}</option>)}
        </select>
      </Field>
      <Field label="Title" error={errors.title}><input name="title" maxLength={200} value={title} onChange={(e) => setTitle(e.target.value)} /></Field>
      <Field label="What happened" error={errors.summary}><textarea name="summary" rows={5} maxLength={8000} value={summary} onChange={(e) => setSummary(e.target.value)} /></Field>
      <Field label="People involved" error={errors.people}><textarea name="people" rows={2} maxLength={2000} value={people} onChange={(e) => setPeople(e.target.value)} /></Field>
      <Field label="Devices involved" error={errors.devices}><textarea name="devices" rows={2} maxLength={2000} value={devices} onChange={(e) => setDevices(e.target.value)} /></Field>
      <Field label="Containment so far" hint="What was done at once to stop it (IN-03)." error={errors.containment}><textarea name="containment" rows={2} maxLength={4000} value={containment} onChange={(e) => setContainment(e.target.value)} /></Field>
      {category === 'data_breach' ? (
        <Field label="When the school became aware" hint="Blank: now. The 72 hours run from this moment." error={errors.awareAt}>
          <input name="awareAt" type="datetime-local" value={awareAt} onChange={(e) => setAwareAt(e.target.value)} />
        </Field>
      ) : null}
      <div className="row">
        <button type="submit" className="button">Record the incident</button>
        <Link href={may(account, 'incidents.read') ? '/incidents' : '/'} className="link-button">Cancel</Link>
      </div>
    </form>
  );
}

const fields: Array<[keyof Incident & ('people' | 'devices' | 'containment' | 'cause' | 'actions' | 'policyUpdates'), string]> = [
  ['people', 'People involved'], ['devices', 'Devices involved'], ['containment', 'Containment'], ['cause', 'Cause'], ['actions', 'Actions'], ['policyUpdates', 'Policy updates'],
];

function IncidentDetail({ account, id }: { account: Account; id: string }) {
  const [incident, setIncident] = useState<Incident | null>(null);
  const [error, setError] = useState<unknown>(null);
  const load = useCallback(async () => {
    try {
      setIncident(await api<Incident>('GET', `/api/incidents/${id}`));
    } catch (e) {
      setError(e);
    }
  }, [id]);
  useEffect(() => void load(), [load]);
  if (!incident) return error ? <ErrorMessage error={error} /> : <p className="muted">Loading…</p>;
  const canManage = may(account, 'incidents.manage') && incident.status === 'open';
  return (
    <div className="page" data-testid="incident">
      <p><Link href="/incidents">← Incidents</Link></p>
      <div className="section-head">
        <h1><span className="mono">{incident.reference}</span> {incident.title}</h1>
        <span className={incident.status === 'open' ? 'tag tag-warn' : 'tag tag-ok'}>{incident.status}</span>
      </div>
      <dl className="facts">
        <dt>Category</dt><dd>{incident.categoryLabel}</dd>
        <dt>Recorded</dt><dd>{when(incident.createdAt)} by {incident.recordedBy}{incident.alertRef ? ` from alert ${incident.alertRef}` : ''}{incident.concernReference ? ` from concern ${incident.concernReference}` : ''}</dd>
        <dt>What happened</dt><dd className="policy-text">{incident.summary}</dd>
        {incident.outcome ? (<><dt>Outcome</dt><dd>{incident.outcome}</dd></>) : null}
      </dl>
      {incident.breach ? <BreachPanel account={account} incident={incident} onChanged={setIncident} /> : null}
      {incident.category === 'cyber' || incident.category === 'security' ? <AuthorityPanel canManage={may(account, 'incidents.manage')} incident={incident} onChanged={setIncident} /> : null}
      <ErrorMessage error={error} />
      <RecordFields incident={incident} canManage={canManage} onChanged={setIncident} />
      {canManage && may(account, 'quarantine.manage') ? <QuarantineSlot incident={incident} onChanged={setIncident} /> : null}
      <section className="section-card">
        <h2>Timeline</h2>
        <ol className="steps" data-testid="timeline">
          {(incident.timeline ?? []).map((e) => (
            <li key={e.id}>
              <span className="small muted">{when(e.at)} · {e.by} · {e.kind.replace('_', ' ')}</span>
              <div>{e.text}</div>
            </li>
          ))}
        </ol>
        {canManage ? <AddEntry incident={incident} onChanged={setIncident} /> : null}
      </section>
      {canManage ? <CloseForm incident={incident} onChanged={setIncident} /> : null}
    </div>
  );
}

function BreachPanel({ account, incident, onChanged }: { account: Account; incident: Incident; onChanged: (i: Incident) => void }) {
  const b = incident.breach!;
  const [decision, setDecision] = useState('');
  const [reasoning, setReasoning] = useState('');
  const [reference, setReference] = useState('');
  const [error, setError] = useState<unknown>(null);
  const errors = fieldErrors(error);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const problems = formProblems({ decision: decision ? null : 'choose reportable or not', reasoning: reasoning.trim() ? null : 'say why', reference: decision === 'reportable' && !reference.trim() ? 'give the ICO’s reference' : null });
    if (problems) return setError(problems);
    try {
      onChanged(await api<Incident>('POST', `/api/incidents/${incident.id}/ico-decision`, { decision, reasoning, ...(reference.trim() ? { reference } : {}) }));
    } catch (err) {
      setError(err);
    }
  };
  return (
    <section className="section-card" data-testid="breach">
      <h2>Personal-data breach: 72 hours</h2>
      <p className="breach-clock"><BreachClock breach={b} /></p>
      <dl className="facts">
        <dt>Aware since</dt><dd>{when(b.awareAt)}</dd>
        <dt>ICO decision due by</dt><dd>{when(b.deadline)}</dd>
        {b.icoDecision ? (<><dt>ICO decision</dt><dd>{b.icoDecision === 'reportable' ? `Reported (ICO reference ${b.icoReference})` : 'Not reportable'}: {b.icoReasoning} <span className="muted">({b.icoDecidedBy}, {when(b.icoDecidedAt!)})</span></dd></>) : null}
      </dl>
      {!b.icoDecision && may(account, 'incidents.breach') ? (
        <form className="decision-form" onSubmit={(e) => void submit(e)} noValidate>
          <ErrorMessage error={error} inline={(f) => f in errors} />
          <Field label="ICO decision" error={errors.decision}>
            <select name="decision" value={decision} onChange={(e) => setDecision(e.target.value)}>
              <option value="">Choose…</option>
              <option value="reportable">Reportable: reported to the ICO</option>
              <option value="not_reportable">Not reportable (unlikely to risk people’s rights and freedoms)</option>
            </select>
          </Field>
          <Field label="Why" error={errors.reasoning}><textarea name="reasoning" rows={3} maxLength={4000} value={reasoning} onChange={(e) => setReasoning(e.target.value)} /></Field>
          {decision === 'reportable' ? <Field label="ICO reference" error={errors.reference}><input name="reference" maxLength={100} value={reference} onChange={(e) => setReference(e.target.value)} /></Field> : null}
          <button type="submit" className="button">Record the decision</button>
        </form>
      ) : null}
      {!b.icoDecision && !may(account, 'incidents.breach') ? <p className="muted">The DPO records whether it is reported to the ICO.</p> : null}
    </section>
  );
}

function AuthorityPanel({ canManage, incident, onChanged }: { canManage: boolean; incident: Incident; onChanged: (i: Incident) => void }) {
  const [authority, setAuthority] = useState('action_fraud');
  const [reference, setReference] = useState('');
  const [error, setError] = useState<unknown>(null);
  const errors = fieldErrors(error);
  const r = incident.authorityReport;
  const label: Record<string, string> = { action_fraud: 'Action Fraud', ncsc: 'NCSC', police: 'Police', other: 'Other authority' };
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    try {
      onChanged(await api<Incident>('POST', `/api/incidents/${incident.id}/authority-report`, { authority, reference }));
    } catch (err) {
      setError(err);
    }
  };
  return (
    <section className="section-card">
      <h2>Report to the authorities</h2>
      {r ? <p>Reported to {label[r.authority]} on {when(r.reportedAt)}, reference <span className="mono">{r.reference}</span>.</p> : canManage ? (
        <form className="row-form" onSubmit={(e) => void submit(e)} noValidate>
          <ErrorMessage error={error} inline={(f) => f in errors} />
          <Field label="Reported to"><select value={authority} onChange={(e) => setAuthority(e.target.value)}>{Object.entries(label).map(([v, l]) => <option key={v} value={v}>{l}</option>)}</select></Field>
          <Field label="Their reference" error={errors.reference}><input maxLength={100} value={reference} onChange={(e) => setReference(e.target.value)} /></Field>
          <button type="submit" className="button secondary">Record the report</button>
        </form>
      ) : <p className="muted">Not reported yet.</p>}
    </section>
  );
}

function RecordFields({ incident, canManage, onChanged }: { incident: Incident; canManage: boolean; onChanged: (i: Incident) => void }) {
  const [editing, setEditing] = useState(false);
  const [values, setValues] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(null);
  const errors = fieldErrors(error);
  const start = () => {
    setValues(Object.fromEntries(fields.map(([k]) => [k, incident[k]])));
    setEditing(true);
  };
  const save = async (e: FormEvent) => {
    e.preventDefault();
    const changed = Object.fromEntries(fields.filter(([k]) => values[k] !== incident[k]).map(([k]) => [k, values[k]]));
    if (Object.keys(changed).length === 0) return setEditing(false);
    try {
      onChanged(await api<Incident>('PATCH', `/api/incidents/${incident.id}`, changed));
      setEditing(false);
    } catch (err) {
      setError(err);
    }
  };
  if (editing) {
    return (
      <form className="section-card" onSubmit={(e) => void save(e)} noValidate>
        <h2>The record</h2>
        <ErrorMessage error={error} inline={(f) => f in errors} />
        {fields.map(([k, label]) => (
          <Field key={k} label={label} error={errors[k]}><textarea name={k} rows={2} maxLength={4000} value={values[k] ?? ''} onChange={(e) => setValues({ ...values, [k]: e.target.value })} /></Field>
        ))}
        <div className="row"><button type="submit" className="button">Save</button><button type="button" className="link-button" onClick={() => setEditing(false)}>Cancel</button></div>
      </form>
    );
  }
  return (
    <section className="section-card">
      <div className="section-head"><h2>The record</h2>{canManage ? <button type="button" className="button secondary" onClick={start}>Edit</button> : null}</div>
      <dl className="facts">
        {fields.map(([k, label]) => (<Fragment key={k}><dt>{label}</dt><dd>{incident[k] || <span className="muted">not recorded yet</span>}</dd></Fragment>))}
      </dl>
    </section>
  );
}

/**
 * IN-06: one action quarantines a device for this incident. The filter's quarantine (src/filtering/
 * exceptions.ts: everything blocked at the resolver and proxy but the remediation sites, at once) is
 * made first, carrying the incident's id; the containment step is then added to the timeline. A named
 * person releases it from Filtering → Exceptions.
 */
const macPattern = /^([0-9a-f]{2}[:-]){5}[0-9a-f]{2}$/i;
const ipPattern = /^(\d{1,3}(\.\d{1,3}){3}|[0-9a-f:]*:[0-9a-f:.]+)$/i;

function QuarantineSlot({ incident, onChanged }: { incident: Incident; onChanged: (i: Incident) => void }) {
  const [device, setDevice] = useState('');
  const [error, setError] = useState<unknown>(null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const value = device.trim();
    if (!value) return setError(formProblems({ device: 'give the device’s IP address or MAC address' }));
    const isMac = macPattern.test(value);
    if (!isMac && !ipPattern.test(value)) return setError(formProblems({ device: 'that is not an IP address or a MAC address (like 10.0.4.27 or 00:11:22:33:44:55)' }));
    try {
      await api('POST', '/api/filtering/quarantine', { ...(isMac ? { mac: value } : { address: value }), reason: `Incident ${incident.reference}: ${incident.title}`.slice(0, 1000), incidentId: incident.id });
      onChanged(await api<Incident>('POST', `/api/incidents/${incident.id}/timeline`, { kind: 'quarantine', text: `Device ${value} put in quarantine: everything blocked by the DNS resolver and proxy except the remediation sites, until a named person releases it (Filtering → Exceptions).` }));
      setDevice('');
      setError(null);
    } catch (err) {
      setError(err);
    }
  };
  return (
    <section className="section-card" data-slot="quarantine">
      <h2>Quarantine device</h2>
      <p className="muted">A device suspected of being infected or misused is cut off at once by the DNS resolver and the proxy, except the school’s remediation sites (IN-06). It stays so until a named person releases it.</p>
      <form className="row-form" onSubmit={(e) => void submit(e)} noValidate>
        <ErrorMessage error={error} inline={(f) => f === 'device'} />
        <Field label="Device IP or MAC address" error={fieldErrors(error).device}><input name="device" maxLength={45} value={device} onChange={(e) => setDevice(e.target.value)} /></Field>
        <button type="submit" className="button secondary">Quarantine device</button>
      </form>
    </section>
  );
}

function AddEntry({ incident, onChanged }: { incident: Incident; onChanged: (i: Incident) => void }) {
  const [kind, setKind] = useState('note');
  const [text, setText] = useState('');
  const [error, setError] = useState<unknown>(null);
  const errors = fieldErrors(error);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!text.trim()) return setError(formProblems({ text: 'say what was done or found' }));
    try {
      onChanged(await api<Incident>('POST', `/api/incidents/${incident.id}/timeline`, { kind, text }));
      setText('');
      setError(null);
    } catch (err) {
      setError(err);
    }
  };
  return (
    <form className="row-form" onSubmit={(e) => void submit(e)} noValidate>
      <ErrorMessage error={error} inline={(f) => f in errors} />
      <Field label="Add to the timeline"><select value={kind} onChange={(e) => setKind(e.target.value)}><option value="note">Note</option><option value="containment">Containment step</option></select></Field>
      <Field label="What was done or found" error={errors.text}><input name="entry" maxLength={4000} value={text} onChange={(e) => setText(e.target.value)} /></Field>
      <button type="submit" className="button secondary">Add</button>
    </form>
  );
}

function CloseForm({ incident, onChanged }: { incident: Incident; onChanged: (i: Incident) => void }) {
  const [outcome, setOutcome] = useState('');
  const [error, setError] = useState<unknown>(null);
  const errors = fieldErrors(error);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!outcome.trim()) return setError(formProblems({ outcome: 'say what the outcome was' }));
    try {
      onChanged(await api<Incident>('POST', `/api/incidents/${incident.id}/close`, { outcome }));
    } catch (err) {
      setError(err);
    }
  };
  return (
    <form className="section-card" onSubmit={(e) => void submit(e)} noValidate>
      <h2>Close the incident</h2>
      <ErrorMessage error={error} inline={(f) => f in errors} />
      <Field label="Outcome" error={errors.outcome}><textarea name="outcome" rows={2} maxLength={4000} value={outcome} onChange={(e) => setOutcome(e.target.value)} /></Field>
      <button type="submit" className="button secondary">Close</button>
    </form>
  );
}
