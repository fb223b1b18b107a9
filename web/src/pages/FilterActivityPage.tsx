import { useCallback, useEffect, useRef, useState, type FormEvent } from 'react';
import { api } from '../api';
import { ErrorMessage, Field } from '../components';
import './Filter.css';

interface Row {
  id: number;
  at: string;
  point: string;
  clientIp: string;
  deviceName: string | null;
  username: string | null;
  host: string;
  url: string | null;
  searchTerm: string | null;
  action: 'allow' | 'block' | 'rewrite';
  category: string | null;
  rule: string;
  policy: string;
}

const ACTIONS: Record<Row['action'], string> = { allow: 'Allowed', block: 'Blocked', rewrite: 'SafeSearch' };

/** Recent filtering activity (MO-01): live, filtered by person, device, action and time. */
/** The engine's rule, in words: "games: scheduled block", "school block list", "policy default". */
const ruleWords: Record<string, string> = {
  illegal: 'illegal-content list',
  fallback: 'resolver fallback (DoH canary, Private Relay)',
  'school-block': 'school block list',
  'school-allow': 'school allow list',
  category: 'blocked category',
  schedule: 'scheduled block',
  'safe-search': 'SafeSearch',
  default: 'policy default',
};
function why(rule: string, category: string | null): string {
  const words = ruleWords[rule] ?? rule;
  return category && category !== rule && rule !== 'fallback' ? `${category}: ${words}` : words;
}

export function FilterActivityPage() {
  const [filters, setFilters] = useState({ person: '', device: '', ip: '', action: '', from: '', to: '' });
  const [applied, setApplied] = useState(filters);
  const [rows, setRows] = useState<Row[] | null>(null);
  const [retention, setRetention] = useState<number | null>(null);
  const [live, setLive] = useState(true);
  const [error, setError] = useState<unknown>(null);
  const [updatedAt, setUpdatedAt] = useState<Date | null>(null);
  const timer = useRef<number | undefined>(undefined);

  const load = useCallback(async () => {
    const q = new URLSearchParams({ limit: '200' });
    if (applied.person) q.set('person', applied.person);
    if (applied.device) q.set('device', applied.device);
    if (applied.ip) q.set('ip', applied.ip);
    if (applied.action) q.set('action', applied.action);
    if (applied.from) q.set('from', new Date(applied.from).toISOString());
    if (applied.to) q.set('to', new Date(applied.to).toISOString());
    try {
      const data = await api<{ activity: Row[]; retentionDays: number }>('GET', `/api/filtering/activity?${q.toString()}`);
      setRows(data.activity);
      setRetention(data.retentionDays);
      setUpdatedAt(new Date());
      setError(null);
    } catch (e) {
      setError(e);
    }
  }, [applied]);

  useEffect(() => {
    void load();
    if (!live) return;
    timer.current = window.setInterval(() => void load(), 3000);
    return () => window.clearInterval(timer.current);
  }, [load, live]);

  const search = (event: FormEvent) => {
    event.preventDefault();
    setApplied(filters);
  };

  return (
    <section>
      <h1>Activity</h1>
      <p className="muted">
        What the filter allowed and blocked, newest first: who (where known), which device and address, the site, web address or search, and why.
        {retention ? ` Kept for ${retention} days.` : ''}
      </p>
      <form className="card inline-form" onSubmit={search} aria-label="Filter activity">
        <Field label="Person (username)">
          <input name="person" value={filters.person} onChange={(e) => setFilters({ ...filters, person: e.target.value })} />
        </Field>
        <Field label="Device">
          <input name="device" value={filters.device} onChange={(e) => setFilters({ ...filters, device: e.target.value })} />
        </Field>
        <Field label="Address">
          <input name="ip" value={filters.ip} onChange={(e) => setFilters({ ...filters, ip: e.target.value })} />
        </Field>
        <Field label="Action">
          <select name="action" value={filters.action} onChange={(e) => setFilters({ ...filters, action: e.target.value })}>
            <option value="">Any</option>
            <option value="block">Blocked</option>
            <option value="allow">Allowed</option>
            <option value="rewrite">SafeSearch</option>
          </select>
        </Field>
        <Field label="From">
          <input name="from" type="datetime-local" value={filters.from} onChange={(e) => setFilters({ ...filters, from: e.target.value })} />
        </Field>
        <Field label="To">
          <input name="to" type="datetime-local" value={filters.to} onChange={(e) => setFilters({ ...filters, to: e.target.value })} />
        </Field>
        <button type="submit" className="button">Show</button>
        <label className="checkbox">
          <input type="checkbox" checked={live} onChange={(e) => setLive(e.target.checked)} /> Live (every 3 seconds)
        </label>
      </form>
      <ErrorMessage error={error} />
      <p className="small muted" aria-live="polite">{rows ? `${rows.length} shown${rows.length === 200 ? ' (the newest 200)' : ''}` : 'Loading…'}{updatedAt ? ` — updated ${updatedAt.toLocaleTimeString('en-GB')}` : ''}</p>
      <table className="table activity-table" data-testid="activity">
        <thead>
          <tr>
            <th>When</th>
            <th>Who</th>
            <th>Device / address</th>
            <th>Site</th>
            <th>Result</th>
            <th>Why</th>
          </tr>
        </thead>
        <tbody>
          {(rows ?? []).map((r) => (
            <tr key={r.id} className={r.action === 'block' ? 'blocked' : ''}>
              <td className="nowrap">{new Date(r.at).toLocaleString('en-GB', { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit', second: '2-digit' })}</td>
              <td>{r.username ?? <span className="muted">unknown</span>}</td>
              <td>{r.deviceName ? <>{r.deviceName}<br /></> : null}<span className="small muted">{r.clientIp} ({r.point})</span></td>
              <td>
                <code>{r.host}</code>
                {r.url ? <div className="small muted" title={r.url}>{r.url.length > 80 ? `${r.url.slice(0, 80)}…` : r.url}</div> : null}
                {r.searchTerm ? <div className="small">Search: “{r.searchTerm}”</div> : null}
              </td>
              <td>{r.action === 'block' ? <span className="tag tag-bad">{ACTIONS[r.action]}</span> : r.action === 'rewrite' ? <span className="tag">{ACTIONS[r.action]}</span> : ACTIONS[r.action]}</td>
              <td className="small">{why(r.rule, r.category)} · {r.policy}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {rows && rows.length === 0 ? <p className="muted">Nothing recorded{applied.person || applied.device || applied.ip || applied.action || applied.from ? ' that matches' : ' yet: the DNS resolver and proxy record here once devices use them'}.</p> : null}
    </section>
  );
}
