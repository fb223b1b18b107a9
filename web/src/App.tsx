import { useCallback, useEffect, useState } from 'react';
import { ApiError, api, CHANGE_REQUESTED_EVENT, setCsrfToken, type Account, type ChangeRequestNotice, type Info, type SessionResponse } from './api';
import { ErrorMessage, HealthBadge, ReauthPrompt } from './components';
import { AccountPage } from './pages/AccountPage';
import { AccessPage } from './pages/AccessPage';
import { AccountsPage } from './pages/AccountsPage';
import { AuditPage } from './pages/AuditPage';
import { GuestsPage } from './pages/GuestsPage';
import { PolicyPage } from './pages/PolicyPage';
import { OverviewPage } from './pages/OverviewPage';
import { SchoolPage } from './pages/SchoolPage';
import { SetupPage } from './pages/SetupPage';
import { SignInPage } from './pages/SignInPage';
import { ForgotPasswordPage, MyPupilsPage, ResetRequestsPage } from './pages/ResetPages';
import { GroupsPage } from './pages/GroupsPage';
import { ImportPage } from './pages/ImportPage';
import { LeaversPage } from './pages/LeaversPage';
import { BackupsPage } from './pages/BackupsPage';
import { RisksPage } from './pages/RisksPage';
import { SecretsPage } from './pages/SecretsPage';
import { ScimPage } from './pages/ScimPage';
import { FilterPoliciesPage } from './pages/FilterPoliciesPage';
import { FilterTestPage } from './pages/FilterTestPage';
import { FilterListsPage } from './pages/FilterListsPage';
import { FilterActivityPage } from './pages/FilterActivityPage';
import { FilterDevicesPage, FilterRequestsPage } from './pages/FilterDevicesPage';
import { BlockedPage, ConnectPage } from './pages/FilterPublicPages';
import { CompliancePage } from './pages/CompliancePage';
import { FilteringChecksPage, TermlyReportPage } from './pages/ReportsPage';
import { SecurityPolicyPage } from './pages/SecurityPolicyPage';
// Issue 11: change control
import { ChangesPage } from './pages/ChangesPage';
// issue 11: safeguarding alerts
import { AlertsPage } from './pages/AlertsPage';
// incidents and breaches (issue 11)
import { ConcernPage, IncidentsPage } from './pages/IncidentsPage';
// equipment registers (issue 12)
import { DevicesHealthPage, EquipmentPage, SoftwarePage } from './pages/EquipmentPages';
// governance registers (issue 12)
import { GovernancePage, MyTrainingPage } from './pages/GovernancePage';
import { Link, navigate, usePath } from './router';
// filter exceptions (issue 11)
import { ExceptionsPage, LessonAllowancePage, RequestStatusPage, UnblockRequestsPage } from './pages/FilterExceptionsPage';

const may = (account: Account, permission: string) => account.permissions.includes(permission);

/** Where each section sits in the side navigation; a section not listed goes under "More". */
const navGroups = ['', 'People', 'Access', 'Filtering', 'Records', 'School', 'More', 'You'] as const;
const navPlacement: Record<string, (typeof navGroups)[number]> = {
  '/': '',
  '/accounts': 'People',
  '/groups': 'People',
  '/import': 'People',
  '/provisioning': 'People',
  '/leavers': 'People',
  '/pupils': 'Access',
  '/resets': 'Access',
  '/guests': 'Access',
  '/access': 'Access',
  '/filtering': 'Filtering',
  '/filtering/test': 'Filtering',
  '/filtering/lists': 'Filtering',
  '/filtering/activity': 'Filtering',
  '/filtering/devices': 'Filtering',
  '/filtering/requests': 'Filtering',
  '/secrets': 'Records',
  '/compliance': 'Records',
  '/reports': 'Records',
  '/reports/checks': 'Filtering',
  '/audit': 'Records',
  '/school': 'School',
  '/policy': 'School',
  '/security-policy': 'School',
  '/account': 'You',
  // Issue 11: change control
  '/changes': 'Filtering',
  // filter exceptions (issue 11)
  '/filtering/decide': 'Filtering',
  '/filtering/exceptions': 'Filtering',
  '/filtering/lesson': 'Filtering',
  // issue 11: safeguarding alerts
  '/alerts': 'Records',
  // incidents and breaches (issue 11)
  '/incidents': 'Records',
  // equipment registers (issue 12)
  '/equipment': 'Records',
  '/software': 'Records',
  '/devices-health': 'Records',
  // backups and risk registers (issue 12)
  '/backups': 'Records',
  '/risks': 'Records',
  // governance registers (issue 12)
  '/governance': 'Records',
  '/my-training': 'You',
};
const navGroupOf = (href: string) => navPlacement[href] ?? 'More';

export function App() {
  const path = usePath();
  const [info, setInfo] = useState<Info | null>(null);
  const [account, setAccount] = useState<Account | null | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const [notices, setNotices] = useState<{ banner: string | null; reminder: string | null }>({ banner: null, reminder: null });

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

  // FI-06: a filtering edit sent for approval (202) is said so wherever it was made.
  const [pendingChange, setPendingChange] = useState<ChangeRequestNotice | null>(null);
  useEffect(() => {
    const onRequested = (event: Event) => setPendingChange((event as CustomEvent<ChangeRequestNotice>).detail);
    window.addEventListener(CHANGE_REQUESTED_EVENT, onRequested);
    return () => window.removeEventListener(CHANGE_REQUESTED_EVENT, onRequested);
  }, []);

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
  // Filtering's public pages: the block page's target and the captive sign-in, signed in or not.
  if (path === '/blocked') {
    return (
      <Frame schoolName={info.school?.name ?? null} account={account ?? undefined}>
        <BlockedPage account={account} />
      </Frame>
    );
  }
  // filter exceptions (issue 11): the requester's outcome, from the block page's link, signed in or not
  if (path === '/request') {
    return (
      <Frame schoolName={info.school?.name ?? null} account={account ?? undefined}>
        <RequestStatusPage />
      </Frame>
    );
  }
  if (path === '/connect') {
    return (
      <Frame schoolName={info.school?.name ?? null} account={account ?? undefined}>
        <ConnectPage
          account={account}
          schoolName={info.school?.name ?? ''}
          onSignedIn={(outcome) => {
            setCsrfToken(outcome.csrfToken);
            setAccount(outcome.account!);
          }}
        />
      </Frame>
    );
  }
  // incidents and breaches (issue 11): anyone reports a concern, signed in or not (IN-01)
  if (path === '/concern') {
    return (
      <Frame schoolName={info.school?.name ?? null} account={account ?? undefined}>
        <ConcernPage />
      </Frame>
    );
  }
  if (!account && path === '/reset') {
    return (
      <Frame schoolName={info.school?.name ?? null}>
        <ForgotPasswordPage schoolName={info.school?.name ?? ''} />
      </Frame>
    );
  }
  if (!account) {
    return (
      <Frame schoolName={info.school?.name ?? null}>
        <SignInPage
          schoolName={info.school?.name ?? ''}
          onSignedIn={(outcome) => {
            setCsrfToken(outcome.csrfToken);
            setNotices({ banner: outcome.banner, reminder: outcome.passwordReminder ?? null });
            setAccount(outcome.account!);
            navigate('/');
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

  // The console's sections: a tab each (when shown) and the page it opens. A section may own the
  // paths under it (e.g. /people/<id>). Add a section here; nothing else routes.
  const pages: Array<{ href: string; label: string; show: boolean; tab?: boolean; render: () => React.ReactNode }> = [
    { href: '/', label: 'Overview', show: true, render: () => <OverviewPage account={account} schoolName={info.school?.name ?? ''} /> },
    { href: '/school', label: 'School', show: true, render: () => <SchoolPage canManage={may(account, 'school.manage')} onChanged={() => void refresh()} /> },
    { href: '/accounts', label: 'Accounts', show: may(account, 'accounts.read'), render: () => <AccountsPage account={account} /> },
    { href: '/groups', label: 'Groups', show: may(account, 'directory.read'), render: () => <GroupsPage account={account} /> },
    { href: '/import', label: 'Import', show: may(account, 'directory.manage'), render: () => <ImportPage /> },
    { href: '/pupils', label: 'My pupils', show: may(account, 'resets.pupils'), render: () => <MyPupilsPage account={account} /> },
    { href: '/resets', label: 'Password resets', show: may(account, 'resets.request'), render: () => <ResetRequestsPage account={account} /> },
    { href: '/guests', label: 'Guest desk', show: may(account, 'guests.manage'), render: () => <GuestsPage account={account} /> },
    { href: '/access', label: 'Access rights', show: may(account, 'access.read'), render: () => <AccessPage account={account} /> },
    { href: '/leavers', label: 'Leavers', show: may(account, 'leavers.manage'), render: () => <LeaversPage /> },
    { href: '/secrets', label: 'Shared secrets', show: may(account, 'secrets.read'), render: () => <SecretsPage account={account} /> },
    { href: '/provisioning', label: 'Provisioning', show: may(account, 'directory.manage'), render: () => <ScimPage /> },
    { href: '/filtering', label: 'Policies', show: may(account, 'filtering.read'), render: () => <FilterPoliciesPage account={account} /> },
    { href: '/filtering/test', label: 'Test an address', show: may(account, 'filtering.read'), render: () => <FilterTestPage /> },
    { href: '/filtering/lists', label: 'Lists', show: may(account, 'filtering.read'), render: () => <FilterListsPage account={account} /> },
    { href: '/filtering/activity', label: 'Activity', show: may(account, 'activity.read'), render: () => <FilterActivityPage /> },
    { href: '/filtering/devices', label: 'Devices', show: may(account, 'filtering.read'), render: () => <FilterDevicesPage account={account} /> },
    { href: '/filtering/requests', label: 'Requests', show: may(account, 'filtering.read'), render: () => <FilterRequestsPage /> },
    { href: '/reports/checks', label: 'Checks', show: may(account, 'checks.read'), render: () => <FilteringChecksPage account={account} /> },
    { href: '/reports', label: 'Termly report', show: may(account, 'reports.read'), render: () => <TermlyReportPage account={account} /> },
    { href: '/policy', label: 'Policy', show: may(account, 'profile.read'), render: () => <PolicyPage canManageAup={may(account, 'aup.manage')} /> },
    { href: '/security-policy', label: 'Security policy', show: true, render: () => <SecurityPolicyPage account={account} /> },
    { href: '/compliance', label: 'Compliance', show: may(account, 'compliance.read'), render: () => <CompliancePage account={account} /> },
    { href: '/audit', label: 'Audit trail', show: may(account, 'audit.read'), render: () => <AuditPage /> },
    // Issue 11: change control
    { href: '/changes', label: 'Changes', show: may(account, 'changes.read'), render: () => <ChangesPage account={account} /> },
    // filter exceptions (issue 11)
    { href: '/filtering/decide', label: 'Unblock decisions', show: may(account, 'exceptions.decide'), render: () => <UnblockRequestsPage account={account} /> },
    { href: '/filtering/exceptions', label: 'Exceptions', show: may(account, 'exceptions.read'), render: () => <ExceptionsPage account={account} /> },
    { href: '/filtering/lesson', label: 'Open for my class', show: may(account, 'lessons.open'), render: () => <LessonAllowancePage /> },
    // backups and risk registers (issue 12)
    { href: '/backups', label: 'Backups', show: may(account, 'backups.read'), render: () => <BackupsPage account={account} /> },
    { href: '/risks', label: 'Risks', show: may(account, 'risks.read'), render: () => <RisksPage account={account} /> },
    { href: '/account', label: 'My account', show: true, render: () => <AccountPage account={account} onChanged={() => void refresh()} onSignedOut={() => { setCsrfToken(null); setAccount(null); navigate('/'); }} /> },
    // issue 11: safeguarding alerts
    { href: '/alerts', label: 'Alerts', show: may(account, 'alerts.read'), render: () => <AlertsPage account={account} /> },
    // incidents and breaches (issue 11)
    { href: '/incidents', label: 'Incidents', show: may(account, 'incidents.read') || may(account, 'incidents.record') || may(account, 'concerns.read'), render: () => <IncidentsPage account={account} /> },
    // equipment registers (issue 12)
    { href: '/equipment', label: 'Equipment', show: may(account, 'registers.read'), render: () => <EquipmentPage account={account} /> },
    { href: '/software', label: 'Software & licences', show: may(account, 'registers.read'), render: () => <SoftwarePage account={account} /> },
    { href: '/devices-health', label: 'Device health', show: may(account, 'registers.read'), render: () => <DevicesHealthPage account={account} /> },
    // governance registers (issue 12)
    { href: '/governance', label: 'Governance', show: may(account, 'governance.read'), render: () => <GovernancePage account={account} /> },
    { href: '/my-training', label: 'My training', show: account.role !== 'pupil' && account.role !== 'guest', render: () => <MyTrainingPage /> },
  ];
  const current =
    pages.filter((p) => p.show && p.href !== '/' && (path === p.href || path.startsWith(`${p.href}/`))).sort((a, b) => b.href.length - a.href.length)[0] ?? pages[0]!;
  return (
    <Frame schoolName={info.school?.name ?? null} account={account} onSignOut={signOut} showHealth={may(account, 'system.read')}>
      <div className="layout">
        <nav className="sidebar" aria-label="Sections">
          {navGroups.map((group) => {
            const items = pages.filter((p) => p.show && p.tab !== false && navGroupOf(p.href) === group);
            if (items.length === 0) return null;
            return (
              <div key={group} className="nav-group">
                {group ? <h2 className="nav-heading">{group}</h2> : null}
                {items.map((p) => (
                  <Link key={p.href} href={p.href} className={current.href === p.href ? 'tab active' : 'tab'} aria-current={current.href === p.href ? 'page' : undefined}>
                    {p.label}
                  </Link>
                ))}
              </div>
            );
          })}
        </nav>
        <div className="content">
      {notices.banner || notices.reminder ? (
        <div className="notices">
          {notices.reminder ? <div className="alert alert-warn" role="status" data-testid="password-reminder">{notices.reminder}</div> : null}
          {notices.banner ? (
            <div className="banner" role="note" data-testid="banner">
              {notices.banner}
              <button type="button" className="link-button" onClick={() => setNotices({ ...notices, banner: null })}>Dismiss</button>
            </div>
          ) : null}
        </div>
      ) : null}
      {pendingChange ? (
        <div className="alert alert-warn" role="status" data-testid="change-requested">
          {pendingChange.state === 'applied_pending_approval'
            ? <>Emergency change in force now, awaiting approval: {pendingChange.summary}. A second person named in the school’s policy must approve or roll it back (<Link href="/changes">Changes</Link>); until then it is escalated.{' '}</>
            : <>Sent for approval, not yet in force: {pendingChange.summary}. A second person named in the school’s policy must approve it (<Link href="/changes">Changes</Link>).{' '}</>}
          <button type="button" className="link-button" onClick={() => setPendingChange(null)}>Dismiss</button>
        </div>
      ) : null}
      {current.render()}
        </div>
        <ReauthPrompt mfaEnrolled={account.mfaEnrolled} />
      </div>
    </Frame>
  );
}

/**
 * The page frame. The server's state ("Server: Ready (SQLite)") is for those who run it (system.read)
 * inside the console; the public pages (sign-in, /blocked, /connect, set-up) never show it.
 */
function Frame(props: { schoolName: string | null; account?: Account; onSignOut?: () => void; showHealth?: boolean; children: React.ReactNode }) {
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
          {props.showHealth ? <HealthBadge /> : null}
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
