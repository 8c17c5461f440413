#!/bin/bash
# A small run of sarloop-clock-bench: every figure is printed, a scan that owes nothing makes no
# write, and the scan a month later sends one reminder per open referral in a write each.
# Usage: clock_bench_test.sh BUILD_DIR [BENCH]
set -u
build=${1:?usage: clock_bench_test.sh BUILD_DIR [BENCH]}
bench=${2:-$build/tools/bench/sarloop-clock-bench}
out=$("$bench" --open 40 --scans 3) || { echo "sarloop-clock-bench failed: $out"; exit 1; }
echo "$out"
failed=0
expect() {
  if ! grep -qxF -- "$1" <<<"$out"; then
    echo "missing line: $1"
    failed=1
  fi
}
for figure in "scan owing nothing, wall ms p50" "scan owing nothing, wall ms max" \
    "scan owing nothing, CPU ms of the calling thread (mean)" "scan owing a reminder for each, wall ms" \
    "scan owing a reminder for each, commits"; do
  grep -q "^$figure: [0-9.]*$" <<<"$out" || { echo "missing figure: $figure"; failed=1; }
done
expect "open referrals: 40"
expect "scans owing nothing: 3"
expect "scan owing nothing, write transactions (mean): 0.0"
expect "scan owing a reminder for each, reminders sent: 40"
expect "scan owing a reminder for each, write transactions: 40"
if ! "$bench" --open x >/dev/null 2>&1; then :; else echo "--open x was accepted"; failed=1; fi
# A directory it cannot write is an error it names, with exit 1, not an abort.
err=$(TMPDIR=/proc/none "$bench" --open 3 2>&1); rc=$?
if [[ $rc != 1 || $err != *"sarloop-clock-bench: "*"cannot create"* ]]; then
  echo "an unwritable TMPDIR gave exit $rc: $err"
  failed=1
fi
if [[ $failed == 0 ]]; then echo "1 passed, 0 failed"; else echo "0 passed, 1 failed"; fi
exit $failed
