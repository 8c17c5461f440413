#!/bin/bash
# A small run of sarloop-query-bench: every query shape is timed and answers, the JSON it writes
# is JSON (also when --only picks shapes from the middle of the list), and an --only that names
# no shape is a usage error that leaves no register behind. Benchmarks are not timed tests: no
# figure is judged. Usage: query_bench_test.sh BUILD_DIR
set -u
build=${1:?usage: query_bench_test.sh BUILD_DIR}
bench=$build/tools/bench/sarloop-query-bench
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export TMPDIR=$work
pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
shapes() {  # the shapes a JSON file lists, one per line, or nothing when it is not JSON
  /usr/bin/python3 -c 'import json,sys; [print(s["shape"]) for s in json.load(open(sys.argv[1]))["shapes"]]' "$1" 2>/dev/null
}

out=$("$bench" --referrals 3000 --reps 3 --json "$work/all.json" 2>&1); rc=$?
n=$(shapes "$work/all.json" | wc -l)
if [[ $rc == 0 && $n == 14 ]]; then ok "every shape timed: $n in the JSON"
else bad "whole run: rc $rc, $n shapes in the JSON; $out"; fi

"$bench" --referrals 3000 --reps 3 --only "one region" --json "$work/one.json" >/dev/null 2>&1
got=$(shapes "$work/one.json")
if [[ $got == "aggregates: by quarter, one region" ]]; then ok "--only from the middle: valid JSON, one shape"
else bad "--only one region: '$got' from $(cat "$work/one.json")"; fi

out=$("$bench" --referrals 3000 --only "no such shape" 2>&1); rc=$?
left=$(find "$work" -name 'sarloop-query-bench-*' | wc -l)
if [[ $rc == 2 && $out == *"names no query shape"* && $left == 0 ]]; then ok "--only naming nothing: exit 2, $out"
else bad "--only naming nothing: rc $rc, $left files left, $out"; fi

echo "$pass passed, $fail failed"
[[ $fail == 0 ]]
