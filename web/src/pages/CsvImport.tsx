import { useState, type FormEvent, type ReactNode } from 'react';
import { api } from '../api';
import { ErrorMessage, Field } from '../components';

/** The server's limit on an import (registers/csv.ts CSV_MAX_BYTES): a bigger file is refused before it is sent. */
const CSV_MAX_BYTES = 2 * 1024 * 1024;

/**
 * The one CSV import control of every register (issue 12): choose a file, send it; the server
 * checks every row and imports nothing on any error, and each error is listed by line and column.
 * A file that is not UTF-8 or is too big is refused here first, with what to do about it.
 */
export function CsvImport({ label, url, onDone, hint }: { label: string; url: string; onDone: (message: string) => void; hint: ReactNode }) {
  const [file, setFile] = useState<File | null>(null);
  const [error, setError] = useState<unknown>(null);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    if (!file) return setError(new Error('Choose a CSV file first.'));
    if (file.size > CSV_MAX_BYTES) return setError(new Error(`The file is larger than ${CSV_MAX_BYTES / 1024 / 1024} MB; nothing was imported.`));
    let csv: string;
    try {
      csv = new TextDecoder('utf-8', { fatal: true }).decode(await file.arrayBuffer());
    } catch {
      return setError(new Error('The file is not UTF-8 text (a spreadsheet saved as “CSV” in a Windows or UTF-16 encoding?): save it as “CSV UTF-8” and import it again. Nothing was imported.'));
    }
    try {
      const result = await api<Record<string, number>>('POST', url, { csv });
      onDone(`Imported: ${Object.entries(result).map(([k, v]) => (k === 'imported' ? `${v} row${v === 1 ? '' : 's'}` : `${v} ${v === 1 ? k.replace(/s$/, '') : k}`)).join(', ')}.`);
    } catch (e) {
      setError(e);
    }
  };
  const details = (error as { body?: { details?: { errors?: Array<{ line: number; column: string | null; message: string }> } } } | null)?.body?.details?.errors;
  return (
    <form className="card" onSubmit={(e) => void submit(e)} data-testid={`import-${url.split('/')[2]}`}>
      <h2>{label}</h2>
      <p className="small muted">{hint}</p>
      <Field label="CSV file">
        <input type="file" accept=".csv,text/csv" onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
      </Field>
      <ErrorMessage error={error} />
      {details && details.length ? (
        <ul className="small" data-testid="import-errors">
          {details.map((d, i) => <li key={i}>Line {d.line}{d.column ? `, ${d.column}` : ''}: {d.message}</li>)}
        </ul>
      ) : null}
      <button type="submit" className="button">Import</button>
    </form>
  );
}
