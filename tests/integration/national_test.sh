#!/usr/bin/env bash
# The national exercise on a national chain: sarloop-local's national mode starts one node per
# organisation and unit of the reference data (each its own process, database, certificate and
# port); every node answers over mTLS; each node's memory is measured and printed; sarloop-exercise
# plays a year and more of referrals with the chain's clock moving day by day; the NCA register
# equals the exercise referral by referral; the STA report's timeliness is not zero; a second run on
# the same register and bad flags are refused.
# Usage: national_test.sh BUILD_DIR. Prints 'N passed, N failed'.
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export SARLOOP_BUILD=${1:?usage: national_test.sh BUILD_DIR}
DIR=$(mktemp -d /tmp/sarloop-national-XXXXXX)
export SARLOOP_BASE_PORT=auto SARLOOP_NATIONAL=1
LOCAL=$REPO/deploy/local/sarloop-local
EXERCISE=$SARLOOP_BUILD/tools/synth/sarloop-exercise
cleanup() { "$LOCAL" down "$DIR" >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap cleanup EXIT
pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }

# The chain's clock starts on the 1 April that opens the last full financial year.
year=$(date -u +%Y)
(($(date -u +%m) >= 4)) || year=$((year - 1))
year=$((year - 1))
export SARLOOP_CLOCK_START=$year-04-01
if ! "$LOCAL" up "$DIR" >"$DIR/up.log" 2>&1; then
  tail -n 20 "$DIR/up.log"
  echo "0 passed, 1 failed"
  exit 1
fi
source "$DIR/env.sh"

orgs=$(awk -F, 'NR > 1 && $1 != "NCA"' "$REPO/common/reference/organisations.csv" | wc -l)
units=$(($(awk -F, 'NR > 1 && $3 != ""' "$REPO/common/reference/regions.csv" | wc -l) + 1))
want=$((orgs + units + 3))
"$LOCAL" status "$DIR" >"$DIR/status.out" 2>&1
serving=$(grep -c ' serving ' "$DIR/status.out")
((serving == want)) && ok "every node answers over mTLS: $serving ($orgs organisations, $units units, ukfiu, nca, linkage)" ||
  bad "$serving of $want nodes serving: $(grep -v ' serving ' "$DIR/status.out" | head -3 | tr '\n' ' ')"
pids=$(ls "$DIR"/run/*.pid | wc -l)
dbs=$(ls "$DIR"/data/*.db | wc -l)
certs=$(ls -d "$DIR"/pki/force-*/ "$DIR"/pki/racu-*/ 2>/dev/null | grep -vc -- '-psd/\|-cases/')
((pids == want && dbs == want && certs == orgs + units)) &&
  ok "each node its own process ($pids), database ($dbs) and certificate ($certs for the organisations and units)" ||
  bad "processes $pids, databases $dbs, certificates $certs (want $want, $want, $((orgs + units)))"

# Memory per node (resident set), measured, not assumed.
for f in "$DIR"/run/*.pid; do ps -o rss= -p "$(<"$f")"; done | sort -n >"$DIR/rss"
read -r min median max total < <(awk '{ a[NR] = $1; s += $1 } END { printf "%d %d %d %d\n", a[1] / 1024, a[int((NR + 1) / 2)] / 1024, a[NR] / 1024, s / 1024 }' "$DIR/rss")
echo "memory per node (RSS, MB): min $min, median $median, max $max; all $want nodes: $total MB"
((max > 0 && max < 200)) && ok "every node under 200 MB resident (largest $max MB)" || bad "largest node $max MB"

# Bad flags: a clear message and exit 2, nothing played.
"$EXERCISE" --chain "$DIR" --per-year 0 >"$DIR/bad.out" 2>&1
rc=$?
((rc == 2)) && grep -q -- "--per-year must be" "$DIR/bad.out" && ok "--per-year 0 refused (exit 2)" ||
  bad "--per-year 0: exit $rc: $(head -c 200 "$DIR/bad.out")"

start=$SECONDS
if "$EXERCISE" --chain "$DIR" --per-year 300 --seed 2026 --json-summary "$DIR/exercise.json" \
  >"$DIR/exercise.out" 2>&1; then
  ok "the exercise played: $(grep '^played' "$DIR/exercise.out") ($((SECONDS - start)) s)"
else
  bad "the exercise failed: $(tail -n 5 "$DIR/exercise.out" | tr '\n' ' ')"
fi
n=$(/usr/bin/python3 -c "import json; print(json.load(open('$DIR/exercise.json'))['referrals'])" 2>/dev/null || echo 0)
grep -q "register check: all $n referrals match the exercise referral by referral" "$DIR/exercise.out" && ((n > 300)) &&
  ok "the register equals the exercise referral by referral ($n referrals)" ||
  bad "register check: $(grep 'register check' -A3 "$DIR/exercise.out" | tr '\n' ' ')"

# Referrals reached most organisations and every unit with a force to serve.
sarloopctl_as NCA nca summary >"$DIR/summary.out" 2>&1
with=$(awk '/^ORG / { t = 1; next } t && NF == 0 { exit } t && $1 != "TOTAL" && $2 + 0 > 0' "$DIR/summary.out" | wc -l)
((with >= orgs / 2 && with <= orgs)) && ok "$with organisations have referrals in the register" || bad "$with organisations with referrals"

# Time passed inside the cases: the STA report's timeliness is not zero.
sarloopctl_as NCA report sta --year "$year" --out "$DIR/reports" >/dev/null 2>&1
fb=$(grep -m1 '^| Median days to feedback |' "$DIR/reports/sta-$year.md" | cut -d'|' -f3 | tr -d ' ')
out=$(grep -m1 '^| Median days to outcome |' "$DIR/reports/sta-$year.md" | cut -d'|' -f3 | tr -d ' ')
awk -v a="$fb" -v b="$out" 'BEGIN { exit !(a + 0 > 1 && b + 0 > a + 0) }' &&
  ok "STA $year: median days to feedback $fb, to outcome $out" ||
  bad "STA $year timeliness: feedback '$fb', outcome '$out'"

# Every figure of the report recomputed from the register's raw events, on data where time passed
# inside the cases (distributions, the due-based rate, non-responders, regulation 19, every row).
mkdir -p "$DIR/stubs"
protoc -I "$REPO/proto" -I /usr/include --python_out="$DIR/stubs" "$REPO"/proto/sarloop/v1/*.proto
if /usr/bin/python3 "$REPO/tests/integration/sta_recompute.py" "$DIR/pki" "$SARLOOP_NCA_TARGET" \
  "$DIR/stubs" "$REPO/common/reference" "$DIR/reports/sta-$year.csv" >"$DIR/recompute.log" 2>&1; then
  ok "$(head -n 1 "$DIR/recompute.log")"
else
  bad "recompute: $(head -n 12 "$DIR/recompute.log" | tr '\n' ' ')"
fi
rows=$(grep -c '^coverage,[A-Z]*,Referred,' "$DIR/reports/sta-$year.csv")
((rows == orgs)) && ok "the coverage table has every organisation as a row ($rows)" ||
  bad "coverage rows: $rows, organisations: $orgs"
grep -q '^| Timeliness\|^## Timeliness' "$DIR/reports/sta-$year.md" &&
  grep -q 'OFFICIAL-SENSITIVE' "$DIR/reports/sta-$year.md" &&
  grep -q '<polyline' "$DIR/reports/sta-$year.html" && grep -q 'fill-opacity' "$DIR/reports/sta-$year.html" &&
  ok "the report is marked OFFICIAL-SENSITIVE and draws lines for time and box plots for durations" ||
  bad "marking, line or box charts missing"

# The check is referral by referral, so a second run on the same register is refused.
"$EXERCISE" --chain "$DIR" --per-year 10 >"$DIR/again.out" 2>&1
rc=$?
((rc == 1)) && grep -q "needs a fresh chain" "$DIR/again.out" && ok "a second run on a used register is refused" ||
  bad "second run: exit $rc: $(tail -n 2 "$DIR/again.out" | tr '\n' ' ')"

echo "$pass passed, $fail failed"
((fail == 0))
