/**
 * One CSV cell for every export (RFC 4180: quoted when needed). A leading = + - @, tab or CR, or
 * their full-width forms (＝ ＋ － ＠, which spreadsheets in East Asian locales may take as the
 * same), is neutralised with a ' so a spreadsheet shows the text instead of running it as a
 * formula (AC-12).
 */
export function csvField(value: string | null | undefined): string {
  let v = value ?? '';
  if (/^[=+\-@\t\r\uFF1D\uFF0B\uFF0D\uFF20]/.test(v)) v = `'${v}`;
  return /[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}
