import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, setCsrfToken, type Account } from '../api';
import { ErrorMessage, Field } from '../components';
import { PasswordRules } from '../PasswordRules';
import { Link } from '../router';

interface ResetState {
  next: 'email' | 'new_password';
  username: string;
  expiresAt: string;
  emailedTo: string | null;
  csrfToken: string;
}

/** The code an e-mailed link carries after `#`, which browsers never send to the server. */
function emailCodeFromFragment(): string | null {
  const match = /(?:^|[#&])code=([a-z0-9]+)/.exec(window.location.hash);
  if (match) window.history.replaceState(null, '', window.location.pathname);
  return match ? match[1]! : null;
}

/**
 * AC-10/AC-11: "Forgot your password?" — a code from the authenticator app or a recovery code, then
 * (as the school's profile asks: staff always) the link e-mailed to the address on file, then a new
 * password. The reset lives in an HttpOnly cookie of this browser, so the e-mailed link opened in
 * another tab of it carries on here.
 */
export function ForgotPasswordPage({ schoolName }: { schoolName: string }) {
  const [username, setUsername] = useState('');
  const [code, setCode] = useState('');
  const [emailCode, setEmailCode] = useState('');
  const [state, setState] = useState<ResetState | null>(null);
  const [fromLink, setFromLink] = useState<string | null>(null);
  const [password, setPassword] = useState('');
  const [confirm, setConfirm] = useState('');
  const [done, setDone] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const took = (r: ResetState) => {
    setCsrfToken(r.csrfToken);
    setState(r);
    setUsername(r.username);
  };

  // Opened from the e-mailed link (also into a tab already on this page): find the reset this
  // browser holds and give it the code.
  useEffect(() => {
    const follow = () => {
      const linked = emailCodeFromFragment();
      if (!linked) return;
      setFromLink(linked);
      setDone(false);
      setError(null);
      setBusy(true);
      void (async () => {
        try {
          const current = await api<ResetState>('GET', '/api/password-reset');
          setCsrfToken(current.csrfToken);
          took(current.next === 'email' ? await api<ResetState>('POST', '/api/password-reset/email', { code: linked }) : current);
        } catch (e) {
          setState(null);
          setError(e);
        } finally {
          setBusy(false);
        }
      })();
    };
    follow();
    window.addEventListener('hashchange', follow);
    return () => window.removeEventListener('hashchange', follow);
  }, []);

  const start = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      took(await api<ResetState>('POST', '/api/password-reset/start', { username, code }));
    } catch (e) {
      setError(e);
      setCode('');
    } finally {
      setBusy(false);
    }
  };
  const confirmEmail = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      took(await api<ResetState>('POST', '/api/password-reset/email', { code: emailCode }));
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const finish = async (event: FormEvent) => {
    event.preventDefault();
    if (password !== confirm) {
      setError(new Error('The two new passwords are not the same.'));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await api('POST', '/api/password-reset/finish', { newPassword: password });
      setCsrfToken(null);
      setDone(true);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  if (done) {
    return (
      <div className="card narrow" role="status">
        <h1>Password changed</h1>
        <p>Your new password is saved. Any sessions you had elsewhere have been signed out, and if your account was locked it is unlocked.</p>
        <Link className="button" href="/">Sign in</Link>
      </div>
    );
  }
  if (state?.next === 'new_password') {
    return (
      <form className="card narrow" onSubmit={finish} aria-labelledby="reset-title">
        <h1 id="reset-title">Choose a new password</h1>
        <p className="muted">For <strong>{state.username}</strong> at {schoolName}. This page works for 10 minutes.</p>
        <ErrorMessage error={error} />
        <Field label="New password">
          <input name="newPassword" type="password" value={password} onChange={(e) => setPassword(e.target.value)} autoComplete="new-password" required autoFocus />
        </Field>
        <PasswordRules password={password} username={state.username} />
        <Field label="New password again">
          <input name="confirm" type="password" value={confirm} onChange={(e) => setConfirm(e.target.value)} autoComplete="new-password" required />
        </Field>
        <button type="submit" className="button" disabled={busy}>Save my new password</button>
      </form>
    );
  }
  if (state?.next === 'email') {
    return (
      <form className="card narrow" onSubmit={confirmEmail} aria-labelledby="email-title">
        <h1 id="email-title">Check your e-mail</h1>
        <p>
          Your code is right. To make sure it is really you, we have e-mailed a link to {state.emailedTo ? <strong>{state.emailedTo}</strong> : 'the address the school has for you'}.
          Open it in this browser within 15 minutes — or type the code from the e-mail here.
        </p>
        <ErrorMessage error={error} />
        <Field label="Code from the e-mail" hint="Ten letters and numbers, e.g. abcde-fgh23. It works once.">
          <input name="emailCode" value={emailCode} onChange={(e) => setEmailCode(e.target.value)} autoComplete="one-time-code" required autoFocus />
        </Field>
        <div className="row">
          <button type="submit" className="button" disabled={busy}>Continue</button>
          <Link href="/" className="link-button">Back to sign-in</Link>
        </div>
      </form>
    );
  }
  if (fromLink && (busy || error)) {
    return (
      <div className="card narrow" aria-labelledby="link-title">
        <h1 id="link-title">Reset your password</h1>
        {busy ? <p role="status">Checking the link…</p> : null}
        <ErrorMessage error={error} />
        {error ? (
          <p>
            The link works only once, for 15 minutes, and only in the browser where you entered the code from your authenticator app.
            If that was another browser or device, type the code from the e-mail there. Or start again.
          </p>
        ) : null}
        {error ? (
          <div className="row">
            <button type="button" className="button" onClick={() => { setFromLink(null); setError(null); }}>Start again</button>
            <Link href="/" className="link-button">Back to sign-in</Link>
          </div>
        ) : null}
      </div>
    );
  }
  return (
    <form className="card narrow" onSubmit={start} aria-labelledby="forgot-title">
      <h1 id="forgot-title">Forgot your password?</h1>
      <p>
        If you set up an authenticator app or have your recovery codes, you can choose a new password yourself (staff also get a
        link by e-mail). Otherwise, staff ask the IT team (a second person approves the reset), and pupils ask their teacher.
      </p>
      <ErrorMessage error={error} />
      <Field label="Username">
        <input name="username" value={username} onChange={(e) => setUsername(e.target.value)} autoComplete="username" required autoFocus />
      </Field>
      <Field label="Code" hint="The 6-digit code from your authenticator app, or one of your recovery codes.">
        <input name="code" value={code} onChange={(e) => setCode(e.target.value)} autoComplete="one-time-code" required />
      </Field>
      <div className="row">
        <button type="submit" className="button" disabled={busy}>Continue</button>
        <Link href="/" className="link-button">Back to sign-in</Link>
      </div>
    </form>
  );
}

interface Pupil {
  id: string;
  username: string;
  displayName: string;
  status: string;
  locked: boolean;
  classes: string[];
}

/** A temporary password to hand over, shown once. */
function Handover({ issued, onClose }: { issued: { who: string; username: string; password: string }; onClose: () => void }) {
  return (
    <div className="alert alert-info" role="status" data-testid="temporary-password">
      <p>
        Temporary password for <strong>{issued.who}</strong> (<code>{issued.username}</code>): <code className="secret">{issued.password}</code>
      </p>
      <p className="small">Give it to them in person. It is shown only now, must be changed when they sign in, and stops working if unused.</p>
      <button type="button" className="button small" onClick={onClose}>Done</button>
    </div>
  );
}

/** AC-11 / AC-03: staff reset the passwords of pupils in the classes they teach. */
export function MyPupilsPage({ account }: { account: Account }) {
  const [pupils, setPupils] = useState<Pupil[] | null>(null);
  const [search, setSearch] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [issued, setIssued] = useState<{ who: string; username: string; password: string } | null>(null);
  const load = useCallback(async () => {
    try {
      const q = search.trim() ? `?q=${encodeURIComponent(search.trim())}` : '';
      setPupils((await api<{ pupils: Pupil[] }>('GET', `/api/my-pupils${q}`)).pupils);
    } catch (e) {
      setError(e);
    }
  }, [search]);
  useEffect(() => {
    void load();
  }, [load]);
  const reset = async (p: Pupil) => {
    if (!window.confirm(`Reset ${p.displayName}’s password? They will be given a temporary password and must choose a new one when they sign in.`)) return;
    setError(null);
    try {
      const r = await api<{ username: string; displayName: string; temporaryPassword: string }>('POST', `/api/my-pupils/${p.id}/reset`);
      setIssued({ who: r.displayName, username: r.username, password: r.temporaryPassword });
      await load();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <section>
      <h1>My pupils</h1>
      <p className="muted">
        {account.role === 'administrator' ? 'Every pupil.' : 'Pupils in the classes you teach.'} Resetting gives the pupil a temporary password to change when they sign in; it is recorded in the audit trail.
      </p>
      <ErrorMessage error={error} />
      {issued ? <Handover issued={issued} onClose={() => setIssued(null)} /> : null}
      <div className="toolbar">
        <input aria-label="Search pupils" placeholder="Search by name or username" value={search} onChange={(e) => setSearch(e.target.value)} />
      </div>
      {pupils && pupils.length === 0 ? <p className="muted">No pupils found. If you teach a class, ask the IT team to record you as its teacher.</p> : null}
      {pupils && pupils.length > 0 ? (
        <table className="table" data-testid="pupils">
          <thead>
            <tr><th>Name</th><th>Username</th><th>Classes</th><th>State</th><th aria-label="Actions" /></tr>
          </thead>
          <tbody>
            {pupils.map((p) => (
              <tr key={p.id} data-username={p.username}>
                <td>{p.displayName}</td>
                <td><code>{p.username}</code></td>
                <td>{p.classes.join(', ')}</td>
                <td>
                  {p.locked ? <span className="tag tag-bad">locked</span> : null}
                  {p.status !== 'active' ? <span className="tag">{p.status}</span> : null}
                </td>
                <td className="actions">
                  {p.status === 'active' ? <button type="button" className="button small" onClick={() => void reset(p)} aria-label={`Reset password for ${p.username}`}>Reset password</button> : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </section>
  );
}

interface ResetRequest {
  id: string;
  status: string;
  account: { id: string; username: string; displayName: string; role: string };
  requestedBy: string | null;
  reason: string | null;
  createdAt: string;
  expiresAt: string;
  decidedBy: string | null;
  decidedAt: string | null;
  decisionNote: string | null;
  issuedBy: string | null;
  issuedAt: string | null;
  verifiedHow: string | null;
}

const when = (iso: string) => new Date(iso).toLocaleString('en-GB', { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });
const statusLabel: Record<string, string> = {
  pending: 'waiting for a second person',
  approved: 'approved — ready to issue',
  refused: 'refused',
  issued: 'issued',
  expired: 'expired',
  cancelled: 'cancelled',
};

/** AC-10: staff resets as requests a second person approves before a temporary password is issued. */
export function ResetRequestsPage({ account }: { account: Account }) {
  const canApprove = account.permissions.includes('resets.approve');
  const [requests, setRequests] = useState<ResetRequest[]>([]);
  const [showAll, setShowAll] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [issued, setIssued] = useState<{ who: string; username: string; password: string } | null>(null);
  const [issuing, setIssuing] = useState<string | null>(null);
  const [verifiedHow, setVerifiedHow] = useState('');

  const load = useCallback(async () => {
    try {
      setRequests((await api<{ requests: ResetRequest[] }>('GET', `/api/password-resets?status=${showAll ? 'all' : 'open'}`)).requests);
    } catch (e) {
      setError(e);
    }
  }, [showAll]);
  useEffect(() => {
    void load();
  }, [load]);
  const act = async (work: () => Promise<unknown>) => {
    setError(null);
    try {
      await work();
      await load();
    } catch (e) {
      setError(e);
    }
  };

  return (
    <section>
      <h1>Password resets</h1>
      <p className="muted">
        A staff password is reset only when a second authorised person approves the request. Then the person who asked, or the approver,
        checks it is really them and issues a temporary password. Pupils’ passwords are reset by their teachers under My pupils.
      </p>
      <ErrorMessage error={error} />
      {issued ? <Handover issued={issued} onClose={() => setIssued(null)} /> : null}
      <NewRequest onCreated={() => void load()} onError={setError} />
      <div className="toolbar">
        <label className="checkbox">
          <input type="checkbox" checked={showAll} onChange={(e) => setShowAll(e.target.checked)} /> Show closed requests too
        </label>
      </div>
      {requests.length === 0 ? <p className="muted">No open requests.</p> : null}
      {requests.map((r) => (
        <div key={r.id} className="card" data-testid="reset-request" data-username={r.account.username}>
          <h2>
            {r.account.displayName} <code className="small">{r.account.username}</code> <span className={`tag ${r.status === 'approved' ? 'tag-ok' : r.status === 'refused' ? 'tag-bad' : ''}`}>{statusLabel[r.status] ?? r.status}</span>
          </h2>
          <p className="small">
            Asked by <strong>{r.requestedBy}</strong> at {when(r.createdAt)}: “{r.reason}”
            {r.decidedBy ? <> · {r.status === 'refused' ? 'refused' : 'approved'} by <strong>{r.decidedBy}</strong>{r.decidedAt ? ` at ${when(r.decidedAt)}` : ''}{r.decisionNote ? ` (“${r.decisionNote}”)` : ''}</> : null}
            {r.issuedBy ? <> · issued by <strong>{r.issuedBy}</strong> ({r.verifiedHow})</> : null}
          </p>
          <div className="row">
            {r.status === 'pending' && canApprove ? (
              <>
                <button type="button" className="button small" onClick={() => void act(() => api('POST', `/api/password-resets/${r.id}/approve`, {}))}>Approve</button>
                <button type="button" className="button small secondary" onClick={() => { const note = window.prompt('Why is it refused? (recorded)') ?? undefined; void act(() => api('POST', `/api/password-resets/${r.id}/refuse`, note ? { note } : {})); }}>Refuse</button>
              </>
            ) : null}
            {r.status === 'approved' && issuing !== r.id ? (
              <button type="button" className="button small" onClick={() => { setIssuing(r.id); setVerifiedHow(''); }}>Issue temporary password</button>
            ) : null}
            {r.status === 'pending' || r.status === 'approved' ? (
              <button type="button" className="link-button" onClick={() => void act(() => api('DELETE', `/api/password-resets/${r.id}`))}>Cancel request</button>
            ) : null}
          </div>
          {issuing === r.id ? (
            <form
              className="inline-form"
              onSubmit={(e) => {
                e.preventDefault();
                void act(async () => {
                  const out = await api<{ temporaryPassword: string }>('POST', `/api/password-resets/${r.id}/issue`, { verifiedHow });
                  setIssued({ who: r.account.displayName, username: r.account.username, password: out.temporaryPassword });
                  setIssuing(null);
                });
              }}
            >
              <Field label="How did you check it is really them?" hint="Recorded in the audit trail, e.g. “in person, staff ID card” or “called back on the number in the MIS”.">
                <input name="verifiedHow" value={verifiedHow} onChange={(e) => setVerifiedHow(e.target.value)} required />
              </Field>
              <button type="submit" className="button small">Issue</button>
              <button type="button" className="link-button" onClick={() => setIssuing(null)}>Cancel</button>
            </form>
          ) : null}
        </div>
      ))}
    </section>
  );
}

function NewRequest({ onCreated, onError }: { onCreated: () => void; onError: (e: unknown) => void }) {
  const [open, setOpen] = useState(false);
  const [search, setSearch] = useState('');
  const [matches, setMatches] = useState<Array<{ id: string; username: string; displayName: string; role: string }>>([]);
  const [chosen, setChosen] = useState<{ id: string; displayName: string } | null>(null);
  const [reason, setReason] = useState('');
  useEffect(() => {
    if (!open || search.trim().length < 2) {
      setMatches([]);
      return;
    }
    const timer = setTimeout(() => {
      api<{ accounts: Array<{ id: string; username: string; displayName: string; role: string; status: string; isBreakGlass: boolean }> }>('GET', `/api/accounts?status=active&limit=10&q=${encodeURIComponent(search.trim())}`).then(
        (r) => setMatches(r.accounts.filter((a) => a.role !== 'pupil' && !a.isBreakGlass)),
        onError,
      );
    }, 200);
    return () => clearTimeout(timer);
  }, [open, search, onError]);
  if (!open) return <button type="button" className="button" onClick={() => setOpen(true)}>Request a staff password reset</button>;
  return (
    <form
      className="card inline-form"
      aria-label="Request a staff password reset"
      onSubmit={async (e) => {
        e.preventDefault();
        if (!chosen) return;
        try {
          await api('POST', '/api/password-resets', { accountId: chosen.id, reason });
          setOpen(false);
          setChosen(null);
          setReason('');
          setSearch('');
          onCreated();
        } catch (err) {
          onError(err);
        }
      }}
    >
      {chosen ? (
        <p>
          Reset for <strong>{chosen.displayName}</strong> <button type="button" className="link-button" onClick={() => setChosen(null)}>change</button>
        </p>
      ) : (
        <Field label="Whose password?">
          <input name="person" value={search} onChange={(e) => setSearch(e.target.value)} placeholder="Name or username" autoComplete="off" />
        </Field>
      )}
      {!chosen && matches.length > 0 ? (
        <ul className="picker">
          {matches.map((m) => (
            <li key={m.id}>
              <button type="button" className="link-button" onClick={() => setChosen(m)}>{m.displayName} ({m.username})</button>
            </li>
          ))}
        </ul>
      ) : null}
      <Field label="Reason" hint="Why the reset is needed and how they asked (recorded).">
        <input name="reason" value={reason} onChange={(e) => setReason(e.target.value)} required />
      </Field>
      <button type="submit" className="button" disabled={!chosen}>Send for approval</button>
      <button type="button" className="link-button" onClick={() => setOpen(false)}>Cancel</button>
    </form>
  );
}
