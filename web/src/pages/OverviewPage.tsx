import { useEffect, useState } from 'react';
import { api, type Account } from '../api';
import { ErrorMessage } from '../components';
import { Link } from '../router';

interface SystemStatus {
  version: string;
  uptimeSeconds: number;
  database: { dialect: string; location: string; migrations: string[] };
  audit: { events: number; lastCheckpointSeq: number | null; signingKeyId: string | null };
}

function duration(seconds: number): string {
  if (seconds < 90) return `${seconds} seconds`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} minutes`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)} hours`;
  return `${Math.round(seconds / 86_400)} days`;
}

interface DueItem {
  kind: string;
  title: string;
  detail?: string;
  dueAt: string | null;
  overdue: boolean;
  href: string;
  requirement: string;
}

/** What needs attention, for this person's role (overdue reviews, rotations due, approvals waiting). */
function NeedsAttention() {
  const [items, setItems] = useState<DueItem[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    api<{ items: DueItem[] }>('GET', '/api/dashboard/due').then((r) => setItems(r.items), setError);
  }, []);
  if (error) return <ErrorMessage error={error} />;
  if (!items) return null;
  return (
    <div className="card" data-testid="needs-attention">
      <h2>Needs attention</h2>
      {items.length === 0 ? (
        <p className="muted">Nothing is due.</p>
      ) : (
        <ul className="due-list">
          {items.map((item, i) => (
            <li key={`${item.kind}-${i}`} className={item.overdue ? 'overdue' : undefined}>
              <Link href={item.href}>{item.title}</Link>
              {item.overdue ? <span className="tag tag-warn">overdue</span> : null}
              {item.dueAt ? <span className="muted small"> · due {new Date(item.dueAt).toLocaleDateString('en-GB', { day: 'numeric', month: 'short', year: 'numeric' })}</span> : null}
              <span className="muted small"> · {item.requirement}</span>
              {item.detail ? <div className="muted small">{item.detail}</div> : null}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function OverviewPage({ account, schoolName }: { account: Account; schoolName: string }) {
  const [status, setStatus] = useState<SystemStatus | null>(null);
  const [error, setError] = useState<unknown>(null);
  const isAdmin = account.permissions.includes('system.read');

  useEffect(() => {
    if (!isAdmin) return;
    api<SystemStatus>('GET', '/api/system/status').then(setStatus, setError);
  }, [isAdmin]);

  return (
    <section>
      <h1>{schoolName}</h1>
      <p>
        Signed in as <strong>{account.displayName}</strong> ({account.roleLabel}).
      </p>
      {account.isBreakGlass ? (
        <div className="alert alert-warn">
          You are using the <strong>master (break-glass) account</strong>. It is meant only for recovering or revoking access;
          this sign-in has been recorded at high severity.
        </div>
      ) : null}
      <NeedsAttention />
      <ErrorMessage error={error} />
      {status ? (
        <div className="grid">
          <div className="card stat" data-testid="status-database">
            <h2>Database</h2>
            <p className="big">{status.database.dialect === 'postgres' ? 'PostgreSQL' : 'SQLite'}</p>
            <p className="muted small">{status.database.location}</p>
            <p className="muted small">Schema: {status.database.migrations.at(-1) ?? 'none'}</p>
          </div>
          <div className="card stat" data-testid="status-audit">
            <h2>Audit trail</h2>
            <p className="big">{status.audit.events.toLocaleString('en-GB')} events</p>
            <p className="muted small">
              {status.audit.lastCheckpointSeq
                ? `Signed up to event ${status.audit.lastCheckpointSeq.toLocaleString('en-GB')}`
                : 'No signed checkpoint yet'}
              {status.audit.signingKeyId ? ` · key ${status.audit.signingKeyId}` : ''}
            </p>
          </div>
          <div className="card stat">
            <h2>Server</h2>
            <p className="big">Gatehouse {status.version}</p>
            <p className="muted small">Up for {duration(status.uptimeSeconds)}</p>
          </div>
        </div>
      ) : null}
    </section>
  );
}
