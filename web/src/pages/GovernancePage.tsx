import { useCallback, useEffect, useState, type FormEvent, type ReactNode } from 'react';
import { api, type Account } from '../api';
import { ErrorMessage, Field, fieldErrors } from '../components';

/**
 * The governance registers (issue 12): the filtering and monitoring review (GV-02), reviews and
 * audits with recommendations (GV-01), data-protection walks (GV-09), the physical-security
 * checklist (GV-10), policy reviews (GV-06), resource shortfalls reported to governors (GV-07) and
 * training records per member of staff (GV-05). "My training" shows a person their own.
 */
interface ChecklistEntry { point: string; label: string; result?: 'pass' | 'fail'; note: string }
interface Recommendation { id: string; text: string; owner: string; dueAt: string; status: string; overdue: boolean }
interface Review { id: string; kind: string; title: string; reviewedAt: string; reviewedBy: string; checklist: ChecklistEntry[]; failed: string[]; findings: string; reportedTo: string; recommendations: Recommendation[] }
interface FilteringStatus { last: { reviewedAt: string; reviewedBy: string; reportedTo: string } | null; changes: Array<{ id: string; kind: string; description: string; recordedAt: string; recordedBy: string }>; dueAt: string | null; reason: string; overdue: boolean; dueSoon: boolean }
interface PolicyReview { id: string; policy: string; reviewedAt: string; nextReviewAt: string; reviewedBy: string; notes: string; overdue: boolean; dueSoon: boolean }
interface Shortfall { id: string; title: string; risk: string; recordedAt: string; reportedToGovernorsAt: string | null; resolvedAt: string | null }
interface Point { id: string; label: string }
interface Data { reviews: Review[]; filtering: FilteringStatus; policies: PolicyReview[]; shortfalls: Shortfall[]; filteringPoints: Point[]; physicalItems: Point[] }
interface TrainingEntry { id: string; course: string; completedAt: string; expiresAt: string; certificateReference: string | null; recordedBy: string }
interface PersonTraining { accountId: string; username: string; displayName: string; role: string; aupAcceptedAt: string | null; aupLatestAt: string | null; records: TrainingEntry[]; currentUntil: string | null; state: 'current' | 'due_soon' | 'lapsed' | 'none' }

const day = (iso: string | null | undefined) => (iso ? new Date(iso).toLocaleDateString('en-GB', { day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC' }) : '—');
const statusLabel: Record<string, string> = { open: 'Open', in_progress: 'In progress', done: 'Done' };
const trainingLabel: Record<PersonTraining['state'], string> = { current: 'Current', due_soon: 'Due soon', lapsed: 'Lapsed', none: 'No training recorded' };
const changeLabel: Record<string, string> = { safeguarding_risk: 'A safeguarding risk was identified', working_practice: 'A change in working practice (remote access, BYOD…)', new_technology: 'New technology was introduced' };

function useAction(load: () => Promise<void>) {
  const [error, setError] = useState<unknown>(null);
  const [message, setMessage] = useState<string | null>(null);
  const act = async (run: () => Promise<string>): Promise<boolean> => {
    setError(null);
    setMessage(null);
    try {
      setMessage(await run());
      await load();
      return true;
    } catch (e) {
      setError(e);
      return false;
    }
  };
  return { error, message, act };
}

function ExportLink({ register }: { register: string }) {
  return <a className="button secondary" href={`/api/governance/export/${register}`} download>Export CSV</a>;
}

/** Recommendations typed into a review: text, owner and due date each. */
interface RecommendationDraft { text: string; owner: string; dueAt: string }
function RecommendationsEditor({ value, onChange, errors }: { value: RecommendationDraft[]; onChange: (v: RecommendationDraft[]) => void; errors: Record<string, string> }) {
  const set = (i: number, patch: Partial<RecommendationDraft>) => onChange(value.map((r, n) => (n === i ? { ...r, ...patch } : r)));
  return (
    <fieldset className="recommendations">
      <legend>Recommendations (each with an owner and a due date)</legend>
      {value.map((r, i) => (
        <div key={i} className="row" data-testid={`recommendation-${i}`}>
          <Field label={`Recommendation ${i + 1}`} error={errors[`recommendations.${i}.text`]}><input value={r.text} onChange={(e) => set(i, { text: e.target.value })} /></Field>
          <Field label={`Owner of recommendation ${i + 1}`} error={errors[`recommendations.${i}.owner`]}><input value={r.owner} onChange={(e) => set(i, { owner: e.target.value })} /></Field>
          <Field label={`Due date of recommendation ${i + 1}`} error={errors[`recommendations.${i}.dueAt`]}><input type="date" value={r.dueAt} onChange={(e) => set(i, { dueAt: e.target.value })} /></Field>
          <button type="button" className="button secondary" onClick={() => onChange(value.filter((_, n) => n !== i))}>Remove</button>
        </div>
      ))}
      <button type="button" className="button secondary" onClick={() => onChange([...value, { text: '', owner: '', dueAt: '' }])}>Add a recommendation</button>
    </fieldset>
  );
}

function RecommendationList({ items, canManage, act }: { items: Recommendation[]; canManage: boolean; act: (run: () => Promise<string>) => Promise<boolean> }) {
  if (items.length === 0) return <p className="muted small">No recommendations.</p>;
  return (
    <table className="table" data-testid="recommendations">
      <thead><tr><th>Recommendation</th><th>Owner</th><th>Due</th><th>Status</th></tr></thead>
      <tbody>
        {items.map((r) => (
          <tr key={r.id} className={r.overdue ? 'overdue' : undefined}>
            <td>{r.text}</td><td>{r.owner}</td><td>{day(r.dueAt)}{r.overdue ? ' (overdue)' : ''}</td>
            <td>
              {canManage ? (
                <select aria-label={`Status of “${r.text}”`} value={r.status} onChange={(e) => void act(async () => { await api('PUT', `/api/governance/recommendations/${r.id}`, { status: e.target.value }); return 'Status saved.'; })}>
                  {Object.entries(statusLabel).map(([v, l]) => <option key={v} value={v}>{l}</option>)}
                </select>
              ) : statusLabel[r.status] ?? r.status}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function ReviewCard({ review, canManage, act }: { review: Review; canManage: boolean; act: (run: () => Promise<string>) => Promise<boolean> }) {
  return (
    <article className="card" data-testid={`review-${review.kind}`}>
      <h3>{review.title} <span className="muted small">{day(review.reviewedAt)}, {review.reviewedBy}</span></h3>
      <p><strong>Findings:</strong> {review.findings || '—'}</p>
      <p><strong>Reported to:</strong> {review.reportedTo}</p>
      {review.checklist.length ? (
        <details>
          <summary>{review.checklist.length} points{review.failed.length ? `, ${review.failed.length} failed` : ''}</summary>
          <ul className="small">{review.checklist.map((c) => <li key={c.point}><strong>{c.label}</strong>{c.result ? ` — ${c.result === 'pass' ? 'passed' : 'FAILED'}` : ''}{c.note ? `: ${c.note}` : ''}</li>)}</ul>
        </details>
      ) : null}
      {review.failed.length ? <p className="alert alert-error">Failed: {review.failed.join('; ')}</p> : null}
      <RecommendationList items={review.recommendations} canManage={canManage} act={act} />
    </article>
  );
}

function Section({ id, title, requirement, children, actions }: { id: string; title: string; requirement: string; children: ReactNode; actions?: ReactNode }) {
  return (
    <section aria-labelledby={`${id}-h`} className="governance-section">
      <h2 id={`${id}-h`}>{title} <span className="muted small">({requirement})</span></h2>
      {actions ? <p className="actions">{actions}</p> : null}
      {children}
    </section>
  );
}

const emptyBase = { reviewedAt: '', findings: '', reportedTo: '' };
const withDate = <T extends { reviewedAt: string }>(v: T) => { const { reviewedAt, ...rest } = v; return reviewedAt ? v : rest; };
const drafts = (r: RecommendationDraft[]) => r.filter((x) => x.text || x.owner || x.dueAt);

export function GovernancePage({ account }: { account: Account }) {
  const canManage = account.permissions.includes('governance.manage');
  const canTrain = account.permissions.includes('training.manage');
  const [data, setData] = useState<Data | null>(null);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [open, setOpen] = useState<string | null>(null);
  const load = useCallback(async () => {
    try {
      setData(await api<Data>('GET', '/api/governance'));
    } catch (e) {
      setLoadError(e);
    }
  }, []);
  useEffect(() => void load(), [load]);
  const { error, message, act } = useAction(load);
  const errors = fieldErrors(error);

  // Forms
  const [filtering, setFiltering] = useState({ ...emptyBase, points: {} as Record<string, string>, recommendations: [] as RecommendationDraft[] });
  const [change, setChange] = useState({ kind: 'new_technology', description: '' });
  const [audit, setAudit] = useState({ ...emptyBase, kind: 'audit', title: '', recommendations: [] as RecommendationDraft[] });
  const [walk, setWalk] = useState({ ...emptyBase, items: [{ area: '', result: 'pass', note: '' }], recommendations: [] as RecommendationDraft[] });
  const [physical, setPhysical] = useState({ ...emptyBase, items: {} as Record<string, { result: string; note: string }>, recommendations: [] as RecommendationDraft[] });
  const [policy, setPolicy] = useState({ policy: '', reviewedAt: '', nextReviewAt: '', notes: '' });
  const [shortfall, setShortfall] = useState({ title: '', risk: '', reportedToGovernorsAt: '' });
  const [reported, setReported] = useState<Record<string, string>>({});

  const submit = (name: string, run: () => Promise<string>, reset: () => void) => async (event: FormEvent) => {
    event.preventDefault();
    if (await act(run)) {
      reset();
      setOpen(null);
    }
    void name;
  };
  const toggle = (name: string, label: string) => (canManage ? <button type="button" className="button" aria-expanded={open === name} onClick={() => setOpen(open === name ? null : name)}>{label}</button> : null);
  const kinds = (k: string[]) => data?.reviews.filter((r) => k.includes(r.kind)) ?? [];
  const lastPhysical = kinds(['physical_security'])[0];

  return (
    <section>
      <h1>Governance</h1>
      <p className="muted">Reviews, audits, walks and checks of technical security, the policies’ reviews, shortfalls reported to governors and staff training. What falls due shows on the overview.</p>
      <ErrorMessage error={loadError} />
      {message ? <div className="alert alert-success" role="status">{message}</div> : null}
      <ErrorMessage error={error} inline={(f) => f in errors} />

      <Section id="filtering" title="Filtering and monitoring review" requirement="GV-02, P4 9.14–9.17" actions={<>{toggle('filtering', 'Record the filtering and monitoring review')} {toggle('change', 'Record a change')} <ExportLink register="filtering" /></>}>
        {data ? (
          <p data-testid="filtering-status" className={data.filtering.overdue ? 'alert alert-error' : data.filtering.dueSoon ? 'alert alert-warning' : undefined}>
            {data.filtering.last ? `Last reviewed ${day(data.filtering.last.reviewedAt)} by ${data.filtering.last.reviewedBy}, reported to ${data.filtering.last.reportedTo}. ` : 'No filtering and monitoring review is recorded. '}
            {data.filtering.dueAt ? `Next review due by ${day(data.filtering.dueAt)} (${data.filtering.reason}).` : 'A review is due now.'}
          </p>
        ) : null}
        {data && data.filtering.changes.length ? (
          <ul data-testid="review-triggers">{data.filtering.changes.map((c) => <li key={c.id}>{day(c.recordedAt)}: {changeLabel[c.kind] ?? c.kind} — {c.description} ({c.recordedBy})</li>)}</ul>
        ) : null}
        {open === 'change' ? (
          <form className="card" aria-label="Record a change" onSubmit={submit('change', async () => { await api('POST', '/api/governance/review-triggers', change); return 'Change recorded: the review is brought forward.'; }, () => setChange({ kind: 'new_technology', description: '' }))}>
            <p className="small muted">P4 9.17: a review is also due when a safeguarding risk is identified, working practice changes or new technology is introduced.</p>
            <Field label="What kind of change" error={errors.kind}><select value={change.kind} onChange={(e) => setChange({ ...change, kind: e.target.value })}>{Object.entries(changeLabel).map(([v, l]) => <option key={v} value={v}>{l}</option>)}</select></Field>
            <Field label="What changed" error={errors.description}><textarea value={change.description} onChange={(e) => setChange({ ...change, description: e.target.value })} /></Field>
            <button type="submit" className="button">Record change</button>
          </form>
        ) : null}
        {open === 'filtering' && data ? (
          <form className="card" aria-label="Filtering and monitoring review" onSubmit={submit('filtering', async () => {
            await api('POST', '/api/governance/filtering-reviews', withDate({ reviewedAt: filtering.reviewedAt, findings: filtering.findings, reportedTo: filtering.reportedTo, recommendations: drafts(filtering.recommendations), points: Object.fromEntries(data.filteringPoints.map((p) => [p.id, { note: filtering.points[p.id] ?? '' }])) }));
            return 'Filtering and monitoring review recorded.';
          }, () => setFiltering({ ...emptyBase, points: {}, recommendations: [] }))}>
            <p className="small muted">The review takes account of each point below (P4 9.15): say what was found for each. It is carried out by senior leaders and the DSL with the IT provider (P4 9.14).</p>
            {data.filteringPoints.map((p) => (
              <Field key={p.id} label={p.label} error={errors[`points.${p.id}.note`] ?? errors[`points.${p.id}`]}>
                <textarea value={filtering.points[p.id] ?? ''} onChange={(e) => setFiltering({ ...filtering, points: { ...filtering.points, [p.id]: e.target.value } })} />
              </Field>
            ))}
            <Field label="Date of the review" hint="Today if left empty." error={errors.reviewedAt}><input type="date" value={filtering.reviewedAt} onChange={(e) => setFiltering({ ...filtering, reviewedAt: e.target.value })} /></Field>
            <Field label="Findings" hint="What the review found overall, and what it informs (P4 9.16: policies, roles, training, curriculum, procurement, checks, monitoring)." error={errors.findings}><textarea value={filtering.findings} onChange={(e) => setFiltering({ ...filtering, findings: e.target.value })} /></Field>
            <Field label="Reported to" error={errors.reportedTo}><input value={filtering.reportedTo} onChange={(e) => setFiltering({ ...filtering, reportedTo: e.target.value })} /></Field>
            <RecommendationsEditor value={filtering.recommendations} onChange={(r) => setFiltering({ ...filtering, recommendations: r })} errors={errors} />
            <p><button type="submit" className="button">Record review</button></p>
          </form>
        ) : null}
        {kinds(['filtering_monitoring']).slice(0, 3).map((r) => <ReviewCard key={r.id} review={r} canManage={canManage} act={act} />)}
      </Section>

      <Section id="reviews" title="Reviews and audits" requirement="GV-01" actions={<>{toggle('audit', 'Record a review or audit')} <ExportLink register="reviews" /> <a className="button secondary" href="/api/governance/export/recommendations" download>Export recommendations</a></>}>
        {open === 'audit' ? (
          <form className="card" aria-label="Review or audit" onSubmit={submit('audit', async () => { await api('POST', '/api/governance/reviews', withDate({ ...audit, recommendations: drafts(audit.recommendations) })); return 'Review recorded.'; }, () => setAudit({ ...emptyBase, kind: 'audit', title: '', recommendations: [] }))}>
            <Field label="Kind" error={errors.kind}><select value={audit.kind} onChange={(e) => setAudit({ ...audit, kind: e.target.value })}><option value="audit">Audit</option><option value="review">Review</option></select></Field>
            <Field label="What was reviewed or audited" error={errors.title}><input value={audit.title} onChange={(e) => setAudit({ ...audit, title: e.target.value })} /></Field>
            <Field label="Date" hint="Today if left empty." error={errors.reviewedAt}><input type="date" value={audit.reviewedAt} onChange={(e) => setAudit({ ...audit, reviewedAt: e.target.value })} /></Field>
            <Field label="Findings" error={errors.findings}><textarea value={audit.findings} onChange={(e) => setAudit({ ...audit, findings: e.target.value })} /></Field>
            <Field label="Reported to" hint="The senior leaders the findings went to, and when." error={errors.reportedTo}><input value={audit.reportedTo} onChange={(e) => setAudit({ ...audit, reportedTo: e.target.value })} /></Field>
            <RecommendationsEditor value={audit.recommendations} onChange={(r) => setAudit({ ...audit, recommendations: r })} errors={errors} />
            <p><button type="submit" className="button">Record</button></p>
          </form>
        ) : null}
        {data && kinds(['audit', 'review']).length === 0 ? <p className="empty">No review or audit is recorded.</p> : null}
        {kinds(['audit', 'review']).map((r) => <ReviewCard key={r.id} review={r} canManage={canManage} act={act} />)}
      </Section>

      <Section id="walks" title="Data-protection walks and spot checks" requirement="GV-09" actions={<>{toggle('walk', 'Record a walk')} <ExportLink register="walks" /></>}>
        {open === 'walk' ? (
          <form className="card" aria-label="Data-protection walk" onSubmit={submit('walk', async () => { await api('POST', '/api/governance/dp-walks', withDate({ ...walk, recommendations: drafts(walk.recommendations) })); return 'Walk recorded.'; }, () => setWalk({ ...emptyBase, items: [{ area: '', result: 'pass', note: '' }], recommendations: [] }))}>
            {walk.items.map((item, i) => (
              <div key={i} className="row">
                <Field label={`Area, system or device ${i + 1}`} error={errors[`items.${i}.area`]}><input value={item.area} onChange={(e) => setWalk({ ...walk, items: walk.items.map((x, n) => (n === i ? { ...x, area: e.target.value } : x)) })} /></Field>
                <Field label={`Result ${i + 1}`}><select value={item.result} onChange={(e) => setWalk({ ...walk, items: walk.items.map((x, n) => (n === i ? { ...x, result: e.target.value } : x)) })}><option value="pass">Passed</option><option value="fail">Failed</option></select></Field>
                <Field label={`Note ${i + 1}`}><input value={item.note} onChange={(e) => setWalk({ ...walk, items: walk.items.map((x, n) => (n === i ? { ...x, note: e.target.value } : x)) })} /></Field>
              </div>
            ))}
            <button type="button" className="button secondary" onClick={() => setWalk({ ...walk, items: [...walk.items, { area: '', result: 'pass', note: '' }] })}>Add something checked</button>
            <Field label="Date" hint="Today if left empty." error={errors.reviewedAt}><input type="date" value={walk.reviewedAt} onChange={(e) => setWalk({ ...walk, reviewedAt: e.target.value })} /></Field>
            <Field label="Findings" error={errors.findings}><textarea value={walk.findings} onChange={(e) => setWalk({ ...walk, findings: e.target.value })} /></Field>
            <Field label="Reported to" error={errors.reportedTo}><input value={walk.reportedTo} onChange={(e) => setWalk({ ...walk, reportedTo: e.target.value })} /></Field>
            <RecommendationsEditor value={walk.recommendations} onChange={(r) => setWalk({ ...walk, recommendations: r })} errors={errors} />
            <p><button type="submit" className="button">Record walk</button></p>
          </form>
        ) : null}
        {data && kinds(['dp_walk']).length === 0 ? <p className="empty">No data-protection walk is recorded.</p> : null}
        {kinds(['dp_walk']).slice(0, 5).map((r) => <ReviewCard key={r.id} review={r} canManage={canManage} act={act} />)}
      </Section>

      <Section id="physical" title="Physical security" requirement="GV-10" actions={<>{toggle('physical', 'Record a physical-security check')} <ExportLink register="physical" /></>}>
        {open === 'physical' && data ? (
          <form className="card" aria-label="Physical-security check" onSubmit={submit('physical', async () => {
            await api('POST', '/api/governance/physical-checks', withDate({ ...physical, recommendations: drafts(physical.recommendations), items: Object.fromEntries(data.physicalItems.map((p) => [p.id, { result: physical.items[p.id]?.result ?? '', note: physical.items[p.id]?.note ?? '' }])) }));
            return 'Physical-security check recorded.';
          }, () => setPhysical({ ...emptyBase, items: {}, recommendations: [] }))}>
            {data.physicalItems.map((p) => (
              <fieldset key={p.id} className="row">
                <legend>{p.label}</legend>
                <Field label={`${p.label}: result`} error={errors[`items.${p.id}.result`] ?? errors[`items.${p.id}`]}>
                  <select value={physical.items[p.id]?.result ?? ''} onChange={(e) => setPhysical({ ...physical, items: { ...physical.items, [p.id]: { note: physical.items[p.id]?.note ?? '', result: e.target.value } } })}>
                    <option value="">Choose…</option><option value="pass">Passed</option><option value="fail">Failed</option>
                  </select>
                </Field>
                <Field label={`${p.label}: note`}><input value={physical.items[p.id]?.note ?? ''} onChange={(e) => setPhysical({ ...physical, items: { ...physical.items, [p.id]: { result: physical.items[p.id]?.result ?? '', note: e.target.value } } })} /></Field>
              </fieldset>
            ))}
            <Field label="Date of the check" hint="Today if left empty." error={errors.reviewedAt}><input type="date" value={physical.reviewedAt} onChange={(e) => setPhysical({ ...physical, reviewedAt: e.target.value })} /></Field>
            <Field label="Findings" error={errors.findings}><textarea value={physical.findings} onChange={(e) => setPhysical({ ...physical, findings: e.target.value })} /></Field>
            <Field label="Reported to" error={errors.reportedTo}><input value={physical.reportedTo} onChange={(e) => setPhysical({ ...physical, reportedTo: e.target.value })} /></Field>
            <RecommendationsEditor value={physical.recommendations} onChange={(r) => setPhysical({ ...physical, recommendations: r })} errors={errors} />
            <p><button type="submit" className="button">Record check</button></p>
          </form>
        ) : null}
        {data && !lastPhysical ? <p className="empty">No physical-security check is recorded.</p> : null}
        {lastPhysical ? <ReviewCard review={lastPhysical} canManage={canManage} act={act} /> : null}
      </Section>

      <Section id="policies" title="Policy reviews" requirement="GV-06" actions={<>{toggle('policy', 'Record a policy review')} <ExportLink register="policies" /></>}>
        {open === 'policy' ? (
          <form className="card" aria-label="Policy review" onSubmit={submit('policy', async () => { await api('POST', '/api/governance/policy-reviews', withDate(policy)); return 'Policy review recorded.'; }, () => setPolicy({ policy: '', reviewedAt: '', nextReviewAt: '', notes: '' }))}>
            <Field label="Policy" error={errors.policy}><input value={policy.policy} onChange={(e) => setPolicy({ ...policy, policy: e.target.value })} /></Field>
            <Field label="Reviewed on" hint="Today if left empty." error={errors.reviewedAt}><input type="date" value={policy.reviewedAt} onChange={(e) => setPolicy({ ...policy, reviewedAt: e.target.value })} /></Field>
            <Field label="Next review by" hint="At most 12 months on." error={errors.nextReviewAt}><input type="date" value={policy.nextReviewAt} onChange={(e) => setPolicy({ ...policy, nextReviewAt: e.target.value })} /></Field>
            <Field label="Notes" error={errors.notes}><textarea value={policy.notes} onChange={(e) => setPolicy({ ...policy, notes: e.target.value })} /></Field>
            <p><button type="submit" className="button">Record</button></p>
          </form>
        ) : null}
        {data && data.policies.length === 0 ? <p className="empty">No policy review is recorded.</p> : null}
        {data && data.policies.length ? (
          <table className="table" data-testid="policies">
            <thead><tr><th>Policy</th><th>Reviewed</th><th>By</th><th>Next review</th><th>Notes</th></tr></thead>
            <tbody>{data.policies.map((p) => <tr key={p.id} className={p.overdue ? 'overdue' : undefined}><td>{p.policy}</td><td>{day(p.reviewedAt)}</td><td>{p.reviewedBy}</td><td>{day(p.nextReviewAt)}{p.overdue ? ' (overdue)' : p.dueSoon ? ' (due soon)' : ''}</td><td>{p.notes}</td></tr>)}</tbody>
          </table>
        ) : null}
      </Section>

      <Section id="shortfalls" title="Resource shortfalls" requirement="GV-07" actions={<>{toggle('shortfall', 'Record a shortfall')} <ExportLink register="shortfalls" /></>}>
        {open === 'shortfall' ? (
          <form className="card" aria-label="Resource shortfall" onSubmit={submit('shortfall', async () => { const { reportedToGovernorsAt, ...rest } = shortfall; await api('POST', '/api/governance/shortfalls', reportedToGovernorsAt ? shortfall : rest); return 'Shortfall recorded.'; }, () => setShortfall({ title: '', risk: '', reportedToGovernorsAt: '' }))}>
            <Field label="Shortfall" error={errors.title}><input value={shortfall.title} onChange={(e) => setShortfall({ ...shortfall, title: e.target.value })} /></Field>
            <Field label="The risk it leaves" error={errors.risk}><textarea value={shortfall.risk} onChange={(e) => setShortfall({ ...shortfall, risk: e.target.value })} /></Field>
            <Field label="Reported to governors on" hint="Leave empty if not yet reported." error={errors.reportedToGovernorsAt}><input type="date" value={shortfall.reportedToGovernorsAt} onChange={(e) => setShortfall({ ...shortfall, reportedToGovernorsAt: e.target.value })} /></Field>
            <p><button type="submit" className="button">Record</button></p>
          </form>
        ) : null}
        {data && data.shortfalls.length === 0 ? <p className="empty">No resource shortfall is recorded.</p> : null}
        {data && data.shortfalls.length ? (
          <table className="table" data-testid="shortfalls">
            <thead><tr><th>Shortfall</th><th>Risk</th><th>Recorded</th><th>Reported to governors</th><th>Resolved</th></tr></thead>
            <tbody>
              {data.shortfalls.map((s) => (
                <tr key={s.id} className={!s.reportedToGovernorsAt && !s.resolvedAt ? 'overdue' : undefined}>
                  <td>{s.title}</td><td>{s.risk}</td><td>{day(s.recordedAt)}</td>
                  <td>
                    {s.reportedToGovernorsAt ? day(s.reportedToGovernorsAt) : canManage && !s.resolvedAt ? (
                      <span className="row">
                        <input type="date" aria-label={`Date “${s.title}” was reported to governors`} value={reported[s.id] ?? ''} onChange={(e) => setReported({ ...reported, [s.id]: e.target.value })} />
                        <button type="button" className="button secondary" onClick={() => void act(async () => { await api('PUT', `/api/governance/shortfalls/${s.id}/reported`, { reportedToGovernorsAt: reported[s.id] ?? '' }); return 'Reported date saved.'; })}>Save</button>
                      </span>
                    ) : 'Not yet'}
                  </td>
                  <td>{s.resolvedAt ? day(s.resolvedAt) : canManage ? <button type="button" className="button secondary" onClick={() => void act(async () => { await api('DELETE', `/api/governance/shortfalls/${s.id}`); return 'Marked resolved.'; })}>Resolved</button> : '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : null}
      </Section>

      <TrainingSection canTrain={canTrain} />
    </section>
  );
}

function readText(file: File): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onerror = () => reject(new Error('The file could not be read.'));
    reader.onload = () => resolve(String(reader.result));
    reader.readAsText(file);
  });
}

/** GV-05: everyone's training, for those who read the governance registers. */
function TrainingSection({ canTrain }: { canTrain: boolean }) {
  const [people, setPeople] = useState<PersonTraining[] | null>(null);
  const [loadError, setLoadError] = useState<unknown>(null);
  const load = useCallback(async () => {
    try {
      setPeople((await api<{ people: PersonTraining[] }>('GET', '/api/governance/training')).people);
    } catch (e) {
      setLoadError(e);
    }
  }, []);
  useEffect(() => void load(), [load]);
  const { error, message, act } = useAction(load);
  const errors = fieldErrors(error);
  const [form, setForm] = useState({ accountId: '', course: '', completedAt: '', certificateReference: '' });
  const [file, setFile] = useState<File | null>(null);
  const importErrors = (error as { body?: { details?: { errors?: Array<{ line: number; column: string | null; message: string }> } } } | null)?.body?.details?.errors;
  return (
    <Section id="training" title="Training" requirement="GV-05" actions={<ExportLink register="training" />}>
      <ErrorMessage error={loadError} />
      {message ? <div className="alert alert-success" role="status">{message}</div> : null}
      <ErrorMessage error={error} inline={(f) => f in errors} />
      {importErrors && importErrors.length ? <ul className="small" data-testid="import-errors">{importErrors.map((d, i) => <li key={i}>Line {d.line}{d.column ? `, ${d.column}` : ''}: {d.message}</li>)}</ul> : null}
      {people && people.length === 0 ? <p className="empty">No staff accounts yet.</p> : null}
      {people && people.length ? (
        <table className="table" data-testid="training">
          <thead><tr><th>Name</th><th>AUP accepted (induction)</th><th>Latest training</th><th>Certificate</th><th>Current until</th><th>State</th></tr></thead>
          <tbody>
            {people.map((p) => (
              <tr key={p.accountId} className={p.state === 'lapsed' || p.state === 'none' ? 'overdue' : undefined}>
                <td>{p.displayName} <span className="muted small">{p.username}</span></td>
                <td>{p.aupAcceptedAt ? day(p.aupAcceptedAt) : 'Not yet'}</td>
                <td>{p.records[0] ? `${p.records[0].course}, ${day(p.records[0].completedAt)}` : '—'}</td>
                <td>{p.records[0]?.certificateReference ?? '—'}</td>
                <td>{day(p.currentUntil)}</td>
                <td>{trainingLabel[p.state]}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {canTrain && people && people.length ? (
        <form className="card" aria-label="Record training" onSubmit={(e) => { e.preventDefault(); void act(async () => { const { course, certificateReference, ...rest } = form; await api('POST', '/api/governance/training', { ...rest, ...(course ? { course } : {}), ...(certificateReference ? { certificateReference } : {}) }); setForm({ accountId: '', course: '', completedAt: '', certificateReference: '' }); return 'Training recorded.'; }); }}>
          <h3>Record training</h3>
          <Field label="Member of staff" error={errors.accountId}><select value={form.accountId} onChange={(e) => setForm({ ...form, accountId: e.target.value })}><option value="">Choose…</option>{people.map((p) => <option key={p.accountId} value={p.accountId}>{p.displayName} ({p.username})</option>)}</select></Field>
          <Field label="Course" hint="The NCSC’s cyber security training for school staff if left empty." error={errors.course}><input value={form.course} onChange={(e) => setForm({ ...form, course: e.target.value })} /></Field>
          <Field label="Completed on" error={errors.completedAt}><input type="date" value={form.completedAt} onChange={(e) => setForm({ ...form, completedAt: e.target.value })} /></Field>
          <Field label="Certificate reference" error={errors.certificateReference}><input value={form.certificateReference} onChange={(e) => setForm({ ...form, certificateReference: e.target.value })} /></Field>
          <button type="submit" className="button">Record training</button>
        </form>
      ) : null}
      {canTrain ? (
        <form className="card" aria-label="Import training records" onSubmit={(e) => { e.preventDefault(); void act(async () => { if (!file) throw new Error('Choose a CSV file first.'); const r = await api<{ imported: number }>('POST', '/api/governance/training/import', { csv: await readText(file) }); return `Imported ${r.imported} training record${r.imported === 1 ? '' : 's'}.`; }); }}>
          <h3>Import training records</h3>
          <p className="small muted">Columns: Username, Completed (a date like 2026-09-01); optional Course and Certificate. Every row is checked first: one error and nothing is imported.</p>
          <Field label="CSV file"><input type="file" accept=".csv,text/csv" onChange={(e) => setFile(e.target.files?.[0] ?? null)} /></Field>
          <button type="submit" className="button">Import</button>
        </form>
      ) : null}
    </Section>
  );
}

/** GV-05: a person's own training and AUP acceptance. */
export function MyTrainingPage() {
  const [person, setPerson] = useState<PersonTraining | null | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    api<{ person: PersonTraining | null }>('GET', '/api/my/training').then((r) => setPerson(r.person), setError);
  }, []);
  return (
    <section>
      <h1>My training</h1>
      <ErrorMessage error={error} />
      {person === null ? <p className="empty">Training records are kept for staff accounts; there is none for this account.</p> : null}
      {person ? (
        <>
          <p data-testid="my-training-state">{person.state === 'current' ? `Your cyber security training is current until ${day(person.currentUntil)}.` : person.state === 'due_soon' ? `Your cyber security training lapses on ${day(person.currentUntil)}: please renew it.` : person.state === 'lapsed' ? `Your cyber security training lapsed on ${day(person.currentUntil)}: it is done every year.` : 'No cyber security training is recorded for you yet. Ask the IT lead or business manager.'}</p>
          <p>Acceptable Use Policy: {person.aupAcceptedAt ? `first accepted ${day(person.aupAcceptedAt)} at sign-in${person.aupLatestAt && person.aupLatestAt !== person.aupAcceptedAt ? `; latest version accepted ${day(person.aupLatestAt)}` : ''}.` : 'not yet accepted.'}</p>
          {person.records.length ? (
            <table className="table" data-testid="my-training">
              <thead><tr><th>Course</th><th>Completed</th><th>Lapses</th><th>Certificate</th></tr></thead>
              <tbody>{person.records.map((r) => <tr key={r.id}><td>{r.course}</td><td>{day(r.completedAt)}</td><td>{day(r.expiresAt)}</td><td>{r.certificateReference ?? '—'}</td></tr>)}</tbody>
            </table>
          ) : null}
        </>
      ) : null}
    </section>
  );
}
