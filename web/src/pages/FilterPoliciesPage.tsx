import { useCallback, useEffect, useMemo, useRef, useState, type FormEvent } from 'react';
import { api, type Account } from '../api';
import { ErrorMessage, Field, fieldErrors, formProblems } from '../components';
import { DAYS, when, type Category, type PoliciesResponse, type Policy, type Schedule } from './FilterShared';
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

/** The problems of a policy's settings a person can correct before saving, by the server's field paths. */
function checkSettings(settings: Settings, kind: Policy['kind']): Record<string, string | null> {
  const problems: Record<string, string | null> = {};
  settings.schedules.forEach((s, i) => {
    const at = `schedules.${i}`;
    if (!TIME.test(s.from)) problems[`${at}.from`] = 'Give the time it starts, like 08:30.';
    if (!TIME.test(s.to)) problems[`${at}.to`] = 'Give the time it ends, like 15:30.';
    else if (TIME.test(s.from) && s.to <= s.from) problems[`${at}.to`] = `Must be after ${s.from}: over midnight, add two times.`;
    if (s.days.length === 0) problems[`${at}.days`] = 'Choose at least one day.';
    if (s.categories.length === 0) problems[`${at}.categories`] = 'Choose at least one category to block at this time.';
  });
  if (kind === 'group' && (!Number.isInteger(settings.priority) || settings.priority < 1 || settings.priority > 1000)) problems.priority = 'Give a whole number from 1 to 1000.';
  return problems;
}
const TIME = /^([01]\d|2[0-3]):[0-5]\d$/;
/** Field errors this form shows beside their fields (the rest are listed by the Save button). */
const shownInline = (field: string) => /^schedules\.\d+(\.(from|to|days|categories|label))?$/.test(field) || field === 'priority';

const dayList = (days: number[]) => (days.length === 5 && [1, 2, 3, 4, 5].every((d) => days.includes(d)) ? 'Mon–Fri' : days.length === 7 ? 'every day' : days.map((d) => DAYS[d - 1]).join(', '));

/** Filtering policies per group (FI-02): categories, schedules, the school's lists, SafeSearch, downloads. */
export function FilterPoliciesPage({ account }: { account: Account }) {
  const canManage = may(account, 'filtering.manage');
  const [data, setData] = useState<PoliciesResponse | null>(null);
  const [selected, setSelected] = useState<string>('role:pupils');
  // One draft per policy: moving to another policy and back keeps what was changed.
  const [drafts, setDrafts] = useState<Record<string, Settings>>({});
  const [loadError, setLoadError] = useState<unknown>(null);
  const [error, setError] = useState<unknown>(null);
  const [saved, setSaved] = useState(false);
  // FI-06: a change that only blocks more may be put in force at once, awaiting approval.
  const [emergency, setEmergency] = useState(false);
  const [newGroup, setNewGroup] = useState({ groupId: '', copyOf: 'role:pupils' });
  const [newGroupError, setNewGroupError] = useState<unknown>(null);
  const [find, setFind] = useState('');
  const [onlyBlocked, setOnlyBlocked] = useState(!canManage);
  const formRef = useRef<HTMLFormElement>(null);

  const load = useCallback(async () => {
    try {
      const d = await api<PoliciesResponse>('GET', '/api/filtering/policies');
      setData(d);
      setLoadError(null);
      return d;
    } catch (e) {
      setLoadError(e);
      return null;
    }
  }, []);
  useEffect(() => {
    void load();
  }, [load]);

  const policy = data?.policies.find((p) => p.id === selected) ?? data?.policies[0];
  const draft = policy ? (drafts[policy.id] ?? settingsOf(policy)) : null;
  const unsaved = useCallback((p: Policy) => drafts[p.id] !== undefined && JSON.stringify(drafts[p.id]) !== JSON.stringify(settingsOf(p)), [drafts]);
  const anyUnsaved = (data?.policies ?? []).some(unsaved);
  useEffect(() => {
    if (!anyUnsaved) return;
    const warn = (event: BeforeUnloadEvent) => event.preventDefault();
    window.addEventListener('beforeunload', warn);
    return () => window.removeEventListener('beforeunload', warn);
  }, [anyUnsaved]);

  const categories = useMemo(() => (data?.categories ?? []).filter((c) => c.kind === 'category'), [data]);
  const illegal = useMemo(() => (data?.categories ?? []).filter((c) => c.kind === 'illegal'), [data]);
  const allowLists = useMemo(() => (data?.categories ?? []).filter((c) => c.kind === 'allow'), [data]);
  const blockLists = useMemo(() => (data?.categories ?? []).filter((c) => c.kind === 'block'), [data]);

  if (!data || !policy || !draft) return <section><h1>Filtering policies</h1><ErrorMessage error={loadError} />{loadError ? null : <p className="muted">Loading…</p>}</section>;

  const setDraft = (next: Settings) => {
    setDrafts({ ...drafts, [policy.id]: next });
    setSaved(false);
  };
  const choose = (id: string) => {
    setSelected(id);
    setSaved(false);
    setError(null);
  };

  const save = async (event: FormEvent) => {
    event.preventDefault();
    setSaved(false);
    const problems = formProblems(checkSettings(draft, policy.kind));
    setError(problems);
    if (problems) {
      // The first field to correct, in view and focused (the list of categories is long).
      requestAnimationFrame(() => formRef.current?.querySelector<HTMLElement>('[aria-invalid="true"], .field-invalid input')?.focus());
      return;
    }
    try {
      const answer = await api<{ changeRequest?: { state: string } }>('PUT', `/api/filtering/policies/${encodeURIComponent(policy.id)}`, draft, { emergency });
      setEmergency(false);
      const { [policy.id]: _done, ...rest } = drafts;
      setDrafts(rest);
      await load();
      // Sent for approval (FI-06): the console's notice says so; "in force" only when it is.
      setSaved(answer.changeRequest?.state !== 'pending');
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
      const { [policy.id]: _gone, ...rest } = drafts;
      setDrafts(rest);
      const d = await load();
      if (policy.kind === 'group' && d) setSelected(d.policies[0]!.id);
    } catch (e) {
      setError(e);
    }
  };

  const addGroupPolicy = async (event: FormEvent) => {
    event.preventDefault();
    setNewGroupError(formProblems({ groupId: newGroup.groupId ? null : 'Choose the group the policy is for.' }));
    if (!newGroup.groupId) return;
    try {
      const made = await api<Policy>('POST', '/api/filtering/policies', newGroup);
      await load();
      choose(made.id);
      setNewGroup({ ...newGroup, groupId: '' });
    } catch (e) {
      setNewGroupError(e);
    }
  };

  const errors = fieldErrors(error);
  const toggle = (list: string[], id: string, on: boolean) => (on ? [...new Set([...list, id])] : list.filter((x) => x !== id));
  const setSchedule = (i: number, s: Schedule) => setDraft({ ...draft, schedules: draft.schedules.map((x, j) => (j === i ? s : x)) });
  const withoutPolicy = data.groups.filter((g) => !data.policies.some((p) => p.groupId === g.id));
  const nameOf = (id: string) => categories.find((c) => c.id === id)?.name ?? id;
  const blockedCount = categories.filter((c) => draft.blockedCategories.includes(c.id)).length;
  const words = find.trim().toLowerCase();
  const shown = categories.filter((c) => (!onlyBlocked || draft.blockedCategories.includes(c.id)) && (!words || `${c.name} ${c.description} ${c.id}`.toLowerCase().includes(words)));

  return (
    <section className="filter-page">
      <h1>Filtering policies</h1>
      <p className="muted">
        What each group may reach on the school’s network. A person gets the policy of one of their directory groups if it has one (the lowest priority
        number first), otherwise their role group’s; a registered device gets its own; anything else gets the policy for unknown devices.
      </p>
      <ErrorMessage error={loadError} />
      {data.warnings.length > 0 ? (
        <details className="alert alert-warn">
          <summary>{data.warnings.length} note{data.warnings.length === 1 ? '' : 's'} about the lists in use</summary>
          <ul>{data.warnings.slice(0, 30).map((w) => <li key={w}>{w}</li>)}</ul>
        </details>
      ) : null}
      <div className="policy-list" role="group" aria-label="Policies">
        {data.policies.map((p) => (
          <button key={p.id} type="button" aria-pressed={p.id === policy.id} className={p.id === policy.id ? 'active' : ''} onClick={() => choose(p.id)}>
            {p.name}
            {p.kind === 'group' ? <span className="small"> (group)</span> : null}
            {unsaved(p) ? <span className="small"> · not saved</span> : null}
          </button>
        ))}
      </div>

      <form className="card" onSubmit={save} aria-label={`Policy: ${policy.name}`} data-testid="policy-form" ref={formRef} noValidate>
        <div className="section-head">
          <h2>{policy.name}</h2>
          <span className="muted small">{policy.edited && policy.updatedAt ? `Changed ${when(policy.updatedAt)}` : 'The profile’s starting policy (not changed yet)'}</span>
        </div>

        {illegal.length > 0 ? (
          <p className="small">
            <span className="tag tag-bad">Always blocked</span> {illegal.map((c) => c.name).join(', ')} — illegal content, blocked for everyone; no policy can allow it.
          </p>
        ) : null}

        <h3>Blocked categories</h3>
        {categories.length === 0 ? <p className="muted">No category lists yet: add one under Filtering → Lists (for example the UT1 lists).</p> : (
          <div className="inline-form category-tools">
            <Field label="Find a category">
              <input type="search" value={find} maxLength={100} onChange={(e) => setFind(e.target.value)} />
            </Field>
            <label className="checkbox">
              <input type="checkbox" checked={onlyBlocked} onChange={(e) => setOnlyBlocked(e.target.checked)} /> Only the blocked ones
            </label>
            <span className="muted small" data-testid="blocked-count">{blockedCount} of {categories.length} categories blocked</span>
          </div>
        )}
        <div className="category-grid" data-testid="categories">
          {shown.map((c: Category) => (
            <label key={c.id} className="checkbox" title={c.description}>
              <input type="checkbox" disabled={!canManage} checked={draft.blockedCategories.includes(c.id)} onChange={(e) => setDraft({ ...draft, blockedCategories: toggle(draft.blockedCategories, c.id, e.target.checked) })} />
              <span>
                {c.name}
                {c.description ? <small>{c.description}</small> : null}
              </span>
            </label>
          ))}
        </div>
        {categories.length > 0 && shown.length === 0 ? <p className="muted small">{words ? `No category matches “${find.trim()}”.` : 'No category is blocked.'}</p> : null}
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
        <p className="small muted">
          For example games and social networks for pupils in school hours, in the school’s local time. A category is blocked whenever one of its times
          applies, so times may overlap. A time ends after it starts on the same day: for 20:00 to 07:00, add 20:00–23:59 and 00:00–07:00.
        </p>
        {draft.schedules.length === 0 ? <p className="muted small">Nothing is blocked only at set times.</p> : null}
        {draft.schedules.map((s, i) => {
          const at = `schedules.${i}`;
          const title = `Time ${i + 1}${s.label ? `: ${s.label}` : ''}`;
          if (!canManage) {
            return (
              <p className="schedule-row" key={i} data-testid="schedule">
                <strong>{s.label || `Time ${i + 1}`}</strong> — {dayList(s.days)}, {s.from}–{s.to}: {s.categories.map(nameOf).join(', ')}
              </p>
            );
          }
          return (
            <div className="schedule-row" key={i} data-testid="schedule" role="group" aria-label={title}>
              <div className="inline-form">
                <Field label="Name" error={errors[`${at}.label`]}>
                  <input value={s.label ?? ''} maxLength={100} onChange={(e) => setSchedule(i, { ...s, label: e.target.value })} />
                </Field>
                <Field label="From" error={errors[`${at}.from`]}>
                  <input type="time" value={s.from} onChange={(e) => setSchedule(i, { ...s, from: e.target.value })} />
                </Field>
                <Field label="To" error={errors[`${at}.to`] ?? errors[at]}>
                  <input type="time" value={s.to} onChange={(e) => setSchedule(i, { ...s, to: e.target.value })} />
                </Field>
                <button type="button" className="link-button" aria-label={`Remove ${title}`} onClick={() => setDraft({ ...draft, schedules: draft.schedules.filter((_, j) => j !== i) })}>Remove</button>
              </div>
              <fieldset className={errors[`${at}.days`] ? 'days field-invalid' : 'days'} aria-invalid={errors[`${at}.days`] ? true : undefined}>
                <legend className="visually-hidden">Days</legend>
                {DAYS.map((d, di) => (
                  <label key={d} className="checkbox">
                    <input type="checkbox" checked={s.days.includes(di + 1)} onChange={(e) => setSchedule(i, { ...s, days: e.target.checked ? [...s.days, di + 1].sort() : s.days.filter((x) => x !== di + 1) })} />
                    {d}
                  </label>
                ))}
                {errors[`${at}.days`] ? <span className="field-error">{errors[`${at}.days`]}</span> : null}
              </fieldset>
              <fieldset className={errors[`${at}.categories`] ? 'schedule-categories field-invalid' : 'schedule-categories'} aria-invalid={errors[`${at}.categories`] ? true : undefined}>
                <legend className="field-label">Categories blocked then</legend>
                <p className="small">{s.categories.length > 0 ? s.categories.map(nameOf).join(', ') : <span className="muted">None chosen yet.</span>}</p>
                {errors[`${at}.categories`] ? <span className="field-error">{errors[`${at}.categories`]}</span> : null}
                <div className="schedule-category-box">
                  {categories.map((c) => (
                    <label key={c.id} className="checkbox">
                      <input type="checkbox" checked={s.categories.includes(c.id)} onChange={(e) => setSchedule(i, { ...s, categories: toggle(s.categories, c.id, e.target.checked) })} />
                      {c.name}
                    </label>
                  ))}
                  {s.categories.filter((id) => !categories.some((c) => c.id === id)).map((id) => (
                    <label key={id} className="checkbox">
                      <input type="checkbox" checked onChange={() => setSchedule(i, { ...s, categories: s.categories.filter((x) => x !== id) })} />
                      {id} (no list provides it)
                    </label>
                  ))}
                </div>
              </fieldset>
            </div>
          );
        })}
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
            <Field label="Priority" hint="When a person is in several groups with policies, the lowest number wins." error={errors.priority}>
              <input type="number" min={1} max={1000} value={Number.isNaN(draft.priority) ? '' : draft.priority} disabled={!canManage} onChange={(e) => setDraft({ ...draft, priority: e.target.value === '' ? Number.NaN : Number(e.target.value) })} />
            </Field>
          ) : null}
        </div>
        <label className="check">
          <input type="checkbox" disabled={!canManage} checked={draft.downloadsAllowed} onChange={(e) => setDraft({ ...draft, downloadsAllowed: e.target.checked })} />
          <span>May download programs and installers (.exe, .msi, .dmg, …)</span>
        </label>

        {canManage ? (
          <>
            <ErrorMessage error={error} inline={shownInline} />
            <label className="checkbox">
              <input type="checkbox" name="emergency" checked={emergency} onChange={(e) => setEmergency(e.target.checked)} /> Emergency: in force now, awaiting approval (only a change that blocks more)
            </label>
            <div className="row-form">
              <button type="submit" className="button">Save {policy.name}</button>
              {unsaved(policy) ? <button type="button" className="link-button" onClick={() => { const { [policy.id]: _undone, ...rest } = drafts; setDrafts(rest); setError(null); }}>Undo my changes</button> : null}
              {policy.edited ? <button type="button" className="link-button" onClick={() => void reset()}>{policy.kind === 'group' ? 'Remove this policy' : 'Back to the profile’s policy'}</button> : null}
              {saved ? <span className="saved" role="status">Saved: in force now.</span> : null}
            </div>
          </>
        ) : <p className="muted small">You can see the policies; changing them is for IT administrators.</p>}
      </form>

      {canManage && withoutPolicy.length > 0 ? (
        <form className="card section-card" onSubmit={addGroupPolicy} aria-label="New group policy" noValidate>
          <div className="inline-form">
            <Field label="A policy for a directory group" error={fieldErrors(newGroupError).groupId}>
              <select value={newGroup.groupId} onChange={(e) => setNewGroup({ ...newGroup, groupId: e.target.value })}>
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
          </div>
          <ErrorMessage error={newGroupError} inline={(f) => f === 'groupId'} />
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
