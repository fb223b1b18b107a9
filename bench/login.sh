#!/usr/bin/env bash
# The morning rush against a running server on SQLite, beside the raw argon2id verify rate.
# Options go to bench/login.ts: --accounts N --seconds S --capacity-seconds S
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci
npm run --silent build >/dev/null   # the server and console as they ship
exec node --import tsx bench/login.ts "$@"
