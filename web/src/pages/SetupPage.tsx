import { useState, type FormEvent } from 'react';
import { api } from '../api';
import { ErrorMessage, Field } from '../components';
import { navigate } from '../router';

function tokenFromFragment(): string | null {
  const match = /(?:^|[#&])token=([A-Za-z0-9_-]+)/.exec(window.location.hash);
  return match ? match[1]! : null;
}

export function SetupPage({ onDone }: { onDone: () => void }) {
  const [token] = useState(tokenFromFragment);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState<string | null>(null);
  const [form, setForm] = useState({ schoolName: '', urn: '', username: '', displayName: '', email: '', password: '', confirm: '' });
  const set = (key: keyof typeof form) => (e: { target: { value: string } }) => setForm({ ...form, [key]: e.target.value });

  if (!token) {
    return (
      <div className="card narrow">
        <h1>Gatehouse is not set up yet</h1>
        <p>
          To create the school and its first administrator, open the one-time setup link that the server printed when it
          started. It is also in the file <code>setup-link.txt</code> in the server’s data folder.
        </p>
        <p className="muted">Restarting the server prints a new link and makes the old one useless.</p>
      </div>
    );
  }

  if (done) {
    return (
      <div className="card narrow" data-testid="setup-done">
        <h1>Gatehouse is ready</h1>
        <p>
          The school and its <strong>master (break-glass) account</strong> <code>{done}</code> have been created. This link no
          longer works.
        </p>
        <div className="alert alert-info">
          Keep the master account’s password somewhere secure, such as a sealed envelope in the school safe. Use the account
          only to recover or revoke access: every sign-in with it is recorded at high severity.
        </div>
        <button
          type="button"
          className="button"
          onClick={() => {
            navigate('/');
            onDone();
          }}
        >
          Continue to sign-in
        </button>
      </div>
    );
  }

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    if (form.password !== form.confirm) {
      setError(new Error('The two passwords are not the same.'));
      return;
    }
    setBusy(true);
    try {
      await api('POST', '/api/setup', {
        token,
        school: { name: form.schoolName, urn: form.urn.trim() ? form.urn.trim() : null },
        administrator: {
          username: form.username,
          displayName: form.displayName,
          email: form.email.trim() ? form.email.trim() : null,
          password: form.password,
        },
      });
      window.history.replaceState(null, '', '/setup');
      setDone(form.username.trim().toLowerCase());
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="card narrow" onSubmit={submit} aria-labelledby="setup-title">
      <h1 id="setup-title">Set up Gatehouse</h1>
      <p className="muted">This page works once. It creates your school and the master administrator account.</p>
      <ErrorMessage error={error} />
      <fieldset>
        <legend>The school</legend>
        <Field label="School name">
          <input name="schoolName" required value={form.schoolName} onChange={set('schoolName')} autoComplete="organization" />
        </Field>
        <Field label="URN (optional)" hint="The school’s 6-digit DfE Unique Reference Number.">
          <input name="urn" inputMode="numeric" value={form.urn} onChange={set('urn')} />
        </Field>
      </fieldset>
      <fieldset>
        <legend>Master (break-glass) administrator</legend>
        <p className="field-hint">
          Used only to recover or revoke access; keep its password in a secure place. Everyday administration uses separate
          named administrator accounts.
        </p>
        <Field label="Username">
          <input name="username" required value={form.username} onChange={set('username')} autoComplete="username" />
        </Field>
        <Field label="Full name">
          <input name="displayName" required value={form.displayName} onChange={set('displayName')} autoComplete="name" />
        </Field>
        <Field label="E-mail (optional)">
          <input name="email" type="email" value={form.email} onChange={set('email')} autoComplete="email" />
        </Field>
        <Field label="Password" hint="At least 12 characters. A phrase of several unrelated words is strong and easy to type.">
          <input name="password" type="password" required value={form.password} onChange={set('password')} autoComplete="new-password" />
        </Field>
        <Field label="Password again">
          <input name="confirm" type="password" required value={form.confirm} onChange={set('confirm')} autoComplete="new-password" />
        </Field>
      </fieldset>
      <button type="submit" className="button" disabled={busy}>
        {busy ? 'Setting up…' : 'Create the school'}
      </button>
    </form>
  );
}
