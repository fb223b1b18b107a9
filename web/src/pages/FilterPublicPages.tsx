import { useEffect, useState, type FormEvent } from 'react';
import { api, type Account, type Outcome } from '../api';
import { ErrorMessage, Field, fieldErrors, formProblems } from '../components';
import { SignInPage } from './SignInPage';
import './Filter.css';

interface BlockedInfo {
  host: string;
  action: 'allow' | 'block' | 'rewrite';
  /** the engine's reason, for staff (it names the policy) */
  reason: string;
  /** why, in words for the person at the page */
  message: string;
  /** the unknown-device policy decided: this device is not signed in, and where to sign in */
  device: { message: string; signInAt: string } | null;
  category: string | null;
  categoryName: string | null;
  categoryDescription: string | null;
  unblockable: boolean;
  illegal: boolean;
  policy: string;
  signedInAs: string | null;
}

/**
 * The block page's console target (FI-13): /blocked?host=…&url=…&category=…&action=request|report.
 * Public: anyone on the network may ask for access or report the page, with a reason.
 */
export function BlockedPage({ account }: { account: Account | null }) {
  const params = new URLSearchParams(window.location.search);
  const host = params.get('host') ?? '';
  const url = params.get('url') ?? '';
  const [info, setInfo] = useState<BlockedInfo | null>(null);
  const [kind, setKind] = useState<'request' | 'report'>(params.get('action') === 'report' ? 'report' : 'request');
  const [reason, setReason] = useState('');
  const [sent, setSent] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [unreadable, setUnreadable] = useState(false);

  useEffect(() => {
    if (!host) return;
    const q = new URLSearchParams({ host });
    if (url) q.set('url', url);
    api<BlockedInfo>('GET', `/api/filtering/blocked?${q.toString()}`).then(
      (i) => {
        setInfo(i);
        if (!i.unblockable) setKind('report');
      },
      () => setUnreadable(true),
    );
  }, [host, url]);

  const [sentId, setSentId] = useState<string | null>(null);
  const send = async (event: FormEvent) => {
    event.preventDefault();
    const problems = formProblems({ reason: reason.trim().length >= 3 ? null : 'Say in a few words why, e.g. which lesson it is for.' });
    setError(problems);
    if (problems) return;
    try {
      const saved = await api<{ id: string }>('POST', '/api/filtering/requests', { action: kind, host, url: url || null, category: params.get('category') || null, reason });
      setSentId(saved.id);
      setSent(true);
    } catch (e) {
      setError(e);
    }
  };

  if (!host) return <div className="card public-card"><h1>Blocked page</h1><p>No web address was given.</p></div>;
  const allowed = info !== null && info.action !== 'block';
  return (
    <div className="card public-card" data-testid="blocked-page">
      <h1>{allowed ? 'This site is not blocked for you now' : 'This page is blocked'}</h1>
      <p className="wrap-anywhere">
        <code>{url || host}</code>
      </p>
      {unreadable ? (
        <div className="alert alert-warn" role="alert">
          This address could not be read, so it cannot be asked about here. If you need the page for your work, ask a member of staff.
        </div>
      ) : null}
      {info ? (
        <>
          <p><strong>{info.message}</strong></p>
          {info.categoryName && info.categoryDescription ? <p className="muted">{info.categoryDescription}</p> : null}
          {info.device ? (
            <p data-testid="device-not-signed-in">
              {info.device.message} <a href={info.device.signInAt}>Sign in with your school account</a> to use the internet as yourself.
            </p>
          ) : null}
          {info.illegal ? <div className="alert alert-warn">This site is on a list of illegal content. It is blocked for everyone and cannot be unblocked.</div> : null}
        </>
      ) : null}
      {unreadable ? null : sent ? (
        <div className="alert alert-ok" role="status">Thank you: your {kind === 'request' ? 'request' : 'report'} has been sent to the school’s IT team. Nothing more to do.{kind === 'request' && sentId ? <> <a href={`/request?id=${sentId}`}>See what happens to your request</a> (keep this link).</> : null}</div>
      ) : (
        <form onSubmit={send} aria-label="Ask about this page" noValidate>
          <fieldset className="field">
            <legend className="field-label">What would you like to do?</legend>
            {info?.unblockable !== false ? (
              <label className="checkbox">
                <input type="radio" name="kind" checked={kind === 'request'} onChange={() => setKind('request')} /> Ask for this site to be unblocked
              </label>
            ) : null}
            <label className="checkbox">
              <input type="radio" name="kind" checked={kind === 'report'} onChange={() => setKind('report')} /> {allowed ? 'Report this page (it should be blocked)' : 'Report this page (blocked by mistake, or it should be blocked)'}
            </label>
          </fieldset>
          <Field label="Why?" hint="A few words for the person who looks at it (e.g. which lesson it is for)." error={fieldErrors(error).reason}>
            <textarea name="reason" rows={3} maxLength={1000} value={reason} onChange={(e) => setReason(e.target.value)} required />
          </Field>
          <p className="small muted">{account || info?.signedInAs ? `Sent as ${account?.username ?? info?.signedInAs}.` : 'You are not signed in: the request is sent with this device’s address.'}</p>
          <ErrorMessage error={error} inline={(f) => f === 'reason'} />
          <button type="submit" className="button">Send</button>
        </form>
      )}
      {/* incidents and breaches (issue 11, IN-01): something worrying, not just a blocked site */}
      <p className="small">
        Saw something that worried you? <a href={`/concern?from=block_page${host ? `&host=${encodeURIComponent(host)}` : ''}`}>Report a concern</a> to the school’s safeguarding lead or IT lead.
      </p>
    </div>
  );
}

interface Connection {
  ip: string;
  connection: { ip: string; username: string | null; expiresAt: string; via: string } | null;
  policy?: string;
}

/**
 * The captive page (FI-02): sign in with a Gatehouse username and password, and this device's
 * address is yours until the end of the school day (or until you disconnect here).
 */
export function ConnectPage({ account, schoolName, onSignedIn }: { account: Account | null; schoolName: string; onSignedIn: (o: Outcome) => void }) {
  const [state, setState] = useState<Connection | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [autoConnect, setAutoConnect] = useState(false);

  useEffect(() => {
    if (!account) return;
    (async () => {
      try {
        const current = await api<Connection>('GET', '/api/filtering/connect');
        if (!current.connection && autoConnect) setState(await api<Connection>('POST', '/api/filtering/connect'));
        else setState(current);
      } catch (e) {
        setError(e);
      }
    })();
  }, [account, autoConnect]);

  if (!account) {
    return (
      <div className="public-card">
        <div className="card">
          <h1>Connect to the internet</h1>
          <p>Sign in with your school username and password. This device then uses the internet as you until the end of the school day.</p>
        </div>
        <SignInPage
          schoolName={schoolName}
          onSignedIn={(o) => {
            setAutoConnect(true);
            onSignedIn(o);
          }}
        />
      </div>
    );
  }
  const connect = async () => {
    setError(null);
    try {
      setState(await api<Connection>('POST', '/api/filtering/connect'));
    } catch (e) {
      setError(e);
    }
  };
  const disconnect = async () => {
    setError(null);
    try {
      await api('DELETE', '/api/filtering/connect');
      setState(await api<Connection>('GET', '/api/filtering/connect'));
    } catch (e) {
      setError(e);
    }
  };
  return (
    <div className="card public-card" data-testid="connect-page">
      <h1>Connect to the internet</h1>
      <ErrorMessage error={error} />
      {state?.connection ? (
        <>
          <div className="alert alert-ok" role="status">
            This device ({state.ip}) is connected as <strong>{account.displayName}</strong> until {new Date(state.connection.expiresAt).toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' })}
            {state.policy ? ` — filtered by the ${state.policy} policy` : ''}.
          </div>
          <button type="button" className="button" onClick={() => void disconnect()}>Disconnect this device</button>
        </>
      ) : (
        <>
          <p>Use the internet on this device ({state?.ip ?? '…'}) as {account.displayName}, with your own filtering, until the end of the school day.</p>
          <button type="button" className="button" onClick={() => void connect()}>Connect this device</button>
        </>
      )}
    </div>
  );
}
