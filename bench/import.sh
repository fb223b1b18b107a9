#!/usr/bin/env bash
# Importing 10,000 people from CSV (dry run and commit) on SQLite and PostgreSQL (TEST_POSTGRES_URL,
# default the local server), a fresh database each round. Options go to bench/import.ts:
# --people N --rounds N --no-cli
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci
npm run --silent build:server   # measure the compiled code that ships
exec node --import tsx bench/import.ts "$@"
