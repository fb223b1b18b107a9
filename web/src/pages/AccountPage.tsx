import { startRegistration } from '@simplewebauthn/browser';
import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { ApiError, api, svgDataUrl, type Account } from '../api';
import { ErrorMessage, Field } from '../components';
import { PasswordRules } from '../PasswordRules';
import { RecoveryCodes } from './SignInPage';

interface SessionInfo {
  id: string;
  createdAt: string;
  lastSeenAt: string;
  ip: string | null;
  userAgent: string | null;
  current: boolean;
}

const when = (iso: string) => new Date(iso).toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'short' });

export function AccountPage({ account, onChanged, onSignedOut }: { account: Account; onChanged: () => void; onSignedOut: () => void }) {
  return (
    <section>
      <h1>My account</h1>
      <dl className="facts">
        <dt>Name</dt>
        <dd>{account.displayName}</dd>
        <dt>Username</dt>
        <dd>{account.username}</dd>
        <dt>Role</dt>
        <dd>{account.roleLabel}</dd>
        <dt>Password expires</dt>
        <dd>{account.passwordExpiresAt ? when(account.passwordExpiresAt) : 'Never (under the school’s policy)'}</dd>
      </dl>
      <ChangePassword onChanged={onChanged} />
      <SecondFactor account={account} onChanged={onChanged} />
      <Passkeys />
      <Sessions />
      <ReportCompromised onSignedOut={onSignedOut} />
    </section>
  );
}

function ChangePassword({ onChanged }: { onChanged: () => void }) {
  const [current, setCurrent] = useState('');
  const [password, setPassword] = useState('');
  const [confirm, setConfirm] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState(false);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setDone(false);
    if (password !== confirm) return setError(new Error('The two new passwords are not the same.'));
    setError(null);
    try {
      await api('POST', '/api/account/password', { currentPassword: current, newPassword: password });
      setDone(true);
      setCurrent('');
      setPassword('');
      setConfirm('');
      onChanged();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <form className="card section-card" onSubmit={submit} aria-labelledby="pw-title">
      <h2 id="pw-title">Change password</h2>
      <ErrorMessage error={error} />
      {done ? <div className="alert alert-ok" role="status">Your password has been changed. Your other sessions have been signed out.</div> : null}
      <Field label="Current password">
        <input name="currentPassword" type="password" value={current} onChange={(e) => setCurrent(e.target.value)} autoComplete="current-password" required />
      </Field>
      <Field label="New password">
        <input name="newPassword" type="password" value={password} onChange={(e) => setPassword(e.target.value)} autoComplete="new-password" required />
      </Field>
      {password ? <PasswordRules password={password} currentPassword={current} /> : null}
      <Field label="New password again">
        <input name="confirm" type="password" value={confirm} onChange={(e) => setConfirm(e.target.value)} autoComplete="new-password" required />
      </Field>
      <button type="submit" className="button">Change password</button>
    </form>
  );
}

/**
 * Changing how you sign in needs your password (and a code) again first: the server asks, and the
 * console's one prompt (ReauthPrompt) takes them and sends the request again. The authenticator's
 * secret is made and kept by the server; only the first code from the app goes back.
 */
function SecondFactor({ account, onChanged }: { account: Account; onChanged: () => void }) {
  const [stage, setStage] = useState<'idle' | 'enrol' | 'codes'>('idle');
  const [code, setCode] = useState('');
  const [enrolment, setEnrolment] = useState<{ secret: string; qrSvg: string } | null>(null);
  const [codes, setCodes] = useState<string[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const run = async (what: 'enrol' | 'codes' | 'remove') => {
    setError(null);
    setBusy(true);
    try {
      if (what === 'enrol') {
        setEnrolment(await api<{ secret: string; qrSvg: string }>('POST', '/api/account/mfa/totp/start'));
        setCode('');
        setStage('enrol');
      } else if (what === 'codes') {
        setCodes((await api<{ recoveryCodes: string[] }>('POST', '/api/account/mfa/recovery-codes')).recoveryCodes);
        setStage('codes');
      } else {
        await api('DELETE', '/api/account/mfa/totp');
        setStage('idle');
        onChanged();
      }
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const confirmEnrolment = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    try {
      setCodes((await api<{ recoveryCodes: string[] }>('POST', '/api/account/mfa/totp', { code })).recoveryCodes);
      setEnrolment(null);
      setStage('codes');
      onChanged();
    } catch (e) {
      setError(e);
    }
  };

  if (stage === 'codes') return <RecoveryCodes codes={codes} onDone={() => setStage('idle')} />;
  return (
    <div className="card section-card" data-testid="mfa-card">
      <h2>Multi-factor authentication</h2>
      <p>
        {account.mfaEnrolled ? 'You sign in with a code from your authenticator app as well as your password.' : 'You do not use an authenticator app yet.'}
      </p>
      <ErrorMessage error={error} />
      {stage === 'idle' ? (
        <div className="row">
          <button type="button" className="button" disabled={busy} onClick={() => void run('enrol')}>{account.mfaEnrolled ? 'Set up a new phone' : 'Set up an authenticator app'}</button>
          {account.mfaEnrolled ? <button type="button" className="button secondary" disabled={busy} onClick={() => void run('codes')}>New recovery codes</button> : null}
          {account.mfaEnrolled ? <button type="button" className="link-button" disabled={busy} onClick={() => window.confirm('Remove your authenticator app? You will no longer be asked for its codes.') && void run('remove')}>Remove</button> : null}
        </div>
      ) : (
        <form onSubmit={confirmEnrolment}>
          <img className="qr" src={svgDataUrl(enrolment!.qrSvg)} alt="QR code for your authenticator app" width={180} height={180} />
          <code className="secret" data-testid="totp-secret">{enrolment!.secret.replace(/(.{4})/g, '$1 ').trim()}</code>
          <Field label="Code from the app">
            <input name="enrolCode" value={code} onChange={(e) => setCode(e.target.value)} inputMode="numeric" autoComplete="one-time-code" required />
          </Field>
          <button type="submit" className="button">Confirm</button>
          <button type="button" className="link-button" onClick={() => { setEnrolment(null); setStage('idle'); }}>Cancel</button>
        </form>
      )}
    </div>
  );
}

interface PasskeyInfo {
  id: string;
  name: string;
  createdAt: string;
  lastUsedAt: string | null;
}

/** Passkeys (a phone, Windows Hello, a security key) as another second factor; the console's prompt asks for the password (and code) when the server wants it. */
function Passkeys() {
  const [keys, setKeys] = useState<PasskeyInfo[]>([]);
  const [stage, setStage] = useState<'idle' | 'name' | 'codes'>('idle');
  const [name, setName] = useState('This computer');
  const [codes, setCodes] = useState<string[]>([]);
  const [error, setError] = useState<unknown>(null);
  const load = useCallback(() => api<{ passkeys: PasskeyInfo[] }>('GET', '/api/account/passkeys').then((r) => setKeys(r.passkeys), setError), []);
  useEffect(() => {
    void load();
  }, [load]);
  const failed = (e: unknown) => setError(e instanceof Error && e.name === 'NotAllowedError' ? new Error('The passkey was not created. Try again.') : e);
  const add = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    try {
      const optionsJSON = await api<Parameters<typeof startRegistration>[0]['optionsJSON']>('POST', '/api/account/passkeys/options');
      const response = await startRegistration({ optionsJSON });
      const added = await api<{ recoveryCodes: string[] | null }>('POST', '/api/account/passkeys', { response, name });
      if (added.recoveryCodes) {
        setCodes(added.recoveryCodes);
        setStage('codes');
      } else setStage('idle');
      await load();
    } catch (e) {
      failed(e);
    }
  };
  const remove = async (id: string) => {
    setError(null);
    try {
      await api('DELETE', `/api/account/passkeys/${encodeURIComponent(id)}`);
      await load();
    } catch (e) {
      failed(e);
    }
  };
  if (stage === 'codes') return <RecoveryCodes codes={codes} onDone={() => setStage('idle')} />;
  return (
    <div className="card section-card" data-testid="passkeys-card">
      <h2>Passkeys</h2>
      <p className="muted">A passkey on this computer, your phone or a security key can stand in for the code from your app.</p>
      <ErrorMessage error={error} />
      {keys.length ? (
        <ul data-testid="passkeys">
          {keys.map((k) => (
            <li key={k.id}>
              <strong>{k.name}</strong> <span className="muted small">added {when(k.createdAt)}{k.lastUsedAt ? `, last used ${when(k.lastUsedAt)}` : ''}</span>{' '}
              <button type="button" className="link-button" onClick={() => window.confirm(`Remove the passkey “${k.name}”?`) && void remove(k.id)}>Remove</button>
            </li>
          ))}
        </ul>
      ) : null}
      {stage === 'name' ? (
        <form onSubmit={add} className="inline-form">
          <Field label="Name for the passkey">
            <input name="passkeyName" value={name} onChange={(e) => setName(e.target.value)} required />
          </Field>
          <button type="submit" className="button">Create the passkey</button>
          <button type="button" className="link-button" onClick={() => setStage('idle')}>Cancel</button>
        </form>
      ) : (
        <button type="button" className="button secondary" onClick={() => { setError(null); setStage('name'); }}>Add a passkey</button>
      )}
    </div>
  );
}

function Sessions() {
  const [sessions, setSessions] = useState<SessionInfo[]>([]);
  const [error, setError] = useState<unknown>(null);
  const load = useCallback(() => api<{ sessions: SessionInfo[] }>('GET', '/api/account/sessions').then((r) => setSessions(r.sessions), setError), []);
  useEffect(() => {
    void load();
  }, [load]);
  const end = async (which: string) => {
    try {
      await api('DELETE', `/api/account/sessions/${which}`);
      await load();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <div className="card section-card">
      <h2>Where you are signed in</h2>
      <ErrorMessage error={error} />
      <table className="table" data-testid="sessions">
        <thead>
          <tr>
            <th>Signed in</th>
            <th>Last active</th>
            <th>From</th>
            <th aria-label="Actions" />
          </tr>
        </thead>
        <tbody>
          {sessions.map((s) => (
            <tr key={s.id}>
              <td>{when(s.createdAt)}</td>
              <td>{when(s.lastSeenAt)}</td>
              <td>
                {s.ip ?? 'unknown'} <span className="muted small">{s.userAgent?.slice(0, 60)}</span>
              </td>
              <td className="actions">{s.current ? <span className="tag">this one</span> : <button type="button" className="link-button" onClick={() => void end(s.id)}>Sign out</button>}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {sessions.length > 1 ? (
        <button type="button" className="button secondary" onClick={() => void end('others')}>Sign out everywhere else</button>
      ) : null}
    </div>
  );
}

function ReportCompromised({ onSignedOut }: { onSignedOut: () => void }) {
  const [sure, setSure] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const report = async () => {
    try {
      await api('POST', '/api/account/compromised');
      onSignedOut();
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) onSignedOut();
      else setError(e);
    }
  };
  return (
    <div className="card section-card">
      <h2>Do you think someone knows your password?</h2>
      <p>
        Report it here. Every session of yours is signed out at once, the school’s data protection officer is told, and you choose a new
        password when you next sign in.
      </p>
      <ErrorMessage error={error} />
      {sure ? (
        <div className="row">
          <button type="button" className="button danger" onClick={() => void report()}>Yes, report it and sign me out</button>
          <button type="button" className="link-button" onClick={() => setSure(false)}>Cancel</button>
        </div>
      ) : (
        <button type="button" className="button secondary" onClick={() => setSure(true)}>Report my password as compromised</button>
      )}
    </div>
  );
}
