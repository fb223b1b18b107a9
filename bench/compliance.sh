#!/usr/bin/env bash
# The compliance dashboard (GV-08): time to evaluate every framework for 5,000 devices, 1,500 people,
# 50,000 audit events and 200,000 activity rows, on SQLite and PostgreSQL (TEST_POSTGRES_URL, default
# the local server). Aim: under 200 ms on SQLite. Extra arguments go to bench/compliance.ts:
# --devices N --people N --events N --activity N
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci
npm run --silent build:server   # measure the compiled code that ships
exec node --import tsx bench/compliance.ts "$@"
