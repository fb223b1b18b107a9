import { BlockList, isIPv4, isIPv6 } from 'node:net';

/** Is a client address inside the school's own networks (for MFA-when-off-site)? */
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
