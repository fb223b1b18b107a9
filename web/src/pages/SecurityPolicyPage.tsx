import { Fragment, useEffect, useState } from 'react';
import { api, type Account } from '../api';
import { ErrorMessage } from '../components';

interface Section {
  heading: string;
  paragraphs?: string[];
  facts?: Array<[string, string]>;
  table?: { columns: string[]; rows: Array<Array<string | number | null>>; empty?: string };
}
interface Version {
  id: string;
  number: number;
  recordedAt: string;
  sha256: string;
}
interface Doc {
  title: string;
  subtitle: string;
  sections: Section[];
  sha256: string;
  version: Version;
}
interface Changes {
  versions: Version[];
  from: number | null;
  to: number | null;
  diff: Array<{ op: ' ' | '+' | '-'; text: string }>;
}

const when = (iso: string) => new Date(iso).toLocaleString('en-GB', { day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit' });

/** The school's technical-security policy, written from the configuration Gatehouse enforces (GV-08). */
export function SecurityPolicyPage({ account }: { account: Account }) {
  const [doc, setDoc] = useState<Doc | null>(null);
  const [changes, setChanges] = useState<Changes | null>(null);
  const [error, setError] = useState<unknown>(null);
  const canCompare = account.permissions.includes('compliance.read');
  useEffect(() => {
    void (async () => {
      try {
        setDoc(await api<Doc>('GET', '/api/policy-document'));
        if (canCompare) setChanges(await api<Changes>('GET', '/api/compliance/policy-document/changes'));
      } catch (e) {
        setError(e);
      }
    })();
  }, [canCompare]);
  const compare = async (from: number, to: number) => {
    try {
      setChanges(await api<Changes>('GET', `/api/compliance/policy-document/changes?from=${from}&to=${to}`));
    } catch (e) {
      setError(e);
    }
  };

  return (
    <section>
      <h1>Technical-security policy</h1>
      <p className="muted">Written by Gatehouse from the settings it enforces now, so the paper and the system never disagree. When the configuration changes, a new version is kept and the difference shown.</p>
      <ErrorMessage error={error} />
      {doc ? (
        <>
          <div className="toolbar">
            <span className="small muted">
              Version {doc.version.number} of {when(doc.version.recordedAt)} · SHA-256 <span className="mono">{doc.sha256.slice(0, 16)}…</span>
            </span>
            <a className="button secondary" href="/api/policy-document/pdf" download>
              Download PDF
            </a>
          </div>
          {changes && changes.from !== null && changes.to !== null ? (
            <div className="card" data-testid="policy-changes">
              <h2>
                What changed from version {changes.from} to version {changes.to}
              </h2>
              <pre className="diff" aria-label="Changes">
                {changes.diff.map((l, i) => (
                  <span key={i} className={l.op === '+' ? 'diff-add' : l.op === '-' ? 'diff-del' : 'diff-same'}>
                    {l.op} {l.text}
                    {'\n'}
                  </span>
                ))}
              </pre>
              <div className="small">
                Versions:{' '}
                {changes.versions.map((v, i) => (
                  <Fragment key={v.id}>
                    {i > 0 ? ' · ' : null}
                    {v.number > 1 ? (
                      <button type="button" className="link" onClick={() => void compare(v.number - 1, v.number)}>
                        {v.number} ({when(v.recordedAt)})
                      </button>
                    ) : (
                      <span>
                        {v.number} ({when(v.recordedAt)})
                      </span>
                    )}
                  </Fragment>
                ))}
              </div>
            </div>
          ) : null}
          <article className="policy-document">
            <h2>{doc.title}</h2>
            <p className="small muted">{doc.subtitle}</p>
            {doc.sections.map((s) => (
              <div key={s.heading} className="report-section" data-section={s.heading}>
                <h3>{s.heading}</h3>
                {(s.paragraphs ?? []).map((p, i) => (
                  <p key={i}>{p}</p>
                ))}
                {s.facts && s.facts.length > 0 ? (
                  <dl className="facts">
                    {s.facts.map(([k, v]) => (
                      <Fragment key={k}>
                        <dt>{k}</dt>
                        <dd>{v}</dd>
                      </Fragment>
                    ))}
                  </dl>
                ) : null}
                {s.table ? (
                  s.table.rows.length === 0 ? (
                    <p className="muted">{s.table.empty ?? 'None.'}</p>
                  ) : (
                    <table className="table">
                      <thead>
                        <tr>
                          {s.table.columns.map((c) => (
                            <th key={c}>{c}</th>
                          ))}
                        </tr>
                      </thead>
                      <tbody>
                        {s.table.rows.map((row, i) => (
                          <tr key={i}>
                            {row.map((cell, j) => (
                              <td key={j}>{cell === null || cell === '' ? '—' : cell}</td>
                            ))}
                          </tr>
                        ))}
                      </tbody>
                    </table>
                  )
                ) : null}
              </div>
            ))}
          </article>
        </>
      ) : !error ? (
        <p className="muted">Writing it out…</p>
      ) : null}
    </section>
  );
}
