import { useCallback, useEffect, useRef, useState, type FormEvent } from 'react';
import { api } from '../api';
import { ErrorMessage, Field, fieldErrors, formProblems } from '../components';
import { categoryName, type Category, type PoliciesResponse } from './FilterShared';
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

/** The engine's rule, in words: "Gambling/Casino games (blocked category)", "on the school allow list …", "policy default". */
function why(rule: string, category: string | null, categories: Category[] | null): string {
  const name = categoryName(categories, category);
  switch (rule) {
    case 'illegal': return `illegal content${name ? `: ${name}` : ''}`;
    case 'fallback': return 'resolver fallback (DoH canary, Private Relay)';
    case 'school-block': return `on the school’s block list${name ? ` “${name}”` : ''}`;
    case 'school-allow': return `on the school’s allow list${name ? ` “${name}”` : ''}`;
    case 'category': return `${name ?? 'a category'} (blocked category)`;
    case 'schedule': return `${name ?? 'a category'} (blocked at this time)`;
    case 'safe-search': return 'SafeSearch';
    case 'default': return 'policy default';
    default: return name ? `${name}: ${rule}` : rule;
  }
}

/** Recent filtering activity (MO-01): live, filtered by person, device, address, site, action and time. */
export function FilterActivityPage() {
  const [filters, setFilters] = useState({ person: '', device: '', ip: '', host: '', action: '', from: '', to: '' });
  const [categories, setCategories] = useState<Category[] | null>(null);
  const [formError, setFormError] = useState<unknown>(null);
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
    if (applied.ip) q.set('ip', applied.ip.trim());
    if (applied.host) q.set('host', applied.host.trim());
    if (applied.action) q.set('action', applied.action);
    if (applied.from) q.set('from', new Date(applied.from).toISOString());
    if (applied.to) q.set('to', new Date(applied.to).toISOString());
    try {
      const data = await api<{ activity: Row[]; retentionDays: number }>('GET', `/api/filtering/activity?${q.toString()}`);
      setRows(data.activity);
      setRetention(data.retentionDays);
      setUpdatedAt(new Date());
      setError(null);
      setFormError(null);
    } catch (e) {
      // A filter the server refuses belongs to the form; anything else (server down) above the table.
      if (Object.keys(fieldErrors(e)).length > 0) setFormError(e);
      else setError(e);
    }
  }, [applied]);

  // Category names for the "Why" column (the DSL and administrators may read the policies).
  useEffect(() => {
    api<PoliciesResponse>('GET', '/api/filtering/policies').then((d) => setCategories(d.categories), () => setCategories(null));
  }, []);

  useEffect(() => {
    void load();
    if (!live) return;
    timer.current = window.setInterval(() => void load(), 3000);
    return () => window.clearInterval(timer.current);
  }, [load, live]);

  const search = (event: FormEvent) => {
    event.preventDefault();
    const problems = formProblems({ to: filters.from && filters.to && filters.to <= filters.from ? 'Must be after “From”.' : null });
    setFormError(problems);
    if (!problems) setApplied(filters);
  };
  const errors = fieldErrors(formError);

  return (
    <section className="filter-page">
      <h1>Activity</h1>
      <p className="muted">
        What the filter allowed and blocked, newest first: who (where known), which device and address, the site, web address or search, and why.
        {retention ? ` Kept for ${retention} days.` : ''}
      </p>
      <form className="card" onSubmit={search} aria-label="Filter activity" noValidate>
        <div className="inline-form">
        <Field label="Person (username)" error={errors.person}>
          <input name="person" value={filters.person} maxLength={100} onChange={(e) => setFilters({ ...filters, person: e.target.value })} />
        </Field>
        <Field label="Device" error={errors.device}>
          <input name="device" value={filters.device} maxLength={100} onChange={(e) => setFilters({ ...filters, device: e.target.value })} />
        </Field>
        <Field label="Address" hint="The device’s IP address" error={errors.ip}>
          <input name="ip" value={filters.ip} maxLength={64} onChange={(e) => setFilters({ ...filters, ip: e.target.value })} />
        </Field>
        <Field label="Site" hint="e.g. youtube.com (its subdomains too)" error={errors.host}>
          <input name="host" value={filters.host} maxLength={300} onChange={(e) => setFilters({ ...filters, host: e.target.value })} />
        </Field>
        <Field label="Action">
          <select name="action" value={filters.action} onChange={(e) => setFilters({ ...filters, action: e.target.value })}>
            <option value="">Any</option>
            <option value="block">Blocked</option>
            <option value="allow">Allowed</option>
            <option value="rewrite">SafeSearch</option>
          </select>
        </Field>
        <Field label="From" error={errors.from}>
          <input name="from" type="datetime-local" value={filters.from} onChange={(e) => setFilters({ ...filters, from: e.target.value })} />
        </Field>
        <Field label="To" error={errors.to}>
          <input name="to" type="datetime-local" value={filters.to} onChange={(e) => setFilters({ ...filters, to: e.target.value })} />
        </Field>
        <button type="submit" className="button">Show</button>
        <label className="checkbox">
          <input type="checkbox" checked={live} onChange={(e) => setLive(e.target.checked)} /> Live (every 3 seconds)
        </label>
        </div>
        <ErrorMessage error={formError} inline={(f) => f in errors} />
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
              <td className="small">{why(r.rule, r.category, categories)} · {r.policy}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {rows && rows.length === 0 ? <p className="muted">Nothing recorded{applied.person || applied.device || applied.ip || applied.host || applied.action || applied.from || applied.to ? ' that matches' : ' yet: the DNS resolver and proxy record here once devices use them'}.</p> : null}
    </section>
  );
}
