#!/usr/bin/env bash
# The STA summary report and the aggregates API against a real chain with two financial years of
# synthetic referrals: the report's every number recomputed from the raw events
# (sta_recompute.py), publication mode's suppression, and the aggregates CLI's errors.
# Usage: sta_report_test.sh BUILD_DIR. Prints 'N passed, N failed'.
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export SARLOOP_BUILD=${1:?usage: sta_report_test.sh BUILD_DIR}
CTL=$SARLOOP_BUILD/tools/sarloopctl
DIR=$(mktemp -d /tmp/sarloop-sta-XXXXXX)
# A free block of ports that sarloop-local picks (and moves from, should another process take one
# of them first); read back from DIR/base-port once the chain is up.
export SARLOOP_BASE_PORT=auto
cleanup() { "$REPO/deploy/local/sarloop-local" down "$DIR" >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap cleanup EXIT

pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
finish() { echo "$pass passed, $fail failed"; ((fail == 0)); exit $?; }

# Start the chain's clock at 1 March next year, so the first scenario's referrals fall in one
# financial year and the second's (the scenario moves the clock about four months) in the next.
year=$(($(date -u +%Y) + 1))
echo $(($(date -u -d "$year-03-01T00:00:00Z" +%s) - $(date -u +%s))) >"$DIR/clock-offset"
"$REPO/deploy/local/sarloop-local" up "$DIR" >/dev/null || { echo "chain did not start"; exit 1; }
export SARLOOP_BASE_PORT=$(<"$DIR/base-port")
B=$SARLOOP_BASE_PORT
for run in 1 2; do
  if "$SARLOOP_BUILD/tools/synth/sarloop-synth" --pki "$DIR/pki" --sars 250 --seed $((40 + run)) \
    >"$DIR/synth-$run.log" 2>&1; then
    ok "synthetic scenario $run checks out"
  else
    bad "synthetic scenario $run: $(tail -5 "$DIR/synth-$run.log")"
    finish
  fi
done
as() { "$CTL" --timeout 30 --user sta-test --identity "$DIR/pki/$1" --target "localhost:$((B + 2))" "${@:2}"; }
at() { "$CTL" --timeout 30 --user sta-test --identity "$DIR/pki/$1" --target "localhost:$((B + $2))" "${@:3}"; }

# A decline whose reason attacks the report's reader: a spreadsheet formula, a Markdown link and
# HTML. It must reach the report as text.
EVIL='=HYPERLINK("http://evil.example/x","click") [here](http://evil.example) <img src=x>'
sar=$(at ukfiu-intake 1 --json ukfiu submit --sector bank --narrative "formula test" \
  --subject "Quentin Hartley|1980-01-01|officer|SFK" |
  /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["sar"]["sarId"])')
ref=$(at ukfiu-intake 1 --json ukfiu refer "$sar" --org SFK --threat low --risk low --harm low \
  --rationale "formula test" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["referral"]["referralId"])')
for _ in $(seq 600); do at force-SFK-psd 12 force inbox 2>/dev/null | grep -q "$ref" && break; sleep 0.1; done
if at force-SFK-psd 12 force ack "$ref" >/dev/null && at force-SFK-psd 12 force research "$ref" >/dev/null &&
  at force-SFK-psd 12 force decline "$ref" --code other --reason "$EVIL" >/dev/null; then
  ok "a referral declined with a formula as its reason ($ref)"
else
  bad "could not decline $ref with a formula reason"
fi
source "$REPO/tests/integration/lib.sh"
wait_drained 60 "$DIR"/data/force-SFK.db || bad "the decline did not reach the NCA"

# The report for the second year (the first is its "previous year").
if out=$(as analyst-alice report sta --year "$year" --out "$DIR/report" 2>&1); then
  ok "report sta writes the report: $(head -1 <<<"$out")"
else
  bad "report sta: $out"
  finish
fi
for ext in html md csv; do
  [[ -s $DIR/report/sta-$year.$ext ]] && ok "sta-$year.$ext written" || bad "sta-$year.$ext missing"
done
html=$DIR/report/sta-$year.html
svgs=$(grep -o '<svg' "$html" | wc -l)
((svgs >= 6)) && ok "the HTML has $svgs SVG charts" || bad "the HTML has $svgs SVG charts"
if grep -qE '(src|href)="(https?:)?//' "$html"; then bad "the HTML loads something from elsewhere"
else ok "the HTML is self-contained (no external src or href)"; fi
for id in headline by_organisation by_region outcomes_by_category time_to_outcome trend \
  overdue_escalated declined_register; do
  grep -q "id=\"$id\"" "$html" && grep -q "^$id," "$DIR/report/sta-$year.csv" &&
    grep -q "^## " "$DIR/report/sta-$year.md" && ok "table $id in HTML and CSV" ||
    bad "table $id missing"
done

# The formula is text in every format: an apostrophe before it in the CSV, escaped in Markdown,
# escaped in HTML. No CSV cell starts with a formula character unless it is a number.
csv=$DIR/report/sta-$year.csv
if grep -qF "'=HYPERLINK(" "$csv"; then ok "the CSV holds the formula reason as text ('=HYPERLINK)"
else bad "the formula reason is not in the CSV as text: $(grep -F HYPERLINK "$csv" | head -2)"; fi
live=$(/usr/bin/python3 -c '
import csv, re, sys
for row in csv.reader(open(sys.argv[1], newline="")):
    for cell in row:
        if cell[:1] in ("=", "+", "-", "@", "\t", "\r") and not re.fullmatch(r"[-+]?[0-9.]+", cell):
            print(repr(cell)); break
' "$csv" | head -3)
[[ -z $live ]] && ok "no CSV cell would run as a formula" || bad "CSV cells a spreadsheet would run: $live"
md=$DIR/report/sta-$year.md
# The link's brackets escaped, and the bare address broken too, so no renderer makes it live.
if grep -qF '\[here\](http\://evil.example)' "$md" && grep -qF '\<img src=x\>' "$md" &&
  ! grep -qF 'http://evil.example' "$md"; then
  ok "Markdown shows the link, the bare address and the tag as text"
else bad "Markdown: $(grep -F evil.example "$md" | head -2)"; fi
grep -qF '<img src=x>' "$html" && bad "the HTML holds the reason's tag unescaped" ||
  ok "the HTML escapes the reason's tag"

# Every number, recomputed from the events.
mkdir -p "$DIR/stubs"
protoc -I "$REPO/proto" -I /usr/include --python_out="$DIR/stubs" "$REPO"/proto/sarloop/v1/*.proto
if /usr/bin/python3 "$REPO/tests/integration/sta_recompute.py" "$DIR/pki" "localhost:$((B + 2))" \
  "$DIR/stubs" "$REPO/common/reference" "$DIR/report/sta-$year.csv" >"$DIR/recompute.log" 2>&1; then
  ok "$(head -1 "$DIR/recompute.log")"
else
  bad "recompute: $(head -30 "$DIR/recompute.log")"
fi

# The recompute has teeth: one number changed in a copy of the CSV is caught.
awk -F, -v OFS=, '$1 == "by_region" && $3 == "Feedback" && !done { $4 = $4 + 1; done = 1 } 1' \
  "$DIR/report/sta-$year.csv" >"$DIR/tampered.csv"
if /usr/bin/python3 "$REPO/tests/integration/sta_recompute.py" "$DIR/pki" "localhost:$((B + 2))" \
  "$DIR/stubs" "$REPO/common/reference" "$DIR/tampered.csv" >"$DIR/tampered.log" 2>&1; then
  bad "a tampered report passed the recompute"
else
  grep -q "by_region" "$DIR/tampered.log" && ok "a tampered report fails the recompute, naming the cell" ||
    bad "tampered: $(head -5 "$DIR/tampered.log")"
fi

# Publication mode: no count from 1 to 9 survives with --min-count 10, and the register of single
# referrals is left out.
as analyst-alice report sta --year "$year" --out "$DIR/pub" --publication --min-count 10 >/dev/null
pubcsv=$DIR/pub/sta-$year.csv
# (Days are written with a decimal point, so a bare 1-9 is a count.)
small=$(awk -F, '$1 != "meta" && $4 ~ /^[1-9]$/' "$pubcsv" | head -3)
[[ -z $small ]] && ok "publication mode: no count below 10 is shown" || bad "publication shows: $small"
n=$(grep -c ',suppressed$' "$pubcsv")
((n > 0)) && ok "publication mode: $n cells suppressed" || bad "publication mode suppressed nothing"
[[ $(grep -c '^declined_register,' "$pubcsv") == 0 ]] && ok "publication mode leaves out the declined register" ||
  bad "publication mode lists single referrals"

# The aggregates CLI and its errors.
json=$(as analyst-alice --json nca aggregates --by region --by route --year "$year")
/usr/bin/python3 -c '
import json, sys
d = json.loads(sys.argv[1])
total = int(d["total"]["referred"])
groups = sum(int(g["measures"].get("referred", 0)) for g in d["groups"])
routes = {g["key"][1] for g in d["groups"]}
assert total == groups and total > 0, (total, groups)
assert routes == {"DIRECT", "INDIRECT"}, routes
' "$json" && ok "aggregates by region and route sum to the total, both routes present" ||
  bad "aggregates by region and route: $(head -c 300 <<<"$json")"
out=$(as analyst-alice nca aggregates --region ATLANTIS 2>&1)
[[ $? == 3 && $out == *"filter.regions[0]"* ]] && ok "unknown region: exit 3 naming filter.regions[0]" ||
  bad "unknown region: $out"
out=$(as analyst-alice nca aggregates --by region --by region 2>&1)
[[ $? == 3 && $out == *"group_by[1]"* ]] && ok "repeated dimension: exit 3 naming group_by[1]" ||
  bad "repeated dimension: $out"
out=$(as analyst-alice nca aggregates --by planet 2>&1)
[[ $? == 2 && $out == *"--by"* ]] && ok "unknown dimension: usage error (exit 2)" || bad "unknown dimension: $out"
out=$(as force-NFK-psd nca aggregates 2>&1)
[[ $? == 3 && $out == *PERMISSION_DENIED* ]] && ok "a force cannot query aggregates (exit 3)" || bad "force: $out"
finish
