/**
 * What counts as a site on the school's own lists (FI-08: where agreed unblocks and school-level blocks go), in one place for the API and the console:
 * this file imports nothing, so the server (src/filtering/lists-service.ts) and the web console
 * (web/src/pages/FilterShared.ts, bundled by Vite) both compile it as it is.
 */

const SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;
/** A dotted IPv4 address written in full (four numbers 0–255, no leading zeros). */
export const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const DOMAIN_LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

/**
 * A site as a person types it (a web address, www.example.com, *.example.com, an IP address) → the
 * name the engine keys, or null when it is none: a domain name has at least two labels of letters,
 * digits, hyphens and underscores (1–63 characters, no hyphen at either end; 253 in all); an IDN is
 * kept in punycode; an IPv4 address must be written in full (not 10.1 or 0x0a.0.0.1), and an IPv6
 * one is kept in its short form (the engine matches an address whole, as browsers send it). No
 * e-mail addresses or user names.
 */
export function hostFromInput(raw: string): string | null {
  const text = raw.trim();
  if (!text || /\s/.test(text)) return null;
  // The host as typed, without scheme, path or port (read as a web address's, whatever the scheme).
  let authority = (SCHEME.test(text) ? text.slice(text.indexOf('://') + 3) : text).split(/[/?#\\]/)[0]!;
  if (authority.includes('@')) return null;
  if (!authority.startsWith('[') && (authority.match(/:/g) ?? []).length >= 2) authority = `[${authority}]`; // a bare IPv6 address
  let host: string;
  try {
    host = new URL(`http://${authority}`).hostname;
  } catch {
    return null;
  }
  if (host.startsWith('[')) return host.slice(1, -1);
  if (host.endsWith('.')) host = host.slice(0, -1);
  if (host.startsWith('*.')) host = host.slice(2);
  if (IPV4.test(host)) {
    // The URL parser reads "10.1", "010.0.0.1" and "0x0a.0.0.1" as addresses: only the full form is taken.
    const typed = authority.replace(/:\d*$/, '').replace(/\.$/, '');
    return typed === host ? host : null;
  }
  if (host.length > 253) return null;
  const labels = host.split('.');
  return labels.length >= 2 && labels.every((label) => DOMAIN_LABEL.test(label)) ? host : null;
}
