import { useState, type FormEvent } from 'react';
import { api, type SessionResponse } from '../api';
import { ErrorMessage, Field } from '../components';

export function SignInPage({ schoolName, onSignedIn }: { schoolName: string; onSignedIn: (s: SessionResponse) => void }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const insecure = window.location.protocol !== 'https:' && !['localhost', '127.0.0.1', '[::1]'].includes(window.location.hostname);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onSignedIn(await api<SessionResponse>('POST', '/api/session', { username, password }));
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
          This page was not opened over HTTPS, so your browser will not keep the sign-in. Ask your IT administrator for the
          https:// address.
        </div>
      ) : null}
      <ErrorMessage error={error} />
      <Field label="Username">
        <input name="username" required value={username} onChange={(e) => setUsername(e.target.value)} autoComplete="username" autoFocus />
      </Field>
      <Field label="Password">
        <input name="password" type="password" required value={password} onChange={(e) => setPassword(e.target.value)} autoComplete="current-password" />
      </Field>
      <button type="submit" className="button" disabled={busy}>
        {busy ? 'Signing in…' : 'Sign in'}
      </button>
    </form>
  );
}
