import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, type Account } from '../api';
import { ErrorMessage, Field } from '../components';
import './GuestsPage.css';

/**
 * The guest desk (AC-05): reception allocates a pre-created guest account to a named visitor and
 * prints a slip; today's visitors can be ended early; administrators keep the pool of accounts.
 */

interface Visit {
  id: string;
  accountId: string;
  username: string;
  visitorName: string | null;
  organisation: string | null;
  purpose: string | null;
  host: string | null;
  startsAt: string;
  endsAt: string;
  endedAt: string | null;
  endReason: string | null;
  wipedAt: string | null;
  allocatedBy: string;
  state: 'active' | 'past_end' | 'ended' | 'wiped';
  wipeDueAt: string | null;
}

interface PoolAccount {
  id: string;
  username: string;
  state: 'free' | 'allocated' | 'past_end';
  visit: Visit | null;
  detailsHeld: number;
  lastUsedAt: string | null;
}

interface Pool {
  accounts: PoolAccount[];
  free: number;
  endOfDay: string;
  retentionDays: number;
  timeZone: string;
}

interface Slip {
  school: string;
  visitorName: string;
  organisation: string | null;
  username: string;
  password: string;
  validUntil: string;
  timeZone: string;
  aupAtSignIn: boolean;
}

/** Times are the school's (the profile's time zone), whatever the browser's clock says. */
function clock(iso: string, timeZone: string): string {
  return new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(iso));
}
function day(iso: string, timeZone: string): string {
  return new Intl.DateTimeFormat('en-GB', { timeZone, weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' }).format(new Date(iso)).replace(',', '');
}

export function GuestsPage({ account }: { account: Account }) {
  const canAddAccounts = account.permissions.includes('accounts.manage');
  const [pool, setPool] = useState<Pool | null>(null);
  const [visits, setVisits] = useState<Visit[]>([]);
  const [slip, setSlip] = useState<Slip | null>(null);
  const [error, setError] = useState<unknown>(null);

  const load = useCallback(async () => {
    try {
      const [p, v] = await Promise.all([api<Pool>('GET', '/api/guests/pool'), api<{ visits: Visit[] }>('GET', '/api/guests/visits?scope=today')]);
      setPool(p);
      setVisits(v.visits);
    } catch (e) {
      setError(e);
    }
  }, []);
  useEffect(() => {
    void load();
  }, [load]);

  const endVisit = async (visit: Visit) => {
    setError(null);
    try {
      await api('POST', `/api/guests/visits/${visit.id}/end`);
      await load();
    } catch (e) {
      setError(e);
    }
  };

  const timeZone = pool?.timeZone ?? 'Europe/London';
  return (
    <section className="guests-page">
      <h1>Guest desk</h1>
      <ErrorMessage error={error} />
      {slip ? <GuestSlip slip={slip} onDone={() => setSlip(null)} /> : null}
      {pool ? (
        <Allocate
          pool={pool}
          onAllocated={(s) => {
            setSlip(s);
            void load();
          }}
        />
      ) : (
        <p className="muted">Loading…</p>
      )}

      <h2>Today’s visitors</h2>
      {visits.length === 0 ? (
        <p className="muted">No visitors today.</p>
      ) : (
        <table className="table" data-testid="visits">
          <thead>
            <tr>
              <th>Visitor</th>
              <th>With</th>
              <th>Account</th>
              <th>Access</th>
              <th aria-label="Actions" />
            </tr>
          </thead>
          <tbody>
            {visits.map((v) => (
              <tr key={v.id} data-visit={v.id}>
                <td>
                  {v.visitorName ?? <span className="muted">details wiped</span>}
                  {v.organisation ? <div className="muted small">{v.organisation}</div> : null}
                  {v.purpose ? <div className="muted small">{v.purpose}</div> : null}
                </td>
                <td>{v.host}</td>
                <td><code>{v.username}</code></td>
                <td>
                  {v.state === 'active' ? <>until {clock(v.endsAt, timeZone)}</> : null}
                  {v.state === 'past_end' ? <span className="tag tag-warn">time up at {clock(v.endsAt, timeZone)}</span> : null}
                  {v.state === 'ended' || v.state === 'wiped' ? (
                    <span className="tag">{v.endReason === 'expired' ? `ended at ${clock(v.endsAt, timeZone)}` : `ended early at ${clock(v.endedAt!, timeZone)}`}</span>
                  ) : null}
                </td>
                <td className="actions">
                  {v.state === 'active' || v.state === 'past_end' ? (
                    <button type="button" className="button small" onClick={() => void endVisit(v)} aria-label={`End visit of ${v.visitorName ?? v.username}`}>
                      End visit
                    </button>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}

      {pool ? <PoolSection pool={pool} canAdd={canAddAccounts} onChanged={() => void load()} /> : null}
    </section>
  );
}

function Allocate({ pool, onAllocated }: { pool: Pool; onAllocated: (slip: Slip) => void }) {
  const blank = { visitorName: '', organisation: '', purpose: '', host: '', expectedEnd: '', accountId: '' };
  const [form, setForm] = useState(blank);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const free = pool.accounts.filter((a) => a.state === 'free');
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    setBusy(true);
    try {
      const r = await api<{ slip: Slip }>('POST', '/api/guests/visits', {
        visitorName: form.visitorName,
        organisation: form.organisation.trim() || null,
        purpose: form.purpose,
        host: form.host,
        expectedEnd: form.expectedEnd,
        accountId: form.accountId || null,
      });
      setForm(blank);
      onAllocated(r.slip);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const set = (key: keyof typeof blank) => (e: { target: { value: string } }) => setForm({ ...form, [key]: e.target.value });
  return (
    <form className="card guest-allocate" onSubmit={submit} aria-label="Allocate a guest account">
      <div className="section-head">
        <h2>Allocate a guest account</h2>
        <span className={free.length < 2 ? 'tag tag-warn' : 'tag'} data-testid="free-count">
          {free.length} of {pool.accounts.length} free
        </span>
      </div>
      <ErrorMessage error={error} />
      <div className="guest-fields">
        <Field label="Visitor’s full name">
          <input name="visitorName" value={form.visitorName} onChange={set('visitorName')} autoComplete="off" />
        </Field>
        <Field label="Organisation" hint="Optional: who they are from">
          <input name="organisation" value={form.organisation} onChange={set('organisation')} autoComplete="off" />
        </Field>
        <Field label="Purpose of visit">
          <input name="purpose" value={form.purpose} onChange={set('purpose')} autoComplete="off" />
        </Field>
        <Field label="Host" hint="The member of staff they are with">
          <input name="host" value={form.host} onChange={set('host')} autoComplete="off" />
        </Field>
        <Field label="Expected end" hint={`Today. Access ends then, or at ${pool.endOfDay} (end of the school day), whichever is first.`}>
          <input name="expectedEnd" type="time" value={form.expectedEnd} onChange={set('expectedEnd')} />
        </Field>
        <Field label="Guest account">
          <select name="accountId" value={form.accountId} onChange={set('accountId')}>
            <option value="">{free[0] ? `Next free (${free[0].username})` : 'None free'}</option>
            {free.map((a) => <option key={a.id} value={a.id}>{a.username}</option>)}
          </select>
        </Field>
      </div>
      <button type="submit" className="button" disabled={busy}>Allocate and show the slip</button>
    </form>
  );
}

/** The slip handed to the visitor: the only place the password is ever shown. Prints on its own. */
function GuestSlip({ slip, onDone }: { slip: Slip; onDone: () => void }) {
  return (
    <div className="guest-slip" data-testid="guest-slip" role="region" aria-label="Guest slip">
      <div className="guest-slip-head">
        <strong>{slip.school}</strong>
        <span>Guest access</span>
      </div>
      <dl className="guest-slip-facts">
        <dt>Visitor</dt>
        <dd data-testid="slip-visitor">{slip.visitorName}{slip.organisation ? ` (${slip.organisation})` : ''}</dd>
        <dt>Username</dt>
        <dd><code className="guest-slip-secret" data-testid="slip-username">{slip.username}</code></dd>
        <dt>Password</dt>
        <dd><code className="guest-slip-secret" data-testid="slip-password">{slip.password}</code></dd>
        <dt>Valid until</dt>
        <dd data-testid="slip-until">{clock(slip.validUntil, slip.timeZone)} on {day(slip.validUntil, slip.timeZone)}</dd>
      </dl>
      <p className="guest-slip-note">
        Connect to the school’s guest Wi-Fi and sign in with the username and password above. Your use of the school’s network and
        devices is monitored and must follow the school’s Acceptable Use Policy
        {slip.aupAtSignIn ? ', which you will be asked to read and accept when you first sign in' : ''}. Keep the password to
        yourself; it stops working at the time above. Please hand this slip back to reception when you leave.
      </p>
      <div className="guest-slip-actions">
        <button type="button" className="button" onClick={() => window.print()}>Print</button>
        <button type="button" className="link-button" onClick={onDone}>Done (the password will not be shown again)</button>
      </div>
    </div>
  );
}

function PoolSection({ pool, canAdd, onChanged }: { pool: Pool; canAdd: boolean; onChanged: () => void }) {
  const [count, setCount] = useState('5');
  const [error, setError] = useState<unknown>(null);
  const [added, setAdded] = useState<string[] | null>(null);
  const add = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    try {
      const r = await api<{ created: string[] }>('POST', '/api/guests/pool', { count: Number(count) });
      setAdded(r.created);
      onChanged();
    } catch (e) {
      setError(e);
    }
  };
  const stateText = (a: PoolAccount) => {
    if (a.state === 'free') return <span className="tag tag-ok">free</span>;
    const v = a.visit!;
    return (
      <>
        <span className={a.state === 'past_end' ? 'tag tag-warn' : 'tag'}>{a.state === 'past_end' ? 'time up, being freed' : 'allocated'}</span>{' '}
        {v.visitorName} until {clock(v.endsAt, pool.timeZone)}
      </>
    );
  };
  return (
    <>
      <h2>Guest accounts</h2>
      <p className="muted small">
        Free accounts are disabled and have no password. A visitor’s details are wiped {pool.retentionDays} days after the visit ends; the audit trail keeps the allocation.
      </p>
      {canAdd ? (
        <form className="row-form pool-add" onSubmit={add} aria-label="Add guest accounts">
          <ErrorMessage error={error} />
          <label htmlFor="pool-count">Add</label>
          <input id="pool-count" name="count" type="number" min={1} max={50} value={count} onChange={(e) => setCount(e.target.value)} className="pool-count" />
          <span>guest accounts</span>
          <button type="submit" className="button small">Add to the pool</button>
          {added ? <span className="saved" role="status">Added {added.join(', ')}</span> : null}
        </form>
      ) : null}
      {pool.accounts.length === 0 ? (
        <p className="muted">There are no guest accounts yet.{canAdd ? ' Add some above.' : ' Ask an IT administrator to add some.'}</p>
      ) : (
        <table className="table" data-testid="pool">
          <thead>
            <tr>
              <th>Account</th>
              <th>State</th>
              <th>Past visits with details held</th>
            </tr>
          </thead>
          <tbody>
            {pool.accounts.map((a) => (
              <tr key={a.id} data-username={a.username}>
                <td><code>{a.username}</code></td>
                <td>{stateText(a)}</td>
                <td>{a.detailsHeld}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
