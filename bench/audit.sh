#!/usr/bin/env bash
# Audit trail append and verify throughput on SQLite and PostgreSQL (TEST_POSTGRES_URL, default
# the local server). Extra arguments go to bench/audit.ts: --events N --batch N --single N --rounds N
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci
npm run --silent build:server   # measure the compiled code that ships
exec node --import tsx bench/audit.ts "$@"
