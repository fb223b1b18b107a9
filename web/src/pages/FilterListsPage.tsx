import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, ApiError, type Account } from '../api';
import { ErrorMessage, Field, fieldErrors, formProblems } from '../components';
import { age, count, hostOf, KIND_LABELS, when, type Source } from './FilterShared';
import './Filter.css';

interface ListsResponse {
  sources: Source[];
  formats: Record<string, string>;
  kinds: Record<string, string>;
  snapshot: { compiledAt: string | null; compileMs: number; domains: number; urls: number; categories: number };
  activity: { pending: number; written: number; dropped: number };
  warnings: string[];
  /** where lists may come from: the folder on the server, and the private networks and hosts downloads may reach */
  origins?: { folder: string; allowedNetworks: string[] };
}

const may = (account: Account, permission: string) => account.permissions.includes(permission);

function Result({ s }: { s: Source }) {
  if (s.held) return <span className="tag tag-warn">update held</span>;
  if (s.stale) return <span className="tag tag-bad">out of date</span>;
  if (s.lastResult === 'error') return <span className="tag tag-bad" title={s.lastError ?? ''}>last update failed</span>;
  if (s.editable) return <span className="tag tag-ok">edited here</span>;
  if (s.lastResult === 'ok') return <span className="tag tag-ok">up to date</span>;
  if (s.lastResult === 'refused') return <span className="tag">update refused</span>;
  return <span className="tag">not fetched yet</span>;
}

/** List sources (FI-03, FI-04): where each comes from, age, size, last result, held updates; the school's own lists. */
export function FilterListsPage({ account }: { account: Account }) {
  const canManage = may(account, 'filtering.manage');
  const [data, setData] = useState<ListsResponse | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [form, setForm] = useState({ name: '', format: 'ut1', location: '', kind: 'category', scheduleHours: 24 });
  const [editing, setEditing] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      setData(await api<ListsResponse>('GET', '/api/filtering/lists'));
    } catch (e) {
      setError(e);
    }
  }, []);
  useEffect(() => {
    void load();
  }, [load]);

  const act = async (label: string, work: () => Promise<unknown>) => {
    setError(null);
    setBusy(label);
    try {
      await work();
      await load();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(null);
    }
  };

  const [addError, setAddError] = useState<unknown>(null);
  // FI-06: adding a block list only blocks more: it may be put in force at once, awaiting approval.
  const [addEmergency, setAddEmergency] = useState(false);
  const folder = data?.origins?.folder ?? 'the list folder';
  const add = async (event: FormEvent) => {
    event.preventDefault();
    const location = form.location.trim();
    const editable = location === '';
    const problems = formProblems({
      name: form.name.trim() ? null : 'Give the list a name, e.g. “UT1” or “Blocked by the school”.',
      location: editable || /^https?:\/\/\S+$/i.test(location) || location.startsWith('/') ? null : `Give an http:// or https:// address, or the full path of a folder or file in ${folder} (starting with /); or leave it empty.`,
      scheduleHours: Number.isInteger(form.scheduleHours) && form.scheduleHours >= 1 && form.scheduleHours <= 744 ? null : 'Give a whole number of hours from 1 to 744 (a month).',
    });
    setAddError(problems);
    if (problems) return;
    setBusy('add');
    try {
      await api('POST', '/api/filtering/lists', { name: form.name.trim(), format: editable ? 'domains' : form.format, location: editable ? null : location, kind: form.kind, scheduleHours: form.scheduleHours }, { emergency: addEmergency && form.kind === 'block' });
      setForm({ ...form, name: '', location: '' });
      setAddEmergency(false);
      await load();
    } catch (e) {
      setAddError(e);
    } finally {
      setBusy(null);
    }
  };
  // The server's refusals that concern one field: a name in use, a location it cannot use.
  const addErrors: Record<string, string> = { ...fieldErrors(addError) };
  const addMapped = addError instanceof ApiError && !addError.body.fields && (addError.body.code === 'list_exists' || (addError.body.code === 'bad_request' && form.location.trim() !== ''));
  if (addMapped) addErrors[addError.body.code === 'list_exists' ? 'name' : 'location'] = addError.body.message;
  const addInline = (f: string) => f in addErrors;

  const sources = data?.sources ?? [];
  return (
    <section className="filter-page">
      <h1>Lists</h1>
      <p className="muted">
        Where the filter’s lists come from, how old they are and whether the last update worked. An update that loses more than half of a list is held
        until you confirm it, so a broken download never unblocks a category.
      </p>
      <ErrorMessage error={error} />
      {data && sources.length > 0 ? (
        <p className="small muted" data-testid="snapshot">
          In use: {count(data.snapshot.domains)} names and {count(data.snapshot.urls)} web addresses in {data.snapshot.categories} categories from {sources.length} list{sources.length === 1 ? '' : 's'}, compiled {when(data.snapshot.compiledAt)} in {data.snapshot.compileMs} ms. Activity written: {count(data.activity.written)}
          {data.activity.dropped ? `, ${count(data.activity.dropped)} dropped (the database could not keep up)` : ''}.
        </p>
      ) : null}
      {sources.length > 0 ? <table className="table" data-testid="sources">
        <thead>
          <tr>
            <th>List</th>
            <th>Kind</th>
            <th>Entries</th>
            <th>Updated</th>
            <th>State</th>
            <th aria-label="Actions" />
          </tr>
        </thead>
        <tbody>
          {sources.map((s) => (
            <tr key={s.id} data-source={s.name}>
              <td>
                <strong>{s.name}</strong>
                <div className="small muted">{s.location ?? 'edited here'}{s.format === 'ut1' ? ` — UT1, ${s.categoryCount} categories` : ''}</div>
                {s.lastError ? <div className="small rule-bad">Last update failed: {s.lastError}. The list in use stays until an update succeeds.</div> : null}
                {s.held ? (
                  <div className="alert alert-warn small" role="status">
                    The update of {when(s.held.at)} has {count(s.held.entries)} entries instead of {count(s.entries)}. Use it?
                    {canManage ? (
                      <span className="actions">
                        <button type="button" className="button small" disabled={busy !== null} onClick={() => void act('confirm', () => api('POST', `/api/filtering/lists/${s.id}/confirm`))}>Use the update</button>
                        <button type="button" className="link-button" disabled={busy !== null} onClick={() => void act('reject', () => api('POST', `/api/filtering/lists/${s.id}/reject`))}>Keep the list in use</button>
                      </span>
                    ) : null}
                  </div>
                ) : null}
              </td>
              <td>{s.kind === 'illegal' ? <span className="tag tag-bad">{KIND_LABELS[s.kind]}</span> : KIND_LABELS[s.kind]}</td>
              <td className="num">{count(s.entries)}</td>
              <td>
                {age(s.currentAt)}
                <div className="small muted">every {s.scheduleHours} h{s.enabled ? '' : ' (switched off)'}</div>
              </td>
              <td><Result s={s} /></td>
              <td className="actions nowrap">
                {canManage && s.location ? (
                  <button type="button" className="link-button" disabled={busy !== null} aria-label={`Update now: ${s.name}`} onClick={() => void act(`fetch ${s.id}`, () => api('POST', `/api/filtering/lists/${s.id}/fetch`))}>
                    {busy === `fetch ${s.id}` ? 'Updating…' : 'Update now'}
                  </button>
                ) : null}
                {s.editable ? <button type="button" className="link-button" aria-expanded={editing === s.id} aria-label={`${editing === s.id ? 'Close' : canManage ? 'Edit sites' : 'Sites'} of ${s.name}`} onClick={() => setEditing(editing === s.id ? null : s.id)}>{editing === s.id ? 'Close' : canManage ? 'Edit sites' : 'Sites'}</button> : null}
                {canManage && s.kind !== 'illegal' ? (
                  <button type="button" className="link-button" disabled={busy !== null} aria-label={`Remove ${s.name}`} onClick={() => window.confirm(`Remove the list “${s.name}”? Policies stop using it at once.`) && void act('remove', () => api('DELETE', `/api/filtering/lists/${s.id}`))}>Remove</button>
                ) : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table> : null}
      {data && sources.length === 0 ? <p className="muted">No lists yet. Add the UT1 lists (the archive’s address, or a folder in {folder} on this server) and the school’s own allow and block lists below.</p> : null}
      {editing ? <Entries source={sources.find((s) => s.id === editing)!} canManage={canManage} onChanged={load} /> : null}

      {canManage ? (
        <form className="card section-card" onSubmit={(e) => void add(e)} aria-label="Add a list" noValidate>
          <h2>Add a list</h2>
          <div className="inline-form">
            <Field label="Name" error={addErrors.name}>
              <input name="name" value={form.name} maxLength={100} onChange={(e) => setForm({ ...form, name: e.target.value })} required />
            </Field>
            <Field label="Kind">
              <select name="kind" value={form.kind} onChange={(e) => setForm({ ...form, kind: e.target.value })}>
                {Object.entries(data?.kinds ?? {}).map(([k, label]) => <option key={k} value={k}>{label}</option>)}
              </select>
            </Field>
            <Field label="Format">
              <select name="format" value={form.format} onChange={(e) => setForm({ ...form, format: e.target.value })}>
                {Object.entries(data?.formats ?? {}).map(([k, label]) => <option key={k} value={k}>{label}</option>)}
              </select>
            </Field>
            <Field label="Update every (hours)" error={addErrors.scheduleHours}>
              <input name="scheduleHours" type="number" min={1} max={744} value={Number.isNaN(form.scheduleHours) ? '' : form.scheduleHours} onChange={(e) => setForm({ ...form, scheduleHours: e.target.value === '' ? Number.NaN : Number(e.target.value) })} />
            </Field>
          </div>
          <Field
            label="Location"
            hint={
              <>
                An https:// address on the internet (UT1: the blacklists.tar.gz archive), or the full path of a folder or file in <code>{folder}</code>, the only folder lists are read from on this server. Leave empty for a list of sites you type here.{' '}
                {data?.origins && data.origins.allowedNetworks.length > 0
                  ? `Addresses on the school’s own network are fetched only from ${data.origins.allowedNetworks.join(', ')}.`
                  : 'Addresses on the school’s own network, this server and cloud metadata are refused (your IT provider can allow the school’s list server in GATEHOUSE_LIST_ALLOWED_NETWORKS).'}
              </>
            }
            error={addErrors.location}
          >
            <input name="location" value={form.location} maxLength={2000} onChange={(e) => setForm({ ...form, location: e.target.value })} />
          </Field>
          {form.kind === 'block' ? (
            <label className="checkbox">
              <input type="checkbox" name="emergency" checked={addEmergency} onChange={(e) => setAddEmergency(e.target.checked)} /> Emergency: block now (in force at once, awaiting approval)
            </label>
          ) : null}
          {addMapped ? null : <ErrorMessage error={addError} inline={addInline} />}
          <button type="submit" className="button" disabled={busy !== null}>{busy === 'add' ? 'Adding and fetching…' : 'Add the list'}</button>
        </form>
      ) : null}
    </section>
  );
}

interface Entry {
  host: string;
  note: string | null;
  addedAt: string;
  addedBy: string;
}

/** The sites on one of the school's own lists, added and removed here (audited). */
function Entries({ source, canManage, onChanged }: { source: Source; canManage: boolean; onChanged: () => Promise<void> }) {
  const [entries, setEntries] = useState<Entry[] | null>(null);
  const [text, setText] = useState('');
  const [note, setNote] = useState('');
  const [emergency, setEmergency] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const load = useCallback(async () => {
    try {
      setEntries((await api<{ entries: Entry[] }>('GET', `/api/filtering/lists/${source.id}/entries`)).entries);
    } catch (e) {
      setError(e);
    }
  }, [source.id]);
  useEffect(() => {
    void load();
  }, [load]);

  const add = async (event: FormEvent) => {
    event.preventDefault();
    const hosts = text.split(/[\s,]+/).filter(Boolean);
    const bad = hosts.filter((h) => !hostOf(h));
    const problems = formProblems({
      hosts: hosts.length === 0 ? 'Type at least one site, e.g. www.bbc.co.uk.' : bad.length > 0 ? `${bad.length === 1 ? 'This is not a web address or domain name' : 'These are not web addresses or domain names'}: ${bad.slice(0, 5).join(', ')}${bad.length > 5 ? ` and ${bad.length - 5} more` : ''}. Nothing was added; correct ${bad.length === 1 ? 'it' : 'them'} and add again.` : null,
    });
    setError(problems);
    if (problems) return;
    try {
      setEntries((await api<{ entries: Entry[] }>('POST', `/api/filtering/lists/${source.id}/entries`, { hosts, note: note || null }, { emergency: emergency && source.kind === 'block' })).entries);
      setEmergency(false);
      setText('');
      setNote('');
      await onChanged();
    } catch (e) {
      setError(e);
    }
  };
  const remove = async (host: string) => {
    setError(null);
    try {
      await api('DELETE', `/api/filtering/lists/${source.id}/entries/${encodeURIComponent(host)}`);
      await load();
      await onChanged();
    } catch (e) {
      setError(e);
    }
  };

  // A refusal of the sites typed (bad names) shows beside them; other errors (a removal that failed) above the list.
  const hostsError = fieldErrors(error).hosts ?? (error instanceof ApiError && error.body.code === 'bad_request' ? error.body.message : undefined);
  return (
    <div className="card section-card" data-testid="entries">
      <h2>{source.name}</h2>
      <p className="small muted">{source.kind === 'allow' ? 'Sites allowed even when a blocked category lists them (never illegal content).' : 'Sites blocked whatever the categories say.'} A site covers its subdomains too.</p>
      {hostsError ? null : <ErrorMessage error={error} inline={(f) => f === 'hosts'} />}
      {entries && entries.length === 0 ? <p className="muted">No sites yet.</p> : null}
      <ul className="entries">
        {(entries ?? []).map((e) => (
          <li key={e.host}>
            <code>{e.host}</code> <span className="small muted">{e.note ? `— ${e.note} ` : ''}(by {e.addedBy})</span>{' '}
            {canManage ? <button type="button" className="link-button" onClick={() => void remove(e.host)} aria-label={`Remove ${e.host}`}>Remove</button> : null}
          </li>
        ))}
      </ul>
      {canManage ? (
        <form onSubmit={add} className="inline-form" aria-label={`Add sites to ${source.name}`} noValidate>
          <Field label="Sites to add" hint="Addresses or domain names, one a line or separated by spaces." error={hostsError}>
            <textarea name="hosts" rows={3} value={text} onChange={(e) => setText(e.target.value)} required />
          </Field>
          <Field label="Why (kept with the entry)">
            <input name="note" value={note} maxLength={300} onChange={(e) => setNote(e.target.value)} />
          </Field>
          {source.kind === 'block' ? (
            <label className="checkbox">
              <input type="checkbox" name="emergency" checked={emergency} onChange={(e) => setEmergency(e.target.checked)} /> Emergency: block now (in force at once, awaiting approval)
            </label>
          ) : null}
          <button type="submit" className="button">Add</button>
        </form>
      ) : null}
    </div>
  );
}
