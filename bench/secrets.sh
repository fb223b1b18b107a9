#!/usr/bin/env bash
# Stored second factors: recovery-code check cost (HMAC-SHA-256 vs argon2id) and `secret-key rotate`
# time for N authenticator secrets on SQLite and PostgreSQL (TEST_POSTGRES_URL, default the local
# server). Extra arguments go to bench/secrets.ts: --accounts N (default 10000)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci
npm run --silent build:server   # measure the compiled code that ships
exec node --import tsx bench/secrets.ts "$@"
