#!/usr/bin/env bash
# The protective DNS resolver against dnsmasq and unbound under dnsperf (same UT1 lists, same
# local upstream, same queries: half blocked, half allowed). Needs: apt-get install -y dnsmasq unbound dnsperf
# Options go to bench/dns.ts: --names N --seconds S --rounds R --workers N --threads N --rate Q --only gatehouse,unbound
#   --upstream-ttl S --upstream stub|dnsmasq --clients N --outstanding N --regime deep (issue 10: TTL 0 upstream, dnsperf -c 20 -q 2000)
# The side-by-side table (q/s, avg, p99, lost) is printed to stderr at the end; the JSON goes to bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci
npm run --silent build >/dev/null   # measure the compiled code that ships
mkdir -p bench/results
exec node --import tsx bench/dns.ts "$@" | tee "bench/results/dns-$(date -u +%Y%m%dT%H%M%SZ).json"
