import { cloneElement, useEffect, useId, useState, type ReactElement, type ReactNode } from 'react';
import { ApiError, readiness } from './api';

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
