#!/usr/bin/env bash
# The fuzz properties of test/fuzz/ (DNS parser, proxy request parser, SCIM filter parser, CSV
# importer), run for longer than `npm test` gives them. Usage: bench/fuzz.sh [SECONDS_PER_PROPERTY]
# (default 120). Prints each property's number of runs; a failure prints the seed and path to replay:
#   GATEHOUSE_FUZZ_SEED=… GATEHOUSE_FUZZ_PATH=… npx vitest run test/fuzz
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-120}"
GATEHOUSE_FUZZ_SECONDS="$seconds" GATEHOUSE_FUZZ_REPORT=1 npx vitest run test/fuzz --reporter=verbose --maxWorkers=1 2>&1 | tee /dev/stderr | grep '^fuzz:' || true
