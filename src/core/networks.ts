import { BlockList, isIP, isIPv4, isIPv6 } from 'node:net';
import { ipv6Bytes } from './address-ranges.js';

/**
 * The networks the filtering proxy and DNS resolver serve by default: this machine and the private
 * ranges a school LAN uses (RFC 1918, carrier-grade NAT, IPv6 unique-local and link-local). A public
 * address is refused, so a resolver or proxy left listening on 0.0.0.0 is never an open one.
 */
export const DEFAULT_FILTER_CLIENT_NETWORKS = [
  '127.0.0.0/8',
  '::1/128',
  '10.0.0.0/8',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '100.64.0.0/10',
  'fc00::/7',
  'fe80::/10',
];

/** "10.0.0.0/8, fd00::/8" → the list, or null when any part is not a network in CIDR form. */
export function parseCidrList(text: string): string[] | null {
  const parts = text.split(',').map((p) => p.trim()).filter(Boolean);
  if (parts.length === 0) return null;
  for (const part of parts) {
    const match = /^([0-9A-Fa-f:.]+)\/(\d{1,3})$/.exec(part);
    if (!match) return null;
    const family = isIP(match[1]!);
    const bits = Number(match[2]);
    if (family === 0 || bits > (family === 4 ? 32 : 128)) return null;
  }
  return parts;
}

/**
 * "10.0.0.5, 10.1.0.0/24, fd00::7" → CIDRs ("10.0.0.5/32", …): single addresses or networks, for
 * settings that name a few hosts (the reverse proxies in front of Gatehouse); null when any part is
 * neither.
 */
export function parseAddressList(text: string): string[] | null {
  const parts = text.split(',').map((p) => p.trim()).filter(Boolean);
  if (parts.length === 0) return null;
  const cidrs = parts.map((part) => {
    const family = isIP(part);
    return family === 4 ? `${part}/32` : family === 6 ? `${part}/128` : part;
  });
  return parseCidrList(cidrs.join(','));
}

/** A set of networks; `contains` answers for an address (IPv4-mapped IPv6 read as IPv4). */
export class TrustedNetworks {
  private readonly list = new BlockList();
  readonly empty: boolean;

  constructor(cidrs: string[]) {
    for (const cidr of cidrs) {
      const [address, bits] = cidr.split('/') as [string, string];
      this.list.addSubnet(address, Number(bits), isIPv6(address) ? 'ipv6' : 'ipv4');
    }
    this.empty = cidrs.length === 0;
  }

  contains(ip: string | null | undefined): boolean {
    if (!ip) return false;
    const plain = ip.startsWith('::ffff:') && isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
    if (isIPv4(plain)) return this.list.check(plain, 'ipv4');
    if (isIPv6(plain)) return this.list.check(plain, 'ipv6');
    return false;
  }
}

/**
 * The start-up warning of a filter service (the proxy, the DNS resolver) that listens on every
 * interface while serving the default networks: nobody named the school's own, so any device in any
 * private range that can reach this machine may use it. Null when there is nothing to say.
 */
export function everyInterfaceWarning(service: string, host: string, networks: string[]): string | null {
  const everywhere = host === '0.0.0.0' || host === '::' || host === '::0' || host === '0:0:0:0:0:0:0:0';
  if (!everywhere || !sameNetworks(networks, DEFAULT_FILTER_CLIENT_NETWORKS)) return null;
  return `${service} listens on every interface (${host}) and serves devices in the default networks ${networks.join(', ')}; name the school's own networks with GATEHOUSE_FILTER_CLIENT_NETWORKS (or --client-networks) so nothing else can use it`;
}

function sameNetworks(a: string[], b: string[]): boolean {
  return a.length === b.length && [...a].sort().join(',') === [...b].sort().join(',');
}

/** "::ffff:10.0.0.7" (either spelling) → "10.0.0.7"; any other address unchanged. */
export function plainAddress(ip: string): string {
  if (!ip.includes(':')) return ip;
  const bytes = ipv6Bytes(ip);
  if (bytes === null) return ip;
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return ip;
  if (bytes[10] !== 0xff || bytes[11] !== 0xff) return ip;
  return `${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
}

/**
 * One key per client for counting requests: an IPv4 address, or the /64 network of an IPv6 one. A
 * home or a device is given a whole /64, so counting single IPv6 addresses would let one client
 * rotate through billions of them.
 */
export function clientKey(ip: string): string {
  const plain = plainAddress(ip);
  const bytes = plain.includes(':') ? ipv6Bytes(plain) : null;
  if (bytes === null) return plain;
  const groups: string[] = [];
  for (let i = 0; i < 8; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return `${groups.join(':')}::/64`;
}
