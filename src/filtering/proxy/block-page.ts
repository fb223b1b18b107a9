/**
 * FI-13: the page a pupil sees instead of a blocked web page (plain HTTP only: an HTTPS request
 * cannot be answered with a page without intercepting TLS). Self-contained — no scripts, fonts or
 * images from elsewhere — so it shows even when everything else is blocked.
 */

export interface BlockPageInput {
  host: string;
  /** the URL asked for, as the browser sent it */
  url: string;
  /** category (or list) id and name, when a list decided */
  category: string | null;
  categoryName: string | null;
  reason: string;
  policy: string;
  /** may a person ask for it to be unblocked? (never for illegal content) */
  unblockable: boolean;
  /** the Gatehouse console's address, for the two actions; without it the page only explains */
  consoleUrl: string | null;
  /** when it was decided, for the person helping */
  at: number;
  /** a short reference the IT team can search the activity log by */
  reference?: string;
  /** the school's time zone for the time shown (default: this machine's) */
  timeZone?: string | undefined;
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => ESCAPES[c]!);

/** The console link for an action about a blocked page. */
export function blockedActionUrl(consoleUrl: string, input: { host: string; url: string; category: string | null }, action: 'request' | 'report'): string {
  const base = consoleUrl.replace(/\/+$/, '');
  const q = new URLSearchParams({ host: input.host, url: input.url.slice(0, 2000), category: input.category ?? '', action });
  return `${base}/blocked?${q.toString()}`;
}

// Building a DateTimeFormat costs far more than using one: one per time zone, made once.
const formats = new Map<string, Intl.DateTimeFormat | null>();
function formatTime(at: number, timeZone: string | undefined): string {
  const key = timeZone ?? '';
  let format = formats.get(key);
  if (format === undefined) {
    try {
      format = new Intl.DateTimeFormat('en-GB', { dateStyle: 'full', timeStyle: 'short', ...(timeZone ? { timeZone } : {}) });
    } catch {
      format = null;
    }
    formats.set(key, format);
  }
  return format ? format.format(at) : `${new Date(at).toISOString().replace('T', ' ').slice(0, 16)} UTC`;
}

export function blockPageHtml(input: BlockPageInput): string {
  const what = input.categoryName ?? (input.category ? input.category : null);
  const shownUrl = input.url.length > 200 ? `${input.url.slice(0, 200)}…` : input.url;
  const actions: string[] = [];
  if (input.consoleUrl) {
    if (input.unblockable) {
      actions.push(`<a class="button primary" href="${escapeHtml(blockedActionUrl(input.consoleUrl, input, 'request'))}">Request access</a>`);
    }
    actions.push(`<a class="button" href="${escapeHtml(blockedActionUrl(input.consoleUrl, input, 'report'))}">Report this page</a>`);
  }
  const help = input.unblockable
    ? input.consoleUrl
      ? 'If you need this page for your work, ask for it to be unblocked: your teacher or the IT team will look at your request. If you think the page is harmful or has been blocked by mistake, report it.'
      : 'If you need this page for your work, ask your teacher or the IT team.'
    : 'This page can never be unblocked. If you saw something that upset you, please tell a teacher or someone you trust.';
  const time = formatTime(input.at, input.timeZone);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>This page is blocked</title>
<style>
  :root { color-scheme: light; }
  body { margin: 0; font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; background: #f3f5f8; color: #1d2530; line-height: 1.5; }
  main { max-width: 40rem; margin: 3rem auto; padding: 2rem 2.25rem; background: #fff; border-radius: 12px; box-shadow: 0 2px 12px rgba(20, 30, 50, .08); }
  .badge { display: inline-block; width: 3rem; height: 3rem; border-radius: 50%; background: #e7eefc; color: #2456c7; font-size: 1.75rem; font-weight: 700; text-align: center; line-height: 3rem; }
  h1 { font-size: 1.6rem; margin: .75rem 0 .25rem; }
  p { margin: .5rem 0; }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: .35rem 1rem; margin: 1.25rem 0; padding: 1rem; background: #f7f8fa; border-radius: 8px; }
  dt { font-weight: 600; color: #4a5566; }
  dd { margin: 0; overflow-wrap: anywhere; }
  .actions { display: flex; flex-wrap: wrap; gap: .75rem; margin-top: 1.5rem; }
  .button { display: inline-block; padding: .6rem 1.1rem; border-radius: 8px; border: 1px solid #b9c3d3; color: #1d2530; text-decoration: none; font-weight: 600; }
  .button.primary { background: #2456c7; border-color: #2456c7; color: #fff; }
  .button:focus-visible { outline: 3px solid #f0b429; outline-offset: 2px; }
  .small { font-size: .85rem; color: #5b6676; margin-top: 1.5rem; }
</style>
</head>
<body>
<main>
  <div class="badge" aria-hidden="true">!</div>
  <h1>This page is blocked</h1>
  <p>The school’s web filter stopped <strong>${escapeHtml(input.host)}</strong>${what ? ` because it is in the category <strong>${escapeHtml(what)}</strong>` : ''}.</p>
  <p>${escapeHtml(help)}</p>
  <dl>
    <dt>Page</dt><dd>${escapeHtml(shownUrl)}</dd>
    ${what ? `<dt>Category</dt><dd>${escapeHtml(what)}</dd>` : ''}
    <dt>Why</dt><dd>${escapeHtml(input.reason)}</dd>
    <dt>Time</dt><dd>${escapeHtml(time)}</dd>
    ${input.reference ? `<dt>Reference</dt><dd>${escapeHtml(input.reference)}</dd>` : ''}
  </dl>
  ${actions.length > 0 ? `<div class="actions">${actions.join('\n    ')}</div>` : ''}
  <p class="small">Gatehouse web filter</p>
</main>
</body>
</html>
`;
}

/** A short page for proxy errors (origin unreachable, bad request): same look, no actions. */
export function proxyErrorHtml(title: string, message: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(title)}</title>
<style>body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;background:#f3f5f8;color:#1d2530;line-height:1.5}main{max-width:40rem;margin:3rem auto;padding:2rem 2.25rem;background:#fff;border-radius:12px}h1{font-size:1.5rem}.small{font-size:.85rem;color:#5b6676}</style>
</head><body><main><h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p><p class="small">Gatehouse web filter</p></main></body></html>
`;
}
