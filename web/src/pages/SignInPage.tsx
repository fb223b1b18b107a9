import { startAuthentication } from '@simplewebauthn/browser';
import { useEffect, useState, type FormEvent } from 'react';
import { api, setCsrfToken, svgDataUrl, type Outcome, type Step } from '../api';
import { Link } from '../router';
import { ErrorMessage, Field } from '../components';
import { PasswordRules } from '../PasswordRules';

export interface SignedIn {
  outcome: Outcome;
}

/**
 * The whole sign-in: username and password, then whatever the school's policy and the account
 * need — second factor, Acceptable Use Policy, a new password, MFA set-up — one screen each.
 */
export function SignInPage({ schoolName, onSignedIn }: { schoolName: string; onSignedIn: (o: Outcome) => void }) {
  const [outcome, setOutcome] = useState<Outcome | null>(null);
  const [codes, setCodes] = useState<Outcome | null>(null);
  const insecure = window.location.protocol !== 'https:' && !['localhost', '127.0.0.1', '[::1]'].includes(window.location.hostname);

  const next = (o: Outcome) => {
    setCsrfToken(o.csrfToken);
    if (o.status === 'signed_in') {
      if (o.recoveryCodes?.length) setCodes(o);
      else onSignedIn(o);
    } else {
      setOutcome(o);
    }
  };
  const restart = async () => {
    await api('DELETE', '/api/sign-in').catch(() => undefined);
    setOutcome(null);
  };

  if (codes) return <RecoveryCodes codes={codes.recoveryCodes!} onDone={() => onSignedIn(codes)} />;
  if (!outcome) return <PasswordStep schoolName={schoolName} insecure={insecure} onNext={next} />;
  return (
    <div className="card narrow">
      {outcome.banner ? (
        <div className="banner" role="note" data-testid="banner">
          {outcome.banner}
        </div>
      ) : null}
      <StepView step={outcome.step!} username={outcome.username ?? ''} onNext={next} onRestart={restart} />
    </div>
  );
}

function PasswordStep({ schoolName, insecure, onNext }: { schoolName: string; insecure: boolean; onNext: (o: Outcome) => void }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onNext(await api<Outcome>('POST', '/api/session', { username, password }));
    } catch (e) {
      setError(e);
      setPassword('');
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="card narrow" onSubmit={submit} aria-labelledby="signin-title">
      <h1 id="signin-title">Sign in</h1>
      <p className="muted">{schoolName}</p>
      {insecure ? (
        <div className="alert alert-error" role="alert">
          This page was not opened over HTTPS, so your browser will not keep the sign-in. Ask your IT administrator for the https:// address.
        </div>
      ) : null}
      <ErrorMessage error={error} />
      <Field label="Username">
        <input name="username" required value={username} onChange={(e) => setUsername(e.target.value)} autoComplete="username" autoFocus />
      </Field>
      <Field label="Password">
        <input name="password" type="password" required value={password} onChange={(e) => setPassword(e.target.value)} autoComplete="current-password" />
      </Field>
      <div className="row">
        <button type="submit" className="button" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        <Link href="/reset" className="link-button">Forgot your password?</Link>
        {/* incidents and breaches (issue 11, IN-01): anyone, signed in or not, can report a concern */}
        <Link href="/concern?from=sign_in" className="link-button">Report a concern</Link>
      </div>
    </form>
  );
}

function StepView({ step, username, onNext, onRestart }: { step: Step; username: string; onNext: (o: Outcome) => void; onRestart: () => void }) {
  switch (step.step) {
    case 'mfa':
      return <SecondFactor username={username} methods={step.methods} onNext={onNext} onRestart={onRestart} />;
    case 'aup':
      return <AcceptableUse step={step} onNext={onNext} onRestart={onRestart} />;
    case 'change_password':
      return <NewPassword step={step} onNext={onNext} onRestart={onRestart} />;
    case 'mfa_enrol':
      return <EnrolMfa step={step} onNext={onNext} onRestart={onRestart} />;
  }
}

function useSubmit(onNext: (o: Outcome) => void) {
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const run = async (path: string, body: unknown) => {
    setBusy(true);
    setError(null);
    try {
      onNext(await api<Outcome>('POST', path, body));
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return { error, busy, run };
}

function Cancel({ onRestart }: { onRestart: () => void }) {
  return (
    <button type="button" className="link-button" onClick={onRestart}>
      Cancel and start again
    </button>
  );
}

function SecondFactor({ username, methods, onNext, onRestart }: { username: string; methods: string[]; onNext: (o: Outcome) => void; onRestart: () => void }) {
  const [code, setCode] = useState('');
  const [recovery, setRecovery] = useState(!methods.includes('totp'));
  const { error, busy, run } = useSubmit(onNext);
  const [passkeyError, setPasskeyError] = useState<unknown>(null);
  const usePasskey = async () => {
    setPasskeyError(null);
    try {
      const optionsJSON = await api<Parameters<typeof startAuthentication>[0]['optionsJSON']>('POST', '/api/sign-in/passkey/options');
      const response = await startAuthentication({ optionsJSON });
      await run('/api/sign-in/passkey', { response });
    } catch (e) {
      setPasskeyError(e instanceof Error && e.name === 'NotAllowedError' ? new Error('The passkey was not used. Try again, or use a code.') : e);
    }
  };
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        void run('/api/sign-in/second-factor', recovery ? { recoveryCode: code } : { code });
      }}
    >
      <h1>Check it’s you</h1>
      <p>
        {recovery ? 'Enter one of the recovery codes you saved for' : 'Enter the 6-digit code from the authenticator app for'} <strong>{username}</strong>.
      </p>
      <ErrorMessage error={error ?? passkeyError} />
      {methods.includes('passkey') ? (
        <p>
          <button type="button" className="button secondary" onClick={() => void usePasskey()} disabled={busy}>Use a passkey</button>
        </p>
      ) : null}
      <Field label={recovery ? 'Recovery code' : 'Code'}>
        <input name="code" value={code} onChange={(e) => setCode(e.target.value)} autoComplete="one-time-code" inputMode={recovery ? 'text' : 'numeric'} autoFocus required />
      </Field>
      <div className="row">
        <button type="submit" className="button" disabled={busy}>Continue</button>
        {methods.includes('totp') ? (
          <button type="button" className="link-button" onClick={() => { setRecovery(!recovery); setCode(''); }}>
            {recovery ? 'Use the app instead' : 'Use a recovery code'}
          </button>
        ) : null}
        <Cancel onRestart={onRestart} />
      </div>
    </form>
  );
}

function AcceptableUse({ step, onNext, onRestart }: { step: Extract<Step, { step: 'aup' }>; onNext: (o: Outcome) => void; onRestart: () => void }) {
  const [agreed, setAgreed] = useState(false);
  const { error, busy, run } = useSubmit(onNext);
  return (
    <form onSubmit={(e) => { e.preventDefault(); void run('/api/sign-in/aup', { versionId: step.aup.id }); }}>
      <h1>{step.aup.title}</h1>
      <p className="muted">Version {step.aup.version}. Please read it before you go on: the school records that you have accepted it.</p>
      <div className="policy-text" tabIndex={0} data-testid="aup-text">{step.aup.body}</div>
      <ErrorMessage error={error} />
      <label className="check">
        <input type="checkbox" checked={agreed} onChange={(e) => setAgreed(e.target.checked)} /> I have read the Acceptable Use Policy and I agree to follow it
      </label>
      <div className="row">
        <button type="submit" className="button" disabled={!agreed || busy}>Accept and continue</button>
        <Cancel onRestart={onRestart} />
      </div>
    </form>
  );
}

const changeReasons = {
  temporary: 'You signed in with a temporary password. Choose your own password now: only you should know it.',
  expired: 'Your password has expired under the school’s policy. Choose a new one to continue.',
  required: 'Your password must be changed before you go on (it may have been reported as compromised).',
};

function NewPassword({ step, onNext, onRestart }: { step: Extract<Step, { step: 'change_password' }>; onNext: (o: Outcome) => void; onRestart: () => void }) {
  const [current, setCurrent] = useState('');
  const [password, setPassword] = useState('');
  const [confirm, setConfirm] = useState('');
  const [mismatch, setMismatch] = useState(false);
  const { error, busy, run } = useSubmit(onNext);
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        if (password !== confirm) {
          setMismatch(true);
          return;
        }
        setMismatch(false);
        void run('/api/sign-in/password', { currentPassword: current, newPassword: password });
      }}
    >
      <h1>Choose a new password</h1>
      <p>{changeReasons[step.reason]}</p>
      <ErrorMessage error={error ?? (mismatch ? new Error('The two new passwords are not the same.') : null)} />
      <Field label="Current password" hint={step.reason === 'temporary' ? 'The temporary password you were given.' : undefined}>
        <input name="currentPassword" type="password" value={current} onChange={(e) => setCurrent(e.target.value)} autoComplete="current-password" required />
      </Field>
      <Field label="New password">
        <input name="newPassword" type="password" value={password} onChange={(e) => setPassword(e.target.value)} autoComplete="new-password" required />
      </Field>
      <PasswordRules password={password} currentPassword={current} initial={step.rules} />
      <Field label="New password again">
        <input name="confirm" type="password" value={confirm} onChange={(e) => setConfirm(e.target.value)} autoComplete="new-password" required />
      </Field>
      <div className="row">
        <button type="submit" className="button" disabled={busy}>Save and continue</button>
        <Cancel onRestart={onRestart} />
      </div>
    </form>
  );
}

const enrolReasons: Record<string, string> = {
  administrator: 'Administrator accounts always use multi-factor authentication.',
  profile: 'The school’s policy asks everyone in your group to use multi-factor authentication.',
  offsite: 'You are signing in from outside the school’s network, where the school’s policy asks for multi-factor authentication.',
};

function EnrolMfa({ step, onNext, onRestart }: { step: Extract<Step, { step: 'mfa_enrol' }>; onNext: (o: Outcome) => void; onRestart: () => void }) {
  const [code, setCode] = useState('');
  const { error, busy, run } = useSubmit(onNext);
  useEffect(() => setCode(''), [step.secret]);
  return (
    <form onSubmit={(e) => { e.preventDefault(); void run('/api/sign-in/mfa-enrolment', { code }); }}>
      <h1>Set up your authenticator app</h1>
      <p>{enrolReasons[step.reason] ?? enrolReasons.profile}</p>
      <ol className="steps">
        <li>Open an authenticator app on your phone (Microsoft Authenticator, Google Authenticator or similar).</li>
        <li>
          Scan this code, or type the key below into the app.
          <img className="qr" src={svgDataUrl(step.qrSvg)} alt="QR code for your authenticator app" width={180} height={180} />
          <code className="secret" data-testid="totp-secret">{step.secret.replace(/(.{4})/g, '$1 ').trim()}</code>
        </li>
        <li>Enter the 6-digit code the app shows.</li>
      </ol>
      <ErrorMessage error={error} />
      <Field label="Code from the app">
        <input name="code" value={code} onChange={(e) => setCode(e.target.value)} autoComplete="one-time-code" inputMode="numeric" required />
      </Field>
      <div className="row">
        <button type="submit" className="button" disabled={busy}>Confirm</button>
        <Cancel onRestart={onRestart} />
      </div>
    </form>
  );
}

export function RecoveryCodes({ codes, onDone }: { codes: string[]; onDone: () => void }) {
  const [saved, setSaved] = useState(false);
  return (
    <div className="card narrow" data-testid="recovery-codes">
      <h1>Save your recovery codes</h1>
      <p>
        If you lose your phone, each of these codes lets you sign in once. Print them or write them down and keep them somewhere
        safe. They will not be shown again.
      </p>
      <ul className="codes">
        {codes.map((c) => (
          <li key={c}>
            <code>{c}</code>
          </li>
        ))}
      </ul>
      <label className="check">
        <input type="checkbox" checked={saved} onChange={(e) => setSaved(e.target.checked)} /> I have saved these codes
      </label>
      <div className="row">
        <button type="button" className="button" disabled={!saved} onClick={onDone}>Continue</button>
        <button type="button" className="link-button" onClick={() => window.print()}>Print</button>
      </div>
    </div>
  );
}
