/**
 * The proxy auto-configuration file devices fetch (set by hand, by MDM, or found by WPAD): local
 * and private destinations go direct, everything else through the filtering proxy. There is no
 * "; DIRECT" fallback on purpose — if the proxy is down, browsing stops rather than going
 * unfiltered (FI-01). Names are not resolved (dnsResolve would cost a lookup per request): the
 * school's intranet domains are listed instead.
 */

export interface PacInput {
  /** host:port devices use for the proxy */
  proxy: string;
  /** domains (and their subdomains) that go direct: the school's intranet, Gatehouse itself */
  directDomains: string[];
  /** hosts that go direct exactly (the Gatehouse console, so the block page's links always work) */
  directHosts: string[];
}

/** Private, loopback, link-local and shared (CGNAT) IPv4 ranges. */
const PRIVATE_V4: Array<[string, string]> = [
  ['10.0.0.0', '255.0.0.0'],
  ['172.16.0.0', '255.240.0.0'],
  ['192.168.0.0', '255.255.0.0'],
  ['127.0.0.0', '255.0.0.0'],
  ['169.254.0.0', '255.255.0.0'],
  ['100.64.0.0', '255.192.0.0'],
];

const quote = (s: string) => JSON.stringify(s.toLowerCase());

export function pacFile(input: PacInput): string {
  const domains = [...new Set(input.directDomains.map((d) => d.trim().replace(/^\*?\./, '').toLowerCase()).filter(Boolean))];
  const hosts = [...new Set(input.directHosts.map((h) => h.trim().toLowerCase()).filter(Boolean))];
  return `// Gatehouse web filter: proxy auto-configuration (PAC).
// Local and private destinations go direct; everything else goes through the school's web filter.
function FindProxyForURL(url, host) {
  host = host.toLowerCase();
  if (isPlainHostName(host) || host === "localhost" || dnsDomainIs(host, ".local") || dnsDomainIs(host, ".localhost")) return "DIRECT";
  var hosts = [${hosts.map(quote).join(', ')}];
  for (var i = 0; i < hosts.length; i++) if (host === hosts[i]) return "DIRECT";
  var domains = [${domains.map(quote).join(', ')}];
  for (var j = 0; j < domains.length; j++) if (host === domains[j] || dnsDomainIs(host, "." + domains[j])) return "DIRECT";
  if (/^\\d{1,3}(\\.\\d{1,3}){3}$/.test(host)) {
${PRIVATE_V4.map(([net, mask]) => `    if (isInNet(host, "${net}", "${mask}")) return "DIRECT";`).join('\n')}
  }
  var v6 = host.replace(/^\\[|\\]$/g, "");
  if (v6.indexOf(":") !== -1 && (v6 === "::1" || /^f[cd][0-9a-f]{0,2}:/.test(v6) || /^fe[89ab][0-9a-f]:/.test(v6))) return "DIRECT";
  return "PROXY ${input.proxy}";
}
`;
}
