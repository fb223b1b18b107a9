#!/usr/bin/env bash
# The protective DNS resolver against dnsmasq and unbound under dnsperf (same UT1 lists, same
# local upstream, same queries: half blocked, half allowed). Needs: apt-get install -y dnsmasq unbound dnsperf
# Options go to bench/dns.ts: --names N --seconds S --rounds R --workers N --threads N --rate Q --only gatehouse,unbound
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci
mkdir -p bench/results
exec node --import tsx bench/dns.ts "$@" | tee "bench/results/dns-$(date -u +%Y%m%dT%H%M%SZ).json"
