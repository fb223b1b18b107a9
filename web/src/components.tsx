import { cloneElement, useEffect, useId, useRef, useState, type FormEvent, type ReactElement, type ReactNode } from 'react';
import { ApiError, REAUTH_PATH, api, readiness, setReauthHandler } from './api';

/** A form's error. `inline`: the fields whose problems already show beside them, left out here. */
export function ErrorMessage({ error, inline }: { error: unknown; inline?: (field: string) => boolean }) {
  if (!error) return null;
  const message = error instanceof ApiError ? error.body.message : error instanceof Error ? error.message : String(error);
  const all = error instanceof ApiError ? error.body.fields : undefined;
  const fields = inline && all ? all.filter((f) => !inline(f.field.replace(/^(body|querystring|params)\.?/, ''))) : all;
  if (all && all.length > 0 && fields && fields.length === 0) {
    return (
      <div className="alert alert-error" role="alert">
        {all.length === 1 ? 'One thing to correct: see the field marked in red.' : `${all.length} things to correct: see the fields marked in red.`}
      </div>
    );
  }
  return (
    <div className="alert alert-error" role="alert">
      {fields && fields.length > 0 ? (
        <ul>
          {fields.map((f) => (
            <li key={f.field}>
              <strong>{fieldLabel(f.field)}</strong> {f.message}
            </li>
          ))}
        </ul>
      ) : (
        message
      )}
    </div>
  );
}

/** "body.administrator.password" → "Password"; "body.schedules.0" → "Schedules" */
function fieldLabel(field: string): string {
  const last = field.split('.').filter((part) => !/^\d+$/.test(part)).pop() ?? field;
  const words = last.replace(/([A-Z])/g, ' $1').toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/**
 * The problems a form's fields have, by field path without the "body."/"querystring." prefix
 * ("schedules.0.from", "name"): from the server's validation answer, so each shows beside its field.
 */
export function fieldErrors(error: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (error instanceof ApiError) for (const f of error.body.fields ?? []) out[f.field.replace(/^(body|querystring|params)\.?/, '')] ??= f.message;
  return out;
}

/** Problems found before sending, in the server's shape, so they show the same way (null when none). */
export function formProblems(problems: Record<string, string | null | undefined | false>): ApiError | null {
  const fields = Object.entries(problems).flatMap(([field, message]) => (message ? [{ field, message }] : []));
  return fields.length > 0 ? new ApiError(400, { code: 'validation_failed', message: fields.map((f) => f.message).join(' '), fields }) : null;
}

/** A labelled input: the label names it, the hint describes it (read after the name by screen readers); an error shows beside it. */
export function Field(props: { label: string; hint?: ReactNode; error?: string | null | undefined; children: ReactElement<{ id?: string; 'aria-describedby'?: string; 'aria-invalid'?: boolean }> }) {
  const id = useId();
  const hintId = `${id}-hint`;
  const errorId = `${id}-error`;
  const describedBy = [props.error ? errorId : null, props.hint ? hintId : null].filter(Boolean).join(' ');
  return (
    <div className={props.error ? 'field field-invalid' : 'field'}>
      <label className="field-label" htmlFor={id}>
        {props.label}
      </label>
      {cloneElement(props.children, { id, 'aria-describedby': describedBy || undefined, 'aria-invalid': props.error ? true : undefined })}
      {props.error ? (
        <span className="field-error" id={errorId}>
          {props.error}
        </span>
      ) : null}
      {props.hint ? (
        <span className="field-hint" id={hintId}>
          {props.hint}
        </span>
      ) : null}
    </div>
  );
}

export function HealthBadge() {
  const [state, setState] = useState<{ ok: boolean; text: string } | null>(null);
  useEffect(() => {
    let alive = true;
    const check = () => readiness().then((s) => alive && setState(s));
    check();
    const timer = setInterval(check, 15_000);
    return () => {
      alive = false;
      clearInterval(timer);
    };
  }, []);
  if (!state) return <span className="health health-unknown">Checking server…</span>;
  return (
    <span className={`health ${state.ok ? 'health-ok' : 'health-bad'}`} data-testid="health">
      <span className="dot" aria-hidden="true" />
      Server: {state.text}
    </span>
  );
}

/**
 * The console's one "confirm it's you" prompt. Mounted once for a signed-in person: when the server
 * answers `reauthentication_required` to anything (giving a privileged role, exporting the audit
 * trail, setting where a list comes from, changing a second factor), it asks for the password — and
 * the code from the app when the person has one — sends them to /api/account/reauthenticate, and the
 * request that was refused is sent again. Cancelling leaves the change undone.
 */
export function ReauthPrompt({ mfaEnrolled }: { mfaEnrolled: boolean }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const pending = useRef<{ promise: Promise<boolean>; resolve: (ok: boolean) => void } | null>(null);
  const [reason, setReason] = useState('');
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [open, setOpen] = useState(false);

  useEffect(() => {
    if (open && dialog.current && !dialog.current.open) dialog.current.showModal();
  }, [open]);
  useEffect(() => {
    setReauthHandler((refusal) => {
      // Several refused requests at once share one prompt.
      if (pending.current) return pending.current.promise;
      let resolve!: (ok: boolean) => void;
      const promise = new Promise<boolean>((r) => (resolve = r));
      pending.current = { promise, resolve };
      setReason(refusal.body.message);
      setPassword('');
      setCode('');
      setError(null);
      setOpen(true);
      return promise;
    });
    return () => setReauthHandler(null);
  }, []);

  const finish = (ok: boolean) => {
    const p = pending.current;
    pending.current = null;
    setPassword('');
    setCode('');
    if (dialog.current?.open) dialog.current.close();
    setOpen(false);
    p?.resolve(ok);
  };
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api('POST', REAUTH_PATH, { password, ...(mfaEnrolled ? { code } : {}) });
      finish(true);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <dialog ref={dialog} className="confirm" aria-labelledby="reauth-title" data-testid="reauth-prompt" onCancel={(e) => { e.preventDefault(); finish(false); }}>
      {/* Its fields exist only while it is open: no second "Your password" on the page otherwise. */}
      {open ? <form onSubmit={submit}>
        <h2 id="reauth-title">Confirm it’s you</h2>
        <p>{reason}</p>
        <ErrorMessage error={error} />
        <Field label="Your password">
          <input name="reauthPassword" type="password" value={password} onChange={(e) => setPassword(e.target.value)} autoComplete="current-password" required />
        </Field>
        {mfaEnrolled ? (
          <Field label="Code from your app">
            <input name="reauthCode" value={code} onChange={(e) => setCode(e.target.value)} inputMode="numeric" autoComplete="one-time-code" required />
          </Field>
        ) : null}
        <div className="row">
          <button type="submit" className="button" disabled={busy}>Confirm</button>
          <button type="button" className="button secondary" onClick={() => finish(false)}>Cancel</button>
        </div>
      </form> : null}
    </dialog>
  );
}
