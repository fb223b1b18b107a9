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
