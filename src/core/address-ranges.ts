import { BlockList, isIP, isIPv4 } from 'node:net';

/**
 * What kind of network address this is, for deciding whether the server may connect to it on an
 * administrator's say-so (a list download): the public internet, or one of the special-purpose
 * ranges (IANA's IPv4 and IPv6 special-purpose registries) that reach this machine, its LAN or its
 * cloud's metadata service. IPv6 forms that carry an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`,
 * IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged by that address.
 */

export type AddressKind = 'public' | 'unspecified' | 'loopback' | 'link-local' | 'metadata' | 'private' | 'shared' | 'unique-local' | 'multicast' | 'reserved';

/** The kinds never reached whatever an allow list says (0.0.0.0 means this machine; metadata hands out cloud credentials). */
const NEVER: ReadonlySet<AddressKind> = new Set(['unspecified', 'multicast', 'metadata']);
/** The kinds a host name on the allow list may resolve to (the school's LAN), never this machine or link-local. */
const LAN: ReadonlySet<AddressKind> = new Set(['private', 'shared', 'unique-local']);

export const addressKindWords: Record<Exclude<AddressKind, 'public'>, string> = {
  unspecified: 'the unspecified address (0.0.0.0 or ::, which reaches this machine)',
  loopback: 'an address of this machine (loopback)',
  'link-local': 'a link-local address (169.254.0.0/16 or fe80::/10)',
  metadata: 'a cloud metadata address',
  private: 'a private network address (10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16)',
  shared: 'a carrier-grade NAT address (100.64.0.0/10)',
  'unique-local': 'a private IPv6 address (fc00::/7)',
  multicast: 'a multicast or broadcast address',
  reserved: 'a reserved address (documentation, benchmarking, Teredo or future use)',
};

/** Cloud metadata services (AWS, GCP, Azure, Oracle: 169.254.169.254; ECS; Alibaba; Azure's wire server; AWS over IPv6). */
const METADATA_ADDRESSES = new Set(['169.254.169.254', '169.254.170.2', '169.254.170.23', '100.100.100.200', '168.63.129.16', 'fd00:ec2::254', 'fd00:ec2::23']);
const METADATA_V6 = new Set([...METADATA_ADDRESSES].filter((a) => a.includes(':')).map((a) => Buffer.from(ipv6Bytes(a)!).toString('hex')));
/** Names of metadata services, refused before any lookup. */
export const METADATA_NAMES = new Set(['metadata', 'metadata.google.internal', 'metadata.goog', 'instance-data', 'instance-data.ec2.internal', 'metadata.azure.internal', 'metadata.tencentyun.com']);

const V4: Array<[string, number, AddressKind]> = [
  ['0.0.0.0', 8, 'unspecified'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local'],
  ['10.0.0.0', 8, 'private'],
  ['172.16.0.0', 12, 'private'],
  ['192.168.0.0', 16, 'private'],
  ['100.64.0.0', 10, 'shared'],
  ['192.0.0.0', 24, 'reserved'],
  ['192.0.2.0', 24, 'reserved'],
  ['198.51.100.0', 24, 'reserved'],
  ['203.0.113.0', 24, 'reserved'],
  ['198.18.0.0', 15, 'reserved'],
  ['192.88.99.0', 24, 'reserved'],
  ['224.0.0.0', 4, 'multicast'],
  ['255.255.255.255', 32, 'multicast'],
  ['240.0.0.0', 4, 'reserved'],
];
const V6: Array<[string, number, AddressKind]> = [
  ['::', 128, 'unspecified'],
  ['::1', 128, 'loopback'],
  ['fe80::', 10, 'link-local'],
  ['fec0::', 10, 'reserved'],
  ['fc00::', 7, 'unique-local'],
  ['ff00::', 8, 'multicast'],
  ['2001:db8::', 32, 'reserved'],
  ['2001::', 32, 'reserved'],
  ['2001:10::', 28, 'reserved'],
  ['2001:20::', 28, 'reserved'],
  ['100::', 64, 'reserved'],
  ['64:ff9b:1::', 48, 'reserved'],
];

function blockLists(ranges: Array<[string, number, AddressKind]>, family: 'ipv4' | 'ipv6'): Array<[BlockList, AddressKind]> {
  return ranges.map(([address, bits, kind]) => {
    const list = new BlockList();
    list.addSubnet(address, bits, family);
    return [list, kind];
  });
}
const v4Lists = blockLists(V4, 'ipv4');
const v6Lists = blockLists(V6, 'ipv6');

/** The 16 bytes of an IPv6 address (zone id dropped), or null when it is not one. */
export function ipv6Bytes(text: string): Uint8Array | null {
  let address = text.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  if (isIP(address) !== 6) return null;
  const out = new Uint8Array(16);
  // An IPv4 tail (::ffff:1.2.3.4) becomes two groups.
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(address);
  if (tail) {
    const [a, b, c, d] = tail[1]!.split('.').map(Number) as [number, number, number, number];
    address = `${address.slice(0, tail.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, rest] = address.includes('::') ? (address.split('::') as [string, string]) : [address, null];
  const left = head ? head.split(':') : [];
  const right = rest === null ? [] : rest ? rest.split(':') : [];
  const groups = rest === null ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  if (groups.length !== 8) return null;
  groups.forEach((g, i) => {
    const n = parseInt(g, 16);
    out[i * 2] = n >> 8;
    out[i * 2 + 1] = n & 255;
  });
  return out;
}

const dotted = (b: Uint8Array, at: number) => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;

/** The IPv4 address an IPv6 address carries (mapped, compatible, SIIT, NAT64, 6to4), or null. */
export function embeddedIpv4(address: string): string | null {
  const b = ipv6Bytes(address);
  if (!b) return null;
  const zero = (from: number, to: number) => b.subarray(from, to).every((x) => x === 0);
  // ::ffff:a.b.c.d (mapped) and ::ffff:0:a.b.c.d (SIIT)
  if (zero(0, 10) && b[10] === 0xff && b[11] === 0xff) return dotted(b, 12);
  if (zero(0, 8) && b[8] === 0xff && b[9] === 0xff && zero(10, 12)) return dotted(b, 12);
  // ::a.b.c.d (compatible, deprecated), not :: or ::1
  if (zero(0, 12) && !(zero(12, 15) && (b[15] === 0 || b[15] === 1))) return dotted(b, 12);
  // 64:ff9b::a.b.c.d (NAT64, well-known prefix)
  if (b[0] === 0 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && zero(4, 12)) return dotted(b, 12);
  // 2002:aabb:ccdd::/48 (6to4)
  if (b[0] === 0x20 && b[1] === 0x02) return dotted(b, 2);
  return null;
}

/** The address as one form: an IPv4 address for any IPv6 form that carries one, else itself (lower case, no brackets or zone). */
export function canonicalAddress(address: string): string {
  const plain = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '').toLowerCase();
  return isIPv4(plain) ? plain : embeddedIpv4(plain) ?? plain;
}

export function addressKind(address: string): AddressKind {
  const plain = canonicalAddress(address);
  if (METADATA_ADDRESSES.has(plain)) return 'metadata';
  const family = isIP(plain);
  if (family === 4) return v4Lists.find(([list]) => list.check(plain, 'ipv4'))?.[1] ?? 'public';
  if (family === 6) {
    if (METADATA_V6.has(Buffer.from(ipv6Bytes(plain)!).toString('hex'))) return 'metadata';
    return v6Lists.find(([list]) => list.check(plain, 'ipv6'))?.[1] ?? 'public';
  }
  return 'reserved';
}

// --- The allow list for outgoing fetches ------------------------------------------------------------

export interface AllowList {
  /** as written, for messages */
  entries: string[];
  networks: BlockList;
  hosts: Set<string>;
}

const HOST = /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

/**
 * "10.20.0.0/16, 192.168.5.10, lists.school.internal" → the allow list, or the problem with it.
 * A network must be /8 or narrower (IPv6: /7): the school's own, not the internet.
 */
export function parseListAllowList(text: string | undefined): { allow: AllowList; problem: string | null } {
  const allow: AllowList = { entries: [], networks: new BlockList(), hosts: new Set() };
  if (!text) return { allow, problem: null };
  for (const raw of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const m = /^([0-9A-Fa-f:.]+)(?:\/(\d{1,3}))?$/.exec(raw);
    const family = m ? isIP(m[1]!) : 0;
    if (m && family !== 0) {
      const bits = m[2] === undefined ? (family === 4 ? 32 : 128) : Number(m[2]);
      if (bits > (family === 4 ? 32 : 128)) return { allow, problem: `${raw} is not a network: the prefix is too long` };
      if (bits < (family === 4 ? 8 : 7)) return { allow, problem: `${raw} is too wide: give the school’s own networks (/8 or narrower; IPv6 /7 or narrower)` };
      if (NEVER.has(addressKind(m[1]!))) return { allow, problem: `${raw} is ${addressKindWords[addressKind(m[1]!) as 'metadata']}, which lists are never fetched from` };
      allow.networks.addSubnet(m[1]!, bits, family === 4 ? 'ipv4' : 'ipv6');
      allow.entries.push(raw);
      continue;
    }
    const host = raw.toLowerCase().replace(/\.$/, '');
    if (!HOST.test(host)) return { allow, problem: `${raw} is neither a network in CIDR form (10.20.0.0/16), an address nor a host name` };
    if (METADATA_NAMES.has(host)) return { allow, problem: `${raw} is a cloud metadata service, which lists are never fetched from` };
    allow.hosts.add(host);
    allow.entries.push(host);
  }
  return { allow, problem: null };
}

/**
 * Why the server must not connect to `address` for a download asked for by the name `host`, or null
 * when it may: a public address; a network on the allow list; a private LAN address reached by a
 * host name on the allow list. Unspecified, multicast and metadata addresses never.
 */
export function refusedAddress(address: string, host: string | null, allow: AllowList): string | null {
  const kind = addressKind(address);
  if (kind === 'public') return null;
  if (NEVER.has(kind)) return addressKindWords[kind];
  const plain = canonicalAddress(address);
  if (allow.networks.check(plain, isIPv4(plain) ? 'ipv4' : 'ipv6')) return null;
  if (host !== null && LAN.has(kind) && allow.hosts.has(host.toLowerCase().replace(/\.$/, ''))) return null;
  return addressKindWords[kind];
}
