import { useEffect, useState } from 'react';
import { api, type Rule } from './api';

/**
 * Live feedback as someone types a new password: each of the school's rules with a tick or a
 * cross, from the server (the same rules that will judge the password when it is saved).
 */
export function PasswordRules({ password, currentPassword, initial, username }: { password: string; currentPassword?: string; initial?: Rule[]; username?: string }) {
  const [rules, setRules] = useState<Rule[]>(initial ?? []);
  useEffect(() => {
    let alive = true;
    const timer = setTimeout(() => {
      api<{ rules: Rule[] }>('POST', '/api/password-policy/check', { password, ...(currentPassword ? { currentPassword } : {}), ...(username ? { username } : {}) }).then(
        (r) => alive && setRules(r.rules),
        () => undefined,
      );
    }, 150);
    return () => {
      alive = false;
      clearTimeout(timer);
    };
  }, [password, currentPassword, username]);
  if (rules.length === 0) return null;
  return (
    <ul className="rules" aria-live="polite" data-testid="password-rules">
      {rules.map((r) => (
        <li key={r.id} className={r.ok ? 'rule-ok' : r.advisory ? 'rule-info' : 'rule-bad'}>
          <span className="rule-mark" aria-hidden="true">{r.ok ? '✓' : r.advisory ? 'i' : '✗'}</span>
          <span>
            {r.label}
            {r.detail && password ? <span className="rule-detail"> — {r.detail}</span> : null}
            <span className="visually-hidden">{r.ok ? ' (met)' : r.advisory ? ' (optional)' : ' (not met yet)'}</span>
          </span>
        </li>
      ))}
    </ul>
  );
}
