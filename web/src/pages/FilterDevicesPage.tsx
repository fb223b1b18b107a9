import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, type Account } from '../api';
import { ErrorMessage, Field } from '../components';
import { when, type PoliciesResponse } from './FilterShared';
import './Filter.css';

interface Device {
  id: string;
  name: string;
  address: string | null;
  mac: string | null;
  policyId: string;
  note: string | null;
}
interface Token {
  id: string;
  name: string;
  createdAt: string;
  createdBy: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
}
interface Mapping {
  id: string;
  ip: string;
  username: string | null;
  deviceName: string | null;
  via: string;
  reportedBy: string;
  startedAt: string;
  expiresAt: string;
}

const may = (account: Account, permission: string) => account.permissions.includes(permission);
const VIA: Record<string, string> = { captive: 'signed in at /connect', api: 'identity API', 'proxy-auth': 'proxy sign-in' };

/** Devices (FI-01, FI-05), who is where now, and the identity API's tokens. */
export function FilterDevicesPage({ account }: { account: Account }) {
  const canManage = may(account, 'filtering.manage');
  const [devices, setDevices] = useState<Device[]>([]);
  const [policies, setPolicies] = useState<PoliciesResponse['policies']>([]);
  const [mappings, setMappings] = useState<Mapping[] | null>(null);
  const [tokens, setTokens] = useState<Token[] | null>(null);
  const [made, setMade] = useState<{ token: Token; secret: string } | null>(null);
  const [form, setForm] = useState({ name: '', address: '', mac: '', policyId: 'role:pupils', note: '' });
  const [tokenName, setTokenName] = useState('');
  const [error, setError] = useState<unknown>(null);

  const load = useCallback(async () => {
    try {
      setDevices((await api<{ devices: Device[] }>('GET', '/api/filtering/devices')).devices);
      setPolicies((await api<PoliciesResponse>('GET', '/api/filtering/policies')).policies);
      if (may(account, 'activity.read')) setMappings((await api<{ mappings: Mapping[] }>('GET', '/api/filtering/mappings')).mappings);
      if (canManage) setTokens((await api<{ tokens: Token[] }>('GET', '/api/filtering/identity-tokens')).tokens);
    } catch (e) {
      setError(e);
    }
  }, [account, canManage]);
  useEffect(() => {
    void load();
  }, [load]);

  const policyName = (id: string) => policies.find((p) => p.id === id)?.name ?? id;
  const run = async (work: () => Promise<unknown>) => {
    setError(null);
    try {
      await work();
      await load();
    } catch (e) {
      setError(e);
    }
  };
  const add = (event: FormEvent) => {
    event.preventDefault();
    void run(async () => {
      await api('POST', '/api/filtering/devices', { name: form.name, address: form.address || null, mac: form.mac || null, policyId: form.policyId, note: form.note || null });
      setForm({ ...form, name: '', address: '', mac: '', note: '' });
    });
  };
  const makeToken = (event: FormEvent) => {
    event.preventDefault();
    void run(async () => {
      setMade(await api<{ token: Token; secret: string }>('POST', '/api/filtering/identity-tokens', { name: tokenName }));
      setTokenName('');
    });
  };

  return (
    <section>
      <h1>Devices</h1>
      <p className="muted">
        School devices by address, network or MAC address, and the policy each gets when nobody has signed in on it. A person who signs in (at the
        <code> /connect</code> page, through the proxy, or reported by RADIUS) gets their own policy on that device instead.
      </p>
      <ErrorMessage error={error} />
      <table className="table" data-testid="devices">
        <thead><tr><th>Device</th><th>Address or network</th><th>MAC</th><th>Policy</th><th aria-label="Actions" /></tr></thead>
        <tbody>
          {devices.map((d) => (
            <tr key={d.id}>
              <td>{d.name}{d.note ? <div className="small muted">{d.note}</div> : null}</td>
              <td><code>{d.address ?? '—'}</code></td>
              <td><code>{d.mac ?? '—'}</code></td>
              <td>{policyName(d.policyId)}</td>
              <td className="actions">{canManage ? <button type="button" className="link-button" onClick={() => window.confirm(`Remove ${d.name}?`) && void run(() => api('DELETE', `/api/filtering/devices/${d.id}`))}>Remove</button> : null}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {devices.length === 0 ? <p className="muted">No devices registered: unidentified devices get the policy for unknown devices.</p> : null}
      {canManage ? (
        <form className="card inline-form section-card" onSubmit={add} aria-label="Register a device">
          <Field label="Name"><input name="name" value={form.name} maxLength={100} onChange={(e) => setForm({ ...form, name: e.target.value })} required /></Field>
          <Field label="Address or network" hint="e.g. 10.1.20.15 or 10.1.20.0/24"><input name="address" value={form.address} onChange={(e) => setForm({ ...form, address: e.target.value })} /></Field>
          <Field label="MAC address" hint="Used when RADIUS or DHCP reports it"><input name="mac" value={form.mac} onChange={(e) => setForm({ ...form, mac: e.target.value })} /></Field>
          <Field label="Policy">
            <select name="policyId" value={form.policyId} onChange={(e) => setForm({ ...form, policyId: e.target.value })}>
              {policies.map((p) => <option key={p.id} value={p.id}>{p.name}</option>)}
            </select>
          </Field>
          <button type="submit" className="button">Register</button>
        </form>
      ) : null}

      {mappings ? (
        <>
          <h2>Who is where now</h2>
          <table className="table" data-testid="mappings">
            <thead><tr><th>Address</th><th>Person or device</th><th>How</th><th>Until</th></tr></thead>
            <tbody>
              {mappings.map((m) => (
                <tr key={m.id}><td><code>{m.ip}</code></td><td>{m.username ?? m.deviceName}</td><td>{VIA[m.via] ?? m.via} <span className="small muted">({m.reportedBy})</span></td><td>{when(m.expiresAt)}</td></tr>
              ))}
            </tbody>
          </table>
          {mappings.length === 0 ? <p className="muted">Nobody is signed in on a device right now.</p> : null}
        </>
      ) : null}

      {tokens ? (
        <>
          <h2>Identity API tokens</h2>
          <p className="small muted">
            For RADIUS accounting or a device agent: <code>POST /api/filtering/identity</code> with <code>Authorization: Bearer &lt;token&gt;</code> and
            <code> {'{"ip": "10.1.2.3", "username": "jsmith"}'}</code> (or <code>"mac"</code> for a registered device; <code>"event": "stop"</code> when they leave).
          </p>
          {made ? (
            <div className="alert alert-info" role="status" data-testid="identity-secret">
              <p>Token for “{made.token.name}” — shown only now: <code className="secret">{made.secret}</code></p>
              <button type="button" className="button small" onClick={() => setMade(null)}>I have copied it</button>
            </div>
          ) : null}
          <form className="inline-form" onSubmit={makeToken} aria-label="New identity token">
            <Field label="Used by" hint="e.g. RADIUS"><input name="tokenName" value={tokenName} maxLength={100} onChange={(e) => setTokenName(e.target.value)} required /></Field>
            <button type="submit" className="button">Make a token</button>
          </form>
          <table className="table section-card">
            <thead><tr><th>Used by</th><th>Made</th><th>Last used</th><th>State</th><th aria-label="Actions" /></tr></thead>
            <tbody>
              {tokens.map((t) => (
                <tr key={t.id}>
                  <td>{t.name}</td>
                  <td>{when(t.createdAt)}</td>
                  <td>{t.lastUsedAt ? when(t.lastUsedAt) : <span className="muted">never</span>}</td>
                  <td>{t.revokedAt ? <span className="tag">revoked</span> : <span className="tag tag-ok">in use</span>}</td>
                  <td className="actions">{t.revokedAt ? null : <button type="button" className="link-button" onClick={() => window.confirm(`Revoke “${t.name}”?`) && void run(() => api('DELETE', `/api/filtering/identity-tokens/${t.id}`))}>Revoke</button>}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {tokens.length === 0 ? <p className="muted">No tokens yet: nothing reports who is at which address.</p> : null}
        </>
      ) : null}
    </section>
  );
}

interface FilterRequest {
  id: string;
  kind: 'request' | 'report';
  host: string;
  url: string | null;
  category: string | null;
  reason: string;
  status: string;
  username: string | null;
  clientIp: string | null;
  deviceName: string | null;
  createdAt: string;
}

/** Requests and reports sent from the block page (FI-13), for review. */
export function FilterRequestsPage() {
  const [requests, setRequests] = useState<FilterRequest[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    api<{ requests: FilterRequest[] }>('GET', '/api/filtering/requests').then((d) => setRequests(d.requests), setError);
  }, []);
  return (
    <section>
      <h1>Requests from the block page</h1>
      <p className="muted">People ask for a blocked site to be opened, or report a page that is wrongly blocked or should be blocked. Review them here; change the lists or policies to act on one.</p>
      <ErrorMessage error={error} />
      <table className="table" data-testid="requests">
        <thead><tr><th>When</th><th>Who</th><th>Site</th><th>Asks</th><th>Reason</th><th>State</th></tr></thead>
        <tbody>
          {(requests ?? []).map((r) => (
            <tr key={r.id}>
              <td className="nowrap">{when(r.createdAt)}</td>
              <td>{r.username ?? <span className="muted">not signed in</span>}<div className="small muted">{r.deviceName ?? r.clientIp}</div></td>
              <td><code>{r.host}</code>{r.category ? <div className="small muted">{r.category}</div> : null}</td>
              <td>{r.kind === 'request' ? 'Access' : 'Report'}</td>
              <td>{r.reason}</td>
              <td><span className="tag">{r.status}</span></td>
            </tr>
          ))}
        </tbody>
      </table>
      {requests && requests.length === 0 ? <p className="muted">No requests yet.</p> : null}
    </section>
  );
}
