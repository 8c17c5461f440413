#!/usr/bin/env bash
# A tiny run of sarloop-bench against a real chain, so the benchmark keeps working. It checks that
# both phases completed calls and wrote their figures; it asserts nothing about speed.
# Usage: bench_smoke.sh BUILD_DIR. Prints 'N passed, N failed'.
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export SARLOOP_BUILD=${1:?usage: bench_smoke.sh BUILD_DIR}
DIR=$(mktemp -d /tmp/sarloop-bench-XXXXXX)
# 65000-65492: clear of the other scripts' ranges (cli and sta 60000-60972, interop and browser
# 61000-64990, the gtest chains 20000-59900).
export SARLOOP_BASE_PORT=${SARLOOP_BASE_PORT:-$((65000 + RANDOM % 5 * 100))}
cleanup() { "$REPO/deploy/local/sarloop-local" down "$DIR" >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap cleanup EXIT
"$REPO/deploy/local/sarloop-local" up "$DIR" >/dev/null || { echo "0 passed, 1 failed"; exit 1; }
pass=0 fail=0
if "$SARLOOP_BUILD/tools/bench/sarloop-bench" --chain "$DIR" --seconds 1 --concurrency 8 \
  --json "$DIR/bench.json"; then
  echo "ok   sarloop-bench ran both phases without errors"; pass=$((pass + 1))
else
  echo "FAIL sarloop-bench exited non-zero"; fail=$((fail + 1))
fi
if /usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["baseline"]["rps"] > 0 and d["durable_hop"]["rps"] > 0, d
assert 0 < d["durable_hop"]["ratio_to_baseline"], d
assert d["durable_hop"]["ukfiu_peak_rss_mib"] > 0, d
' "$DIR/bench.json"; then
  echo "ok   the JSON has every figure"; pass=$((pass + 1))
else
  echo "FAIL the JSON: $(cat "$DIR/bench.json" 2>/dev/null)"; fail=$((fail + 1))
fi
echo "$pass passed, $fail failed"
((fail == 0))
