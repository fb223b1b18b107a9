import { useCallback, useEffect, useState } from 'react';
import { api, type Account } from '../api';
import { ErrorMessage, Field, fieldErrors } from '../components';
import { CsvImport } from './CsvImport';

interface Risk { id: string; title: string; owner: string; likelihood: number; impact: number; score: number; treatment: string; reviewAt: string; reviewedAt: string; overdue: boolean }
type Panel = { kind: 'add' } | { kind: 'import' } | { kind: 'edit'; risk: Risk } | { kind: 'review'; risk: Risk } | null;

const day = (iso: string | null) => (iso ? new Date(iso).toLocaleDateString('en-GB', { day: 'numeric', month: 'short', year: 'numeric' }) : '—');
const scores = [1, 2, 3, 4, 5];
const scoreClass = (score: number) => (score >= 15 ? 'tag tag-bad' : score >= 8 ? 'tag tag-warn' : 'tag tag-ok');

/**
 * The risk register (GV-01): each risk with its owner, likelihood and impact (1–5), the score, the
 * treatment and the next review, highest score first. Those who manage it add, edit (wording, owner,
 * treatment), review (re-score and set the next review), close, import and export; every change is
 * audited on the server.
 */
export function RisksPage({ account }: { account: Account }) {
  const canManage = account.permissions.includes('risks.manage');
  const [risks, setRisks] = useState<Risk[] | null>(null);
  const [panel, setPanel] = useState<Panel>(null);
  const [error, setError] = useState<unknown>(null);
  const [message, setMessage] = useState<string | null>(null);
  const load = useCallback(async () => setRisks((await api<{ risks: Risk[] }>('GET', '/api/risks')).risks), []);
  useEffect(() => {
    load().catch(setError);
  }, [load]);
  // The register reloads before the message shows, so what the message says is already on screen.
  const done = (text: string) => {
    setPanel(null);
    setError(null);
    load().then(() => setMessage(text), setError);
  };
  const close = (r: Risk) => {
    if (!window.confirm(`Close the risk “${r.title}”? It leaves the register (the audit trail keeps it).`)) return;
    setMessage(null);
    api('DELETE', `/api/risks/${r.id}`).then(() => done(`“${r.title}” closed.`), setError);
  };
  const toggle = (next: Panel) => setPanel(panel && next && panel.kind === next.kind && !('risk' in next) ? null : next);
  return (
    <section>
      <h1>Risks</h1>
      <p className="muted">Each technical-security risk with its owner, likelihood and impact (1 to 5; the score is their product), how it is treated and when it is next reviewed (GV-01).</p>
      <ErrorMessage error={error} />
      {message ? <div className="alert alert-ok" role="status">{message}</div> : null}
      <div className="toolbar">
        {canManage ? (
          <span>
            <button type="button" className="button" onClick={() => toggle({ kind: 'add' })}>Add a risk</button>{' '}
            <button type="button" className="button secondary" onClick={() => toggle({ kind: 'import' })}>Import CSV</button>
          </span>
        ) : <span />}
        <a className="button secondary" href="/api/risks/export.csv" download>Export CSV</a>
      </div>
      {panel?.kind === 'import' ? <CsvImport label="Import risks" url="/api/risks/import" hint="Columns: title, owner, likelihood (1–5), impact (1–5), treatment, review_at (a future date like 2027-01-31). An exported register imports back. Every row is checked first: one error and nothing is imported." onDone={done} /> : null}
      {panel?.kind === 'add' ? <RiskForm onCancel={() => setPanel(null)} onSaved={done} /> : null}
      {panel?.kind === 'edit' || panel?.kind === 'review' ? <RiskForm key={`${panel.kind}-${panel.risk.id}`} risk={panel.risk} mode={panel.kind} onCancel={() => setPanel(null)} onSaved={done} /> : null}
      {risks && risks.length === 0 ? <p className="empty" data-testid="empty">The risk register is empty.{canManage ? ' Add a risk or import a CSV.' : ''}</p> : null}
      {risks && risks.length > 0 ? (
        <div className="matrix-wrap">
          <table className="table" data-testid="risks">
            <thead><tr><th>Risk</th><th>Owner</th><th>Likelihood</th><th>Impact</th><th>Score</th><th>Treatment</th><th>Review by</th>{canManage ? <th aria-label="Actions" /> : null}</tr></thead>
            <tbody>
              {risks.map((r) => (
                <tr key={r.id} data-risk={r.title} className={r.overdue ? 'severity-high' : undefined}>
                  <td><strong>{r.title}</strong></td>
                  <td>{r.owner}</td>
                  <td>{r.likelihood}</td>
                  <td>{r.impact}</td>
                  <td><span className={scoreClass(r.score)}>{r.score}</span></td>
                  <td className="small">{r.treatment}</td>
                  <td>{day(r.reviewAt)}{r.overdue ? <span className="tag tag-bad">review overdue</span> : null}<div className="small muted">last reviewed {day(r.reviewedAt)}</div></td>
                  {canManage ? (
                    <td className="small">
                      <button type="button" className="link-button" onClick={() => setPanel({ kind: 'review', risk: r })}>Review</button> ·{' '}
                      <button type="button" className="link-button" onClick={() => setPanel({ kind: 'edit', risk: r })}>Edit</button> ·{' '}
                      <button type="button" className="link-button" onClick={() => close(r)}>Close</button>
                    </td>
                  ) : null}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </section>
  );
}

/** Add (every field), edit (title, owner, treatment: not a review) or review (re-score and the next review date). */
function RiskForm({ risk, mode = 'add', onSaved, onCancel }: { risk?: Risk; mode?: 'add' | 'edit' | 'review'; onSaved: (m: string) => void; onCancel: () => void }) {
  const [form, setForm] = useState({ title: risk?.title ?? '', owner: risk?.owner ?? '', likelihood: String(risk?.likelihood ?? 3), impact: String(risk?.impact ?? 3), treatment: risk?.treatment ?? '', reviewAt: mode === 'edit' ? (risk?.reviewAt.slice(0, 10) ?? '') : '' });
  const [error, setError] = useState<unknown>(null);
  const errors = fieldErrors(error);
  const scored = mode !== 'edit';
  const submit = () => {
    setError(null);
    const full = { title: form.title, owner: form.owner, likelihood: Number(form.likelihood), impact: Number(form.impact), treatment: form.treatment, reviewAt: form.reviewAt };
    const request =
      mode === 'add' ? api<Risk>('POST', '/api/risks', full).then((r) => `“${r.title}” added (score ${r.score}).`)
      : mode === 'edit' ? api<Risk>('PATCH', `/api/risks/${risk!.id}`, { title: form.title, owner: form.owner, treatment: form.treatment }).then((r) => `“${r.title}” changed.`)
      : api<Risk>('PUT', `/api/risks/${risk!.id}`, full).then((r) => `“${r.title}” reviewed: score ${r.score}, next review ${day(r.reviewAt)}.`);
    request.then(onSaved, setError);
  };
  const heading = mode === 'add' ? 'Add a risk' : mode === 'edit' ? `Edit “${risk!.title}”` : `Review “${risk!.title}”`;
  return (
    <form className="card" data-testid="risk-form" noValidate onSubmit={(e) => { e.preventDefault(); submit(); }}>
      <h2>{heading}</h2>
      {mode === 'edit' ? <p className="small muted">Correct the wording, the owner or the treatment. This is not a review: the score and the review date stay as they are.</p> : null}
      {mode === 'review' ? <p className="small muted">Score the risk as it stands today and set when it is next reviewed.</p> : null}
      <ErrorMessage error={error} inline={(f) => f in form} />
      <Field label="Risk" error={errors.title}><input value={form.title} onChange={(e) => setForm({ ...form, title: e.target.value })} /></Field>
      <Field label="Owner" hint="who answers for it" error={errors.owner}><input value={form.owner} onChange={(e) => setForm({ ...form, owner: e.target.value })} /></Field>
      {scored ? (
        <>
          <Field label="Likelihood" hint="1 rare … 5 almost certain" error={errors.likelihood}><select value={form.likelihood} onChange={(e) => setForm({ ...form, likelihood: e.target.value })}>{scores.map((n) => <option key={n} value={n}>{n}</option>)}</select></Field>
          <Field label="Impact" hint="1 negligible … 5 severe" error={errors.impact}><select value={form.impact} onChange={(e) => setForm({ ...form, impact: e.target.value })}>{scores.map((n) => <option key={n} value={n}>{n}</option>)}</select></Field>
        </>
      ) : null}
      <Field label="Treatment" hint="how the risk is reduced, transferred or accepted" error={errors.treatment}><textarea value={form.treatment} onChange={(e) => setForm({ ...form, treatment: e.target.value })} /></Field>
      {scored ? <Field label="Next review" error={errors.reviewAt}><input type="date" value={form.reviewAt} onChange={(e) => setForm({ ...form, reviewAt: e.target.value })} /></Field> : null}
      <p>
        <button type="submit" className="button">{mode === 'add' ? 'Add' : mode === 'edit' ? 'Save' : 'Record the review'}</button>{' '}
        <button type="button" className="button secondary" onClick={onCancel}>Cancel</button>
      </p>
    </form>
  );
}
