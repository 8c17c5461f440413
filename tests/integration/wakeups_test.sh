#!/usr/bin/env bash
# tools/bench/wakeups.py: (1) over a saved recording whose sleeps are known (real switch events of
# a chain, one or more of each kind: a sync's three waits, gRPC's waiter, epoll, a condition
# variable, a contended mutex, and a preemption, which is not a sleep), the table must put each in
# its place; (2) on a real chain, under sarloop-bench, it must record and sort the light-load
# phase's sleeps (perf, from linux-perf; the suite runs as root). Prints 'N passed, N failed'.
# Usage: wakeups_test.sh BUILD_DIR
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export SARLOOP_BUILD=${1:?usage: wakeups_test.sh BUILD_DIR}
PY=/usr/bin/python3
TOOL=$REPO/tools/bench/wakeups.py
DIR=$(mktemp -d /tmp/sarloop-wakeups-XXXXXX)
cleanup() { "$REPO/deploy/local/sarloop-local" down "$DIR" >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap cleanup EXIT
pass=0 fail=0
check() {  # name, command...
  local name=$1; shift
  if "$@"; then echo "ok   $name"; pass=$((pass + 1)); else echo "FAIL $name"; fail=$((fail + 1)); fi
}
out=$("$PY" "$TOOL" --script "$REPO/tests/integration/wakeups_sample.txt" --per 2)
echo "$out"
row() { grep -Eq "^$1 +$2$" <<<"$out"; }
check "the inode's write in two syncs" row "sarloop-writer +fdatasync: inode written" "1.0"
check "a sync's data pages" row " +fdatasync: data pages written" "0.5"
check "a sync's cache flush" row " +fdatasync: disk cache flush" "0.5"
check "the writer waiting for work" \
  row " +futex: a pthread condition variable \(std::condition_variable\)" "0.5"
check "gRPC's waiter, three times" \
  row "nexting_thread +futex: abseil's waiter \(gRPC's condition variables, absl::Mutex\)" "1.5"
check "epoll" row " +epoll_wait" "0.5"
check "a contended mutex" row "sarloop-deliver +futex: a contended mutex" "0.5"
check "a preemption is not a sleep: ten of eleven events" row "total +" "5.0"
if "$PY" "$TOOL" --script "$REPO/tests/integration/wakeups_sample.txt" 2>"$DIR/err"; then
  echo "FAIL --script without --per exited 0"; fail=$((fail + 1))
else
  check "--script without --per is refused, naming --per" grep -q -- "--per" "$DIR/err"
fi

if "$PY" "$TOOL" --chain "$DIR" 2>"$DIR/err"; then
  echo "FAIL a directory with no chain running exited 0"; fail=$((fail + 1))
else
  check "a directory with no chain running is refused, saying so" \
    grep -q "is not a running local chain" "$DIR/err"
fi
rm -f "$DIR/err"

export SARLOOP_BASE_PORT=auto
if "$REPO/deploy/local/sarloop-local" up "$DIR" >/dev/null; then
  live=$("$PY" "$TOOL" --chain "$DIR" --seconds 2 -- --concurrency 8 --lifecycles 4 --low-rate 5)
  rc=$?
  echo "$live" | sed -n '/light-load phase/,$p'
  check "a live chain: exit 0" test "$rc" -eq 0
  check "a live chain: the writer's syncs" grep -Eq "^ +fdatasync: [a-z ]+ +[0-9]+\.[0-9]$" <<<"$live"
  check "a live chain: the serving threads" grep -q "^sarloop-serve " <<<"$live"
  # The serving thread runs the writer's loop: no writer thread of its own wakes.
  check "a live chain: no writer thread" bash -c '! grep -q "^sarloop-writer " <<<"$1"' _ "$live"
  # Every method is served from a completion queue: gRPC's callback threads never start.
  check "a live chain: no callback-API threads" bash -c '! grep -q "^nexting_thread " <<<"$1"' _ "$live"
  check "a live chain: the total is not zero" bash -c '! grep -Eq "^total +0\.0$" <<<"$1"' _ "$live"
else
  echo "FAIL the chain did not start"; fail=$((fail + 1))
fi
echo "$pass passed, $fail failed"
((fail == 0))
