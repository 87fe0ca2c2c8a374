#!/usr/bin/env bash
# Runs the workspace's tests: cargo-nextest when installed, else cargo test.
#
# nextest ends with its own summary line. cargo test ends with one "test result" line per test
# binary, the last of which is usually a doc-test run with 0 tests, so this script closes with
# the totals instead: "tests: N passed, N failed".
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo="${CARGO:-cargo}"

if "$cargo" nextest --version >/dev/null 2>&1; then
    exec "$cargo" nextest run --workspace --no-fail-fast "$@"
fi

echo "run-tests: cargo-nextest is not installed; using cargo test" >&2
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
"$cargo" test --workspace --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { passed += $4; failed += $6 }
     END { printf "tests: %d passed, %d failed\n", passed, failed }' "$log"
exit "$status"
