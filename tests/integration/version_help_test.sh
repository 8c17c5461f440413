#!/usr/bin/env bash
# Operators' habits: every binary answers --version (the release and the git revision it was built
# from) and --help (usage, exit 0, on stdout); a flag's value that is not a number is a usage error
# (exit 2), never an abort. Usage: version_help_test.sh BUILD_DIR
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
B=${1:?usage: version_help_test.sh BUILD_DIR}
pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }

binaries=(services/ukfiu/sarloop-ukfiu services/force/sarloop-force services/racu/sarloop-racu
  services/nca/sarloop-nca services/linkage/sarloop-linkage tools/sarloopctl
  tools/synth/sarloop-synth tools/synth/sarloop-exercise tools/synth/sarloop-synth-persons
  tools/bench/sarloop-bench tools/bench/sarloop-query-bench tools/bench/sarloop-linkage-eval
  tools/bench/sarloop-grpc-api-bench tools/bench/sarloop-clock-bench
  tools/bench/sarloop-page-cache-bench)
for rel in "${binaries[@]}"; do
  bin=$B/$rel name=${rel##*/}
  out=$("$bin" --version 2>&1); rc=$?
  # The revision is the build's: equal to this checkout's unless it changed since the build.
  if [[ $rc == 0 && $out =~ ^$name\ [0-9]+\.[0-9]+\.[0-9]+\ \(git\ ([0-9a-f]{7,}(-dirty)?)\)$ ]]; then
    ok "$name --version: $out"
  else
    bad "$name --version (rc $rc): $out"
  fi
  out=$("$bin" --help 2>/dev/null); rc=$?
  if [[ $rc == 0 && $out == *usage* ]]; then ok "$name --help: exit 0, usage on stdout"
  else bad "$name --help (rc $rc): ${out:0:200}"; fi
done
for script in deploy/local/sarloop-local tools/pki/sarloop-pki; do
  name=${script##*/}
  out=$(SARLOOP_BUILD=$B "$REPO/$script" --version 2>&1); rc=$?
  if [[ $rc == 0 && $out == "$name (git "* ]]; then ok "$name --version: ${out%%$'\n'*}"
  else bad "$name --version (rc $rc): $out"; fi
  out=$("$REPO/$script" --help 2>/dev/null); rc=$?
  if [[ $rc == 0 && $out == *"$name "* ]]; then ok "$name --help: exit 0"; else bad "$name --help (rc $rc)"; fi
done
for t in "tools/bench/sarloop-bench --chain /nonexistent --seconds abc" \
  "tools/bench/sarloop-bench --chain /nonexistent --seconds 5abc" \
  "tools/bench/sarloop-bench --chain /nonexistent --rate nan" \
  "tools/bench/sarloop-query-bench --referrals lots" \
  "tools/bench/sarloop-query-bench --reps 3x" \
  "tools/bench/sarloop-grpc-api-bench --seconds inf" \
  "tools/bench/sarloop-grpc-api-bench --rate nan" \
  "tools/bench/sarloop-grpc-api-bench --rounds 2x" \
  "tools/bench/sarloop-clock-bench --open 20k" \
  "tools/bench/sarloop-page-cache-bench --commits 1e3"; do
  read -r rel args <<<"$t"
  out=$("$B/$rel" $args 2>&1); rc=$?
  if [[ $rc == 2 && $out == *"not a number"* ]]; then ok "${rel##*/} $args: exit 2, $out"
  else bad "${rel##*/} $args: rc $rc, $out"; fi
done
out=$(timeout 20 "$B/tools/bench/sarloop-query-bench" --build-only 2>&1); rc=$?
if [[ $rc == 2 && $out == *"--build-only needs --db or --postgres"* ]]; then
  ok "sarloop-query-bench --build-only without a register to keep: exit 2 at once"
else bad "sarloop-query-bench --build-only: rc $rc, $out"; fi
echo "$pass passed, $fail failed"
[[ $fail == 0 ]]
