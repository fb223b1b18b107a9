import { useEffect, useState } from 'react';
import { api } from '../api';

export interface PersonChoice {
  id: string;
  username: string;
  displayName: string;
  role: string;
  status: string;
  isBreakGlass: boolean;
}

/**
 * Finds people in the directory as you type (GET /api/accounts?q=…), for picking a secret's holders
 * or a leaver. `exclude` hides people already chosen; `filter` hides those who cannot be chosen.
 */
export function PersonSearch(props: {
  label: string;
  onPick: (person: PersonChoice) => void;
  exclude?: string[];
  filter?: (person: PersonChoice) => boolean;
  actionLabel?: string;
}) {
  const [query, setQuery] = useState('');
  const [found, setFound] = useState<PersonChoice[]>([]);
  const [searched, setSearched] = useState('');
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const q = query.trim();
    if (q.length < 2) {
      setFound([]);
      return;
    }
    let alive = true;
    const timer = setTimeout(() => {
      api<{ accounts: PersonChoice[] }>('GET', `/api/accounts?${new URLSearchParams({ q, status: 'active', limit: '8' })}`).then(
        (r) => {
          if (!alive) return;
          setError(null);
          setFound(r.accounts);
          setSearched(q);
        },
        (e: Error) => alive && setError(e.message),
      );
    }, 200);
    return () => {
      alive = false;
      clearTimeout(timer);
    };
  }, [query]);
  const shown = found.filter((p) => !(props.exclude ?? []).includes(p.id) && (props.filter ? props.filter(p) : true));
  return (
    <div className="person-search">
      <input aria-label={props.label} placeholder="Type a name or username" value={query} onChange={(e) => setQuery(e.target.value)} />
      {error ? <p className="small muted">{error}</p> : null}
      {shown.length > 0 ? (
        <ul className="picker" aria-label="People found">
          {shown.map((p) => (
            <li key={p.id}>
              <button
                type="button"
                className="link-button"
                onClick={() => {
                  props.onPick(p);
                  setQuery('');
                  setFound([]);
                }}
              >
                {props.actionLabel ?? 'Choose'} {p.displayName}
              </button>{' '}
              <span className="muted small">({p.username})</span>
            </li>
          ))}
        </ul>
      ) : query.trim().length >= 2 && searched === query.trim() && !error ? (
        <p className="small muted">Nobody active matches “{query.trim()}”.</p>
      ) : null}
    </div>
  );
}
