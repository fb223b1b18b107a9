import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, type Account } from '../api';
import { ErrorMessage, Field, fieldErrors } from '../components';

/**
 * FI-06, MO-06: filtering changes approved by a second person. Approvers see what waits for them
 * (approve, or refuse with a reason); administrators ask for changes to the school's own lists (an
 * emergency block takes effect at once) and see their own requests; everyone allowed reads the log
 * and exports it as CSV or PDF. The server enforces who may approve: the console only shows it.
 */

interface Change {
  id: string;
  kind: string;
  summary: string;
  reason: string;
  emergency: boolean;
  state: string;
  stateLabel: string;
  requestedBy: string;
  requestedById: string;
  requestedAt: string;
  decidedBy: string | null;
  decidedAt: string | null;
  decisionReason: string | null;
  appliedAt: string | null;
  escalatedAt: string | null;
}
interface ListSource {
  id: string;
  name: string;
  kind: string;
  location: string | null;
}

const when = (iso: string) => new Date(iso).toLocaleString('en-GB', { day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit' });
const may = (account: Account, permission: string) => account.permissions.includes(permission);
const roleWords = (r: string) => r.replace(/_/g, ' ');
const stateTag = (state: string) => (state === 'applied' || state === 'approved' ? 'tag tag-ok' : state === 'refused' || state === 'rolled_back' ? 'tag tag-bad' : state === 'applied_pending_approval' ? 'tag tag-warn' : 'tag');

export function ChangesPage({ account }: { account: Account }) {
  const canApproveRole = may(account, 'changes.approve');
  const canRequest = may(account, 'changes.request');
  const [changes, setChanges] = useState<Change[]>([]);
  const [approvers, setApprovers] = useState<string[]>([]);
  const [states, setStates] = useState<Record<string, string>>({});
  const [filter, setFilter] = useState('');
  const [log, setLog] = useState<Change[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [message, setMessage] = useState<string | null>(null);
  // An identity-API token approved here: its secret, shown once (it is never stored).
  const [secret, setSecret] = useState<{ summary: string; secret: string } | null>(null);
  const [loaded, setLoaded] = useState(false);

  const load = useCallback(async () => {
    try {
      const all = await api<{ changes: Change[]; approvers: string[]; states: Record<string, string> }>('GET', '/api/governance/changes');
      setChanges(all.changes);
      setApprovers(all.approvers);
      setStates(all.states);
      setLog(filter ? (await api<{ changes: Change[] }>('GET', `/api/governance/changes?state=${filter}`)).changes : all.changes);
      setLoaded(true);
    } catch (e) {
      setError(e);
    }
  }, [filter]);
  useEffect(() => {
    void load();
  }, [load]);

  const isApprover = canApproveRole && approvers.includes(account.role);
  const waiting = changes.filter((c) => c.state === 'pending' || c.state === 'applied_pending_approval');
  const mine = changes.filter((c) => c.requestedById === account.accountId);
  const exportQuery = filter ? `?state=${filter}` : '';

  const act = async (work: () => Promise<unknown>, done: string) => {
    setError(null);
    setMessage(null);
    try {
      await work();
      setMessage(done);
      await load();
    } catch (e) {
      setError(e);
    }
  };

  return (
    <section>
      <h1>Filtering changes</h1>
      <p className="muted">
        Every change to the filtering is a request that takes effect only when a second responsible person approves it
        {approvers.length > 0 ? <> (the school’s policy names: <strong>{approvers.map(roleWords).join(', ')}</strong>)</> : null}. Nobody approves their own.
        A change that only blocks more (blocking sites, a stricter policy, a block list, revoking a token) may be made in an emergency: it takes effect at once
        and stays awaiting approval, escalated, until approved or rolled back (which puts back what was there before).
      </p>
      <ErrorMessage error={error} />
      {message ? <div className="alert alert-ok" role="status">{message}</div> : null}
      {secret ? (
        <div className="alert alert-info" role="status" data-testid="approved-secret">
          <p>{secret.summary} — the token, shown only now: <code className="secret">{secret.secret}</code>. Give it to whoever sets up RADIUS or the agent.</p>
          <button type="button" className="button small" onClick={() => setSecret(null)}>I have copied it</button>
        </div>
      ) : null}

      <h2>Awaiting approval</h2>
      {!loaded ? <p className="muted">Loading…</p> : waiting.length === 0 ? <p className="muted">Nothing is waiting for approval.</p> : null}
      {waiting.map((c) => (
        <PendingCard key={c.id} change={c} mine={c.requestedById === account.accountId} isApprover={isApprover} canApproveRole={canApproveRole} approvers={approvers} onAct={act} onSecret={(s) => setSecret({ summary: c.summary, secret: s })} />
      ))}

      {canRequest ? <NewChange onCreated={(c) => { setMessage(c.state === 'pending' ? 'Asked: it takes effect when a second person approves it.' : 'In effect now: it is awaiting approval.'); void load(); }} onError={setError} /> : null}

      {canRequest ? (
        <>
          <h2>My requests</h2>
          {mine.length === 0 ? <p className="muted">You have not asked for any changes.</p> : (
            <table className="table" data-testid="my-changes">
              <thead><tr><th>Asked</th><th>Change</th><th>State</th><th /></tr></thead>
              <tbody>
                {mine.map((c) => (
                  <tr key={c.id} data-id={c.id}>
                    <td className="nowrap">{when(c.requestedAt)}</td>
                    <td>{c.summary}<div className="small muted">“{c.reason}”</div></td>
                    <td><span className={stateTag(c.state)}>{c.stateLabel}</span>{c.decisionReason ? <div className="small muted">“{c.decisionReason}”</div> : null}</td>
                    <td>{c.state === 'pending' ? <button type="button" className="button small secondary" onClick={() => void act(() => api('POST', `/api/governance/changes/${c.id}/withdraw`), 'Withdrawn.')}>Withdraw</button> : null}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      ) : null}

      <h2>Change-control log</h2>
      <div className="toolbar">
        <label>
          State{' '}
          <select value={filter} onChange={(e) => setFilter(e.target.value)} aria-label="State">
            <option value="">All</option>
            {Object.entries(states).map(([k, v]) => <option key={k} value={k}>{v}</option>)}
          </select>
        </label>
        <div className="row">
          <a className="button secondary" href={`/api/governance/changes/export.csv${exportQuery}`} download>Export CSV</a>
          <a className="button secondary" href={`/api/governance/changes/export.pdf${exportQuery}`} download>Export PDF</a>
        </div>
      </div>
      {loaded && log.length === 0 ? <p className="muted">No changes {filter ? 'in this state' : 'yet'}.</p> : null}
      {log.length > 0 ? (
        <table className="table" data-testid="change-log">
          <thead><tr><th>Asked</th><th>By</th><th>Change</th><th>State</th><th>Decided</th></tr></thead>
          <tbody>
            {log.map((c) => (
              <tr key={c.id} data-id={c.id}>
                <td className="nowrap">{when(c.requestedAt)}</td>
                <td>{c.requestedBy}</td>
                <td>{c.summary}{c.emergency ? <> <span className="tag tag-warn">emergency</span></> : null}<div className="small muted">“{c.reason}”</div></td>
                <td><span className={stateTag(c.state)}>{c.stateLabel}</span></td>
                <td className="small">{c.decidedBy ? <>{c.decidedBy}{c.decidedAt ? ` · ${when(c.decidedAt)}` : ''}{c.decisionReason ? <div className="muted">“{c.decisionReason}”</div> : null}</> : '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </section>
  );
}

function PendingCard({ change: c, mine, isApprover, canApproveRole, approvers, onAct, onSecret }: { change: Change; mine: boolean; isApprover: boolean; canApproveRole: boolean; approvers: string[]; onAct: (work: () => Promise<unknown>, done: string) => Promise<void>; onSecret: (secret: string) => void }) {
  const [reason, setReason] = useState('');
  const [reasonError, setReasonError] = useState<string | null>(null);
  const emergency = c.state === 'applied_pending_approval';
  const withReason = (path: string, done: string) => {
    if (reason.trim().length < 3) {
      setReasonError('Say why (at least a few words): it is recorded.');
      return;
    }
    setReasonError(null);
    void onAct(() => api('POST', `/api/governance/changes/${c.id}/${path}`, { reason }), done);
  };
  return (
    <div className="card" data-testid="pending-change" data-id={c.id}>
      <h3>
        {c.summary} <span className={stateTag(c.state)}>{c.stateLabel}</span>
      </h3>
      <p className="small">
        Asked by <strong>{c.requestedBy}</strong> at {when(c.requestedAt)}: “{c.reason}”
        {emergency && c.appliedAt ? <> · in effect since {when(c.appliedAt)}</> : null}
        {c.escalatedAt ? <> · escalated {when(c.escalatedAt)}</> : null}
      </p>
      {mine ? (
        <p className="small muted" data-testid="own-change">You asked for this change: a second person ({approvers.map(roleWords).join(', ')}) must approve it.</p>
      ) : isApprover ? (
        <div className="form">
          <Field label="Reason (needed to refuse or roll back; kept with an approval)" error={reasonError}>
            <input value={reason} onChange={(e) => setReason(e.target.value)} maxLength={2000} />
          </Field>
          <div className="row">
            <button type="button" className="button small" onClick={() => void onAct(async () => {
              const done = await api<Change & { secret?: string }>('POST', `/api/governance/changes/${c.id}/approve`, reason.trim() ? { note: reason.trim() } : {});
              // An identity-API token is made on approval: its secret is shown here once, for the approver to hand over.
              if (done.secret) onSecret(done.secret);
            }, emergency ? 'Approved: the emergency change stays.' : 'Approved and applied.')}>Approve</button>
            {emergency ? (
              <button type="button" className="button small secondary" onClick={() => withReason('rollback', 'Rolled back: what it changed is as it was before.')}>Roll back</button>
            ) : (
              <button type="button" className="button small secondary" onClick={() => withReason('refuse', 'Refused.')}>Refuse</button>
            )}
          </div>
        </div>
      ) : (
        <p className="small muted">{canApproveRole ? `Only ${approvers.map(roleWords).join(', ')} approve filtering changes here.` : 'Awaiting a second person’s approval.'}</p>
      )}
    </div>
  );
}

function NewChange({ onCreated, onError }: { onCreated: (c: Change) => void; onError: (e: unknown) => void }) {
  const [lists, setLists] = useState<ListSource[]>([]);
  const [listId, setListId] = useState('');
  const [action, setAction] = useState<'add' | 'remove'>('add');
  const [hosts, setHosts] = useState('');
  const [reason, setReason] = useState('');
  const [emergency, setEmergency] = useState(false);
  const [problems, setProblems] = useState<Record<string, string>>({});
  useEffect(() => {
    void api<{ sources: ListSource[] }>('GET', '/api/filtering/lists').then((r) => {
      const own = r.sources.filter((s) => s.location === null && (s.kind === 'allow' || s.kind === 'block'));
      setLists(own);
      if (own[0]) setListId(own[0].id);
    }, onError);
  }, [onError]);
  const list = lists.find((l) => l.id === listId);
  // Only blocking more: adding to a block list, or taking a site off an allow list.
  const canEmergency = (action === 'add' && list?.kind === 'block') || (action === 'remove' && list?.kind === 'allow');
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const sites = hosts.split(/[\s,]+/).map((h) => h.trim()).filter(Boolean);
    const local: Record<string, string> = {};
    if (!list) local.list = 'Choose one of the school’s own lists.';
    if (sites.length === 0) local.hosts = 'Give at least one site.';
    if (action === 'remove' && sites.length > 1) local.hosts = 'Remove one site at a time.';
    if (reason.trim().length < 3) local.reason = 'Say why this change is needed.';
    setProblems(local);
    if (Object.keys(local).length > 0) return;
    const change = action === 'add' ? { kind: 'list.entries_add', listId, entries: { hosts: sites } } : { kind: 'list.entry_remove', listId, host: sites[0] };
    try {
      const created = await api<Change>('POST', '/api/governance/changes', { change, reason, emergency: emergency && canEmergency });
      setHosts('');
      setReason('');
      setEmergency(false);
      onCreated(created);
    } catch (err) {
      const fields = fieldErrors(err);
      setProblems({ hosts: fields['change.entries.hosts'] ?? fields['change.host'] ?? '', reason: fields.reason ?? '' });
      onError(err);
    }
  };
  return (
    <form className="card form" aria-label="Ask for a change" onSubmit={(e) => void submit(e)}>
      <h2>Ask for a change to a school list</h2>
      {lists.length === 0 ? <p className="muted">The school has no lists of its own yet: add one under Lists.</p> : null}
      <Field label="List" error={problems.list}>
        <select value={listId} onChange={(e) => setListId(e.target.value)}>
          {lists.map((l) => <option key={l.id} value={l.id}>{l.name} ({l.kind})</option>)}
        </select>
      </Field>
      <Field label="Change">
        <select value={action} onChange={(e) => setAction(e.target.value as 'add' | 'remove')}>
          <option value="add">Add sites</option>
          <option value="remove">Remove a site</option>
        </select>
      </Field>
      <Field label="Sites" hint="Domain names or web addresses, one a line" error={problems.hosts || null}>
        <textarea value={hosts} onChange={(e) => setHosts(e.target.value)} rows={3} />
      </Field>
      <Field label="Reason" error={problems.reason || null}>
        <input value={reason} onChange={(e) => setReason(e.target.value)} maxLength={2000} />
      </Field>
      {canEmergency ? (
        <label className="checkbox">
          <input type="checkbox" checked={emergency} onChange={(e) => setEmergency(e.target.checked)} /> Emergency: {action === 'add' ? 'block now' : 'stop allowing it now'} (in effect at once, awaiting approval)
        </label>
      ) : null}
      <div className="actions">
        <button type="submit" className="button">{emergency && canEmergency ? 'Block now' : 'Ask for approval'}</button>
      </div>
    </form>
  );
}
