#!/usr/bin/env bash
# The indirect-links screen through the real interfaces (issue 9): sarloopctl over mTLS against a
# local chain with the linkage service. A force uploads its encoded personnel index; UKFIU screens
# synthetic SAR subjects and a real SAR; a hit becomes an INDIRECT referral whose package names
# the force's own index record; the force confirms or rejects; the counts reach the statistics;
# a restart keeps everything; a second force's upload re-screens stored subjects; bad input and
# the wrong identity are refused. Nothing the service returns carries an encoding.
# Usage: linkage_test.sh BUILD_DIR. Prints 'N passed, N failed'.
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export SARLOOP_BUILD=${1:?usage: linkage_test.sh BUILD_DIR}
CTL=$SARLOOP_BUILD/tools/sarloopctl
SYNTH=$SARLOOP_BUILD/tools/synth/sarloop-synth-persons
DIR=$(mktemp -d /tmp/sarloop-linkage-XXXXXX)
# A free block of ports that sarloop-local picks (and moves from, should another process take one
# of them first); read back from DIR/base-port once the chain is up.
export SARLOOP_BASE_PORT=auto
LOCAL=$REPO/deploy/local/sarloop-local
cleanup() { "$LOCAL" down "$DIR" >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap cleanup EXIT
"$LOCAL" up "$DIR" >/dev/null || { echo "chain did not start"; exit 1; }
export SARLOOP_BASE_PORT=$(<"$DIR/base-port")
B=$SARLOOP_BASE_PORT
KEY=$DIR/pki/keys/linkage.key
LINKAGE=localhost:$((B + 6))

pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
check() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }
expect() {
  local name=$1 code=$2 pattern=$3
  shift 4
  local out rc
  # An empty pattern matches anything: it means a value the check depends on is missing.
  [[ -n $pattern ]] || { bad "$name (nothing to look for: a value it depends on is empty)"; return; }
  out=$("$@" 2>&1)
  rc=$?
  if [[ $rc -eq $code ]] && grep -qE -- "$pattern" <<<"$out"; then ok "$name"; else
    bad "$name (exit $rc, wanted $code; output: $(head -c 400 <<<"$out"))"
  fi
}
# as IDENTITY PORT_OFFSET ARGS: sarloopctl as that client system, at that service.
as() { "$CTL" --timeout 30 --user linkage-test --identity "$DIR/pki/$1" --target "localhost:$((B + $2))" "${@:3}"; }
# lk IDENTITY ARGS: sarloopctl linkage commands as that system (screening from a SAR also reads
# ukfiu, the target; the linkage service is SARLOOP_LINKAGE_TARGET).
lk() { SARLOOP_LINKAGE_TARGET=$LINKAGE as "$1" 1 "${@:2}"; }

json() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# Synthetic people: NFK's personnel, and SAR subjects of whom 10% are NFK people with errors.
"$SYNTH" --out "$DIR" --index 2000 --subjects 300 --same-person-rate 0.1 --seed 11 >/dev/null
check "the generator wrote personnel, subjects and truth" \
  '[[ $(wc -l <"$DIR/personnel.csv") -eq 2001 && $(wc -l <"$DIR/subjects.csv") -eq 301 ]]'

expect "a force uploads its encoded index" 0 "index version: +1" -- \
  lk force-NFK-psd linkage upload --csv "$DIR/personnel.csv" --key "$KEY"
printf 'id,name\nP1,x\n' >"$DIR/bad.csv"
expect "a CSV with the wrong header is refused before anything is sent" 2 "line 1: the header" -- \
  lk force-NFK-psd linkage upload --csv "$DIR/bad.csv" --key "$KEY"
# A bad row costs only itself: the good rows go, the bad ones are named by line.
printf 'record_id,given_names,surname,date_of_birth,address,postcode\nS1,Ann,Lee,1980-01-02,1 High St,NR1 1AA\nS2,Bob,Ray,1975-05-06,2 Low St,NR2 2BB\nS3,Cat,Fox,1984-02-30,3 Mid St,NR3 3CC\nS4,Dan\nS5,Eve,Kay,,5 Top St,NR5 5EE\n' >"$DIR/some-bad.csv"
expect "a CSV with bad rows loads the good ones" 0 "records: +3" -- \
  lk force-SFK-psd linkage upload --csv "$DIR/some-bad.csv" --key "$KEY"
out=$(lk force-SFK-psd linkage upload --csv "$DIR/some-bad.csv" --key "$KEY" 2>&1 >/dev/null)
check "and names each bad row by line on stderr" \
  'grep -q "2 of 5 rows left out" <<<"$out" && grep -q "line 4: date_of_birth" <<<"$out" && grep -q "line 5: 2 fields, expected 6" <<<"$out"'
# A subject without a date of birth goes with an encoding under every decade an index record can
# have, so SFK's Ann Lee (born 1980) is found from her name and address alone.
printf 'subject_ref,given_names,surname,date_of_birth,address,postcode\nX1,Ann,Lee,,1 High Street,NR11AA\n' >"$DIR/no-dob.csv"
expect "a subject without a date of birth is found through its other encodings" 0 "X1 +SFK +S1 " -- \
  lk ukfiu-intake linkage screen SAR-00000000000000b1 --csv "$DIR/no-dob.csv" --key "$KEY"
# More bad rows than good (dates written another way): the upload would replace SFK's index
# with a fraction of it, so it is refused unless the force says so.
printf 'record_id,given_names,surname,date_of_birth,address,postcode\nS1,Ann,Lee,1980-01-02,1 High St,NR1 1AA\nS2,Bob,Ray,02/05/1975,2 Low St,NR2 2BB\nS3,Cat,Fox,30/01/1984,3 Mid St,NR3 3CC\n' >"$DIR/mostly-bad.csv"
expect "a CSV with more bad rows than good is refused before anything is sent" 2 "2 of 3 rows could not be read.*--accept-bad-rows" -- \
  lk force-SFK-psd linkage upload --csv "$DIR/mostly-bad.csv" --key "$KEY"
expect "and taken with --accept-bad-rows" 0 "records: +1" -- \
  lk force-SFK-psd linkage upload --csv "$DIR/mostly-bad.csv" --key "$KEY" --accept-bad-rows
expect "the good rows' upload again, as before" 0 "records: +3" -- \
  lk force-SFK-psd linkage upload --csv "$DIR/some-bad.csv" --key "$KEY"
printf 'record_id,given_names,surname,date_of_birth,address,postcode\nS3,Cat,Fox,1984-02-30,3 Mid St,NR3 3CC\n' >"$DIR/all-bad.csv"
expect "a CSV with no good row is refused before anything is sent" 2 "no row could be read \\(line 2: date_of_birth" -- \
  lk force-SFK-psd linkage upload --csv "$DIR/all-bad.csv" --key "$KEY"
cp "$KEY" "$DIR/open.key" && chmod 0644 "$DIR/open.key"
expect "a key file others may read is refused" 2 "open.key" -- \
  lk force-NFK-psd linkage upload --csv "$DIR/personnel.csv" --key "$DIR/open.key"
expect "UKFIU may not upload an index" 3 "PERMISSION_DENIED" -- \
  lk ukfiu-intake linkage upload --csv "$DIR/personnel.csv" --key "$KEY"

# Screening the synthetic subjects: hits only, at or above the threshold, mostly true.
lk ukfiu-intake --json linkage screen SAR-00000000000000a1 --csv "$DIR/subjects.csv" --key "$KEY" \
  >"$DIR/screen.json"
check "screening answers" '[[ -s $DIR/screen.json ]]'
check "no response carries an encoding" '! grep -qi "encoding" "$DIR/screen.json"'
/usr/bin/python3 - "$DIR/screen.json" "$DIR/truth.csv" >"$DIR/accuracy.txt" <<'PYEOF'
import csv, json, sys
hits = json.load(open(sys.argv[1])).get("hits", [])
truth = {r["subject_ref"]: r for r in csv.DictReader(open(sys.argv[2]))}
linked = {s for s, r in truth.items() if r["relation"] == "same_person"}
true_hits = {h["subjectRef"] for h in hits if truth[h["subjectRef"]]["record_id"] == h["recordId"]
             and truth[h["subjectRef"]]["relation"] == "same_person"}
low = [h for h in hits if h["scoreMilli"] < 839]  # the service's default threshold
print(len(hits), len(true_hits), len(linked), len(low))
PYEOF
read -r nhits ntrue nlinked nlow <"$DIR/accuracy.txt"
echo "     screened 300 subjects: $nhits hits, $ntrue true, $nlinked linked in truth"
check "every hit is at or above the threshold" '[[ $nlow -eq 0 ]]'
check "at least 90% of hits are true links" '(( nhits > 0 && ntrue * 10 >= nhits * 9 ))'
check "at least 80% of linked subjects are found" '(( ntrue * 10 >= nlinked * 8 ))'

# A SAR naming an NFK employee (with a misspelt surname) without saying so: an indirect link.
row=$(sed -n 2p "$DIR/personnel.csv")
record=$(cut -d, -f1 <<<"$row")
person=$(/usr/bin/python3 -c "
import csv,sys
r=next(csv.DictReader(open('$DIR/personnel.csv')))
print(f\"{r['given_names']} {r['surname'][:-1]}x|{r['date_of_birth']}|||{r['address']} {r['postcode']}\")")
sar=$(as ukfiu-intake 1 --json ukfiu submit --sector banking --narrative "Cash deposits" \
  --subject "$person" | json 'd["sar"]["sarId"]')
# Screened on arrival: ukfiu encodes the subjects and its outbox takes them to the linkage service.
hit=""
for _ in $(seq 600); do
  hit=$(lk ukfiu-intake --json linkage hits --sar "$sar" 2>/dev/null | json 'd.get("hits", [{}])[0].get("hitId", "")' 2>/dev/null)
  [[ $hit == HIT-* ]] && break
  sleep 0.1
done
check "the SAR was screened on arrival and its subject found in NFK's index" '[[ $hit == HIT-* ]]'
expect "screening it again by hand finds the same hit" 0 "$hit" -- \
  lk ukfiu-intake linkage screen "$sar" --key "$KEY"
expect "the hit names NFK's record" 0 "index record: +$record" -- lk ukfiu-intake linkage show "$hit"
expect "a force may not list hits" 3 "PERMISSION_DENIED" -- lk force-NFK-psd linkage hits
expect "another force cannot see NFK's hit" 4 "NOT_FOUND" -- lk force-SFK-psd linkage show "$hit"
ref=$(lk ukfiu-intake --json ukfiu refer "$sar" --org NFK \
  --threat medium --risk medium --harm high --rationale "Screening found a link to NFK personnel" \
  --hit "$hit" | json 'd["referral"]["referralId"]')
check "the hit becomes a referral" '[[ $ref == REF-* ]]'
expect "ukfiu records the route as indirect" 0 "route: +indirect" -- as ukfiu-intake 1 ukfiu referral "$ref"
for _ in $(seq 600); do as force-NFK-psd 11 force inbox 2>/dev/null | grep -q "$ref" && break; sleep 0.1; done
expect "the force's package names its own index record" 0 "indirect link: +$hit: your index record $record" -- \
  as force-NFK-psd 11 force show "$ref"
expect "a verdict needs a reason" 2 "reason" -- lk force-NFK-psd linkage confirm "$hit"
expect "SFK cannot give a verdict on NFK's hit" 4 "NOT_FOUND" -- \
  lk force-SFK-psd linkage confirm "$hit" --reason "not ours"
expect "NFK confirms the link" 0 "confirmed" -- \
  lk force-NFK-psd linkage confirm "$hit" --reason "HR record $record is the subject"
expect "a contrary verdict is refused" 3 "FAILED_PRECONDITION.*CONFIRMED" -- \
  lk force-NFK-psd linkage reject "$hit" --reason "changed mind"
# A false link: a hit from the synthetic screen that the truth says is someone else, or failing
# that any other open hit, is rejected.
other=$(lk ukfiu-intake --json linkage hits --org NFK --status open | json 'd["hits"][0]["hitId"]')
check "another open hit to reject ($other)" '[[ $other == HIT-* && $other != "$hit" ]]'
expect "NFK rejects another hit" 0 "rejected" -- \
  lk force-NFK-psd linkage reject "$other" --reason "record is a different person"
expect "the statistics count the verdicts (analyst)" 0 "NFK +v1 +2000 .* 1 +1 +0\.500" -- \
  lk analyst-alice linkage stats
expect "analysts may not read hits" 3 "PERMISSION_DENIED" -- \
  lk analyst-alice linkage hits

# The service's own gauges, as a monitoring system scrapes them (the PKI's monitor identity).
/usr/bin/python3 - "$DIR/pki" $((B + 6 + 24)) >"$DIR/linkage.metrics" <<'PYEOF'
import http.client, ssl, sys
ctx = ssl.create_default_context(cafile=f"{sys.argv[1]}/ca/ca.pem")
ctx.check_hostname = False
ctx.load_cert_chain(f"{sys.argv[1]}/monitor/cert.pem", f"{sys.argv[1]}/monitor/key.pem")
conn = http.client.HTTPSConnection("localhost", int(sys.argv[2]), context=ctx, timeout=30)
conn.request("GET", "/metrics")
print(conn.getresponse().read().decode())
PYEOF
metric() { awk -v want="$1" '$1 == want { print $2 }' "$DIR/linkage.metrics"; }
check "the linkage gauges: NFK's index, its verdicts, the stored subjects, the screens' latency" \
  '[[ $(metric "sarloop_linkage_index_records{organisation=\"NFK\"}") == 2000 &&
     $(metric "sarloop_linkage_index_version{organisation=\"NFK\"}") == 1 &&
     $(metric "sarloop_linkage_hits{organisation=\"NFK\",verdict=\"confirmed\"}") == 1 &&
     $(metric "sarloop_linkage_hits{organisation=\"NFK\",verdict=\"rejected\"}") == 1 &&
     $(metric "sarloop_linkage_precision{organisation=\"NFK\"}") == 0.5 &&
     $(metric sarloop_linkage_subjects_stored) -ge 300 &&
     $(metric "sarloop_rpc_duration_seconds_count{method=\"/sarloop.v1.Linkage/ScreenSubjects\"}") -ge 1 ]]'

# A restart keeps the index, the subjects and the hits.
"$LOCAL" stop linkage "$DIR" >/dev/null && "$LOCAL" start linkage "$DIR" >/dev/null
expect "after a restart the statistics are the same" 0 "NFK +v1 +2000 .* 1 +1 +0\.500" -- \
  lk analyst-alice linkage stats
expect "after a restart the SAR still screens to the same hit" 0 "$hit" -- \
  lk ukfiu-intake linkage screen "$sar" --key "$KEY"

# SFK's next upload (the same people as NFK's, say) re-screens every stored subject: the 300
# synthetic ones, X1 and the SAR's.
out=$(lk force-SFK-psd linkage upload --csv "$DIR/personnel.csv" --key "$KEY" 2>&1)
rescreened=$(sed -n 's/^subjects re-screened: *//p' <<<"$out")
new=$(sed -n 's/^new hits: *//p' <<<"$out")
check "a new index re-screens the stored subjects ($rescreened) and finds hits ($new)" \
  '[[ ${rescreened:-0} -eq 302 && ${new:-0} -gt 0 ]]'

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
