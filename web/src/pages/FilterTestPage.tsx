import { useEffect, useState, type FormEvent } from 'react';
import { api } from '../api';
import { ErrorMessage, Field } from '../components';
import type { PoliciesResponse } from './FilterShared';
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
    setError(null);
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

  return (
    <section>
      <h1>Test a web address</h1>
      <p className="muted">See what the filter does with an address for a group, a person or a device, now or at another time — and why.</p>
      <form className="card" onSubmit={test} aria-label="Address to test">
        <Field label="Web address" hint="e.g. https://www.example.com/page or example.com">
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
            <Field label="Username">
              <input name="person" value={form.person} onChange={(e) => setForm({ ...form, person: e.target.value })} required />
            </Field>
          ) : null}
          {form.who === 'ip' ? (
            <Field label="IP address">
              <input name="ip" value={form.ip} onChange={(e) => setForm({ ...form, ip: e.target.value })} required />
            </Field>
          ) : null}
          <Field label="At" hint="Leave empty for now (school time zone applies to schedules).">
            <input name="at" type="datetime-local" value={form.at} onChange={(e) => setForm({ ...form, at: e.target.value })} />
          </Field>
          <button type="submit" className="button">Test</button>
        </div>
      </form>
      <ErrorMessage error={error} />
      {result ? (
        <div className={`verdict verdict-${result.verdict.action}`} data-testid="verdict" role="status">
          <h2>{ACTION_TITLES[result.verdict.action]}</h2>
          <p><strong>{result.verdict.reason}</strong></p>
          <dl className="facts">
            <dt>Address</dt>
            <dd><code>{result.url}</code> (host <code>{result.host}</code>)</dd>
            <dt>Policy</dt>
            <dd>{result.policyName}{result.person ? ` — ${result.person}` : ''}{result.identifiedAs ? ` — identified by ${result.identifiedAs.via}${result.identifiedAs.username ? ` as ${result.identifiedAs.username}` : ''}${result.identifiedAs.deviceName ? ` (${result.identifiedAs.deviceName})` : ''}` : ''}</dd>
            <dt>Decided by</dt>
            <dd>{RULES[result.verdict.rule] ?? result.verdict.rule}{result.matched ? <> — <code>{result.matched}</code> is listed</> : null}</dd>
            {result.verdict.target ? (<><dt>Answered as</dt><dd><code>{result.verdict.target}</code></dd></>) : null}
            <dt>When</dt>
            <dd>{new Date(result.at).toLocaleString('en-GB')}</dd>
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
