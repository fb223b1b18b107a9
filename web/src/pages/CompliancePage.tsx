import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, type Account } from '../api';
import { ErrorMessage, Field, fieldErrors } from '../components';
import { Link, usePath } from '../router';

type Status = 'met' | 'due_soon' | 'not_met';

interface Signoff {
  id: string;
  signedBy: string;
  signedAt: string;
  validUntil: string;
  evidence: string;
}

interface Evidence {
  kind: 'probe' | 'signoff';
  id: string;
  title: string;
  status: Status;
  summary: string;
  links: Array<{ label: string; href: string }>;
  dueAt: string | null;
  signoff?: { statement: string; validMonths: number; by: string[]; current: Signoff | null };
}

interface Clause {
  id: string;
  title: string;
  requirements: string[];
  status: Status;
  evidence: Evidence[];
}

interface Framework {
  id: string;
  name: string;
  publisher: string;
  version: string;
  url: string | null;
  note: string | null;
  counts: { met: number; due_soon: number; not_met: number; total: number };
  clauses: Clause[];
}

interface HistoryPoint {
  day: string;
  met: number;
  dueSoon: number;
  notMet: number;
  total: number;
  changed: Array<{ clause: string; from: Status | null; to: Status }>;
}

const statusLabel: Record<Status, string> = { met: 'met', due_soon: 'due soon', not_met: 'not met' };
const statusTag: Record<Status, string> = { met: 'tag tag-ok', due_soon: 'tag tag-warn', not_met: 'tag tag-bad' };
const roleWords = (roles: string[]) => roles.map((r) => ({ senior_leader: 'a senior leader', dsl: 'the DSL', dpo: 'the DPO', governor: 'a governor' })[r] ?? r).join(' or ');
const day = (iso: string) => new Date(iso).toLocaleDateString('en-GB', { day: 'numeric', month: 'short', year: 'numeric' });

function StatusTag({ status }: { status: Status }) {
  return <span className={statusTag[status]} data-status={status}>{statusLabel[status]}</span>;
}

/** GV-08: where the school stands against each framework, from live data, with the evidence behind each clause. */
export function CompliancePage({ account }: { account: Account }) {
  const path = usePath();
  const selected = path.startsWith('/compliance/') ? decodeURIComponent(path.slice('/compliance/'.length)) : null;
  const [frameworks, setFrameworks] = useState<Framework[] | null>(null);
  const [error, setError] = useState<unknown>(null);

  const load = useCallback(async () => {
    try {
      setFrameworks((await api<{ frameworks: Framework[] }>('GET', '/api/compliance')).frameworks);
    } catch (e) {
      setError(e);
    }
  }, []);
  useEffect(() => {
    void load();
  }, [load]);

  const fw = selected ? frameworks?.find((f) => f.id === selected) : undefined;
  if (selected && frameworks && !fw) {
    return (
      <section>
        <h1>Compliance</h1>
        <div className="alert alert-error">There is no framework “{selected}”. <Link href="/compliance">See all frameworks</Link>.</div>
      </section>
    );
  }
  if (fw) return <FrameworkView framework={fw} account={account} onChanged={load} />;

  return (
    <section>
      <h1>Compliance</h1>
      <p className="muted">
        Where the school stands against the DfE standards, Cyber Essentials and its own policy — worked out now from Gatehouse’s records, and from
        sign-offs by the people responsible where a record cannot show it.
      </p>
      <ErrorMessage error={error} />
      <div className="toolbar">
        <a className="button secondary" href="/api/compliance/governors-report/pdf" download>
          Governors’ report (PDF)
        </a>
        <Link className="button secondary" href="/security-policy">
          The written policy
        </Link>
      </div>
      {frameworks ? (
        <div className="compliance-cards">
          {frameworks.map((f) => (
            <Link key={f.id} href={`/compliance/${f.id}`} className="card compliance-card" data-framework={f.id}>
              <h2>{f.name}</h2>
              <div className="small muted">{f.publisher} · version {f.version}</div>
              <Bar counts={f.counts} />
              <div className="compliance-counts">
                <span><strong>{f.counts.met}</strong> met</span>
                <span><strong>{f.counts.due_soon}</strong> due soon</span>
                <span><strong>{f.counts.not_met}</strong> not met</span>
                <span className="muted">of {f.counts.total}</span>
              </div>
            </Link>
          ))}
        </div>
      ) : (
        <p className="muted">Working it out…</p>
      )}
    </section>
  );
}

function Bar({ counts }: { counts: Framework['counts'] }) {
  const pct = (n: number) => `${(100 * n) / Math.max(1, counts.total)}%`;
  return (
    <div className="compliance-bar" role="img" aria-label={`${counts.met} met, ${counts.due_soon} due soon, ${counts.not_met} not met, of ${counts.total}`}>
      <span className="met" style={{ width: pct(counts.met) }} />
      <span className="due" style={{ width: pct(counts.due_soon) }} />
      <span className="not" style={{ width: pct(counts.not_met) }} />
    </div>
  );
}

function FrameworkView({ framework, account, onChanged }: { framework: Framework; account: Account; onChanged: () => Promise<void> }) {
  const [filter, setFilter] = useState<Status | 'all'>('all');
  const [history, setHistory] = useState<HistoryPoint[] | null>(null);
  const [signing, setSigning] = useState<string | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  useEffect(() => {
    void api<{ points: HistoryPoint[] }>('GET', `/api/compliance/${framework.id}/history`).then((r) => setHistory(r.points), () => setHistory([]));
  }, [framework.id, framework.counts.met, framework.counts.not_met]);
  const clauses = framework.clauses.filter((c) => filter === 'all' || c.status === filter);

  return (
    <section>
      <div className="small"><Link href="/compliance">Compliance</Link> ›</div>
      <h1>{framework.name}</h1>
      <p className="muted">
        {framework.publisher} · version {framework.version}
        {framework.url ? <> · <a href={framework.url} target="_blank" rel="noreferrer noopener">the standard itself</a></> : null}
      </p>
      {framework.note ? <p className="small muted">{framework.note}</p> : null}
      <Bar counts={framework.counts} />
      {message ? <div className="alert alert-ok" role="status">{message}</div> : null}
      <div className="toolbar">
        <div role="group" aria-label="Show">
          {(['all', 'not_met', 'due_soon', 'met'] as const).map((s) => (
            <button key={s} type="button" className={filter === s ? 'button small' : 'button small secondary'} aria-pressed={filter === s} onClick={() => setFilter(s)}>
              {s === 'all' ? `All (${framework.counts.total})` : `${statusLabel[s][0]!.toUpperCase()}${statusLabel[s].slice(1)} (${s === 'met' ? framework.counts.met : s === 'due_soon' ? framework.counts.due_soon : framework.counts.not_met})`}
            </button>
          ))}
        </div>
      </div>
      <table className="table compliance-table" data-testid="clauses">
        <thead>
          <tr>
            <th>Clause</th>
            <th>Status</th>
            <th>Evidence</th>
          </tr>
        </thead>
        <tbody>
          {clauses.map((c) => (
            <tr key={c.id} data-clause={c.id} className={c.status === 'not_met' ? 'severity-high' : undefined}>
              <td className="clause-title">
                <strong>{c.id}</strong> {c.title}
                {c.requirements.length > 0 ? <div className="small muted">{c.requirements.join(' · ')}</div> : null}
              </td>
              <td className="nowrap"><StatusTag status={c.status} /></td>
              <td>
                {c.evidence.map((e, i) => (
                  <div key={i} className="evidence">
                    <div>
                      <StatusTag status={e.status} /> {e.kind === 'probe' ? <span className="small muted">checked by Gatehouse:</span> : <span className="small muted">signed off:</span>} {e.title}
                    </div>
                    <div className="small">
                      {e.summary}
                      {e.links.map((l) => (
                        <span key={l.href}> · <Link href={l.href}>{l.label}</Link></span>
                      ))}
                    </div>
                    {e.signoff?.current ? <div className="small muted">Evidence seen: {e.signoff.current.evidence}</div> : null}
                    {e.signoff ? (
                      signing === `${c.id}` ? (
                        <SignoffForm
                          framework={framework.id}
                          clause={c.id}
                          statement={e.signoff.statement}
                          validMonths={e.signoff.validMonths}
                          onCancel={() => setSigning(null)}
                          onDone={async (text) => {
                            setSigning(null);
                            setMessage(text);
                            await onChanged();
                          }}
                        />
                      ) : e.signoff.by.includes(account.role) && account.permissions.includes('compliance.signoff') ? (
                        <button type="button" className="link-button small" onClick={() => setSigning(c.id)} aria-label={`Sign off clause ${c.id}`}>
                          {e.signoff.current ? 'Sign off again' : 'Sign off'}
                        </button>
                      ) : (
                        <div className="small muted">Signed off by {roleWords(e.signoff.by)}.</div>
                      )
                    ) : null}
                  </div>
                ))}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>History</h2>
      {history && history.length === 0 ? <p className="muted">No history yet: Gatehouse records the standing every day.</p> : null}
      {history && history.length > 0 ? (
        <table className="table" data-testid="history">
          <thead>
            <tr>
              <th>Day</th>
              <th>Met</th>
              <th>Due soon</th>
              <th>Not met</th>
              <th>What changed</th>
            </tr>
          </thead>
          <tbody>
            {[...history].reverse().slice(0, 30).map((p) => (
              <tr key={p.day}>
                <td className="nowrap">{day(p.day)}</td>
                <td>{p.met}</td>
                <td>{p.dueSoon}</td>
                <td>{p.notMet}</td>
                <td className="small">{p.changed.length === 0 ? <span className="muted">—</span> : p.changed.map((ch) => `${ch.clause}: ${ch.from ? statusLabel[ch.from] : 'new'} → ${statusLabel[ch.to]}`).join('; ')}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </section>
  );
}

function SignoffForm(props: { framework: string; clause: string; statement: string; validMonths: number; onCancel: () => void; onDone: (text: string) => Promise<void> }) {
  const [evidence, setEvidence] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const r = await api<Signoff>('POST', `/api/compliance/${props.framework}/clauses/${encodeURIComponent(props.clause)}/signoffs`, { evidence });
      await props.onDone(`Clause ${props.clause} signed off until ${day(r.validUntil)}.`);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="card signoff-form" onSubmit={(e) => void submit(e)}>
      <p className="small">You are confirming: <strong>{props.statement}</strong>. It holds for {props.validMonths} months and is recorded in the audit trail with your name.</p>
      <ErrorMessage error={error} inline={(f) => f === 'evidence'} />
      <Field label="What you saw" hint="The document, meeting or record, and where it is kept" error={fieldErrors(error).evidence}>
        <textarea value={evidence} onChange={(e) => setEvidence(e.target.value)} rows={3} maxLength={4000} required />
      </Field>
      <div className="row">
        <button type="submit" className="button" disabled={busy}>Sign off</button>
        <button type="button" className="button secondary" onClick={props.onCancel}>Cancel</button>
      </div>
    </form>
  );
}
