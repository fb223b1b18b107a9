#!/usr/bin/env bash
# Alerts end to end (FI-11, MO-02): dnsperf at 1,000 q/s against the built server's resolver, a share
# of concerning names; p50/p99 from the resolver receiving the query to the SMTP sink receiving the
# alert's mail. Needs dnsperf and `npm run build`. Options go to bench/alerts.ts:
#   --rate Q --seconds S --concern FRACTION --dialect sqlite|postgres
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f dist/main.js ] || npm run build
mkdir -p bench/results
exec node --import tsx bench/alerts.ts "$@" | tee "bench/results/alerts-$(date -u +%Y%m%dT%H%M%SZ).json"
