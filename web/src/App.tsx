import { useCallback, useEffect, useState } from 'react';
import { ApiError, api, setCsrfToken, type Account, type Info, type SessionResponse } from './api';
import { ErrorMessage, HealthBadge } from './components';
import { AuditPage } from './pages/AuditPage';
import { OverviewPage } from './pages/OverviewPage';
import { SchoolPage } from './pages/SchoolPage';
import { SetupPage } from './pages/SetupPage';
import { SignInPage } from './pages/SignInPage';
import { Link, navigate, usePath } from './router';

const may = (account: Account, permission: string) => account.permissions.includes(permission);

export function App() {
  const path = usePath();
  const [info, setInfo] = useState<Info | null>(null);
  const [account, setAccount] = useState<Account | null | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);

  const refresh = useCallback(async () => {
    try {
      setInfo(await api<Info>('GET', '/api/info'));
      try {
        const session = await api<SessionResponse>('GET', '/api/session');
        setCsrfToken(session.csrfToken);
        setAccount(session.account);
      } catch (e) {
        if (e instanceof ApiError && e.status === 401) setAccount(null);
        else throw e;
      }
    } catch (e) {
      setError(e);
    }
  }, []);

  useEffect(() => {
    void refresh();
  }, [refresh]);

  if (error) {
    return (
      <Frame schoolName={null}>
        <ErrorMessage error={error} />
      </Frame>
    );
  }
  if (!info || account === undefined) return <Frame schoolName={null}><p className="muted">Loading…</p></Frame>;

  if (info.setupRequired) {
    return (
      <Frame schoolName={null}>
        <SetupPage onDone={() => void refresh()} />
      </Frame>
    );
  }
  if (path === '/setup') {
    return (
      <Frame schoolName={info.school?.name ?? null}>
        <div className="card narrow">
          <h1>Already set up</h1>
          <p>Gatehouse has been set up for {info.school?.name}. The setup link cannot be used again.</p>
          <Link className="button" href="/">Go to sign-in</Link>
        </div>
      </Frame>
    );
  }
  if (!account) {
    return (
      <Frame schoolName={info.school?.name ?? null}>
        <SignInPage
          schoolName={info.school?.name ?? ''}
          onSignedIn={(session) => {
            setCsrfToken(session.csrfToken);
            setAccount(session.account);
          }}
        />
      </Frame>
    );
  }

  const signOut = async () => {
    try {
      await api('DELETE', '/api/session');
    } finally {
      setCsrfToken(null);
      setAccount(null);
      navigate('/');
    }
  };

  const pages = [
    { href: '/', label: 'Overview', show: true },
    { href: '/school', label: 'School', show: true },
    { href: '/audit', label: 'Audit trail', show: may(account, 'audit.read') },
  ];
  return (
    <Frame schoolName={info.school?.name ?? null} account={account} onSignOut={signOut}>
      <nav className="tabs" aria-label="Sections">
        {pages.filter((p) => p.show).map((p) => (
          <Link key={p.href} href={p.href} className={path === p.href ? 'tab active' : 'tab'} aria-current={path === p.href ? 'page' : undefined}>
            {p.label}
          </Link>
        ))}
      </nav>
      {path === '/school' ? (
        <SchoolPage canManage={may(account, 'school.manage')} onChanged={() => void refresh()} />
      ) : path === '/audit' && may(account, 'audit.read') ? (
        <AuditPage />
      ) : (
        <OverviewPage account={account} schoolName={info.school?.name ?? ''} />
      )}
    </Frame>
  );
}

function Frame(props: { schoolName: string | null; account?: Account; onSignOut?: () => void; children: React.ReactNode }) {
  return (
    <div className="page">
      <header className="topbar">
        <div className="brand">
          <span className="logo" aria-hidden="true">▣</span>
          <span>
            <strong>Gatehouse</strong>
            {props.schoolName ? <span className="school-name" data-testid="school-name">{props.schoolName}</span> : null}
          </span>
        </div>
        <div className="topbar-right">
          <HealthBadge />
          {props.account ? (
            <span className="who">
              {props.account.displayName}
              {props.account.isBreakGlass ? <span className="tag tag-warn" title="The master account: for recovery only">master account</span> : null}
              <button type="button" className="link-button" onClick={props.onSignOut}>Sign out</button>
            </span>
          ) : null}
        </div>
      </header>
      <main>{props.children}</main>
    </div>
  );
}
