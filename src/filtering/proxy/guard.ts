import dns from 'node:dns';
import net, { type LookupFunction, type Socket } from 'node:net';
import os from 'node:os';
import { addressKind, addressKindWords, canonicalAddress, type AddressKind } from '../../core/address-ranges.js';
import { plainAddress, TrustedNetworks } from '../../core/networks.js';

/**
 * Where the filtering proxy may connect (issue 10, finding 9). A forward proxy on the school
 * network reaches whatever it is asked to, so without this any device could use it to reach this
 * machine's own services (it bypassed the /metrics loopback guard), the cloud metadata address, or
 * anything bound to loopback. Refused, whatever the filter's verdict:
 *
 * - loopback, link-local (with 169.254.169.254), unspecified, multicast, reserved and broadcast
 *   addresses, and the metadata addresses of the common clouds;
 * - every address of this server: each interface's (read again every 30 s) and the listening ones;
 * - IPv6 forms that carry one of those IPv4 addresses (IPv4-mapped and -compatible, NAT64, 6to4);
 * - the networks an operator adds (GATEHOUSE_PROXY_REFUSED_DESTINATIONS), e.g. the private ranges.
 *
 * Private ranges (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7) are a school's intranet and are
 * allowed unless refused. GATEHOUSE_PROXY_ALLOWED_DESTINATIONS names exceptions that win over
 * every rule. Names are checked after resolution, and the connection is made to an address that
 * was checked (the lookup given to net.connect returns only those), so a name that resolves to a
 * public address when checked and to 127.0.0.1 when connecting (DNS rebinding) cannot switch it.
 */

/**
 * The kinds of address (core/address-ranges.ts, IANA's special-purpose registries) never reached
 * unless GATEHOUSE_PROXY_ALLOWED_DESTINATIONS names them. Private, carrier-grade NAT and unique-local
 * ranges are the school's intranet: allowed unless GATEHOUSE_PROXY_REFUSED_DESTINATIONS refuses them.
 */
const REFUSED_KINDS: ReadonlySet<AddressKind> = new Set(['unspecified', 'loopback', 'link-local', 'metadata', 'multicast', 'reserved']);

export class DestinationRefused extends Error {
  readonly code = 'EDESTREFUSED';
  constructor(
    readonly destination: string,
    readonly address: string,
    readonly reason: string,
  ) {
    super(destination === address ? `${address} is ${reason}` : `${destination} resolves to ${address}, ${reason}`);
  }
}

export interface DestinationRules {
  /** networks (CIDR) reachable even where a rule refuses them: they win over every rule */
  allowed?: string[] | undefined;
  /** networks (CIDR) refused besides the built-in ones */
  refused?: string[] | undefined;
  /** this server's addresses besides its interfaces' (where it listens) */
  ownAddresses?: string[] | undefined;
  /** how names resolve (default: dns.lookup, as net.connect would) */
  lookup?: LookupFunction | undefined;
}

const INTERFACES_TTL_MS = 30_000;

export class DestinationGuard {
  private readonly allowed: TrustedNetworks;
  private readonly refused: TrustedNetworks;
  private readonly extraOwn = new Set<string>();
  private own = new Set<string>();
  private ownReadAt = -Infinity;
  private readonly resolve: LookupFunction;

  constructor(private readonly rules: DestinationRules = {}) {
    this.allowed = new TrustedNetworks(rules.allowed ?? []);
    this.refused = new TrustedNetworks(rules.refused ?? []);
    for (const address of rules.ownAddresses ?? []) this.addOwnAddress(address);
    this.resolve = rules.lookup ?? (dns.lookup as LookupFunction);
  }

  /** Adds an address this server listens on (an unspecified one means every interface: already counted). */
  addOwnAddress(address: string): void {
    if (net.isIP(address)) this.extraOwn.add(plainAddress(address).toLowerCase());
  }

  /** Why an address may not be reached, or null when it may. */
  check(ip: string): string | null {
    const address = plainAddress(ip.split('%')[0]!).toLowerCase();
    if (net.isIP(address) === 0) return 'not an address';
    if (this.allowed.contains(address)) return null;
    const reason = this.ruleFor(address);
    if (reason !== null) return reason;
    if (this.isOwn(address)) return 'an address of this server';
    if (this.refused.contains(address)) return 'in a network this school keeps out of reach (GATEHOUSE_PROXY_REFUSED_DESTINATIONS)';
    return null;
  }

  /** The built-in networks the allowed list opens, for a warning at start. */
  opened(): string[] {
    return (this.rules.allowed ?? []).filter((cidr) => {
      const [address] = cidr.split('/') as [string];
      return this.ruleFor(address) !== null || this.isOwn(address);
    });
  }

  private ruleFor(address: string): string | null {
    // An IPv6 form carrying an IPv4 address (mapped, NAT64, 6to4…) is judged by that address.
    const inner = canonicalAddress(address);
    const written = inner !== address.toLowerCase() ? ', written as IPv6' : '';
    if (written && this.allowed.contains(inner)) return null;
    const kind = addressKind(address);
    if (kind !== 'public' && REFUSED_KINDS.has(kind)) return `${addressKindWords[kind]}${written}`;
    if (written && this.isOwn(inner)) return `an address of this server${written}`;
    return null;
  }

  private isOwn(address: string): boolean {
    if (this.extraOwn.has(address)) return true;
    const now = performance.now();
    if (now - this.ownReadAt > INTERFACES_TTL_MS) {
      const own = new Set<string>();
      for (const list of Object.values(os.networkInterfaces())) {
        for (const entry of list ?? []) own.add(plainAddress(entry.address.split('%')[0]!).toLowerCase());
      }
      this.own = own;
      this.ownReadAt = now;
    }
    return this.own.has(address);
  }

  /** A lookup for net.connect that resolves, drops refused addresses, and fails when none is left. */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    const cb = callback as (error: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;
    this.resolve(hostname, { ...options, all: true }, (error, found) => {
      if (error) return cb(error, '', 0);
      const list = (Array.isArray(found) ? found : [{ address: found as string, family: net.isIP(found as string) }]) as dns.LookupAddress[];
      const usable: dns.LookupAddress[] = [];
      let refusal: DestinationRefused | null = null;
      for (const entry of list) {
        const reason = this.check(entry.address);
        if (reason === null) usable.push(entry);
        else refusal ??= new DestinationRefused(hostname, entry.address, reason);
      }
      if (usable.length === 0) return cb(refusal ?? Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), '', 0);
      if ((options as dns.LookupOptions).all) return cb(null, usable);
      return cb(null, usable[0]!.address, usable[0]!.family);
    });
  };

  /** net.connect to host:port through these rules; a refusal arrives as the socket's 'error'. */
  connect(options: { host: string; port: number; noDelay?: boolean }): Socket {
    if (net.isIP(options.host) !== 0) {
      const reason = this.check(options.host);
      if (reason !== null) {
        const socket = new net.Socket();
        process.nextTick(() => socket.destroy(new DestinationRefused(options.host, options.host, reason)));
        return socket;
      }
      return net.connect(options);
    }
    return net.connect({ ...options, lookup: this.lookup });
  }
}
