#!/usr/bin/env bash
# Before and after in one script on one machine: the same sarloop-bench against two local chains.
#
#   tools/bench/group_commit_compare.sh [BUILD_DIR] [sarloop-bench flags...]
#     before: BUILD_DIR's services with serial commits (every write its own fsync, handlers on
#     gRPC's threads, as before group commit); after: the same services with group commit (the
#     default).
#   SARLOOP_BEFORE_BUILD=OTHER_BUILD_DIR tools/bench/group_commit_compare.sh [BUILD_DIR] [flags...]
#     before: OTHER_BUILD_DIR's services (an earlier commit, built alike); after: BUILD_DIR's;
#     both with the default settings. The benchmark itself is BUILD_DIR's in both halves.
#   SARLOOP_BEFORE_INFORM_WITHIN_MS=N tools/bench/group_commit_compare.sh [BUILD_DIR] [flags...]
#     before: BUILD_DIR's services with delivery.inform_within_ms N (-1: every message leaves at
#     once); after: the same services with the default. With SARLOOP_BEFORE_BUILD too, the
#     before half is that build with N.
#
# Prints both tables and writes before.json and after.json to the current directory.
#
# SARLOOP_ROUNDS=N (default 1) runs N rounds, before then after in odd rounds and after then
# before in even ones (use an even N), and writes
# before-K.json and after-K.json for round K. On a VM whose speed drifts from minute to minute
# (the echo baseline has moved by half within one run) one pair is not enough to tell a change
# from the drift; the script ends with each round's main figures and their means, then the
# means at 10/s step by step and thread by thread.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
AFTER_BUILD=${1:-$REPO/build}
shift || true
BENCH=$AFTER_BUILD/tools/bench/sarloop-bench
[[ -x $BENCH ]] || { echo "group_commit_compare: $BENCH not built" >&2; exit 1; }
BEFORE_BUILD=${SARLOOP_BEFORE_BUILD:-}
if [[ -n $BEFORE_BUILD && ! -x $BEFORE_BUILD/services/ukfiu/sarloop-ukfiu ]]; then
  echo "group_commit_compare: $BEFORE_BUILD has no services built" >&2
  exit 1
fi
BEFORE_INFORM=${SARLOOP_BEFORE_INFORM_WITHIN_MS:-}
if [[ -n $BEFORE_INFORM && ! $BEFORE_INFORM =~ ^-?[0-9]+$ ]]; then
  echo "group_commit_compare: SARLOOP_BEFORE_INFORM_WITHIN_MS must be a whole number of ms" >&2
  exit 2
fi
export SARLOOP_BASE_PORT=${SARLOOP_BASE_PORT:-auto}
DIR=$(mktemp -d /tmp/sarloop-compare-XXXXXX)
cleanup() { "$REPO/deploy/local/sarloop-local" down "$DIR" >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap cleanup EXIT
ROUNDS=${SARLOOP_ROUNDS:-1}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "group_commit_compare: SARLOOP_ROUNDS must be a positive whole number" >&2; exit 2; }
# The half that runs second in a round tends to read worse on this VM, whichever build it is
# (December 6: the same two builds in both orders, eight rounds; the second half used more CPU
# per lifecycle at 10/s in seven, 6% more on average), so the order alternates: before first in
# odd rounds, after first in even ones.
for ((round = 1; round <= ROUNDS; round++)); do
order="before after"
((round % 2 == 0)) && order="after before"
for mode in $order; do
  out=$mode.json
  ((ROUNDS > 1)) && out=$mode-$round.json
  serial=0
  inform=
  export SARLOOP_BUILD=$AFTER_BUILD
  if [[ -n $BEFORE_BUILD || -n $BEFORE_INFORM ]]; then
    [[ $mode == before && -n $BEFORE_BUILD ]] && SARLOOP_BUILD=$BEFORE_BUILD
    [[ $mode == before ]] && inform=$BEFORE_INFORM
    label="$mode: services from $SARLOOP_BUILD"
  else
    [[ $mode == before ]] && serial=1
    label="$mode group commit (serial_commits: $([[ $serial == 1 ]] && echo true || echo false))"
  fi
  rm -rf "$DIR" && mkdir -p "$DIR"
  SARLOOP_SERIAL_COMMITS=$serial SARLOOP_INFORM_WITHIN_MS=$inform \
    "$REPO/deploy/local/sarloop-local" up "$DIR" >/dev/null
  # As the services were configured, so that the label says what ran.
  [[ -z $BEFORE_INFORM ]] || label="$label, $(grep -m1 '^delivery' "$DIR/config/ukfiu.textproto")"
  echo "=== $label$( ((ROUNDS > 1)) && echo " (round $round of $ROUNDS)")"
  "$BENCH" --chain "$DIR" --json "$out" "$@"
  "$REPO/deploy/local/sarloop-local" down "$DIR" >/dev/null
  echo
done
done
((ROUNDS > 1)) || exit 0
/usr/bin/python3 - "$ROUNDS" <<'PY'
import json, sys
rounds = int(sys.argv[1])
figures = [  # (label, phase, key)
    ("echo per s", "baseline", "per_s"),
    ("hop per s", "durable_hop", "per_s"),
    ("hop CPU ms", "durable_hop", "cpu_ms_per_op"),
    ("peak per s", "chain_peak", "per_s"),
    ("peak CPU ms", "chain_peak", "cpu_ms_per_op"),
    ("half p99 ms", "chain_half_load", "p99_ms"),
    ("low p50 ms", "chain_low_load", "p50_ms"),
    ("low p99 ms", "chain_low_load", "p99_ms"),
    ("low CPU ms", "chain_low_load", "cpu_ms_per_op"),
    ("low wake-ups", "chain_low_load", "voluntary_switches_per_op"),
    # The same VM's price of a lone call that does nothing (a health check at 170/s on one idle
    # service): the low rate's control, as the echo is the peak's.
    ("null CPU ms", "null_call_paced", "cpu_ms_per_op"),
]
runs = {m: [json.load(open(f"{m}-{k}.json")) for k in range(1, rounds + 1)] for m in ("before", "after")}
print("each round, before -> after, and the means (after/before); CPU and wake-ups per request or "
      "lifecycle; low: the chain at %g/s" % runs["after"][0]["low_load_rate"])
print("%-14s" % "figure" + "".join("%22s" % f"round {k}" for k in range(1, rounds + 1)) + "%30s" % "mean")
for label, phase, key in figures:
    b = [r[phase][key] for r in runs["before"]]
    a = [r[phase][key] for r in runs["after"]]
    cells = "".join("%22s" % f"{x:.2f} -> {y:.2f}" for x, y in zip(b, a))
    mb, ma = sum(b) / rounds, sum(a) / rounds
    print("%-14s" % label + cells + "%30s" % f"{mb:.2f} -> {ma:.2f} ({ma / mb if mb else 0:.2f})")

# Where a change at 10/s went: a step that got faster may only have moved time to the next one
# (their sum is the lifecycle), and CPU taken off one thread may land on another.
def mean(values):
    return sum(values) / len(values) if values else 0.0
low = {m: [r["chain_low_load"] for r in runs[m]] for m in ("before", "after")}
print("\nat %g/s, means of the rounds, before -> after" % runs["after"][0]["low_load_rate"])
print("%-28s%22s%22s" % ("step", "p50 ms", "p99 ms"))
for step in low["after"][0].get("steps", {}):
    cells = ""
    for key in ("p50_ms", "p99_ms"):
        b = mean([r["steps"][step][key] for r in low["before"] if step in r.get("steps", {})])
        a = mean([r["steps"][step][key] for r in low["after"] if step in r.get("steps", {})])
        cells += "%22s" % f"{b:.2f} -> {a:.2f}"
    print("%-28s" % step + cells)
print("%-28s%22s%22s" % ("thread", "CPU ms", "wake-ups"))
threads = sorted(set().union(*(r.get("by_thread", {}).keys() for m in low for r in low[m])))
for thread in threads:
    pairs = [(mean([r["by_thread"].get(thread, {}).get(key, 0.0) for r in low["before"]]),
              mean([r["by_thread"].get(thread, {}).get(key, 0.0) for r in low["after"]]))
             for key in ("cpu_ms_per_op", "voluntary_switches_per_op")]
    if max(max(pair) for pair in pairs) >= 0.005:  # threads that did nothing either way: left out
        print("%-28s" % thread + "".join("%22s" % f"{b:.2f} -> {a:.2f}" for b, a in pairs))
PY
