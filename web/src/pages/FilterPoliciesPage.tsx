import { useCallback, useEffect, useMemo, useState, type FormEvent } from 'react';
import { api, type Account } from '../api';
import { ErrorMessage, Field } from '../components';
import { DAYS, type Category, type PoliciesResponse, type Policy, type Schedule } from './FilterShared';
import './Filter.css';

const may = (account: Account, permission: string) => account.permissions.includes(permission);

type Settings = Omit<Policy, 'id' | 'kind' | 'groupId' | 'name' | 'edited' | 'updatedAt'>;
const settingsOf = (p: Policy): Settings => ({
  blockedCategories: p.blockedCategories,
  schedules: p.schedules,
  allowLists: p.allowLists,
  blockLists: p.blockLists,
  safeSearch: p.safeSearch,
  youtube: p.youtube,
  downloadsAllowed: p.downloadsAllowed,
  defaultAction: p.defaultAction,
  priority: p.priority,
});

/** Filtering policies per group (FI-05): categories, schedules, the school's lists, SafeSearch, downloads. */
export function FilterPoliciesPage({ account }: { account: Account }) {
  const canManage = may(account, 'filtering.manage');
  const [data, setData] = useState<PoliciesResponse | null>(null);
  const [selected, setSelected] = useState<string>('role:pupils');
  const [draft, setDraft] = useState<Settings | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [saved, setSaved] = useState(false);
  const [newGroup, setNewGroup] = useState({ groupId: '', copyOf: 'role:pupils' });

  const load = useCallback(async () => {
    try {
      const d = await api<PoliciesResponse>('GET', '/api/filtering/policies');
      setData(d);
      return d;
    } catch (e) {
      setError(e);
      return null;
    }
  }, []);
  useEffect(() => {
    void load();
  }, [load]);

  const policy = data?.policies.find((p) => p.id === selected) ?? data?.policies[0];
  useEffect(() => {
    if (policy) setDraft(settingsOf(policy));
  }, [policy?.id, policy?.updatedAt]); // eslint-disable-line react-hooks/exhaustive-deps
  useEffect(() => setSaved(false), [policy?.id]);

  const categories = useMemo(() => (data?.categories ?? []).filter((c) => c.kind === 'category'), [data]);
  const illegal = useMemo(() => (data?.categories ?? []).filter((c) => c.kind === 'illegal'), [data]);
  const allowLists = useMemo(() => (data?.categories ?? []).filter((c) => c.kind === 'allow'), [data]);
  const blockLists = useMemo(() => (data?.categories ?? []).filter((c) => c.kind === 'block'), [data]);

  if (!data || !policy || !draft) return <section><h1>Filtering policies</h1><ErrorMessage error={error} />{error ? null : <p className="muted">Loading…</p>}</section>;

  const save = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    setSaved(false);
    try {
      await api('PUT', `/api/filtering/policies/${encodeURIComponent(policy.id)}`, draft);
      await load();
      setSaved(true);
    } catch (e) {
      setError(e);
    }
  };

  const reset = async () => {
    const what = policy.kind === 'group' ? `Remove the policy of ${policy.name}? Its members get their role group’s policy again.` : `Put ${policy.name} back to the starting policy from the profile?`;
    if (!window.confirm(what)) return;
    setError(null);
    try {
      await api('DELETE', `/api/filtering/policies/${encodeURIComponent(policy.id)}`);
      const d = await load();
      if (policy.kind === 'group' && d) setSelected(d.policies[0]!.id);
    } catch (e) {
      setError(e);
    }
  };

  const addGroupPolicy = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    try {
      const made = await api<Policy>('POST', '/api/filtering/policies', newGroup);
      await load();
      setSelected(made.id);
    } catch (e) {
      setError(e);
    }
  };

  const toggle = (list: string[], id: string, on: boolean) => (on ? [...new Set([...list, id])] : list.filter((x) => x !== id));
  const setSchedule = (i: number, s: Schedule) => setDraft({ ...draft, schedules: draft.schedules.map((x, j) => (j === i ? s : x)) });
  const withoutPolicy = data.groups.filter((g) => !data.policies.some((p) => p.groupId === g.id));

  return (
    <section>
      <h1>Filtering policies</h1>
      <p className="muted">
        What each group may reach on the school’s network. A person gets the policy of one of their directory groups if it has one (the lowest priority
        number first), otherwise their role group’s; a registered device gets its own; anything else gets the policy for unknown devices.
      </p>
      <ErrorMessage error={error} />
      {data.warnings.length > 0 ? (
        <details className="alert alert-warn">
          <summary>{data.warnings.length} note{data.warnings.length === 1 ? '' : 's'} about the lists in use</summary>
          <ul>{data.warnings.slice(0, 30).map((w) => <li key={w}>{w}</li>)}</ul>
        </details>
      ) : null}
      <div className="policy-list" role="tablist" aria-label="Policies">
        {data.policies.map((p) => (
          <button key={p.id} type="button" role="tab" aria-selected={p.id === policy.id} className={p.id === policy.id ? 'active' : ''} onClick={() => setSelected(p.id)}>
            {p.name}
            {p.kind === 'group' ? <span className="small"> (group)</span> : null}
          </button>
        ))}
      </div>

      <form className="card" onSubmit={save} aria-label={`Policy: ${policy.name}`} data-testid="policy-form">
        <div className="section-head">
          <h2>{policy.name}</h2>
          <span className="muted small">{policy.edited ? `Changed ${new Date(policy.updatedAt!).toLocaleString('en-GB')}` : 'The profile’s starting policy (not changed yet)'}</span>
        </div>

        {illegal.length > 0 ? (
          <p className="small">
            <span className="tag tag-bad">Always blocked</span> {illegal.map((c) => c.name).join(', ')} — illegal content, blocked for everyone; no policy can allow it.
          </p>
        ) : null}

        <h3>Blocked categories</h3>
        {categories.length === 0 ? <p className="muted">No category lists yet: add one under Filtering → Lists (for example the UT1 lists).</p> : null}
        <div className="category-grid" data-testid="categories">
          {categories.map((c: Category) => (
            <label key={c.id} className="checkbox" title={c.description}>
              <input type="checkbox" disabled={!canManage} checked={draft.blockedCategories.includes(c.id)} onChange={(e) => setDraft({ ...draft, blockedCategories: toggle(draft.blockedCategories, c.id, e.target.checked) })} />
              <span>
                {c.name}
                {c.description ? <small>{c.description}</small> : null}
              </span>
            </label>
          ))}
        </div>
        {draft.blockedCategories.some((id) => !categories.some((c) => c.id === id)) ? (
          <p className="small muted" data-testid="unprovided">
            Also blocked when a list provides them:{' '}
            {draft.blockedCategories.filter((id) => !categories.some((c) => c.id === id)).map((id) => (
              <label key={id} className="checkbox">
                <input type="checkbox" disabled={!canManage} checked onChange={() => setDraft({ ...draft, blockedCategories: draft.blockedCategories.filter((x) => x !== id) })} />
                {id}
              </label>
            ))}
          </p>
        ) : null}

        <h3>Blocked at set times</h3>
        <p className="small muted">For example games and social networks for pupils in school hours. Times are the school’s local time.</p>
        {draft.schedules.map((s, i) => (
          <div className="schedule-row" key={i} data-testid="schedule">
            <div className="inline-form">
              <Field label="Name">
                <input value={s.label ?? ''} maxLength={100} disabled={!canManage} onChange={(e) => setSchedule(i, { ...s, label: e.target.value })} />
              </Field>
              <Field label="From">
                <input type="time" value={s.from} disabled={!canManage} onChange={(e) => setSchedule(i, { ...s, from: e.target.value })} />
              </Field>
              <Field label="To">
                <input type="time" value={s.to} disabled={!canManage} onChange={(e) => setSchedule(i, { ...s, to: e.target.value })} />
              </Field>
              {canManage ? <button type="button" className="link-button" onClick={() => setDraft({ ...draft, schedules: draft.schedules.filter((_, j) => j !== i) })}>Remove</button> : null}
            </div>
            <div className="days" role="group" aria-label="Days">
              {DAYS.map((d, di) => (
                <label key={d} className="checkbox">
                  <input type="checkbox" disabled={!canManage} checked={s.days.includes(di + 1)} onChange={(e) => setSchedule(i, { ...s, days: e.target.checked ? [...s.days, di + 1].sort() : s.days.filter((x) => x !== di + 1) })} />
                  {d}
                </label>
              ))}
            </div>
            <Field label="Categories blocked then">
              <select multiple size={Math.min(6, Math.max(3, categories.length))} disabled={!canManage} value={s.categories} onChange={(e) => setSchedule(i, { ...s, categories: [...e.target.selectedOptions].map((o) => o.value) })}>
                {categories.map((c) => <option key={c.id} value={c.id}>{c.name}</option>)}
                {s.categories.filter((id) => !categories.some((c) => c.id === id)).map((id) => <option key={id} value={id}>{id} (no list provides it)</option>)}
              </select>
            </Field>
          </div>
        ))}
        {canManage ? (
          <button type="button" className="link-button" onClick={() => setDraft({ ...draft, schedules: [...draft.schedules, { categories: [], days: [1, 2, 3, 4, 5], from: '08:30', to: '15:30', label: 'school hours' }] })}>
            Add a time
          </button>
        ) : null}

        <h3>The school’s own lists</h3>
        <div className="inline-form">
          <ListChoice label="Allow lists" lists={allowLists} value={draft.allowLists} disabled={!canManage} onChange={(v) => setDraft({ ...draft, allowLists: v })} />
          <ListChoice label="Block lists" lists={blockLists} value={draft.blockLists} disabled={!canManage} onChange={(v) => setDraft({ ...draft, blockLists: v })} />
        </div>

        <h3>Search, video and downloads</h3>
        <div className="inline-form">
          <Field label="SafeSearch (Google, Bing, DuckDuckGo)">
            <select value={draft.safeSearch} disabled={!canManage} onChange={(e) => setDraft({ ...draft, safeSearch: e.target.value as 'on' | 'off' })}>
              <option value="on">Enforced</option>
              <option value="off">Not enforced</option>
            </select>
          </Field>
          <Field label="YouTube">
            <select value={draft.youtube} disabled={!canManage} onChange={(e) => setDraft({ ...draft, youtube: e.target.value as Settings['youtube'] })}>
              <option value="strict">Restricted Mode: strict</option>
              <option value="moderate">Restricted Mode: moderate</option>
              <option value="off">Not restricted</option>
            </select>
          </Field>
          <Field label="Sites on no list">
            <select value={draft.defaultAction} disabled={!canManage} onChange={(e) => setDraft({ ...draft, defaultAction: e.target.value as 'allow' | 'block' })}>
              <option value="allow">Allowed</option>
              <option value="block">Blocked (only listed sites)</option>
            </select>
          </Field>
          {policy.kind === 'group' ? (
            <Field label="Priority" hint="When a person is in several groups with policies, the lowest number wins.">
              <input type="number" min={1} max={1000} value={draft.priority} disabled={!canManage} onChange={(e) => setDraft({ ...draft, priority: Number(e.target.value) })} />
            </Field>
          ) : null}
        </div>
        <label className="check">
          <input type="checkbox" disabled={!canManage} checked={draft.downloadsAllowed} onChange={(e) => setDraft({ ...draft, downloadsAllowed: e.target.checked })} />
          <span>May download programs and installers (.exe, .msi, .dmg, …)</span>
        </label>

        {canManage ? (
          <div className="row-form">
            <button type="submit" className="button">Save {policy.name}</button>
            {policy.edited ? <button type="button" className="link-button" onClick={() => void reset()}>{policy.kind === 'group' ? 'Remove this policy' : 'Back to the profile’s policy'}</button> : null}
            {saved ? <span className="saved" role="status">Saved: in force now.</span> : null}
          </div>
        ) : <p className="muted small">You can see the policies; changing them is for IT administrators.</p>}
      </form>

      {canManage && withoutPolicy.length > 0 ? (
        <form className="card inline-form section-card" onSubmit={addGroupPolicy} aria-label="New group policy">
          <Field label="A policy for a directory group">
            <select value={newGroup.groupId} onChange={(e) => setNewGroup({ ...newGroup, groupId: e.target.value })} required>
              <option value="">Choose a group…</option>
              {withoutPolicy.map((g) => <option key={g.id} value={g.id}>{g.name}</option>)}
            </select>
          </Field>
          <Field label="Starting from">
            <select value={newGroup.copyOf} onChange={(e) => setNewGroup({ ...newGroup, copyOf: e.target.value })}>
              {data.policies.map((p) => <option key={p.id} value={p.id}>{p.name}</option>)}
            </select>
          </Field>
          <button type="submit" className="button">Add the policy</button>
        </form>
      ) : null}
    </section>
  );
}

function ListChoice(props: { label: string; lists: Category[]; value: 'all' | string[]; disabled: boolean; onChange: (v: 'all' | string[]) => void }) {
  const all = props.value === 'all';
  return (
    <fieldset className="field">
      <legend className="field-label">{props.label}</legend>
      <label className="checkbox">
        <input type="checkbox" disabled={props.disabled} checked={all} onChange={(e) => props.onChange(e.target.checked ? 'all' : props.lists.map((l) => l.id))} />
        Every {props.label.toLowerCase().replace(/s$/, '')} of the school (and any added later)
      </label>
      {!all
        ? props.lists.map((l) => (
            <label key={l.id} className="checkbox">
              <input type="checkbox" disabled={props.disabled} checked={(props.value as string[]).includes(l.id)} onChange={(e) => props.onChange(e.target.checked ? [...(props.value as string[]), l.id] : (props.value as string[]).filter((x) => x !== l.id))} />
              {l.name}
            </label>
          ))
        : null}
      {props.lists.length === 0 ? <span className="field-hint">None yet (Filtering → Lists).</span> : null}
    </fieldset>
  );
}
