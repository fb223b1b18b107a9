/** Types and helpers shared by the filtering pages (the API's shapes). */

export interface Schedule {
  categories: string[];
  days: number[];
  from: string;
  to: string;
  label?: string;
}

export interface Policy {
  id: string;
  kind: 'role' | 'group' | 'unknown';
  groupId: string | null;
  name: string;
  priority: number;
  blockedCategories: string[];
  schedules: Schedule[];
  allowLists: 'all' | string[];
  blockLists: 'all' | string[];
  safeSearch: 'on' | 'off';
  youtube: 'off' | 'moderate' | 'strict';
  downloadsAllowed: boolean;
  defaultAction: 'allow' | 'block';
  edited: boolean;
  updatedAt: string | null;
}

export interface Category {
  id: string;
  name: string;
  description: string;
  kind: 'category' | 'illegal' | 'allow' | 'block';
  domains: number;
  urls: number;
  source: string;
}

export interface PoliciesResponse {
  policies: Policy[];
  categories: Category[];
  groups: Array<{ id: string; name: string; kind: string }>;
  warnings: string[];
}

export interface Source {
  id: string;
  name: string;
  slug: string;
  format: 'ut1' | 'domains' | 'hosts' | 'adblock';
  location: string | null;
  kind: 'category' | 'illegal' | 'allow' | 'block';
  description: string | null;
  scheduleHours: number;
  enabled: boolean;
  editable: boolean;
  lastFetchedAt: string | null;
  lastResult: string | null;
  lastError: string | null;
  currentAt: string | null;
  entries: number;
  bytes: number;
  categoryCount: number;
  stale: boolean;
  held: { at: string; entries: number } | null;
}

export const when = (iso: string | null) =>
  iso ? new Date(iso).toLocaleString('en-GB', { day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit' }) : '—';

export const count = (n: number) => n.toLocaleString('en-GB');

export function age(iso: string | null): string {
  if (!iso) return 'never';
  const ms = Date.now() - Date.parse(iso);
  if (ms < 60_000) return 'just now';
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 90) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ago`;
  return `${Math.floor(hours / 24)} days ago`;
}

export const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
export const KIND_LABELS: Record<Source['kind'], string> = {
  category: 'Categories',
  illegal: 'Illegal content',
  allow: 'School allow list',
  block: 'School block list',
};

/**
 * The host a person means by a web address, domain name or IP address ("https://www.bbc.co.uk/bitesize",
 * "bbc.co.uk", "*.example.com", "10.1.20.5"), or null when it cannot be one: a domain name needs at
 * least two labels of letters, digits, hyphens and underscores (1–63 characters, no hyphen at either
 * end); an IPv4 address is written in full; no spaces, e-mail addresses or user names. The same rules
 * as the server's `hostFromInput` (src/filtering/lists-service.ts), which decides in the end; a test
 * (test/filtering/site-input.test.ts) holds the two together.
 */
export function hostOf(raw: string): string | null {
  const text = raw.trim();
  if (!text || /\s/.test(text)) return null;
  let authority = (/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text.slice(text.indexOf('://') + 3) : text).split(/[/?#\\]/)[0]!;
  if (authority.includes('@')) return null;
  if (!authority.startsWith('[') && (authority.match(/:/g) ?? []).length >= 2) authority = `[${authority}]`;
  let host: string;
  try {
    host = new URL(`http://${authority}`).hostname;
  } catch {
    return null;
  }
  if (host.startsWith('[')) return host.slice(1, -1);
  if (host.endsWith('.')) host = host.slice(0, -1);
  if (host.startsWith('*.')) host = host.slice(2);
  // The URL parser reads "10.1" and "010.0.0.1" as addresses: only the full form is taken.
  if (IPV4.test(host)) return authority.replace(/:\d*$/, '').replace(/\.$/, '') === host ? host : null;
  if (host.length > 253) return null;
  const labels = host.split('.');
  return labels.length >= 2 && labels.every((label) => /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/.test(label)) ? host : null;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export function isIpAddress(text: string): boolean {
  const t = text.trim();
  if (IPV4.test(t)) return true;
  if (!t.includes(':') || !/^[0-9a-f:.]+$/i.test(t)) return false;
  try {
    new URL(`http://[${t}]/`);
    return true;
  } catch {
    return false;
  }
}

/** An address or a network like 10.1.20.0/24 (what a device is registered by). */
export function isAddressOrNetwork(text: string): boolean {
  const [ip, bits, extra] = text.trim().split('/');
  if (extra !== undefined || !ip || !isIpAddress(ip)) return false;
  if (bits === undefined) return true;
  const max = ip.includes(':') ? 128 : 32;
  return /^\d{1,3}$/.test(bits) && Number(bits) >= 1 && Number(bits) <= max;
}

export const isMacAddress = (text: string) => /^([0-9a-f]{2}[:-]){5}[0-9a-f]{2}$/i.test(text.trim());

/** The category's name for people ("Gambling/Casino games"), or its id when no list names it. */
export const categoryName = (categories: Category[] | null | undefined, id: string | null) => (id ? categories?.find((c) => c.id === id)?.name ?? id : null);
