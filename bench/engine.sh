#!/usr/bin/env bash
# The filter decision engine on one core (UT1 lists + 2,000,000 generated names).
# Options go to bench/engine.ts: --generated N --decisions N --rounds N --ut1 FOLDER
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci
mkdir -p bench/results
exec node --expose-gc --import tsx bench/engine.ts "$@" | tee "bench/results/engine-$(date -u +%Y%m%dT%H%M%SZ).json"
