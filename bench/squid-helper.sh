#!/usr/bin/env bash
# gatehouse squid-helper as Squid runs it: start-up to the first answer (small policy file, UT1
# lists; the full CLI for comparison) and answers per second over one pipe with channel IDs.
# Options go to bench/squid-helper.ts: --rounds N --requests N --ut1 FOLDER
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci
npm run --silent build:server   # measure the compiled code Squid starts
mkdir -p bench/results
exec node --import tsx bench/squid-helper.ts "$@" | tee "bench/results/squid-helper-$(date -u +%Y%m%dT%H%M%SZ).json"
