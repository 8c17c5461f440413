#!/usr/bin/env bash
# A tiny run of sarloop-bench against a real chain, so the benchmark keeps working. It checks that
# every phase (echo, one durable hop, the whole chain at its peak, at half of it and at a light
# load, waiting on watch streams, and a call that does nothing) completed calls or lifecycles and
# wrote its figures, service by service; it asserts nothing about speed.
# Usage: bench_smoke.sh BUILD_DIR. Prints 'N passed, N failed'.
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export SARLOOP_BUILD=${1:?usage: bench_smoke.sh BUILD_DIR}
DIR=$(mktemp -d /tmp/sarloop-bench-XXXXXX)
# A free block of ports that sarloop-local picks (and moves from, should another process take one
# of them first); read back from DIR/base-port once the chain is up.
export SARLOOP_BASE_PORT=auto
cleanup() { "$REPO/deploy/local/sarloop-local" down "$DIR" >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap cleanup EXIT
"$REPO/deploy/local/sarloop-local" up "$DIR" >/dev/null || { echo "0 passed, 1 failed"; exit 1; }
export SARLOOP_BASE_PORT=$(<"$DIR/base-port")
pass=0 fail=0
if "$SARLOOP_BUILD/tools/bench/sarloop-bench" --chain "$DIR" --seconds 1 --concurrency 8 \
  --lifecycles 4 --low-rate 5 --json "$DIR/bench.json"; then
  echo "ok   sarloop-bench ran every phase without errors"; pass=$((pass + 1))
else
  echo "FAIL sarloop-bench exited non-zero"; fail=$((fail + 1))
fi
if /usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
for phase in ("baseline", "durable_hop", "chain_peak", "chain_half_load", "chain_low_load"):
    assert d[phase]["per_s"] > 0 and d[phase]["p99_ms"] >= d[phase]["p50_ms"] > 0, (phase, d)
for phase in ("durable_hop", "chain_peak", "chain_half_load", "chain_low_load"):
    p = d[phase]
    assert 0 < p["ratio_to_baseline"] and p["cpu_ms_per_op"] > 0, (phase, d)
    assert p["commits"] > 0 and p["messages_per_commit"] >= 1, (phase, d)
    assert abs(p["messages_per_commit"] - p["transactions"] / p["commits"]) < 0.01, (phase, d)
    assert p["voluntary_switches_per_op"] > 0, (phase, d)
    # Every process of the chain, the linkage screen included (each SAR is screened on arrival).
    assert len(p["by_service"]) == (1 if phase == "durable_hop" else 9), (phase, d)
    assert phase == "durable_hop" or p["by_service"]["linkage"]["cpu_ms_per_op"] > 0, (phase, d)
    total = sum(s["cpu_ms_per_op"] for s in p["by_service"].values())
    assert abs(total - p["cpu_ms_per_op"]) < 0.01 * p["cpu_ms_per_op"] + 0.01, (phase, d)
    # By thread name over every service: the serving threads, which run the writer (commits
    # included), and the delivery loops are among them; no writer has a thread of its own.
    threads = p["by_thread"]
    assert {"sarloop-serve", "sarloop-deliver"} <= threads.keys(), (phase, threads)
    assert "sarloop-writer" not in threads, (phase, threads)
    assert all(t["cpu_ms_per_op"] >= 0 and t["voluntary_switches_per_op"] >= 0
               for t in threads.values()), (phase, threads)
# Every chain phase times each of the ten steps of a lifecycle, in order (quantiles do not add up to
# the whole lifecycle, so the check is only that each is there and p50 <= p99).
for phase in ("chain_peak", "chain_half_load", "chain_low_load"):
    steps = d[phase]["steps"]
    assert list(steps)[0] == "Ukfiu.SubmitSar" and list(steps)[-1] == "pushed from the register", steps
    assert len(steps) == 10 and all(0 < s["p50_ms"] <= s["p99_ms"] for s in steps.values()), steps
# A call that does nothing, paced and then many in flight: only force-MPS is counted, and it
# answered each call at some CPU and (paced) a wake-up or more between calls.
for phase in ("null_call_paced", "null_call_flood"):
    p = d[phase]
    assert p["per_s"] > 0 and 0 < p["p50_ms"] <= p["p99_ms"] and p["errors"] == 0, (phase, p)
    assert list(p["by_service"]) == ["force-MPS"] and p["cpu_ms_per_op"] > 0, (phase, p)
assert d["null_call_paced"]["voluntary_switches_per_op"] > 0, d["null_call_paced"]
assert d["null_call_rate"] == 170, d["null_call_rate"]
assert len(d["peak_rss_mib"]) == 9 and all(v > 0 for v in d["peak_rss_mib"].values()), d
' "$DIR/bench.json"; then
  echo "ok   the JSON has every figure"; pass=$((pass + 1))
else
  echo "FAIL the JSON: $(cat "$DIR/bench.json" 2>/dev/null)"; fail=$((fail + 1))
fi
echo "$pass passed, $fail failed"
((fail == 0))
