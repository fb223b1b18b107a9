import { Fragment, useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, type Account } from '../api';
import { ErrorMessage, Field } from '../components';
import { Link, navigate, usePath } from '../router';

/**
 * Access rights (AC-01, AC-02, AC-03): who can do what in Gatehouse (read from the server's
 * authorization table), what each role and group may do in the school's own systems, the rules
 * about whose records people reach, and the annual access review by a senior leader.
 */

interface Matrix {
  gatehouse: {
    roles: Array<{ role: string; label: string; shortLabel: string }>;
    permissions: Array<{ permission: string; area: string; description: string; roles: string[] }>;
  };
  systems: SchoolSystem[];
  subjects: Array<{ subject: string; kind: string; name: string; groupKind?: string }>;
  levels: Array<{ level: string; label: string; description: string }>;
  rules: Array<{ id: string; requirement: string; rule: string; enforcedBy: string }>;
}
interface SchoolSystem {
  id: string;
  name: string;
  description: string | null;
  grants: Array<{ subject: string; level: string; note: string | null; updatedAt: string }>;
}
interface Person {
  id: string | null;
  name: string;
}
interface ReviewSummary {
  id: string;
  status: 'in_progress' | 'signed_off' | 'cancelled';
  startedAt: string;
  startedBy: Person;
  signedOffAt: string | null;
  signedOffBy: Person | null;
  summary: string | null;
  accounts: number;
  decided: number;
  changes: number;
}
interface PrivilegedAccount {
  id: string;
  username: string;
  displayName: string;
  role: string;
  roleLabel: string;
  status: string;
  isBreakGlass: boolean;
  linkedAccount: { id: string; username: string; displayName: string } | null;
  reasons: string[];
  lastSignInAt: string | null;
  mfaEnrolled: boolean;
}
interface Decision {
  decision: 'confirm' | 'change';
  note: string | null;
  disabled: boolean;
  decidedAt: string;
  decidedBy: Person;
}
interface Review extends ReviewSummary {
  snapshot: { takenAt: string; startedBy: Person; everyMonths: number; matrix: Matrix; accounts: PrivilegedAccount[] };
  decisions: { accounts: Record<string, Decision>; matrixNote: string | null };
}
interface ReviewStatus {
  everyMonths: number;
  lastSignedOffAt: string | null;
  nextDueAt: string | null;
  overdue: boolean;
  inProgress: ReviewSummary | null;
}

const date = (iso: string) => new Date(iso).toLocaleDateString('en-GB', { day: 'numeric', month: 'short', year: 'numeric' });
const dateTime = (iso: string) => new Date(iso).toLocaleString('en-GB', { day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit' });

export function AccessPage({ account }: { account: Account }) {
  const path = usePath();
  const reviewId = /^\/access\/reviews\/([0-9a-f-]{36})$/.exec(path)?.[1];
  if (reviewId) return <ReviewRecord id={reviewId} />;
  return <AccessOverview account={account} />;
}

function AccessOverview({ account }: { account: Account }) {
  const canManage = account.permissions.includes('access.manage');
  const canReview = account.permissions.includes('access.review');
  const [matrix, setMatrix] = useState<Matrix | null>(null);
  const [error, setError] = useState<unknown>(null);
  const load = useCallback(async () => {
    try {
      setMatrix(await api<Matrix>('GET', '/api/access/matrix'));
    } catch (e) {
      setError(e);
    }
  }, []);
  useEffect(() => {
    void load();
  }, [load]);

  return (
    <section>
      <h1>Access rights</h1>
      <p className="muted">Who can do what: in Gatehouse itself, and in the school’s own systems. A senior leader reviews these rights and every privileged account at least once a year.</p>
      <ErrorMessage error={error} />
      <ReviewPanel account={account} canReview={canReview} />
      {matrix ? (
        <>
          <h2>Rights in Gatehouse</h2>
          <p className="muted small">Read from Gatehouse’s own authorization table: this is what the server enforces, so it is always current.</p>
          <GatehouseMatrix matrix={matrix} />
          <h2>Rights in the school’s systems</h2>
          <p className="muted small">
            What each role or group may do in the systems the school uses, as recorded here.
            {canManage ? ' Choose a level in a cell to change it; every change is recorded in the audit trail.' : ''}
          </p>
          <SystemsMatrix matrix={matrix} canManage={canManage} onChanged={load} />
          <h2>Rules about whose records people reach</h2>
          <Rules matrix={matrix} />
        </>
      ) : null}
    </section>
  );
}

// --- The matrices ---------------------------------------------------------------------------------

function GatehouseMatrix({ matrix }: { matrix: Matrix }) {
  const { roles, permissions } = matrix.gatehouse;
  let area = '';
  return (
    <div className="matrix-wrap">
      <table className="table matrix" data-testid="gatehouse-matrix">
        <thead>
          <tr>
            <th scope="col">Permission</th>
            {roles.map((r) => (
              <th key={r.role} scope="col" className="role-col" title={r.label}>
                {r.shortLabel}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {permissions.map((p) => {
            const heading = p.area !== area;
            area = p.area;
            return (
              <Fragment key={p.permission}>
                {heading ? (
                  <tr className="matrix-area">
                    <th scope="colgroup" colSpan={roles.length + 1}>{p.area}</th>
                  </tr>
                ) : null}
                <tr data-permission={p.permission}>
                  <th scope="row" className="perm">
                    {p.description}
                    <code className="perm-code">{p.permission}</code>
                  </th>
                  {roles.map((r) => {
                    const has = p.roles.includes(r.role);
                    return (
                      <td key={r.role} className={has ? 'tick yes' : 'tick'}>
                        <span aria-hidden="true">{has ? '✓' : '·'}</span>
                        <span className="visually-hidden">{has ? `${r.label}: yes` : `${r.label}: no`}</span>
                      </td>
                    );
                  })}
                </tr>
              </Fragment>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

function levelLabel(matrix: Matrix, level: string): string {
  return matrix.levels.find((l) => l.level === level)?.label ?? level;
}

/** Systems as rows; every role, and each group that has a right recorded, as columns. */
function SystemsMatrix({ matrix, canManage, onChanged }: { matrix: Matrix; canManage: boolean; onChanged?: () => Promise<void> }) {
  const [error, setError] = useState<unknown>(null);
  const [editing, setEditing] = useState<string | null>(null);
  const [removing, setRemoving] = useState<string | null>(null);
  const columns = matrix.subjects.filter((s) => s.kind === 'role' || matrix.systems.some((sys) => sys.grants.some((g) => g.subject === s.subject)));
  const shortName = (subject: { subject: string; name: string }) => matrix.gatehouse.roles.find((r) => `role:${r.role}` === subject.subject)?.shortLabel ?? subject.name;

  const act = async (work: () => Promise<unknown>) => {
    setError(null);
    try {
      await work();
      await onChanged?.();
      return true;
    } catch (e) {
      setError(e);
      return false;
    }
  };
  const setLevel = (system: SchoolSystem, subject: string, level: string) =>
    act(() => api('PUT', `/api/access/systems/${system.id}/grants`, { subject, level: level === '' ? null : level }));

  return (
    <>
      <ErrorMessage error={error} />
      {matrix.systems.length === 0 ? (
        <p className="muted" data-testid="no-systems">No school systems are listed yet.{canManage ? ' Add the systems the school uses below: the MIS, e-mail, finance, the learning platform…' : ''}</p>
      ) : (
        <div className="matrix-wrap">
          <table className="table matrix systems" data-testid="systems-matrix">
            <thead>
              <tr>
                <th scope="col">System</th>
                {columns.map((c) => (
                  <th key={c.subject} scope="col" className="role-col" title={c.kind === 'group' ? `Group: ${c.name}` : c.name}>
                    {shortName(c)}
                  </th>
                ))}
                {canManage ? <th aria-label="Actions" /> : null}
              </tr>
            </thead>
            <tbody>
              {matrix.systems.map((system) => (
                <tr key={system.id} data-system={system.name}>
                  <th scope="row" className="perm">
                    {editing === system.id ? (
                      <RenameSystem system={system} onDone={async (changed) => { if (!changed || (await act(() => api('PATCH', `/api/access/systems/${system.id}`, changed)))) setEditing(null); }} />
                    ) : (
                      <>
                        {system.name}
                        {system.description ? <span className="perm-code">{system.description}</span> : null}
                      </>
                    )}
                  </th>
                  {columns.map((c) => {
                    const grant = system.grants.find((g) => g.subject === c.subject);
                    return (
                      <td key={c.subject} className={`level level-${grant?.level ?? 'unset'}`}>
                        {canManage ? (
                          <select aria-label={`${system.name}: ${c.name}`} value={grant?.level ?? ''} onChange={(e) => void setLevel(system, c.subject, e.target.value)}>
                            <option value="">—</option>
                            {matrix.levels.map((l) => <option key={l.level} value={l.level}>{l.label}</option>)}
                          </select>
                        ) : (
                          <span>{grant ? levelLabel(matrix, grant.level) : '—'}</span>
                        )}
                        {grant?.note ? <span className={canManage ? 'cell-note' : 'cell-note full'} title={grant.note}>{grant.note}</span> : null}
                      </td>
                    );
                  })}
                  {canManage ? (
                    <td className="actions">
                      {removing === system.id ? (
                        <div className="confirm-remove" role="group" aria-label={`Remove ${system.name}?`}>
                          Remove it and its {system.grants.length} recorded {system.grants.length === 1 ? 'right' : 'rights'}?
                          <button type="button" className="button small danger" onClick={() => void act(() => api('DELETE', `/api/access/systems/${system.id}`)).then(() => setRemoving(null))}>Yes, remove</button>
                          <button type="button" className="link-button" onClick={() => setRemoving(null)}>Keep</button>
                        </div>
                      ) : editing === system.id ? null : (
                        <>
                          <button type="button" className="link-button" onClick={() => setEditing(system.id)} aria-label={`Rename ${system.name}`}>Rename</button>
                          <button type="button" className="link-button" onClick={() => setRemoving(system.id)} aria-label={`Remove ${system.name}`}>Remove</button>
                        </>
                      )}
                    </td>
                  ) : null}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <p className="muted small legend">
        {matrix.levels.map((l) => (
          <span key={l.level}>
            <strong>{l.label}</strong>: {l.description.toLowerCase()}.{' '}
          </span>
        ))}
        <strong>—</strong>: not recorded.
      </p>
      {canManage ? (
        <div className="grid access-forms">
          <AddSystem onAdd={(body) => act(() => api('POST', '/api/access/systems', body))} />
          {matrix.systems.length > 0 ? <GrantForm matrix={matrix} onSave={(systemId, body) => act(() => api('PUT', `/api/access/systems/${systemId}/grants`, body))} /> : null}
        </div>
      ) : null}
    </>
  );
}

function RenameSystem({ system, onDone }: { system: SchoolSystem; onDone: (changed: { name: string; description: string | null } | null) => void }) {
  const [name, setName] = useState(system.name);
  const [description, setDescription] = useState(system.description ?? '');
  return (
    <form className="row-form" onSubmit={(e) => { e.preventDefault(); onDone({ name, description: description.trim() || null }); }}>
      <input aria-label="System name" value={name} onChange={(e) => setName(e.target.value)} required />
      <input aria-label="Description" value={description} onChange={(e) => setDescription(e.target.value)} placeholder="What it holds (optional)" />
      <button type="submit" className="button small">Save</button>
      <button type="button" className="link-button" onClick={() => onDone(null)}>Cancel</button>
    </form>
  );
}

function AddSystem({ onAdd }: { onAdd: (body: { name: string; description: string | null }) => Promise<boolean> }) {
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (await onAdd({ name, description: description.trim() || null })) {
      setName('');
      setDescription('');
    }
  };
  return (
    <form className="card" onSubmit={submit} aria-label="Add a school system">
      <h3>Add a school system</h3>
      <Field label="System name" hint='For example "MIS (Arbor)", "Google Workspace", "Finance"'>
        <input value={name} onChange={(e) => setName(e.target.value)} required maxLength={100} />
      </Field>
      <Field label="What it holds (optional)">
        <input value={description} onChange={(e) => setDescription(e.target.value)} maxLength={500} />
      </Field>
      <button type="submit" className="button">Add system</button>
    </form>
  );
}

/** Records a right for any role or group, with a note: also how a group gets its own column. */
function GrantForm({ matrix, onSave }: { matrix: Matrix; onSave: (systemId: string, body: { subject: string; level: string | null; note: string | null }) => Promise<boolean> }) {
  const [systemId, setSystemId] = useState(matrix.systems[0]?.id ?? '');
  const [subject, setSubject] = useState(matrix.subjects[0]?.subject ?? '');
  const [level, setLevel] = useState('read');
  const [note, setNote] = useState('');
  const [saved, setSaved] = useState(false);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setSaved(false);
    if (await onSave(systemId || matrix.systems[0]!.id, { subject, level: level === '' ? null : level, note: note.trim() || null })) {
      setNote('');
      setSaved(true);
    }
  };
  const roles = matrix.subjects.filter((s) => s.kind === 'role');
  const groups = matrix.subjects.filter((s) => s.kind === 'group');
  return (
    <form className="card" onSubmit={submit} aria-label="Record a right">
      <h3>Record a right, with a note</h3>
      <Field label="System">
        <select value={systemId} onChange={(e) => setSystemId(e.target.value)}>
          {matrix.systems.map((s) => <option key={s.id} value={s.id}>{s.name}</option>)}
        </select>
      </Field>
      <Field label="Who" hint={groups.length === 0 ? 'Groups from the directory (classes, departments) appear here once they exist.' : undefined}>
        <select value={subject} onChange={(e) => setSubject(e.target.value)}>
          <optgroup label="Roles">
            {roles.map((s) => <option key={s.subject} value={s.subject}>{s.name}</option>)}
          </optgroup>
          {groups.length > 0 ? (
            <optgroup label="Groups">
              {groups.map((s) => <option key={s.subject} value={s.subject}>{s.name}</option>)}
            </optgroup>
          ) : null}
        </select>
      </Field>
      <Field label="Level">
        <select value={level} onChange={(e) => setLevel(e.target.value)}>
          {matrix.levels.map((l) => <option key={l.level} value={l.level}>{l.label}</option>)}
          <option value="">Clear (not recorded)</option>
        </select>
      </Field>
      <Field label="Note (optional)" hint="For example: “only their own class’s records”">
        <input value={note} onChange={(e) => setNote(e.target.value)} maxLength={300} />
      </Field>
      <button type="submit" className="button">Save</button>
      {saved ? <span className="saved"> Saved</span> : null}
    </form>
  );
}

function Rules({ matrix }: { matrix: Matrix }) {
  return (
    <ul className="object-rules" data-testid="object-rules">
      {matrix.rules.map((r) => (
        <li key={r.id}>
          {r.rule} <span className="muted small">({r.requirement}; enforced by {r.enforcedBy})</span>
        </li>
      ))}
    </ul>
  );
}

// --- The annual review ----------------------------------------------------------------------------

function ReviewPanel({ account, canReview }: { account: Account; canReview: boolean }) {
  const [status, setStatus] = useState<ReviewStatus | null>(null);
  const [reviews, setReviews] = useState<ReviewSummary[]>([]);
  const [current, setCurrent] = useState<Review | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [cancelling, setCancelling] = useState(false);

  const load = useCallback(async () => {
    try {
      const r = await api<{ status: ReviewStatus; reviews: ReviewSummary[] }>('GET', '/api/access/reviews');
      setStatus(r.status);
      setReviews(r.reviews);
      setCurrent(r.status.inProgress ? await api<Review>('GET', `/api/access/reviews/${r.status.inProgress.id}`) : null);
    } catch (e) {
      setError(e);
    }
  }, []);
  useEffect(() => {
    void load();
  }, [load]);

  const act = async (work: () => Promise<unknown>) => {
    setError(null);
    try {
      await work();
      await load();
      return true;
    } catch (e) {
      setError(e);
      return false;
    }
  };

  if (!status) return <ErrorMessage error={error} />;
  const past = reviews.filter((r) => r.status !== 'in_progress');
  return (
    <div className="card review" data-testid="access-review" id="review">
      <div className="section-head">
        <h2>Annual access review</h2>
        {status.overdue ? <span className="tag tag-warn">overdue</span> : null}
      </div>
      <dl className="facts" data-testid="review-status">
        <dt>Last signed off</dt>
        <dd>{status.lastSignedOffAt ? date(status.lastSignedOffAt) : 'Never'}</dd>
        <dt>Next due</dt>
        <dd>
          {status.nextDueAt ? date(status.nextDueAt) : 'Now'}
          <span className="muted small"> · every {status.everyMonths} months, set by the school’s policy profile</span>
        </dd>
      </dl>
      <ErrorMessage error={error} />
      {!current ? (
        canReview ? (
          <div className="row">
            <button type="button" className="button" onClick={() => void act(() => api('POST', '/api/access/reviews'))}>Start the access review</button>
            <span className="muted small">Takes a snapshot of the rights above and of every privileged account, for you to confirm or change.</span>
          </div>
        ) : (
          <p className="muted small">A senior leader starts and signs off the review.</p>
        )
      ) : (
        <InProgress review={current} account={account} canReview={canReview} act={act} cancelling={cancelling} setCancelling={setCancelling} />
      )}
      {past.length > 0 ? (
        <>
          <h3>Past reviews</h3>
          <table className="table" data-testid="past-reviews">
            <thead>
              <tr>
                <th>Started</th>
                <th>Outcome</th>
                <th>Accounts</th>
                <th>Summary</th>
                <th aria-label="Open" />
              </tr>
            </thead>
            <tbody>
              {past.map((r) => (
                <tr key={r.id}>
                  <td className="nowrap">{date(r.startedAt)}</td>
                  <td>{r.status === 'signed_off' ? <>Signed off {date(r.signedOffAt!)} by {r.signedOffBy?.name}</> : <span className="muted">Cancelled</span>}</td>
                  <td className="nowrap">{r.accounts} reviewed{r.changes ? `, ${r.changes} to change` : ''}</td>
                  <td className="details">{r.summary}</td>
                  <td className="actions"><Link href={`/access/reviews/${r.id}`}>Open</Link></td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      ) : null}
    </div>
  );
}

function InProgress(props: { review: Review; account: Account; canReview: boolean; act: (work: () => Promise<unknown>) => Promise<boolean>; cancelling: boolean; setCancelling: (v: boolean) => void }) {
  const { review, account, canReview, act } = props;
  const [matrixNote, setMatrixNote] = useState(review.decisions.matrixNote ?? '');
  const [summary, setSummary] = useState('');
  const missing = review.accounts - review.decided;
  return (
    <div data-testid="review-in-progress">
      <p>
        <strong>Review in progress</strong>, started {dateTime(review.startedAt)} by {review.startedBy.name}:{' '}
        <span data-testid="review-progress">{review.decided} of {review.accounts} privileged accounts decided</span>.
      </p>
      <PrivilegedAccounts review={review} editable={canReview} selfId={account.accountId} act={act} />
      {canReview ? (
        <>
          <form className="review-note" onSubmit={(e) => { e.preventDefault(); void act(() => api('PUT', `/api/access/reviews/${review.id}/matrix-note`, { note: matrixNote.trim() || null })); }}>
            <Field label="Your note on the rights above (optional)" hint="For example, a right in a school system that should change.">
              <textarea rows={2} value={matrixNote} onChange={(e) => setMatrixNote(e.target.value)} maxLength={2000} />
            </Field>
            <button type="submit" className="button secondary small">Save note</button>
            {review.decisions.matrixNote && review.decisions.matrixNote === matrixNote.trim() ? <span className="saved"> Saved</span> : null}
          </form>
          <form className="sign-off" onSubmit={(e) => { e.preventDefault(); void act(() => api('POST', `/api/access/reviews/${review.id}/sign-off`, { summary })); }}>
            <h3>Sign off</h3>
            <Field label="Summary" hint="A sentence or two for the record: who took part, what was found, what will change.">
              <textarea rows={3} value={summary} onChange={(e) => setSummary(e.target.value)} maxLength={2000} />
            </Field>
            {missing > 0 ? <p className="muted small" data-testid="missing-decisions">{missing} {missing === 1 ? 'account still needs' : 'accounts still need'} a decision before you can sign off.</p> : null}
            <div className="row">
              <button type="submit" className="button" disabled={missing > 0}>Sign off the review</button>
              {props.cancelling ? (
                <span>
                  Cancel this review? It stays on record as cancelled.{' '}
                  <button type="button" className="button small danger" onClick={() => void act(() => api('POST', `/api/access/reviews/${review.id}/cancel`)).then(() => props.setCancelling(false))}>Cancel review</button>{' '}
                  <button type="button" className="link-button" onClick={() => props.setCancelling(false)}>Keep it</button>
                </span>
              ) : (
                <button type="button" className="link-button" onClick={() => props.setCancelling(true)}>Cancel this review</button>
              )}
            </div>
          </form>
        </>
      ) : null}
    </div>
  );
}

function PrivilegedAccounts({ review, editable, selfId, act }: { review: Review; editable: boolean; selfId?: string; act?: (work: () => Promise<unknown>) => Promise<boolean> }) {
  const [open, setOpen] = useState<string | null>(null);
  return (
    <table className="table" data-testid="privileged-accounts">
      <thead>
        <tr>
          <th>Account</th>
          <th>Why it is privileged</th>
          <th>State at the start</th>
          <th>Last sign-in</th>
          <th>Decision</th>
        </tr>
      </thead>
      <tbody>
        {review.snapshot.accounts.map((a) => {
          const d = review.decisions.accounts[a.id];
          return (
            <tr key={a.id} data-username={a.username}>
              <td>
                {a.displayName}
                <div><code>{a.username}</code></div>
              </td>
              <td className="small">
                {a.reasons.map((r) => <div key={r}>{r}</div>)}
              </td>
              <td>
                {a.status === 'active' ? <span className="tag tag-ok">active</span> : <span className="tag">{a.status}</span>}
                {a.mfaEnrolled ? <span className="tag tag-ok">MFA</span> : <span className="tag tag-bad">no MFA</span>}
              </td>
              <td className="nowrap small">{a.lastSignInAt ? dateTime(a.lastSignInAt) : <span className="muted">never</span>}</td>
              <td>
                {d && open !== a.id ? (
                  <div data-testid={`decision-${a.username}`}>
                    {d.decision === 'confirm' ? <span className="tag tag-ok">Confirmed</span> : <span className="tag tag-warn">Change needed</span>}
                    {d.disabled ? <span className="tag">disabled</span> : null}
                    {d.note ? <div className="small">{d.note}</div> : null}
                    <div className="muted small">{d.decidedBy.name}, {dateTime(d.decidedAt)}</div>
                    {editable ? <button type="button" className="link-button small" onClick={() => setOpen(a.id)}>Change decision</button> : null}
                  </div>
                ) : editable && act ? (
                  <DecisionForm review={review} account={a} canDisable={!a.isBreakGlass && a.id !== selfId && a.status === 'active'} act={act} onDone={() => setOpen(null)} />
                ) : (
                  <span className="muted">Not decided yet</span>
                )}
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

function DecisionForm({ review, account, canDisable, act, onDone }: { review: Review; account: PrivilegedAccount; canDisable: boolean; act: (work: () => Promise<unknown>) => Promise<boolean>; onDone: () => void }) {
  const [change, setChange] = useState(false);
  const [note, setNote] = useState('');
  const [disable, setDisable] = useState(false);
  const decide = async (body: { decision: 'confirm' | 'change'; note?: string; disable?: boolean }) => {
    if (await act(() => api('PUT', `/api/access/reviews/${review.id}/accounts/${account.id}`, body))) onDone();
  };
  if (!change) {
    return (
      <div className="row-form">
        <button type="button" className="button small" onClick={() => void decide({ decision: 'confirm' })} aria-label={`Confirm ${account.username}`}>Confirm</button>
        <button type="button" className="button small secondary" onClick={() => setChange(true)} aria-label={`Change needed for ${account.username}`}>Change needed…</button>
      </div>
    );
  }
  return (
    <form className="decision-form" onSubmit={(e) => { e.preventDefault(); void decide({ decision: 'change', note, disable }); }} aria-label={`Change needed for ${account.username}`}>
      <Field label="What should change">
        <textarea rows={2} value={note} onChange={(e) => setNote(e.target.value)} required maxLength={1000} />
      </Field>
      {canDisable ? (
        <label className="check small">
          <input type="checkbox" checked={disable} onChange={(e) => setDisable(e.target.checked)} />
          <span>Disable this account now (its sessions end; an IT administrator can enable it again)</span>
        </label>
      ) : null}
      <div className="row-form">
        <button type="submit" className="button small">Record</button>
        <button type="button" className="link-button" onClick={() => setChange(false)}>Back</button>
      </div>
    </form>
  );
}

/** A review as it was recorded: read-only, printable. */
function ReviewRecord({ id }: { id: string }) {
  const [review, setReview] = useState<Review | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    api<Review>('GET', `/api/access/reviews/${id}`).then(setReview, setError);
  }, [id]);
  if (error) return <ErrorMessage error={error} />;
  if (!review) return <p className="muted">Loading…</p>;
  const { matrix } = review.snapshot;
  return (
    <section data-testid="review-record">
      <p className="row">
        <Link href="/access">← Access rights</Link>
        <button type="button" className="link-button" onClick={() => window.print()}>Print</button>
      </p>
      <h1>Access review of {date(review.startedAt)}</h1>
      <dl className="facts card">
        <dt>Status</dt>
        <dd>{review.status === 'signed_off' ? 'Signed off' : review.status === 'cancelled' ? 'Cancelled' : 'In progress'}</dd>
        <dt>Started</dt>
        <dd>{dateTime(review.startedAt)} by {review.startedBy.name}</dd>
        {review.signedOffAt ? (
          <>
            <dt>Signed off</dt>
            <dd data-testid="signed-off">{dateTime(review.signedOffAt)} by {review.signedOffBy?.name}</dd>
          </>
        ) : null}
        {review.summary ? (
          <>
            <dt>Summary</dt>
            <dd>{review.summary}</dd>
          </>
        ) : null}
        {review.decisions.matrixNote ? (
          <>
            <dt>Note on the rights</dt>
            <dd>{review.decisions.matrixNote}</dd>
          </>
        ) : null}
      </dl>
      <h2>Privileged accounts, as they stood on {date(review.snapshot.takenAt)}</h2>
      <PrivilegedAccounts review={review} editable={false} />
      <h2>Rights in Gatehouse, as they stood</h2>
      <GatehouseMatrix matrix={matrix} />
      <h2>Rights in the school’s systems, as they stood</h2>
      <SystemsMatrix matrix={matrix} canManage={false} />
      <h2>Rules about whose records people reach</h2>
      <Rules matrix={matrix} />
      <p className="row no-print"><button type="button" className="link-button" onClick={() => navigate('/access')}>Back to Access rights</button></p>
    </section>
  );
}
