import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, ApiError, type Account } from '../api';
import { ErrorMessage, Field, fieldErrors, formProblems } from '../components';
import { categoryName, isAddressOrNetwork, isMacAddress, when, type Category, type PoliciesResponse } from './FilterShared';
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
  const [revokeNow, setRevokeNow] = useState(false);
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
  const [deviceError, setDeviceError] = useState<unknown>(null);
  const [tokenError, setTokenError] = useState<unknown>(null);
  const add = async (event: FormEvent) => {
    event.preventDefault();
    const address = form.address.trim();
    const mac = form.mac.trim();
    const problems = formProblems({
      name: form.name.trim() ? null : 'Give the device a name, e.g. “ICT suite PC 12”.',
      address: address ? (isAddressOrNetwork(address) ? null : 'That is not an IP address or a network: type one like 10.1.20.15 or 10.1.20.0/24.') : mac ? null : 'Give the device’s IP address (or network) or its MAC address.',
      mac: mac && !isMacAddress(mac) ? 'That is not a MAC address: type one like 00:11:22:aa:bb:cc.' : null,
    });
    setDeviceError(problems);
    if (problems) return;
    try {
      await api('POST', '/api/filtering/devices', { name: form.name.trim(), address: address || null, mac: mac || null, policyId: form.policyId, note: form.note.trim() || null });
      setForm({ ...form, name: '', address: '', mac: '', note: '' });
      await load();
    } catch (e) {
      setDeviceError(e);
    }
  };
  const makeToken = async (event: FormEvent) => {
    event.preventDefault();
    const name = tokenName.trim();
    const problems = formProblems({ name: !name ? 'Say what will use the token, e.g. “RADIUS”.' : name.includes(':') ? 'May not contain a colon (:).' : null });
    setTokenError(problems);
    if (problems) return;
    try {
      const answer = await api<{ token: Token; secret: string } | { changeRequest: unknown }>('POST', '/api/filtering/identity-tokens', { name });
      // Under change control the token is made when approved, and its secret shown to the approver (FI-06).
      if ('secret' in answer) setMade(answer);
      setTokenName('');
      await load();
    } catch (e) {
      setTokenError(e);
    }
  };
  // Refusals about one field show beside it: a name in use, an address the server cannot read.
  const deviceErrors: Record<string, string> = { ...fieldErrors(deviceError) };
  const deviceMapped = deviceError instanceof ApiError && !deviceError.body.fields ? (deviceError.body.code === 'device_exists' ? 'name' : /address|network/i.test(deviceError.body.message) ? 'address' : null) : null;
  if (deviceMapped) deviceErrors[deviceMapped] = (deviceError as ApiError).body.message;
  const tokenErrors: Record<string, string> = { ...fieldErrors(tokenError) };
  const tokenMapped = tokenError instanceof ApiError && tokenError.body.code === 'identity_token_exists';
  if (tokenMapped) tokenErrors.name = (tokenError as ApiError).body.message;

  return (
    <section className="filter-page">
      <h1>Devices</h1>
      <p className="muted">
        School devices by address, network or MAC address, and the policy each gets when nobody has signed in on it. A person who signs in (at the
        <code> /connect</code> page, through the proxy, or reported by RADIUS) gets their own policy on that device instead.
      </p>
      <ErrorMessage error={error} />
      {devices.length > 0 ? <table className="table" data-testid="devices">
        <thead><tr><th>Device</th><th>Address or network</th><th>MAC</th><th>Policy</th><th aria-label="Actions" /></tr></thead>
        <tbody>
          {devices.map((d) => (
            <tr key={d.id}>
              <td>{d.name}{d.note ? <div className="small muted">{d.note}</div> : null}</td>
              <td><code>{d.address ?? '—'}</code></td>
              <td><code>{d.mac ?? '—'}</code></td>
              <td>{policyName(d.policyId)}</td>
              <td className="actions">{canManage ? <button type="button" className="link-button" aria-label={`Remove ${d.name}`} onClick={() => window.confirm(`Remove ${d.name}?`) && void run(() => api('DELETE', `/api/filtering/devices/${d.id}`))}>Remove</button> : null}</td>
            </tr>
          ))}
        </tbody>
      </table> : null}
      {devices.length === 0 ? <p className="muted">No devices registered: unidentified devices get the policy for unknown devices.</p> : null}
      {canManage ? (
        <form className="card section-card" onSubmit={(e) => void add(e)} aria-label="Register a device" noValidate>
          <h2>Register a device</h2>
          <div className="inline-form">
            <Field label="Name" error={deviceErrors.name}><input name="name" value={form.name} maxLength={100} onChange={(e) => setForm({ ...form, name: e.target.value })} required /></Field>
            <Field label="Address or network" hint="e.g. 10.1.20.15 or 10.1.20.0/24" error={deviceErrors.address}><input name="address" value={form.address} maxLength={60} onChange={(e) => setForm({ ...form, address: e.target.value })} /></Field>
            <Field label="MAC address" hint="Used when RADIUS or DHCP reports it" error={deviceErrors.mac}><input name="mac" value={form.mac} maxLength={17} onChange={(e) => setForm({ ...form, mac: e.target.value })} /></Field>
            <Field label="Policy" error={deviceErrors.policyId}>
              <select name="policyId" value={form.policyId} onChange={(e) => setForm({ ...form, policyId: e.target.value })}>
                {policies.map((p) => <option key={p.id} value={p.id}>{p.name}</option>)}
              </select>
            </Field>
            <Field label="Note (optional)" error={deviceErrors.note}><input name="note" value={form.note} maxLength={300} onChange={(e) => setForm({ ...form, note: e.target.value })} /></Field>
            <button type="submit" className="button">Register</button>
          </div>
          {deviceMapped ? null : <ErrorMessage error={deviceError} inline={(f) => f in deviceErrors} />}
        </form>
      ) : null}

      {mappings ? (
        <>
          <h2>Who is where now</h2>
          {mappings.length > 0 ? <table className="table" data-testid="mappings">
            <thead><tr><th>Address</th><th>Person or device</th><th>How</th><th>Until</th></tr></thead>
            <tbody>
              {mappings.map((m) => (
                <tr key={m.id}><td><code>{m.ip}</code></td><td>{m.username ?? m.deviceName}</td><td>{VIA[m.via] ?? m.via} <span className="small muted">({m.reportedBy})</span></td><td>{when(m.expiresAt)}</td></tr>
              ))}
            </tbody>
          </table> : null}
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
          <form onSubmit={(e) => void makeToken(e)} aria-label="New identity token" noValidate>
            <div className="inline-form">
              <Field label="Used by" hint="e.g. RADIUS" error={tokenErrors.name}><input name="tokenName" value={tokenName} maxLength={100} onChange={(e) => setTokenName(e.target.value)} required /></Field>
              <button type="submit" className="button">Make a token</button>
            </div>
            {tokenMapped ? null : <ErrorMessage error={tokenError} inline={(f) => f in tokenErrors} />}
          </form>
          {tokens.length > 0 ? <table className="table section-card">
            <thead><tr><th>Used by</th><th>Made</th><th>Last used</th><th>State</th><th aria-label="Actions" /></tr></thead>
            <tbody>
              {tokens.map((t) => (
                <tr key={t.id}>
                  <td>{t.name}</td>
                  <td>{when(t.createdAt)}</td>
                  <td>{t.lastUsedAt ? when(t.lastUsedAt) : <span className="muted">never</span>}</td>
                  <td>{t.revokedAt ? <span className="tag">revoked</span> : <span className="tag tag-ok">in use</span>}</td>
                  <td className="actions">{t.revokedAt ? null : <button type="button" className="link-button" aria-label={`Revoke ${t.name}`} onClick={() => window.confirm(revokeNow ? `Revoke “${t.name}” now, as an emergency (a second person approves or rolls it back)?` : `Revoke “${t.name}”?`) && void run(() => api('DELETE', `/api/filtering/identity-tokens/${t.id}`, undefined, { emergency: revokeNow }))}>Revoke</button>}</td>
                </tr>
              ))}
            </tbody>
          </table> : null}
          {tokens.some((t) => !t.revokedAt) ? (
            <label className="checkbox">
              <input type="checkbox" name="revokeNow" checked={revokeNow} onChange={(e) => setRevokeNow(e.target.checked)} /> Emergency: revoke at once (e.g. a token that has leaked), awaiting approval
            </label>
          ) : null}
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

const STATUS: Record<string, string> = { open: 'waiting', approved: 'approved', refused: 'refused', closed: 'closed' };

/** Requests and reports sent from the block page (FI-13), for review. */
export function FilterRequestsPage() {
  const [requests, setRequests] = useState<FilterRequest[] | null>(null);
  const [categories, setCategories] = useState<Category[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    api<{ requests: FilterRequest[] }>('GET', '/api/filtering/requests').then((d) => setRequests(d.requests), setError);
    api<PoliciesResponse>('GET', '/api/filtering/policies').then((d) => setCategories(d.categories), () => setCategories(null));
  }, []);
  return (
    <section className="filter-page">
      <h1>Requests from the block page</h1>
      <p className="muted">People ask for a blocked site to be opened, or report a page that is wrongly blocked or should be blocked. Review them here; change the lists or policies to act on one.</p>
      <ErrorMessage error={error} />
      {requests && requests.length > 0 ? (
        <table className="table" data-testid="requests">
          <thead><tr><th>When</th><th>Who</th><th>Site</th><th>Asks</th><th>Reason</th><th>State</th></tr></thead>
          <tbody>
            {requests.map((r) => (
              <tr key={r.id}>
                <td className="nowrap">{when(r.createdAt)}</td>
                <td>{r.username ?? <span className="muted">not signed in</span>}<div className="small muted">{r.deviceName ?? r.clientIp}</div></td>
                <td className="wrap-anywhere">
                  <code>{r.host}</code>
                  {r.url && r.url !== r.host ? <div className="small muted" title={r.url}>{r.url.length > 80 ? `${r.url.slice(0, 80)}…` : r.url}</div> : null}
                  {r.category ? <div className="small muted">{categoryName(categories, r.category)}</div> : null}
                </td>
                <td>{r.kind === 'request' ? 'To be unblocked' : 'Reports the page'}</td>
                <td className="wrap-anywhere">{r.reason}</td>
                <td><span className={r.status === 'open' ? 'tag tag-warn' : 'tag'}>{STATUS[r.status] ?? r.status}</span></td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {requests && requests.length === 0 ? <p className="muted">No requests yet.</p> : null}
    </section>
  );
}
