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
# "--version" as an option's value is that value: the command runs or is refused, and never
# answers with the version and exit 0 having done nothing.
out=$("$B/tools/sarloopctl" ukfiu withdraw REF-0000000000000001 --reason --version 2>&1); rc=$?
if [[ $rc != 0 && $out != "sarloopctl "[0-9]* ]]; then ok "sarloopctl ... --reason --version: not the version (rc $rc)"
else bad "sarloopctl ... --reason --version: rc $rc, $out"; fi
out=$(SARLOOP_BUILD=$B "$B/tools/synth/sarloop-synth-persons" --out /tmp/never --index 1000000000000 2>&1); rc=$?
if [[ $rc == 2 && $out == *"1 to 5000000"* ]]; then ok "sarloop-synth-persons --index 10^12: exit 2, no attempt"
else bad "sarloop-synth-persons --index 10^12: rc $rc, ${out:0:200}"; fi
out=$("$B/tools/synth/sarloop-exercise" --chain /tmp --json-summary /nonexistent/dir/s.json 2>&1); rc=$?
if [[ $rc == 2 && $out == *"/nonexistent/dir is not a directory"* ]]; then ok "sarloop-exercise --json-summary into no directory: exit 2 before the run"
else bad "sarloop-exercise --json-summary /nonexistent/...: rc $rc, ${out:0:200}"; fi
out=$("$B/tools/sarloopctl" oversight 2>&1); rc=$?
if [[ $rc == 2 && $out == *"needs a command word"* ]]; then ok "sarloopctl oversight: a group, that needs a command word"
else bad "sarloopctl oversight: rc $rc, $out"; fi
# sarloop-pki dev's EXTRA lines are checked like issue's arguments, all before any certificate.
pki_dir=$(mktemp -d /tmp/sarloop-pki-extra-XXXXXX)
printf 'force-X spiffe://sarloop/force/X,URI:spiffe://sarloop/ukfiu server\n' >"$pki_dir/smuggled"
out=$(SARLOOP_CTL=$B/tools/sarloopctl "$REPO/tools/pki/sarloop-pki" dev "$pki_dir/pki" "$pki_dir/smuggled" 2>&1); rc=$?
if [[ $rc == 2 && $out == *"invalid SPIFFE_ID"* && ! -e $pki_dir/pki ]]; then ok "sarloop-pki dev: an EXTRA line with a second SAN is refused before anything is issued"
else bad "sarloop-pki dev with a smuggled SAN: rc $rc, ${out:0:300}"; fi
printf '../outside spiffe://sarloop/force/Y client\n' >"$pki_dir/escape"
out=$(SARLOOP_CTL=$B/tools/sarloopctl "$REPO/tools/pki/sarloop-pki" dev "$pki_dir/pki" "$pki_dir/escape" 2>&1); rc=$?
if [[ $rc == 2 && $out == *"invalid NAME"* && ! -e $pki_dir/outside ]]; then ok "sarloop-pki dev: an EXTRA name outside DIR is refused"
else bad "sarloop-pki dev with ../outside: rc $rc, ${out:0:300}"; fi
printf '# the national forces\r\n\r\nforce-X spiffe://sarloop/force/X server\r\n' >"$pki_dir/crlf"
out=$(SARLOOP_CTL=$B/tools/sarloopctl "$REPO/tools/pki/sarloop-pki" dev "$pki_dir/pki" "$pki_dir/crlf" 2>&1); rc=$?
if [[ $rc == 0 && -f $pki_dir/pki/force-X/cert.pem ]]; then ok "sarloop-pki dev: comments, blank lines and CRLF in EXTRA are taken"
else bad "sarloop-pki dev with a commented CRLF file: rc $rc, ${out:0:300}"; fi
rm -rf "$pki_dir"
out=$(timeout 20 "$B/tools/bench/sarloop-query-bench" --build-only 2>&1); rc=$?
if [[ $rc == 2 && $out == *"--build-only needs --db or --postgres"* ]]; then
  ok "sarloop-query-bench --build-only without a register to keep: exit 2 at once"
else bad "sarloop-query-bench --build-only: rc $rc, $out"; fi
echo "$pass passed, $fail failed"
[[ $fail == 0 ]]
