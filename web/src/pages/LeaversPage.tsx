import { useCallback, useEffect, useRef, useState } from 'react';
import { api } from '../api';
import { ErrorMessage, Field } from '../components';
import { Link } from '../router';
import { PersonSearch, type PersonChoice } from './PersonSearch';

interface Item {
  id: string;
  kind: string;
  label: string;
  how: 'automatic' | 'linked' | 'manual';
  done: boolean;
  notApplicable?: boolean;
  doneAt: string | null;
  doneBy: string | null;
  detail?: string | null;
  href?: string | null;
}

interface Leaver {
  accountId: string;
  username: string;
  displayName: string;
  role: string;
  leftOn: string;
  startedAt: string;
  startedBy: string;
  note: string | null;
  completedAt: string | null;
  items: Item[];
  done: number;
  total: number;
}

/** A date-only value ("2026-07-22") as it is; an instant as the school's calendar has it. */
const formatDay = (iso: string, timeZone: string | undefined) =>
  iso.length === 10
    ? new Date(`${iso}T12:00:00Z`).toLocaleDateString('en-GB', { day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC' })
    : new Date(iso).toLocaleDateString('en-GB', { day: 'numeric', month: 'short', year: 'numeric', timeZone });

const today = () => {
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
};

/** AC-13: start a leaver in one action, then work through the checklist until it is complete. */
export function LeaversPage() {
  const [leavers, setLeavers] = useState<{ open: Leaver[]; completed: Leaver[]; timeZone: string } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [message, setMessage] = useState<string | null>(null);
  const day = (iso: string) => formatDay(iso, leavers?.timeZone);

  const load = useCallback(async () => {
    try {
      const r = await api<{ open: Leaver[]; completed: Leaver[]; timeZone: string }>('GET', '/api/leavers');
      setLeavers(r);
    } catch (e) {
      setError(e);
    }
  }, []);
  useEffect(() => {
    void load();
  }, [load]);

  const tick = async (leaver: Leaver, item: Item, done: boolean) => {
    setError(null);
    setMessage(null);
    try {
      const r = await api<Leaver>('POST', `/api/leavers/${leaver.accountId}/items/${item.id}`, { done });
      if (r.completedAt) setMessage(`The leaver checklist for ${r.displayName} is complete.`);
      await load();
    } catch (e) {
      setError(e);
    }
  };

  return (
    <section>
      <h1>Leavers</h1>
      <p className="muted">
        When someone leaves, one action closes their account and ends their sessions, closes their administrator account, and flags every shared
        secret they knew for a change. The checklist then shows what is left to do.
      </p>
      <ErrorMessage error={error} />
      {message ? <div className="alert alert-ok" role="status">{message}</div> : null}
      <StartLeaver
        onStarted={(l) => {
          setMessage(`${l.displayName}’s account is closed and their checklist has started.`);
          void load();
        }}
      />
      <h2>Open checklists</h2>
      {leavers && leavers.open.length === 0 ? <p className="muted">No checklist is open.</p> : null}
      {leavers?.open.map((l) => <Checklist key={l.accountId} leaver={l} onTick={tick} day={day} />)}
      <h2>Completed</h2>
      {leavers && leavers.completed.length === 0 ? <p className="muted">None yet.</p> : null}
      {leavers && leavers.completed.length > 0 ? (
        <table className="table" data-testid="completed-leavers">
          <thead>
            <tr>
              <th>Name</th>
              <th>Left</th>
              <th>Checklist completed</th>
              <th>Items</th>
            </tr>
          </thead>
          <tbody>
            {leavers.completed.map((l) => (
              <tr key={l.accountId} data-username={l.username}>
                <td>
                  {l.displayName} <span className="muted small">({l.username})</span>
                </td>
                <td className="nowrap">{day(l.leftOn)}</td>
                <td className="nowrap">{l.completedAt ? day(l.completedAt) : ''}</td>
                <td className="small">
                  {l.items.map((i) => (
                    <div key={i.id}>
                      ✓ {i.label}
                      {i.doneBy && i.how !== 'automatic' ? <span className="muted"> — {i.doneBy}</span> : null}
                    </div>
                  ))}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </section>
  );
}

function Checklist({ leaver, onTick, day }: { leaver: Leaver; onTick: (l: Leaver, i: Item, done: boolean) => Promise<void>; day: (iso: string) => string }) {
  return (
    <div className="card leaver" data-testid={`leaver-${leaver.username}`}>
      <div className="section-head">
        <h3>
          {leaver.displayName} <span className="muted small">({leaver.username})</span>
        </h3>
        <span className="tag">{leaver.done} of {leaver.total} done</span>
      </div>
      <p className="small muted">
        Left {day(leaver.leftOn)} · started {day(leaver.startedAt)} by {leaver.startedBy}
      </p>
      {leaver.note ? <p className="small">Note: {leaver.note}</p> : null}
      <ul className="checklist">
        {leaver.items.map((item) => (
          <li key={item.id} className={item.done ? 'done' : undefined}>
            <label className="checkbox">
              <input
                type="checkbox"
                checked={item.done}
                disabled={item.how !== 'manual'}
                onChange={(e) => void onTick(leaver, item, e.target.checked)}
                aria-label={item.label}
              />
              <span>
                {item.label}
                {item.notApplicable ? <span className="tag">not applicable</span> : null}
                {!item.done && item.how === 'linked' ? <span className="tag tag-warn">to do</span> : null}
              </span>
            </label>
            {item.detail ? <div className="small muted item-detail">{item.detail}</div> : null}
            {!item.done && item.href ? (
              <div className="small item-detail">
                <Link href={item.href}>Go to {item.href === '/secrets' ? 'Shared secrets' : item.href}</Link>
              </div>
            ) : null}
          </li>
        ))}
      </ul>
    </div>
  );
}

function StartLeaver({ onStarted }: { onStarted: (l: Leaver) => void }) {
  const [person, setPerson] = useState<PersonChoice | null>(null);
  const [leftOn, setLeftOn] = useState(today());
  const [note, setNote] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const dialog = useRef<HTMLDialogElement>(null);

  const confirm = async () => {
    if (!person) return;
    setBusy(true);
    setError(null);
    try {
      const r = await api<Leaver>('POST', `/api/accounts/${person.id}/leaver`, { leftOn, note: note.trim() || null });
      dialog.current?.close();
      setPerson(null);
      setNote('');
      setLeftOn(today());
      onStarted(r);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="card" aria-label="Start a leaver">
      <h2>Start a leaver</h2>
      {person ? (
        <p>
          Leaving: <strong>{person.displayName}</strong> <span className="muted">({person.username})</span>{' '}
          <button type="button" className="link-button" onClick={() => setPerson(null)}>choose someone else</button>
        </p>
      ) : (
        <Field label="Who is leaving?">
          <PersonSearch
            label="Search for the person leaving"
            onPick={setPerson}
            filter={(p) => !p.isBreakGlass && p.role !== 'guest' && p.role !== 'administrator'}
          />
        </Field>
      )}
      <div className="inline-form">
        <Field label="Date they left">
          <input type="date" value={leftOn} max={today()} onChange={(e) => setLeftOn(e.target.value)} required />
        </Field>
        <Field label="Note (optional)" hint="e.g. where they are going, who has their work. Never a password.">
          <input value={note} onChange={(e) => setNote(e.target.value)} maxLength={2000} />
        </Field>
        <button
          type="button"
          className="button"
          disabled={!person}
          onClick={() => {
            setError(null);
            dialog.current?.showModal();
          }}
        >
          Start leaver…
        </button>
      </div>
      <dialog ref={dialog} className="confirm" aria-labelledby="leaver-confirm-title">
        <h2 id="leaver-confirm-title">Start the leaver for {person?.displayName}?</h2>
        <p>This happens at once, in one step:</p>
        <ul>
          <li>their account ({person?.username}) is closed: they can no longer sign in;</li>
          <li>every session they have open ends, on every device;</li>
          <li>their separate administrator account, if they have one, is disabled;</li>
          <li>every shared secret they know (Wi-Fi keys, alarm codes, master passwords) is flagged to be changed now;</li>
          <li>a checklist starts, with the secrets to change and the equipment to collect.</li>
        </ul>
        <p className="small muted">It cannot be undone from this page.</p>
        <ErrorMessage error={error} />
        <div className="row">
          <button type="button" className="button danger" disabled={busy} onClick={() => void confirm()}>
            Close the account and start the checklist
          </button>
          <button type="button" className="button secondary" onClick={() => dialog.current?.close()}>Cancel</button>
        </div>
      </dialog>
    </div>
  );
}
