import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api } from '../api';
import { ErrorMessage, Field } from '../components';

interface School {
  name: string;
  urn: string | null;
  updatedAt: string;
}
interface Contact {
  role: string;
  label: string;
  name: string;
  email: string | null;
  updatedAt: string;
}

const roles: Array<[string, string]> = [
  ['headteacher', 'Headteacher'],
  ['senior_leader', 'Senior leader responsible for online safety'],
  ['dsl', 'Designated safeguarding lead (DSL)'],
  ['dpo', 'Data protection officer (DPO)'],
  ['governor', 'Responsible governor'],
  ['it_provider', 'IT provider / network manager'],
];

export function SchoolPage({ canManage, onChanged }: { canManage: boolean; onChanged: () => void }) {
  const [school, setSchool] = useState<School | null>(null);
  const [contacts, setContacts] = useState<Contact[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [editing, setEditing] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      setSchool(await api<School>('GET', '/api/school'));
      setContacts((await api<{ contacts: Contact[] }>('GET', '/api/school/contacts')).contacts);
    } catch (e) {
      setError(e);
    }
  }, []);
  useEffect(() => {
    void load();
  }, [load]);

  return (
    <section>
      <h1>School</h1>
      <ErrorMessage error={error} />
      {school ? <SchoolForm school={school} canManage={canManage} onSaved={(s) => { setSchool(s); onChanged(); }} /> : null}
      <h2>Named roles</h2>
      <p className="muted">The people the school’s policies name. Alerts and notices go to them.</p>
      <table className="table" data-testid="contacts">
        <thead>
          <tr>
            <th>Role</th>
            <th>Name</th>
            <th>E-mail</th>
            {canManage ? <th aria-label="Actions" /> : null}
          </tr>
        </thead>
        <tbody>
          {roles.map(([role, label]) => {
            const contact = contacts.find((c) => c.role === role);
            if (editing === role) {
              return (
                <ContactRow
                  key={role}
                  role={role}
                  label={label}
                  contact={contact}
                  onDone={async () => {
                    setEditing(null);
                    await load();
                  }}
                />
              );
            }
            return (
              <tr key={role}>
                <td>{label}</td>
                <td>{contact?.name ?? <span className="muted">not recorded</span>}</td>
                <td>{contact?.email ?? ''}</td>
                {canManage ? (
                  <td className="actions">
                    <button type="button" className="link-button" onClick={() => setEditing(role)} aria-label={`${contact ? 'Change' : 'Record'} ${label}`}>
                      {contact ? 'Change' : 'Record'}
                    </button>
                  </td>
                ) : null}
              </tr>
            );
          })}
        </tbody>
      </table>
    </section>
  );
}

function SchoolForm({ school, canManage, onSaved }: { school: School; canManage: boolean; onSaved: (s: School) => void }) {
  const [name, setName] = useState(school.name);
  const [urn, setUrn] = useState(school.urn ?? '');
  const [error, setError] = useState<unknown>(null);
  const [saved, setSaved] = useState(false);
  if (!canManage) {
    return (
      <dl className="facts">
        <dt>Name</dt>
        <dd>{school.name}</dd>
        <dt>URN</dt>
        <dd>{school.urn ?? '—'}</dd>
      </dl>
    );
  }
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    setSaved(false);
    try {
      onSaved(await api<School>('PATCH', '/api/school', { name, urn: urn.trim() ? urn.trim() : null }));
      setSaved(true);
    } catch (e) {
      setError(e);
    }
  };
  return (
    <form className="card inline-form" onSubmit={submit}>
      <ErrorMessage error={error} />
      <Field label="School name">
        <input name="name" value={name} onChange={(e) => setName(e.target.value)} required />
      </Field>
      <Field label="URN">
        <input name="urn" value={urn} onChange={(e) => setUrn(e.target.value)} inputMode="numeric" />
      </Field>
      <button type="submit" className="button">Save</button>
      {saved ? <span className="saved" role="status">Saved</span> : null}
    </form>
  );
}

function ContactRow(props: { role: string; label: string; contact: Contact | undefined; onDone: () => Promise<void> }) {
  const [name, setName] = useState(props.contact?.name ?? '');
  const [email, setEmail] = useState(props.contact?.email ?? '');
  const [error, setError] = useState<unknown>(null);
  const save = async (event: FormEvent) => {
    event.preventDefault();
    try {
      await api('PUT', `/api/school/contacts/${props.role}`, { name, email: email.trim() ? email.trim() : null });
      await props.onDone();
    } catch (e) {
      setError(e);
    }
  };
  const clear = async () => {
    try {
      await api('DELETE', `/api/school/contacts/${props.role}`);
      await props.onDone();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <tr className="editing">
      <td>{props.label}</td>
      <td colSpan={3}>
        <form className="row-form" onSubmit={save}>
          <ErrorMessage error={error} />
          <input aria-label="Name" placeholder="Name" value={name} onChange={(e) => setName(e.target.value)} required />
          <input aria-label="E-mail" placeholder="E-mail" type="email" value={email} onChange={(e) => setEmail(e.target.value)} />
          <button type="submit" className="button small">Save</button>
          {props.contact ? (
            <button type="button" className="link-button" onClick={clear}>Clear</button>
          ) : null}
          <button type="button" className="link-button" onClick={() => void props.onDone()}>Cancel</button>
        </form>
      </td>
    </tr>
  );
}
