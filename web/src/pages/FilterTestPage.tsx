import { useEffect, useState, type FormEvent } from 'react';
import { api, ApiError } from '../api';
import { ErrorMessage, Field, fieldErrors, formProblems } from '../components';
import { hostOf, isIpAddress, when, type PoliciesResponse } from './FilterShared';
import './Filter.css';

interface TestResult {
  url: string;
  host: string;
  policyId: string;
  policyName: string;
  person: string | null;
  at: string;
  matched: string | null;
  verdict: { action: 'allow' | 'block' | 'rewrite'; reason: string; category: string | null; categoryName: string | null; rule: string; target: string | null; unblockable: boolean };
  matches: Array<{ name: string; category: string; categoryName: string; kind: string; effect: string }>;
  identifiedAs: { via: string; username: string | null; deviceName: string | null } | null;
}

const ACTION_TITLES = { allow: 'Allowed', block: 'Blocked', rewrite: 'Allowed with SafeSearch' } as const;
const RULES: Record<string, string> = {
  illegal: 'an illegal-content list (blocked for everyone)',
  fallback: 'a name that keeps devices on the school’s resolver',
  'school-block': 'the school’s block list',
  'school-allow': 'the school’s allow list',
  category: 'a blocked category',
  schedule: 'a category blocked at this time',
  'safe-search': 'SafeSearch',
  default: 'the policy’s default',
};

/** How the device at the address was recognised, in words ("nobody known there" rather than "unknown"). */
function identified(who: NonNullable<TestResult['identifiedAs']>): string {
  const name = who.username ? ` as ${who.username}` : '';
  const device = who.deviceName ? ` (${who.deviceName})` : '';
  switch (who.via) {
    case 'captive': return `signed in at /connect${name}${device}`;
    case 'api': return `reported by RADIUS or a device agent${name}${device}`;
    case 'proxy-auth': return `signed in to the proxy${name}${device}`;
    case 'device': return `a registered device${device}`;
    case 'unknown': return 'nobody and no registered device is known at this address';
    default: return `identified by ${who.via}${name}${device}`;
  }
}

/** "Test a URL" (FI-01, FI-05): what the filter decides for a person, group, device address and time, and why. */
export function FilterTestPage() {
  const [policies, setPolicies] = useState<PoliciesResponse['policies']>([]);
  const [form, setForm] = useState({ url: '', who: 'policy', policy: 'role:pupils', person: '', ip: '', at: '' });
  const [result, setResult] = useState<TestResult | null>(null);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    api<PoliciesResponse>('GET', '/api/filtering/policies').then((d) => setPolicies(d.policies), setError);
  }, []);

  const test = async (event: FormEvent) => {
    event.preventDefault();
    const problems = formProblems({
      url: !form.url.trim() ? 'Type the web address to test.' : hostOf(form.url) ? null : 'That is not a web address: type one like https://www.example.com/page or example.com.',
      person: form.who === 'person' && !form.person.trim() ? 'Type the person’s username.' : null,
      ip: form.who === 'ip' ? (!form.ip.trim() ? 'Type the device’s IP address.' : isIpAddress(form.ip) ? null : 'That is not an IP address: type one like 10.1.20.15.') : null,
    });
    setError(problems);
    if (problems) {
      setResult(null);
      return;
    }
    const q = new URLSearchParams({ url: form.url });
    if (form.who === 'policy') q.set('policy', form.policy);
    if (form.who === 'person') q.set('person', form.person);
    if (form.who === 'ip') q.set('ip', form.ip);
    if (form.at) q.set('at', new Date(form.at).toISOString());
    try {
      setResult(await api<TestResult>('GET', `/api/filtering/test?${q.toString()}`));
    } catch (e) {
      setResult(null);
      setError(e);
    }
  };
  // The server's word on the person ("There is no person …") belongs beside the username.
  const serverSaysPerson = form.who === 'person' && error instanceof ApiError && error.body.code !== 'validation_failed' && /person/i.test(error.body.message);
  const errors: Record<string, string> = { ...fieldErrors(error), ...(serverSaysPerson ? { person: (error as ApiError).body.message } : {}) };
  const inline = (f: string) => f === 'url' || f === 'person' || f === 'ip' || f === 'at';

  return (
    <section className="filter-page">
      <h1>Test a web address</h1>
      <p className="muted">See what the filter does with an address for a group, a person or a device, now or at another time — and why.</p>
      <form className="card" onSubmit={test} aria-label="Address to test" noValidate>
        <Field label="Web address" hint="e.g. https://www.example.com/page or example.com" error={errors.url}>
          <input name="url" value={form.url} onChange={(e) => setForm({ ...form, url: e.target.value })} required maxLength={2000} />
        </Field>
        <div className="inline-form">
          <Field label="For">
            <select name="who" value={form.who} onChange={(e) => setForm({ ...form, who: e.target.value })}>
              <option value="policy">A group’s policy</option>
              <option value="person">A person</option>
              <option value="ip">A device’s address</option>
            </select>
          </Field>
          {form.who === 'policy' ? (
            <Field label="Policy">
              <select name="policy" value={form.policy} onChange={(e) => setForm({ ...form, policy: e.target.value })}>
                {policies.map((p) => <option key={p.id} value={p.id}>{p.name}</option>)}
              </select>
            </Field>
          ) : null}
          {form.who === 'person' ? (
            <Field label="Username" error={errors.person}>
              <input name="person" maxLength={100} value={form.person} onChange={(e) => setForm({ ...form, person: e.target.value })} required />
            </Field>
          ) : null}
          {form.who === 'ip' ? (
            <Field label="IP address" error={errors.ip}>
              <input name="ip" maxLength={64} value={form.ip} onChange={(e) => setForm({ ...form, ip: e.target.value })} required />
            </Field>
          ) : null}
          <Field label="At" hint="Leave empty for now (school time zone applies to schedules)." error={errors.at}>
            <input name="at" type="datetime-local" value={form.at} onChange={(e) => setForm({ ...form, at: e.target.value })} />
          </Field>
          <button type="submit" className="button">Test</button>
        </div>
        {serverSaysPerson ? null : <ErrorMessage error={error} inline={inline} />}
      </form>
      {result ? (
        <div className={`verdict verdict-${result.verdict.action}`} data-testid="verdict" role="status">
          <h2>{ACTION_TITLES[result.verdict.action]}</h2>
          <p><strong>{result.verdict.reason}</strong></p>
          <dl className="facts">
            <dt>Address</dt>
            <dd><code>{result.url}</code> (host <code>{result.host}</code>)</dd>
            <dt>Policy</dt>
            <dd>{result.policyName}{result.person ? ` — ${result.person}` : ''}{result.identifiedAs ? ` — ${identified(result.identifiedAs)}` : ''}</dd>
            <dt>Decided by</dt>
            <dd>{RULES[result.verdict.rule] ?? result.verdict.rule}{result.matched ? <> — <code>{result.matched}</code> is listed</> : null}</dd>
            {result.verdict.target ? (<><dt>Answered as</dt><dd><code>{result.verdict.target}</code></dd></>) : null}
            <dt>When</dt>
            <dd>{when(result.at)}</dd>
            {result.verdict.action === 'block' ? (<><dt>Can be requested</dt><dd>{result.verdict.unblockable ? 'Yes: people can ask for it from the block page' : 'No'}</dd></>) : null}
          </dl>
          {result.matches.length > 0 ? (
            <>
              <h3>Every list this address is on</h3>
              <table className="table" data-testid="matches">
                <thead><tr><th>Listed name</th><th>List</th><th>For this policy</th></tr></thead>
                <tbody>
                  {result.matches.map((m) => (
                    <tr key={`${m.name} ${m.category}`}><td><code>{m.name}</code></td><td>{m.categoryName}</td><td>{m.effect}</td></tr>
                  ))}
                </tbody>
              </table>
            </>
          ) : <p className="small">It is on no list.</p>}
        </div>
      ) : null}
    </section>
  );
}
