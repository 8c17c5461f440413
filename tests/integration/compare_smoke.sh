#!/usr/bin/env bash
# The before/after comparison script end to end, two rounds of one-second phases, the build
# against itself with every message sent at once in the before half: every round runs, every JSON
# is written, the before chains are configured as asked, and the summary has every figure, step
# and busy thread.
# Asserts nothing about speed. Usage: compare_smoke.sh BUILD_DIR. Prints 'N passed, N failed'.
set -uo pipefail
BUILD=$(cd "$1" && pwd)
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORK=$(mktemp -d /tmp/sarloop-compare-smoke-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1
pass=0 fail=0
if SARLOOP_ROUNDS=2 SARLOOP_BASE_PORT=auto SARLOOP_BEFORE_BUILD=$BUILD \
  SARLOOP_BEFORE_INFORM_WITHIN_MS=-1 \
  "$REPO/tools/bench/group_commit_compare.sh" "$BUILD" --seconds 1 --concurrency 4 \
  --lifecycles 4 --low-rate 5 > out.txt 2>&1; then
  echo "ok   two rounds ran"; pass=$((pass + 1))
else
  echo "FAIL the script exited non-zero:"; tail -20 out.txt; fail=$((fail + 1))
fi
if [[ -s before-1.json && -s after-1.json && -s before-2.json && -s after-2.json ]]; then
  echo "ok   a JSON per round and side"; pass=$((pass + 1))
else
  echo "FAIL missing JSON: $(ls)"; fail=$((fail + 1))
fi
# The before half ran with every message at once, the after half with the default window.
before_labels=$(grep -c '^=== before: .*inform_within_ms: -1 }' out.txt)
after_labels=$(grep '^=== after: ' out.txt | grep -c 'inform_within_ms')
if [[ $before_labels -eq 2 && $after_labels -eq 0 ]]; then
  echo "ok   the before chains were configured to send at once, the after chains not"
  pass=$((pass + 1))
else
  echo "FAIL labels: $(grep '^=== ' out.txt)"; fail=$((fail + 1))
fi
summary=$(sed -n '/^figure /,/^$/p' out.txt | tail -n +2 | grep .)
rows=$(printf '%s\n' "$summary" | grep -c .)
if [[ $rows -eq 11 ]] && ! printf '%s\n' "$summary" | grep -qE '(^| )0\.00 ->|-> 0\.00( |$)'; then
  echo "ok   the summary has its 11 figures, none zero"; pass=$((pass + 1))
else
  echo "FAIL the summary ($rows rows):"; sed -n '/^each round/,$p' out.txt; fail=$((fail + 1))
fi
# Then the low rate's means step by step (every step the bench timed) and thread by thread.
steps=$(sed -n '/^at 5\/s, means/,$p' out.txt | sed -n '/^step  /,/^thread  /p' | sed '1d;$d' |
  grep -c .)
json_steps=$(/usr/bin/python3 -c 'import json; print(len(json.load(open("after-1.json"))["chain_low_load"]["steps"]))')
if grep -q '^at 5/s, means of the rounds' out.txt && [[ $json_steps -gt 0 && $steps -eq $json_steps ]] &&
  grep -qE '^sarloop-serve +[0-9.]+ -> [0-9.]+ ' out.txt &&
  ! grep -qE '^sarloop-serve +0\.00 -> 0\.00 ' out.txt; then
  echo "ok   the steps ($steps) and the threads at the low rate"; pass=$((pass + 1))
else
  echo "FAIL steps $steps of $json_steps, or the threads:"; sed -n '/^at 5/,$p' out.txt
  fail=$((fail + 1))
fi
echo "$pass passed, $fail failed"
((fail == 0))
