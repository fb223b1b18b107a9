#!/usr/bin/env bash
# The filtering proxy vs e2guardian under wrk (same UT1 lists, local nginx origin, high local ports).
# Options go to bench/proxy.ts: --duration S --connections N --threads N --rounds N --workers N --ut1 FOLDER --keep
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci
npm run --silent build >/dev/null   # measure the compiled code that ships
missing=()
for tool in nginx e2guardian wrk; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx-light e2guardian wrk
  # The packages may start their own daemons on the default ports; the benchmark starts its own.
  for svc in nginx e2guardian; do (systemctl disable --now "$svc" 2>/dev/null || service "$svc" stop 2>/dev/null) >/dev/null || true; done
fi
mkdir -p bench/results
exec node --import tsx bench/proxy.ts "$@" | tee "bench/results/proxy-$(date -u +%Y%m%dT%H%M%SZ).json"
