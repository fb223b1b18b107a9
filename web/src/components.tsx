import { cloneElement, useEffect, useId, useState, type ReactElement, type ReactNode } from 'react';
import { ApiError, readiness } from './api';

export function ErrorMessage({ error }: { error: unknown }) {
  if (!error) return null;
  const message = error instanceof ApiError ? error.body.message : error instanceof Error ? error.message : String(error);
  const fields = error instanceof ApiError ? error.body.fields : undefined;
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

/** "body.administrator.password" → "Password" */
function fieldLabel(field: string): string {
  const last = field.split('.').pop() ?? field;
  const words = last.replace(/([A-Z])/g, ' $1').toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** A labelled input: the label names it, the hint describes it (read after the name by screen readers). */
export function Field(props: { label: string; hint?: ReactNode; children: ReactElement<{ id?: string; 'aria-describedby'?: string }> }) {
  const id = useId();
  const hintId = `${id}-hint`;
  return (
    <div className="field">
      <label className="field-label" htmlFor={id}>
        {props.label}
      </label>
      {cloneElement(props.children, { id, 'aria-describedby': props.hint ? hintId : undefined })}
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
