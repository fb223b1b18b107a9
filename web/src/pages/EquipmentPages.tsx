import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, type Account } from '../api';
import { ErrorMessage, Field, fieldErrors } from '../components';
import { Link, navigate, usePath } from '../router';
import { CsvImport } from './CsvImport';

/**
 * Issue 12 (AS-01..AS-07, AS-10..AS-13): the equipment register (loans, stock-take, disposal with
 * its certificates), software and licences, and device health (anti-virus, patches, removable media).
 */

interface Loan { id: string; kind: 'loan' | 'repair'; dataAssessment: string | null; borrower: string; purpose: string; lentAt: string; dueBack: string; returnedAt: string | null; overdue: boolean }
interface Item {
  id: string; tag: string; serial: string | null; type: string; description: string; location: string; holder: string | null; holderName: string | null;
  mac: string | null; address: string | null; personalData: boolean; status: 'in_use' | 'on_loan' | 'disposed'; lastSeenAt: string | null; lastSeenBy: string | null;
  lastFoundAt: string | null; loan: Loan | null;
}
interface Certificate { id: string; kind: 'weee' | 'data_destruction' | 'pat'; filename: string; contentType: string; bytes: number; sha256: string; uploadedAt: string; uploadedBy: string }
interface ItemDetail extends Item {
  loans: Loan[];
  certificates: Certificate[];
  disposal: null | { disposedOn: string; authorisedBy: string; personalData: string; destruction: string; method: string; recipient: string };
}
interface Stocktake { id: string; startedAt: string; startedBy: string; closedAt: string | null; found: number; total: number; missing: Array<{ id: string; tag: string; description: string; location: string }>; notYetFound: Array<{ id: string; tag: string; description: string; location: string }> }

const day = (iso: string | null) => (iso ? new Date(iso).toLocaleDateString('en-GB', { day: 'numeric', month: 'short', year: 'numeric' }) : '');
const certLabels: Record<string, string> = { weee: 'WEEE transfer note', data_destruction: 'Data-destruction certificate', pat: 'PAT certificate' };
const statusLabel = (s: Item['status']) => (s === 'on_loan' ? <span className="tag tag-warn">on loan</span> : s === 'disposed' ? <span className="tag">disposed</span> : <span className="tag tag-ok">in use</span>);

function useAction(load: () => Promise<void>) {
  const [error, setError] = useState<unknown>(null);
  const [message, setMessage] = useState<string | null>(null);
  const act = async (work: () => Promise<string>) => {
    setError(null);
    setMessage(null);
    try {
      setMessage(await work());
      await load();
    } catch (e) {
      setError(e);
    }
  };
  return { error, setError, message, act };
}

function readFile(file: File, as: 'text' | 'base64'): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onerror = () => reject(new Error('The file could not be read.'));
    reader.onload = () => resolve(as === 'text' ? String(reader.result) : String(reader.result).replace(/^data:[^,]*,/, ''));
    if (as === 'text') reader.readAsText(file);
    else reader.readAsDataURL(file);
  });
}

// --- Equipment ---------------------------------------------------------------------------------

export function EquipmentPage({ account }: { account: Account }) {
  const path = usePath();
  const id = path.startsWith('/equipment/') ? path.slice('/equipment/'.length) : null;
  return id ? <ItemPage id={id} account={account} /> : <EquipmentList account={account} />;
}

function EquipmentList({ account }: { account: Account }) {
  const canManage = account.permissions.includes('registers.manage');
  const [data, setData] = useState<{ items: Item[]; stocktake: { open: Stocktake | null; last: Stocktake | null } } | null>(null);
  const [adding, setAdding] = useState(false);
  const [showImport, setShowImport] = useState(false);
  const [scan, setScan] = useState('');
  const load = useCallback(async () => setData(await api('GET', '/api/equipment')), []);
  const { error, setError, message, act } = useAction(load);
  useEffect(() => {
    load().catch(setError);
  }, [load, setError]);
  const open = data?.stocktake.open;
  const last = data?.stocktake.last;
  return (
    <section>
      <h1>Equipment</h1>
      <p className="muted">Every item of ICT equipment, who has it, where it is, what is off site and when it was last seen on the network (AS-01, AS-02, AS-13).</p>
      <ErrorMessage error={error} />
      {message ? <div className="alert alert-ok" role="status">{message}</div> : null}
      <div className="toolbar">
        {canManage ? (
          <span>
            <button type="button" className="button" onClick={() => setAdding(!adding)}>{adding ? 'Close the form' : 'Register an item'}</button>{' '}
            <button type="button" className="button secondary" onClick={() => setShowImport(!showImport)}>Import CSV</button>
          </span>
        ) : <span />}
        <span>
          <a className="button secondary" href="/api/equipment/export.csv" download>Export CSV</a>{' '}
          <a className="button secondary" href="/api/equipment/disposals/export.csv" download>Export disposals</a>
        </span>
      </div>
      {adding ? <ItemForm onSaved={(text) => { setAdding(false); void act(async () => text); }} /> : null}
      {showImport ? <CsvImport label="Import equipment" url="/api/equipment/import" hint="Columns: tag, type, description, location; optional serial, holder (a username), mac, address, personal_data (yes/no). Every row is checked first: one error and nothing is imported." onDone={(m) => { setShowImport(false); void act(async () => m); }} /> : null}
      <div className="card" data-testid="stocktake">
        <h2>Stock-take</h2>
        {open ? (
          <>
            <p>Under way since {day(open.startedAt)} ({open.startedBy}): {open.found} of {open.total} found.</p>
            {canManage ? (
              <form className="inline-form" onSubmit={(e) => { e.preventDefault(); const tags = scan.split(/[\s,]+/).filter(Boolean); if (!tags.length) return setError(new Error('Type or scan at least one tag.')); void act(async () => { const r = await api<{ unknown: string[] }>('POST', '/api/equipment/stocktake/found', { tags }); setScan(''); return r.unknown.length ? `Not in the register: ${r.unknown.join(', ')}.` : 'Marked found.'; }); }}>
                <Field label="Tags found" hint="Scan or type tags, separated by spaces or commas.">
                  <input value={scan} onChange={(e) => setScan(e.target.value)} />
                </Field>
                <button type="submit" className="button">Mark found</button>{' '}
                <button type="button" className="button secondary" onClick={() => void act(async () => { const s = await api<Stocktake>('POST', '/api/equipment/stocktake/close'); return s.missing.length ? `Stock-take closed: ${s.missing.length} not found.` : 'Stock-take closed: everything was found.'; })}>Close the stock-take</button>
              </form>
            ) : null}
            {open.notYetFound.length ? <p className="small muted">Not yet found: {open.notYetFound.map((i) => i.tag).join(', ')}</p> : null}
          </>
        ) : (
          <>
            {last ? (
              <p>Last closed {day(last.closedAt)}: {last.found} found{last.missing.length ? <>, <strong>{last.missing.length} not found</strong>: {last.missing.map((i) => `${i.tag} (${i.location})`).join(', ')}</> : ', nothing missing'}.</p>
            ) : <p className="muted">No stock-take has been recorded yet. Every item must be accounted for at least yearly.</p>}
            {canManage ? <button type="button" className="button" onClick={() => void act(async () => { await api('POST', '/api/equipment/stocktake'); return 'Stock-take started.'; })}>Start a stock-take</button> : null}
          </>
        )}
      </div>
      {data && data.items.length === 0 ? <p className="muted" data-testid="empty">No equipment is registered yet.{canManage ? ' Register an item or import a CSV.' : ''}</p> : null}
      {data && data.items.length > 0 ? (
        <div className="matrix-wrap">
          <table className="table" data-testid="equipment">
            <thead>
              <tr><th>Tag</th><th>Item</th><th>Location</th><th>Holder</th><th>Status</th><th>Last seen</th></tr>
            </thead>
            <tbody>
              {data.items.map((i) => (
                <tr key={i.id} data-tag={i.tag} className={i.loan?.overdue ? 'severity-high' : undefined}>
                  <td><Link href={`/equipment/${i.id}`}>{i.tag}</Link></td>
                  <td>{i.description}<div className="small muted">{i.type}{i.serial ? ` · ${i.serial}` : ''}</div></td>
                  <td>{i.location}</td>
                  <td>{i.holderName ?? <span className="muted">—</span>}</td>
                  <td>{statusLabel(i.status)}{i.loan ? <div className="small">{i.loan.borrower}, back {day(i.loan.dueBack)}{i.loan.overdue ? <span className="tag tag-bad">overdue</span> : null}</div> : null}</td>
                  <td className="small">{i.lastSeenAt ? <>{day(i.lastSeenAt)}<div className="muted">{i.lastSeenBy}</div></> : <span className="muted">never</span>}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </section>
  );
}

function ItemForm({ item, onSaved }: { item?: ItemDetail; onSaved: (message: string) => void }) {
  const [form, setForm] = useState({ tag: item?.tag ?? '', serial: item?.serial ?? '', type: item?.type ?? '', description: item?.description ?? '', location: item?.location ?? '', holder: item?.holder ?? '', mac: item?.mac ?? '', address: item?.address ?? '', personalData: item?.personalData ?? false });
  const [error, setError] = useState<unknown>(null);
  const errors = fieldErrors(error);
  const set = (k: keyof typeof form) => (e: { target: { value: string } }) => setForm({ ...form, [k]: e.target.value });
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    try {
      const body = { ...form, serial: form.serial || null, holder: form.holder || null, mac: form.mac || null, address: form.address || null };
      const saved = await api<ItemDetail>(item ? 'PUT' : 'POST', item ? `/api/equipment/${item.id}` : '/api/equipment', body);
      onSaved(item ? `${saved.tag} has been updated.` : `${saved.tag} has been registered.`);
    } catch (e) {
      setError(e);
    }
  };
  return (
    <form className="card" onSubmit={(e) => void submit(e)} data-testid="item-form" noValidate>
      <h2>{item ? `Change ${item.tag}` : 'Register an item'}</h2>
      <ErrorMessage error={error} inline={(f) => f in form} />
      <div className="form-grid">
        <Field label="Asset tag" error={errors.tag}><input value={form.tag} onChange={set('tag')} /></Field>
        <Field label="Serial number" error={errors.serial}><input value={form.serial} onChange={set('serial')} /></Field>
        <Field label="Type" hint="laptop, tablet, projector…" error={errors.type}><input value={form.type} onChange={set('type')} /></Field>
        <Field label="Make and model" error={errors.description}><input value={form.description} onChange={set('description')} /></Field>
        <Field label="Location" error={errors.location}><input value={form.location} onChange={set('location')} /></Field>
        <Field label="Issued to (username)" hint="leave empty for shared equipment" error={errors.holder}><input value={form.holder} onChange={set('holder')} /></Field>
        <Field label="MAC address" hint="to see when it was last on the network" error={errors.mac}><input value={form.mac} onChange={set('mac')} /></Field>
        <Field label="IP address" error={errors.address}><input value={form.address} onChange={set('address')} /></Field>
      </div>
      <label className="checkbox"><input type="checkbox" checked={form.personalData} onChange={(e) => setForm({ ...form, personalData: e.target.checked })} /> May hold personal data (assess before repair or disposal)</label>
      <div><button type="submit" className="button">{item ? 'Save' : 'Register'}</button></div>
    </form>
  );
}

function ItemPage({ id, account }: { id: string; account: Account }) {
  const canManage = account.permissions.includes('registers.manage');
  const canDispose = account.permissions.includes('registers.dispose');
  const [item, setItem] = useState<ItemDetail | null>(null);
  const [panel, setPanel] = useState<'edit' | 'loan' | 'repair' | 'certificate' | 'dispose' | null>(null);
  const load = useCallback(async () => setItem(await api<ItemDetail>('GET', `/api/equipment/${id}`)), [id]);
  const { error, setError, message, act } = useAction(load);
  useEffect(() => {
    load().catch(setError);
  }, [load, setError]);
  if (!item) return <section><ErrorMessage error={error} /><p className="muted">Loading…</p></section>;
  const out = item.status === 'on_loan' || !!item.holder;
  return (
    <section>
      <p><Link href="/equipment">← Equipment</Link></p>
      <h1>{item.tag} <small className="muted">{item.description}</small> {statusLabel(item.status)}</h1>
      <ErrorMessage error={error} />
      {message ? <div className="alert alert-ok" role="status">{message}</div> : null}
      <dl className="facts">
        <dt>Type</dt><dd>{item.type}</dd>
        <dt>Serial</dt><dd>{item.serial ?? '—'}</dd>
        <dt>Location</dt><dd>{item.location}</dd>
        <dt>Issued to</dt><dd>{item.holderName ?? '—'}</dd>
        <dt>Personal data</dt><dd>{item.personalData ? 'may hold personal data' : 'none expected'}</dd>
        <dt>Last seen</dt><dd>{item.lastSeenAt ? `${day(item.lastSeenAt)} (${item.lastSeenBy})` : 'never on the network'}</dd>
        <dt>Last stock-take</dt><dd>{item.lastFoundAt ? `found ${day(item.lastFoundAt)}` : 'not yet found in a stock-take'}</dd>
      </dl>
      {item.status !== 'disposed' ? (
        <div className="toolbar">
          <span>
            {canManage ? <button type="button" className="button secondary" onClick={() => setPanel(panel === 'edit' ? null : 'edit')}>Change</button> : null}{' '}
            {canManage && item.status === 'in_use' ? <button type="button" className="button secondary" onClick={() => setPanel(panel === 'loan' ? null : 'loan')}>Lend off site</button> : null}{' '}
            {canManage && item.status === 'in_use' ? <button type="button" className="button secondary" onClick={() => setPanel(panel === 'repair' ? null : 'repair')}>Send for repair</button> : null}{' '}
            {canManage && out ? <button type="button" className="button" onClick={() => void act(async () => { await api('POST', `/api/equipment/${id}/return`, { fromHolder: true }); return `${item.tag} is back.`; })}>Record its return</button> : null}{' '}
            {canManage ? <button type="button" className="button secondary" onClick={() => setPanel(panel === 'certificate' ? null : 'certificate')}>Attach a certificate</button> : null}{' '}
            {canDispose && item.status === 'in_use' ? <button type="button" className="button danger" onClick={() => setPanel(panel === 'dispose' ? null : 'dispose')}>Dispose of it</button> : null}
          </span>
        </div>
      ) : null}
      {panel === 'edit' ? <ItemForm item={item} onSaved={(m) => { setPanel(null); void act(async () => m); }} /> : null}
      {panel === 'loan' ? <LoanForm item={item} onSaved={(m) => { setPanel(null); void act(async () => m); }} /> : null}
      {panel === 'repair' ? <RepairForm item={item} onSaved={(m) => { setPanel(null); void act(async () => m); }} /> : null}
      {panel === 'certificate' ? <CertificateForm item={item} onSaved={(m) => { setPanel(null); void act(async () => m); }} /> : null}
      {panel === 'dispose' ? <DisposalForm item={item} onSaved={(m) => { setPanel(null); void act(async () => m); }} /> : null}
      {item.disposal ? (
        <div className="card" data-testid="disposal">
          <h2>Disposed of</h2>
          <p>{day(item.disposal.disposedOn)} by {item.disposal.method} to {item.disposal.recipient}, authorised by {item.disposal.authorisedBy}. Personal data: {item.disposal.personalData}. Destroyed: {item.disposal.destruction}.</p>
        </div>
      ) : null}
      <h2>Certificates</h2>
      {item.certificates.length === 0 ? <p className="muted">None attached. A disposal needs the WEEE transfer note and the data-destruction certificate, and a PAT certificate for a sale or gift.</p> : (
        <ul data-testid="certificates">
          {item.certificates.map((c) => <li key={c.id}><a href={`/api/equipment/${item.id}/certificates/${c.id}`}>{certLabels[c.kind]}: {c.filename}</a> <span className="small muted">{Math.ceil(c.bytes / 1024)} KB, SHA-256 {c.sha256.slice(0, 16)}…, {c.uploadedBy} {day(c.uploadedAt)}</span></li>)}
        </ul>
      )}
      <h2>Loans</h2>
      {item.loans.length === 0 ? <p className="muted">Never lent off site.</p> : (
        <table className="table" data-testid="loans">
          <thead><tr><th>To</th><th>Why</th><th>Lent</th><th>Due back</th><th>Returned</th></tr></thead>
          <tbody>{item.loans.map((l) => <tr key={l.id}><td>{l.borrower}{l.kind === 'repair' ? <span className="tag">repair</span> : null}</td><td>{l.purpose}{l.dataAssessment ? <div className="small muted">Personal data: {l.dataAssessment}</div> : null}</td><td>{day(l.lentAt)}</td><td>{day(l.dueBack)}{l.overdue ? <span className="tag tag-bad">overdue</span> : null}</td><td>{l.returnedAt ? day(l.returnedAt) : <span className="tag tag-warn">out</span>}</td></tr>)}</tbody>
        </table>
      )}
    </section>
  );
}

function LoanForm({ item, onSaved }: { item: ItemDetail; onSaved: (m: string) => void }) {
  const [form, setForm] = useState({ borrower: '', purpose: '', dueBack: '' });
  const [error, setError] = useState<unknown>(null);
  const errors = fieldErrors(error);
  return (
    <form className="card" data-testid="loan-form" noValidate onSubmit={(e) => { e.preventDefault(); setError(null); api('POST', `/api/equipment/${item.id}/loan`, form).then(() => onSaved(`${item.tag} is lent until ${day(form.dueBack)}.`), setError); }}>
      <h2>Lend {item.tag} off site</h2>
      <ErrorMessage error={error} inline={(f) => f in form} />
      <Field label="To (username)" error={errors.borrower}><input value={form.borrower} onChange={(e) => setForm({ ...form, borrower: e.target.value })} /></Field>
      <Field label="Why it goes off site" error={errors.purpose}><input value={form.purpose} onChange={(e) => setForm({ ...form, purpose: e.target.value })} /></Field>
      <Field label="Due back" error={errors.dueBack}><input type="date" value={form.dueBack} onChange={(e) => setForm({ ...form, dueBack: e.target.value })} /></Field>
      <button type="submit" className="button">Lend</button>
    </form>
  );
}

function RepairForm({ item, onSaved }: { item: ItemDetail; onSaved: (m: string) => void }) {
  const [form, setForm] = useState({ repairer: '', fault: '', dueBack: '', dataAssessment: '' });
  const [error, setError] = useState<unknown>(null);
  const errors = fieldErrors(error);
  return (
    <form className="card" data-testid="repair-form" noValidate onSubmit={(e) => { e.preventDefault(); setError(null); api('POST', `/api/equipment/${item.id}/repair`, form).then(() => onSaved(`${item.tag} is with ${form.repairer} for repair.`), setError); }}>
      <h2>Send {item.tag} for repair</h2>
      {item.personalData ? <div className="alert alert-warn">This device may hold personal data: say what is on it and how it is protected before it leaves (AS-05).</div> : null}
      <ErrorMessage error={error} inline={(f) => f in form} />
      <Field label="Repairer" error={errors.repairer}><input value={form.repairer} onChange={(e) => setForm({ ...form, repairer: e.target.value })} /></Field>
      <Field label="Fault" error={errors.fault}><input value={form.fault} onChange={(e) => setForm({ ...form, fault: e.target.value })} /></Field>
      <Field label="Personal data on it and how it is protected" error={errors.dataAssessment}><input value={form.dataAssessment} onChange={(e) => setForm({ ...form, dataAssessment: e.target.value })} /></Field>
      <Field label="Due back" error={errors.dueBack}><input type="date" value={form.dueBack} onChange={(e) => setForm({ ...form, dueBack: e.target.value })} /></Field>
      <button type="submit" className="button">Send for repair</button>
    </form>
  );
}

function CertificateForm({ item, onSaved }: { item: ItemDetail; onSaved: (m: string) => void }) {
  const [kind, setKind] = useState('weee');
  const [file, setFile] = useState<File | null>(null);
  const [error, setError] = useState<unknown>(null);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    if (!file) return setError(new Error('Choose the certificate file (PDF, PNG or JPEG).'));
    if (file.size > 5 * 1024 * 1024) return setError(new Error('The file is larger than 5 MB.'));
    try {
      await api('POST', `/api/equipment/${item.id}/certificates`, { kind, filename: file.name, data: await readFile(file, 'base64') });
      onSaved(`${certLabels[kind]} attached.`);
    } catch (e) {
      setError(e);
    }
  };
  return (
    <form className="card" data-testid="certificate-form" onSubmit={(e) => void submit(e)}>
      <h2>Attach a certificate</h2>
      <ErrorMessage error={error} />
      <Field label="Certificate">
        <select value={kind} onChange={(e) => setKind(e.target.value)}>
          <option value="weee">WEEE transfer note</option>
          <option value="data_destruction">Data-destruction certificate</option>
          <option value="pat">PAT certificate</option>
        </select>
      </Field>
      <Field label="File" hint="PDF, PNG or JPEG, at most 5 MB"><input type="file" accept=".pdf,.png,.jpg,.jpeg,application/pdf,image/png,image/jpeg" onChange={(e) => setFile(e.target.files?.[0] ?? null)} /></Field>
      <button type="submit" className="button">Attach</button>
    </form>
  );
}

function DisposalForm({ item, onSaved }: { item: ItemDetail; onSaved: (m: string) => void }) {
  const [form, setForm] = useState({ disposedOn: new Date().toISOString().slice(0, 10), licencesChecked: false, personalData: '', destruction: '', method: 'waste', recipient: '' });
  const [error, setError] = useState<unknown>(null);
  const errors = fieldErrors(error);
  const needed = form.method === 'waste' ? ['weee', 'data_destruction'] : ['weee', 'data_destruction', 'pat'];
  const have = new Set(item.certificates.map((c) => c.kind));
  return (
    <form className="card" data-testid="disposal-form" noValidate onSubmit={(e) => { e.preventDefault(); setError(null); api('POST', `/api/equipment/${item.id}/dispose`, form).then(() => onSaved(`${item.tag} has been disposed of.`), setError); }}>
      <h2>Dispose of {item.tag}</h2>
      <ErrorMessage error={error} inline={(f) => f in form} />
      <ul className="checklist">
        {needed.map((k) => <li key={k} className={have.has(k as Certificate['kind']) ? 'done' : 'todo'}>{have.has(k as Certificate['kind']) ? '✓' : '✗'} {certLabels[k]}</li>)}
      </ul>
      <Field label="Method" error={errors.method}>
        <select value={form.method} onChange={(e) => setForm({ ...form, method: e.target.value })}><option value="waste">Waste (authorised agency)</option><option value="gift">Gift</option><option value="sale">Sale</option></select>
      </Field>
      <Field label="Recipient" hint="the authorised agency, or who received it" error={errors.recipient}><input value={form.recipient} onChange={(e) => setForm({ ...form, recipient: e.target.value })} /></Field>
      <Field label="Personal data on the media" hint="e.g. “none”, “staff e-mail cache”" error={errors.personalData}><input value={form.personalData} onChange={(e) => setForm({ ...form, personalData: e.target.value })} /></Field>
      <Field label="How the data was destroyed" error={errors.destruction}><input value={form.destruction} onChange={(e) => setForm({ ...form, destruction: e.target.value })} /></Field>
      <Field label="Date" error={errors.disposedOn}><input type="date" value={form.disposedOn} onChange={(e) => setForm({ ...form, disposedOn: e.target.value })} /></Field>
      <label className="checkbox"><input type="checkbox" checked={form.licencesChecked} onChange={(e) => setForm({ ...form, licencesChecked: e.target.checked })} /> Software licences on it checked (transferred or retired)</label>
      {errors.licencesChecked ? <div className="field-error">{errors.licencesChecked}</div> : null}
      <div><button type="submit" className="button danger">Authorise and record the disposal</button></div>
    </form>
  );
}

// --- Software and licences --------------------------------------------------------------------

interface Title {
  id: string; name: string; publisher: string | null; purpose: string; requestedBy: string; status: 'approved' | 'refused' | 'pending';
  head: { decision: string | null; by: string | null; note: string | null }; dpo: { decision: string | null; by: string | null; note: string | null };
  seats: number; installations: number; overUsed: boolean; licences: Array<{ id: string; seats: number; boughtOn: string; expiresOn: string | null; reference: string; expired: boolean }>;
}

export function SoftwarePage({ account }: { account: Account }) {
  const canManage = account.permissions.includes('registers.manage');
  const canApprove = account.permissions.includes('software.approve');
  const canGdpr = account.permissions.includes('software.gdpr');
  const [data, setData] = useState<{ titles: Title[]; unlicensed: Array<{ name: string; installations: number }> } | null>(null);
  const [panel, setPanel] = useState<'title' | 'titles' | 'inventory' | { licence: Title } | null>(null);
  const load = useCallback(async () => setData(await api('GET', '/api/software')), []);
  const { error, setError, message, act } = useAction(load);
  useEffect(() => {
    load().catch(setError);
  }, [load, setError]);
  const decide = (t: Title, who: 'approval' | 'gdpr', decision: 'approved' | 'refused') => {
    const note = decision === 'refused' ? window.prompt('Why is it refused?') : '';
    if (note === null) return;
    void act(async () => { await api('POST', `/api/software/${t.id}/${who}`, { decision, note }); return `${t.name}: ${decision}.`; });
  };
  return (
    <section>
      <h1>Software and licences</h1>
      <p className="muted">Titles approved by the headteacher and checked by the DPO before use (AS-07); licences bought against installations counted from the inventory (AS-06).</p>
      <ErrorMessage error={error} />
      {message ? <div className="alert alert-ok" role="status">{message}</div> : null}
      <div className="toolbar">
        {canManage ? <span><button type="button" className="button" onClick={() => setPanel(panel === 'title' ? null : 'title')}>Add a title</button>{' '}<button type="button" className="button secondary" onClick={() => setPanel(panel === 'titles' ? null : 'titles')}>Import titles and licences CSV</button>{' '}<button type="button" className="button secondary" onClick={() => setPanel(panel === 'inventory' ? null : 'inventory')}>Import inventory CSV</button></span> : <span />}
        <a className="button secondary" href="/api/software/export.csv" download>Export CSV</a>
      </div>
      {panel === 'title' ? <TitleForm onSaved={(m) => { setPanel(null); void act(async () => m); }} /> : null}
      {panel === 'titles' ? <CsvImport label="Import titles and licences" url="/api/software/import" hint="Columns: title, purpose; optional publisher, and seats, bought_on, expires_on, reference for licences bought. One row per title: a new title waits for the headteacher’s approval and the DPO’s GDPR check; a title already here needs its licence columns (the seats are added). Every row is checked first: one error and nothing is imported." onDone={(m) => { setPanel(null); void act(async () => m); }} /> : null}
      {panel === 'inventory' ? <CsvImport label="Import an inventory export" url="/api/inventory/import" hint="An Intune-style export: Device name, Serial number, OS, Last check-in, Antivirus, Antivirus updated, Last patched, Critical updates pending since, Apps (titles separated by semicolons). It replaces the previous inventory." onDone={(m) => { setPanel(null); void act(async () => m); }} /> : null}
      {panel && typeof panel === 'object' ? <LicenceForm title={panel.licence} onSaved={(m) => { setPanel(null); void act(async () => m); }} /> : null}
      {data && data.titles.length === 0 ? <p className="muted" data-testid="empty">No software titles are recorded yet.</p> : null}
      {data && data.titles.length > 0 ? (
        <div className="matrix-wrap">
          <table className="table" data-testid="software">
            <thead><tr><th>Title</th><th>Headteacher</th><th>DPO (GDPR)</th><th>Seats</th><th>Installed</th><th aria-label="Actions" /></tr></thead>
            <tbody>
              {data.titles.map((t) => (
                <tr key={t.id} data-title={t.name} className={t.overUsed ? 'severity-high' : undefined}>
                  <td><strong>{t.name}</strong>{t.publisher ? <span className="muted"> · {t.publisher}</span> : null}<div className="small muted">{t.purpose}</div>
                    {t.status === 'approved' ? <span className="tag tag-ok">approved for use</span> : t.status === 'refused' ? <span className="tag tag-bad">refused</span> : <span className="tag tag-warn">awaiting decisions</span>}</td>
                  <td className="small">{t.head.decision ? `${t.head.decision} by ${t.head.by}` : canApprove ? <><button type="button" className="link-button" onClick={() => decide(t, 'approval', 'approved')}>Approve</button> · <button type="button" className="link-button" onClick={() => decide(t, 'approval', 'refused')}>Refuse</button></> : <span className="muted">waiting</span>}</td>
                  <td className="small">{t.dpo.decision ? `${t.dpo.decision} by ${t.dpo.by}` : canGdpr ? <><button type="button" className="link-button" onClick={() => decide(t, 'gdpr', 'approved')}>GDPR check passed</button> · <button type="button" className="link-button" onClick={() => decide(t, 'gdpr', 'refused')}>Refuse</button></> : <span className="muted">waiting</span>}</td>
                  <td>{t.seats}<div className="small muted">{t.licences.map((l) => `${l.seats} (${l.reference}${l.expiresOn ? `, to ${day(l.expiresOn)}` : ''})`).join('; ')}</div></td>
                  <td>{t.installations}{t.overUsed ? <span className="tag tag-bad" data-testid="over-used">over-used</span> : null}</td>
                  <td>{canManage ? <button type="button" className="button small secondary" onClick={() => setPanel({ licence: t })}>Add licences</button> : null}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      {data && data.unlicensed.length > 0 ? (
        <div className="card" data-testid="unlicensed">
          <h2>Installed but not in the register</h2>
          <p className="small muted">From the last inventory: add each to the register (to be approved) or remove it from the devices.</p>
          <ul>{data.unlicensed.map((u) => <li key={u.name}>{u.name}: {u.installations} device{u.installations === 1 ? '' : 's'}</li>)}</ul>
        </div>
      ) : null}
    </section>
  );
}

function TitleForm({ onSaved }: { onSaved: (m: string) => void }) {
  const [form, setForm] = useState({ name: '', publisher: '', purpose: '' });
  const [error, setError] = useState<unknown>(null);
  const errors = fieldErrors(error);
  return (
    <form className="card" data-testid="title-form" noValidate onSubmit={(e) => { e.preventDefault(); setError(null); api('POST', '/api/software', { ...form, publisher: form.publisher || null }).then(() => onSaved(`${form.name} added: it waits for the headteacher’s approval and the DPO’s GDPR check.`), setError); }}>
      <h2>Add a software title</h2>
      <ErrorMessage error={error} inline={(f) => f in form} />
      <Field label="Title" hint="as the inventory names it" error={errors.name}><input value={form.name} onChange={(e) => setForm({ ...form, name: e.target.value })} /></Field>
      <Field label="Publisher" error={errors.publisher}><input value={form.publisher} onChange={(e) => setForm({ ...form, publisher: e.target.value })} /></Field>
      <Field label="What it is used for" error={errors.purpose}><input value={form.purpose} onChange={(e) => setForm({ ...form, purpose: e.target.value })} /></Field>
      <button type="submit" className="button">Add</button>
    </form>
  );
}

function LicenceForm({ title, onSaved }: { title: Title; onSaved: (m: string) => void }) {
  const [form, setForm] = useState({ seats: '', boughtOn: '', expiresOn: '', reference: '' });
  const [error, setError] = useState<unknown>(null);
  const errors = fieldErrors(error);
  return (
    <form className="card" data-testid="licence-form" noValidate onSubmit={(e) => { e.preventDefault(); setError(null); api('POST', `/api/software/${title.id}/licences`, { seats: Number(form.seats), boughtOn: form.boughtOn, expiresOn: form.expiresOn || null, reference: form.reference }).then(() => onSaved(`${form.seats} seats of ${title.name} recorded.`), setError); }}>
      <h2>Licences bought for {title.name}</h2>
      <ErrorMessage error={error} inline={(f) => f in form} />
      <Field label="Seats" error={errors.seats}><input inputMode="numeric" value={form.seats} onChange={(e) => setForm({ ...form, seats: e.target.value })} /></Field>
      <Field label="Bought on" error={errors.boughtOn}><input type="date" value={form.boughtOn} onChange={(e) => setForm({ ...form, boughtOn: e.target.value })} /></Field>
      <Field label="Expires on" hint="leave empty for a perpetual licence" error={errors.expiresOn}><input type="date" value={form.expiresOn} onChange={(e) => setForm({ ...form, expiresOn: e.target.value })} /></Field>
      <Field label="Order or licence reference" error={errors.reference}><input value={form.reference} onChange={(e) => setForm({ ...form, reference: e.target.value })} /></Field>
      <button type="submit" className="button">Record</button>
    </form>
  );
}

// --- Device health and removable media ---------------------------------------------------------

interface Device { name: string; serial: string | null; os: string | null; lastCheckIn: string | null; antivirus: string | null; avUpdatedAt: string | null; lastPatchedAt: string | null; criticalPendingSince: string | null; avStale: boolean; patchOverdue: boolean; unseen: boolean }
interface Media { id: string; label: string; holder: string; issuedOn: string; returnedOn: string | null }

export function DevicesHealthPage({ account }: { account: Account }) {
  const canManage = account.permissions.includes('registers.manage');
  const [data, setData] = useState<{ devices: Device[]; limits: { antivirusStaleDays: number; criticalPatchDays: number; deviceUnseenDays: number } } | null>(null);
  const [media, setMedia] = useState<Media[] | null>(null);
  const [importing, setImporting] = useState(false);
  const [importingMedia, setImportingMedia] = useState(false);
  const [drive, setDrive] = useState({ label: '', holder: '', issuedOn: new Date().toISOString().slice(0, 10) });
  const load = useCallback(async () => {
    setData(await api('GET', '/api/devices-health'));
    setMedia((await api<{ media: Media[] }>('GET', '/api/media')).media);
  }, []);
  const { error, setError, message, act } = useAction(load);
  const driveErrors = fieldErrors(error);
  useEffect(() => {
    load().catch(setError);
  }, [load, setError]);
  return (
    <section>
      <h1>Device health</h1>
      <p className="muted">
        Anti-virus and patches on every device, from the last inventory export (AS-11, AS-12, AS-13){data ? `: signatures older than ${data.limits.antivirusStaleDays} days are stale, critical updates pending more than ${data.limits.criticalPatchDays} days are overdue, and a device not seen for ${data.limits.deviceUnseenDays} days must be brought in.` : '.'}
      </p>
      <ErrorMessage error={error} inline={(f) => f in drive} />
      {message ? <div className="alert alert-ok" role="status">{message}</div> : null}
      <div className="toolbar">
        {canManage ? <button type="button" className="button" onClick={() => setImporting(!importing)}>Import inventory CSV</button> : <span />}
        <a className="button secondary" href="/api/devices-health/export.csv" download>Export CSV</a>
      </div>
      {importing ? <CsvImport label="Import an inventory export" url="/api/inventory/import" hint="Intune-style: Device name, Serial number, OS, Last check-in, Antivirus, Antivirus updated, Last patched, Critical updates pending since, Apps." onDone={(m) => { setImporting(false); void act(async () => m); }} /> : null}
      {data && data.devices.length === 0 ? <p className="muted" data-testid="empty">No inventory has been imported yet.</p> : null}
      {data && data.devices.length > 0 ? (
        <div className="matrix-wrap">
          <table className="table" data-testid="devices">
            <thead><tr><th>Device</th><th>Anti-virus</th><th>Patches</th><th>Last check-in</th></tr></thead>
            <tbody>
              {data.devices.map((d) => (
                <tr key={d.name} data-device={d.name} className={d.patchOverdue || d.avStale ? 'severity-high' : undefined}>
                  <td><strong>{d.name}</strong><div className="small muted">{d.os ?? ''}{d.serial ? ` · ${d.serial}` : ''}</div></td>
                  <td>{d.antivirus ?? <span className="muted">none</span>} {d.avUpdatedAt ? <span className="small">updated {day(d.avUpdatedAt)}</span> : null}{d.avStale ? <span className="tag tag-bad">stale</span> : <span className="tag tag-ok">up to date</span>}</td>
                  <td>{d.lastPatchedAt ? <span className="small">patched {day(d.lastPatchedAt)}</span> : null}{d.criticalPendingSince ? <div className="small">critical pending since {day(d.criticalPendingSince)}</div> : null}{d.patchOverdue ? <span className="tag tag-bad">overdue</span> : null}</td>
                  <td>{d.lastCheckIn ? day(d.lastCheckIn) : 'never'}{d.unseen ? <span className="tag tag-warn">bring in</span> : null}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      <h2>Removable media</h2>
      <p className="small muted">Only school-issued encrypted drives hold sensitive data; each is scanned before use (AS-10).</p>
      <div className="toolbar">
        {canManage ? <button type="button" className="button secondary" onClick={() => setImportingMedia(!importingMedia)}>Import drives CSV</button> : <span />}
        <a className="button secondary" href="/api/media/export.csv" download>Export drives CSV</a>
      </div>
      {importingMedia ? <CsvImport label="Import encrypted drives" url="/api/media/import" hint="Columns: label, encrypted (yes: only encrypted drives are issued), holder, issued_on; optional returned_on. Every row is checked first: one error and nothing is imported." onDone={(m) => { setImportingMedia(false); void act(async () => m); }} /> : null}
      {canManage ? (
        <form className="inline-form" noValidate onSubmit={(e) => { e.preventDefault(); void act(async () => { await api('POST', '/api/media', { ...drive, encrypted: true }); setDrive({ ...drive, label: '', holder: '' }); return `${drive.label} issued.`; }); }}>
          <Field label="Drive label or serial" error={driveErrors.label}><input value={drive.label} onChange={(e) => setDrive({ ...drive, label: e.target.value })} /></Field>
          <Field label="Issued to" error={driveErrors.holder}><input value={drive.holder} onChange={(e) => setDrive({ ...drive, holder: e.target.value })} /></Field>
          <Field label="Issued on" error={driveErrors.issuedOn}><input type="date" value={drive.issuedOn} onChange={(e) => setDrive({ ...drive, issuedOn: e.target.value })} /></Field>
          <button type="submit" className="button">Issue an encrypted drive</button>
        </form>
      ) : null}
      {media && media.length === 0 ? <p className="muted">No drives have been issued.</p> : null}
      {media && media.length > 0 ? (
        <table className="table" data-testid="media">
          <thead><tr><th>Drive</th><th>Holder</th><th>Issued</th><th>Returned</th></tr></thead>
          <tbody>{media.map((m) => <tr key={m.id}><td>{m.label} <span className="tag tag-ok">encrypted</span></td><td>{m.holder}</td><td>{day(m.issuedOn)}</td><td>{m.returnedOn ? day(m.returnedOn) : canManage ? <button type="button" className="link-button" onClick={() => void act(async () => { await api('POST', `/api/media/${m.id}/return`); return `${m.label} returned.`; })}>Record return</button> : '—'}</td></tr>)}</tbody>
        </table>
      ) : null}
    </section>
  );
}

export const goToItem = (id: string) => navigate(`/equipment/${id}`);
