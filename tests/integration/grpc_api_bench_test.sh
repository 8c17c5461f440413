#!/usr/bin/env bash
# sarloop-grpc-api-bench, briefly: every way of serving answers every call over mTLS and has its
# figures (the server's CPU and wake-ups per call, a number each; the means' ratios against the
# callback API); bad flags are refused with exit 2. It asserts nothing about speed.
# Usage: grpc_api_bench_test.sh BUILD_DIR. Prints 'N passed, N failed'.
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH=${1:?usage: grpc_api_bench_test.sh BUILD_DIR}/tools/bench/sarloop-grpc-api-bench
WORK=$(mktemp -d /tmp/sarloop-grpc-api-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
pass=0 fail=0
check() {  # name, command...
  local name=$1; shift
  if "$@"; then echo "ok   $name"; pass=$((pass + 1)); else echo "FAIL $name"; fail=$((fail + 1)); fi
}
"$REPO/tools/pki/sarloop-pki" dev "$WORK/pki" >"$WORK/pki.log" 2>&1 || { cat "$WORK/pki.log"; echo "0 passed, 1 failed"; exit 1; }
out=$("$BENCH" --pki "$WORK/pki" --rate 100 --seconds 0.5 --rounds 2)
rc=$?
echo "$out"
check "exit 0: every call answered" test "$rc" -eq 0
for mode in callback callback+hop cq cq+hop; do
  m=${mode//+/\\+}
  check "$mode: a row in each of two rounds, no errors" \
    test "$(grep -Ec "^[12] +$m +[0-9]+\.[0-9] +[0-9]+\.[0-9]{2} +[0-9]+ +[0-9]+ +0$" <<<"$out")" -eq 2
  check "$mode: its mean and ratios" \
    grep -Eq "^ +$m +[0-9]+\.[0-9] \([0-9]+\.[0-9]{2}\) +[0-9]+\.[0-9]{2} \([0-9]+\.[0-9]{2}\) " <<<"$out"
done
check "the callback API is the ratios' base" grep -Eq "^ +callback +[0-9.]+ \(1\.00\) +[0-9.]+ \(1\.00\)" <<<"$out"
"$BENCH" --pki "$WORK/pki" --rate 0 >/dev/null 2>"$WORK/err"
check "--rate 0 is refused with exit 2, naming it" bash -c '[[ $1 -eq 2 ]] && grep -q -- "--rate 0" "$2"' _ $? "$WORK/err"
"$BENCH" --pki "$WORK/none" >/dev/null 2>"$WORK/err"
check "a missing pki is refused with exit 2" bash -c '[[ $1 -eq 2 ]] && grep -q -- "--pki" "$2"' _ $? "$WORK/err"
"$BENCH" --pki "$WORK/pki" --serve nonsense >/dev/null 2>"$WORK/err"
check "an unknown way of serving is refused" bash -c '[[ $1 -eq 2 ]] && grep -q "cq+hop" "$2"' _ $? "$WORK/err"
echo "$pass passed, $fail failed"
((fail == 0))
