/** Types and helpers shared by the filtering pages (the API's shapes). */

import { hostFromInput, IPV4 } from '../../../src/filtering/site-input.js';

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
 * "bbc.co.uk", "*.example.com", "10.1.20.5"), or null when it cannot be one: the server's own rules
 * (src/filtering/site-input.ts, which imports nothing, so Vite bundles it here as it is), so the form
 * refuses exactly what the API would.
 */
export { hostFromInput as hostOf };

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
