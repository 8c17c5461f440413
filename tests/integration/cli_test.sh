#!/usr/bin/env bash
# sarloopctl against a real chain: a referral's whole life through the CLI, tables and --json,
# and the CLI's errors (exit 3 refused, 4 not found, 5 unavailable, with the server's code and
# field; 2 for usage; --json errors as JSON).
# Usage: cli_test.sh BUILD_DIR. Prints 'N passed, N failed'.
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export SARLOOP_BUILD=${1:?usage: cli_test.sh BUILD_DIR}
CTL=$SARLOOP_BUILD/tools/sarloopctl
DIR=$(mktemp -d /tmp/sarloop-cli-XXXXXX)
# A free block of ports that sarloop-local picks (and moves from, should another process take one
# of them first); read back from DIR/base-port once the chain is up.
export SARLOOP_BASE_PORT=auto
cleanup() { "$REPO/deploy/local/sarloop-local" down "$DIR" >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap cleanup EXIT
"$REPO/deploy/local/sarloop-local" up "$DIR" >/dev/null || { echo "chain did not start"; exit 1; }
export SARLOOP_BASE_PORT=$(<"$DIR/base-port")
B=$SARLOOP_BASE_PORT

pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
# expect NAME EXIT_CODE PATTERN -- command...: runs it, checks the exit code and that stdout+stderr
# match PATTERN (grep -E).
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
as() { "$CTL" --timeout 10 --user cli-test --identity "$DIR/pki/$1" --target "localhost:$((B + $2))" "${@:3}"; }
source "$REPO/tests/integration/lib.sh"
json() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# Sentinels: a subject's name and date of birth, the narrative, the handover notes. None may appear
# in any log, nor in clear in any database file or WAL (sealed at rest; never sent to the NCA).
SENTINELS=("Alex Cli" "1980-02-03" "Narrative-Sentinel-7Q" "Notes-Sentinel-8R")
sar=$(as ukfiu-intake 1 --json ukfiu submit --sector bank \
  --narrative "Narrative-Sentinel-7Q cash deposits" \
  --subject "Alex Cli|1980-02-03|officer|NFK" | json 'd["sar"]["sarId"]')
[[ $sar == SAR-* ]] && ok "submit returns a SAR id" || bad "submit returned '$sar'"
expect "refer without rationale names the field" 3 "INVALID_ARGUMENT.*thr.rationale" -- \
  as ukfiu-intake 1 ukfiu refer "$sar" --org NFK --threat high --risk low --harm low --rationale "  "
expect "unknown enum value lists the allowed ones" 2 "high" -- \
  as ukfiu-intake 1 ukfiu refer "$sar" --org NFK --threat severe --risk low --harm low --rationale r
expect "missing command is a usage error" 2 "usage|Usage" -- as ukfiu-intake 1 ukfiu
# SubmitSar checks and encodes the SAR on gRPC's thread, before its write job: a refusal there
# still names the field and is audited (below) like any other.
expect "a SAR refused before its write names the field" 3 \
  "INVALID_ARGUMENT.*sar.subjects\[0\].employer_code" -- \
  as ukfiu-intake 1 ukfiu submit --sector bank --narrative "refused early" \
  --subject "Jo Early|1970-01-02|officer|XYZ"
# A request_id is one request: the same again gets the first answer, another body is refused.
rid="cli-reuse-$RANDOM"
first=$(as ukfiu-intake 1 --json --request-id "$rid" ukfiu submit --sector bank --narrative "first" \
  --subject "Sam Reuse|1970-01-02|officer|NFK" 2>&1 | json 'd["sar"]["sarId"]')
again=$(as ukfiu-intake 1 --json --request-id "$rid" ukfiu submit --sector bank --narrative "first" \
  --subject "Sam Reuse|1970-01-02|officer|NFK" 2>&1 | json 'd["sar"]["sarId"]')
[[ $first == SAR-* && $again == "$first" ]] && ok "a repeated request gets the first answer ($first)" ||
  bad "repeat with the same request_id: '$first' then '$again'"
expect "a request_id reused for another request is refused, naming it" 3 \
  "INVALID_ARGUMENT.*request_id.*different request" -- \
  as ukfiu-intake 1 --request-id "$rid" ukfiu submit --sector bank --narrative "second" \
  --subject "Sam Reuse|1970-01-02|officer|NFK"
ref=$(as ukfiu-intake 1 --json ukfiu refer "$sar" --org NFK --threat high --risk medium \
  --harm low --rationale "PNC access and undeclared debts" | json 'd["referral"]["referralId"]')
[[ $ref == REF-* ]] && ok "refer returns a referral id" || bad "refer returned '$ref'"

for _ in $(seq 600); do as force-NFK-psd 11 force inbox 2>/dev/null | grep -q "$ref" && break; sleep 0.1; done
expect "force inbox table shows the referral as RECEIVED" 0 "$ref +RECEIVED" -- as force-NFK-psd 11 force inbox
expect "another force's system is refused" 3 "PERMISSION_DENIED" -- as force-SFK-psd 11 force inbox
# A client system acts for a person, whom sarloopctl must name: --user or SARLOOP_USER, never a
# silent default.
expect "a client system without --user is refused before any call" 2 "--user.*SARLOOP_USER" -- \
  env -u SARLOOP_USER -u USER "$CTL" --identity "$DIR/pki/force-NFK-psd" --target "localhost:$((B + 11))" force inbox
expect "SARLOOP_USER names the person" 0 "$ref" -- \
  env SARLOOP_USER=env-named "$CTL" --identity "$DIR/pki/force-NFK-psd" --target "localhost:$((B + 11))" force inbox
expect "an analyst's certificate names the analyst" 0 "NFK" -- \
  env -u SARLOOP_USER "$CTL" --identity "$DIR/pki/analyst-alice" --target "localhost:$((B + 2))" nca summary
expect "closing before research names the state" 3 "FAILED_PRECONDITION.*RECEIVED" -- \
  as force-NFK-psd 11 force close "$ref" --outcome no_case_to_answer --category other \
  --role officer --opened 2026-01-01 --closed 2026-02-01
# Errors a script can switch on: --json prints the server's google.rpc.Status with its details,
# and the exit status separates refused (3), not found (4) and unavailable (5).
expect "--json: a wrong-state error is JSON with ErrorInfo WRONG_STATE and the state" 3 \
  '"reason":"WRONG_STATE".*"state":"RECEIVED"' -- \
  as force-NFK-psd 11 --json force close "$ref" --outcome no_case_to_answer --category other \
  --role officer --opened 2026-01-01 --closed 2026-02-01
err=$(as force-NFK-psd 11 --json force close "$ref" --outcome no_case_to_answer --category other \
  --role officer --opened 2026-01-01 --closed 2026-02-01 2>/dev/null)
json_ok=$(json "d['status'] == 'FAILED_PRECONDITION' and d['exit_code'] == 3 and any(x.get('violations', [{}])[0].get('type') == 'STATE' for x in d['error']['details'])" <<<"$err" 2>&1)
[[ $json_ok == True ]] && ok "--json: the error parses, with a PreconditionFailure of type STATE" ||
  bad "--json error: $json_ok ($err)"
expect "not found exits 4 with a ResourceInfo naming the referral" 4 \
  '"resourceType":"referral","resourceName":"REF-00000000000000ff"' -- \
  as force-NFK-psd 11 --json force show REF-00000000000000ff
expect "a service that is not there exits 5 (retry)" 5 "UNAVAILABLE" -- \
  "$CTL" --timeout 2 --user cli-test --identity "$DIR/pki/force-NFK-psd" --target "localhost:1" \
  force inbox
# A write whose answer never came may have been carried out: the CLI names the request_id that
# retries it safely (plain and --json); a read has no request_id to name.
expect "a write that got no answer names the request_id to retry with" 5 \
  "to retry without doing it twice, run the same command with --request-id cli-lost-1" -- \
  "$CTL" --timeout 2 --user cli-test --identity "$DIR/pki/force-NFK-psd" --target "localhost:1" \
  --request-id cli-lost-1 force ack "$ref"
expect "--json: the unanswered write's error carries its request_id" 5 '"request_id":"cli-lost-2"' -- \
  "$CTL" --timeout 2 --user cli-test --identity "$DIR/pki/force-NFK-psd" --target "localhost:1" \
  --json --request-id cli-lost-2 force ack "$ref"
out=$("$CTL" --timeout 2 --user cli-test --identity "$DIR/pki/force-NFK-psd" --target "localhost:1" \
  force inbox 2>&1)
grep -q -- "--request-id" <<<"$out" && bad "a read named a request_id to retry with: $out" ||
  ok "a read that got no answer names no request_id"
expect "acknowledge" 0 "ACKNOWLEDGED" -- as force-NFK-psd 11 force ack "$ref"
expect "a category that does not exist is refused by name" 2 "category" -- \
  as force-NFK-psd 11 force research "$ref" --category bribery_of_ducks
expect "research, with what it concerns" 0 "UNDER_RESEARCH" -- as force-NFK-psd 11 force research \
  "$ref" --category theft_and_fraud --category inappropriate_association
for _ in $(seq 600); do
  as analyst-alice 2 nca timeline "$ref" 2>/dev/null | grep -q "categories at research" && break
  sleep 0.1
done
expect "the register has the categories recorded at research" 0 \
  "categories at research.*THEFT_AND_FRAUD, INAPPROPRIATE_ASSOCIATION" -- \
  as analyst-alice 2 nca timeline "$ref"
# A request for information: NFK asks UKFIU, UKFIU answers; the words never reach the NCA.
expect "a force may not ask a unit it never handed to" 3 "INVALID_ARGUMENT.*to" -- \
  as force-NFK-psd 11 force ask "$ref" --to ERSOU --question "Which accounts?"
rfi=$(as force-NFK-psd 11 --json force ask "$ref" --question "Question-Sentinel-4Q: statements?" \
  --attachment "goAML DOC-1" --due-days 5 | json 'd["thread"]["threadId"]')
[[ $rfi == RFI-* ]] && ok "ask returns a thread reference" || bad "ask returned '$rfi'"
for _ in $(seq 600); do as ukfiu-intake 1 ukfiu threads --awaiting 2>/dev/null | grep -q "$rfi" && break; sleep 0.1; done
expect "UKFIU sees what waits for its answer" 0 "$rfi +$ref +NFK +UKFIU .* open" -- \
  as ukfiu-intake 1 ukfiu threads --awaiting
expect "the force cannot answer its own question" 4 "NOT_FOUND.*thread_id" -- \
  as force-NFK-psd 11 force answer "$rfi" --answer "mine"
expect "UKFIU answers" 0 "status: +answered" -- \
  as ukfiu-intake 1 ukfiu answer "$rfi" --answer "Answer-Sentinel-7A: attached" --attachment "goAML DOC-2"
expect "answering twice is refused" 3 "FAILED_PRECONDITION.*answered already" -- \
  as ukfiu-intake 1 ukfiu answer "$rfi" --answer "again"
for _ in $(seq 600); do as force-NFK-psd 11 force threads --referral "$ref" 2>/dev/null | grep -q answered && break; sleep 0.1; done
expect "the force reads the answer" 0 "Answer-Sentinel-7A" -- \
  as force-NFK-psd 11 --json force threads --referral "$ref"
# The IOPC: the referral, then the mode it decides.
expect "a mode before any referral to the IOPC is refused" 3 "FAILED_PRECONDITION.*referral first" -- \
  as force-NFK-psd 11 force iopc "$ref" --mode independent
expect "referred to the IOPC" 0 "IOPC: +referred, mode not yet decided" -- as force-NFK-psd 11 force iopc "$ref"
expect "the IOPC's mode" 0 "IOPC: +DIRECTED" -- as force-NFK-psd 11 force iopc "$ref" --mode directed
# A further SAR joins the open referral; a DAML SAR carries its code.
sar2=$(as ukfiu-intake 1 --json ukfiu submit --sector bank --narrative "Further cash deposits" \
  --daml --subject "Alex Cli|1980-02-03|officer|NFK" | json 'd["sar"]["sarId"]')
expect "a DAML SAR carries its glossary code" 0 "glossary codes: +XXS99XX" -- as ukfiu-intake 1 ukfiu sar "$sar2"
# A carriage return is allowed in free text, but shown, never obeyed: "Overwritten" must not be
# printed over the start of the line.
sar3=$(as ukfiu-intake 1 --json ukfiu submit --sector bank \
  --narrative $'Cash deposits\rOverwritten' --subject "Cr Shown|1980-02-03|officer|NFK" | json 'd["sar"]["sarId"]')
shown=$(as ukfiu-intake 1 ukfiu sar "$sar3" 2>&1)
[[ $shown == *'Cash deposits\x0DOverwritten'* && $shown != *$'\r'* ]] &&
  ok "a carriage return in a narrative is shown as \\x0D, not obeyed" ||
  bad "a narrative with a carriage return shown as: $(od -c <<<"$shown" | head -5)"
expect "a glossary code of the wrong shape is refused by name" 3 "sar.glossary_codes\[0\]" -- \
  as ukfiu-intake 1 ukfiu submit --sector bank --narrative x --glossary-code S99 --subject "A B"
expect "a further SAR attached" 0 "further SARs: +$sar2" -- as ukfiu-intake 1 ukfiu attach "$ref" "$sar2"
for _ in $(seq 600); do as force-NFK-psd 11 force show "$ref" 2>/dev/null | grep -q "further SAR" && break; sleep 0.1; done
expect "the force has the further SAR in its package" 0 "Further cash deposits" -- \
  as force-NFK-psd 11 force show "$ref"
# An organisation not on sarloop: recorded on its behalf.
expect "an organisation without an endpoint needs --off-system" 3 "FAILED_PRECONDITION.*off_system" -- \
  as ukfiu-intake 1 ukfiu refer "$sar2" --org CLE --threat low --risk low --harm low --rationale r
off=$(as ukfiu-intake 1 --json ukfiu refer "$sar2" --org CLE --off-system --threat low --risk low \
  --harm low --rationale "refer to Cleveland by secure email" | json 'd["referral"]["referralId"]')
expect "its reply recorded on its behalf" 0 "off-system: +yes" -- as ukfiu-intake 1 ukfiu \
  record-on-behalf "$off" --step received --received-by "secure email from Cleveland PSD"
expect "a hand-over step is not for record-on-behalf" 3 "INVALID_ARGUMENT.*step" -- as ukfiu-intake 1 \
  ukfiu record-on-behalf "$off" --step handed_over --received-by "email"
expect "a handover without a priority names the field" 3 "priority" -- \
  as force-NFK-psd 11 force handover "$ref" --notes "Notes-Sentinel-8R" --threat high --risk low \
  --harm medium --rationale "covert tactics needed"
expect "hand over" 0 "HANDED_OVER" -- as force-NFK-psd 11 force handover "$ref" \
  --notes "Notes-Sentinel-8R" --priority p2 --threat high --risk low --harm medium \
  --rationale "covert tactics needed"
for _ in $(seq 600); do as racu-ERSOU-cases 21 racu inbox 2>/dev/null | grep -q "$ref" && break; sleep 0.1; done
expect "unit accepts" 0 "JOINT_INVESTIGATION" -- as racu-ERSOU-cases 21 racu accept "$ref" \
  --priority p2 --threat high --risk medium --harm medium --rationale "adopted: P2 joint case"
expect "unit records a charge: an open track" 0 "track CRIMINAL.*CRIMINAL_CHARGED, open" -- \
  as racu-ERSOU-cases 21 racu update-outcome "$ref" --outcome criminal_charged \
  --category theft_and_fraud --role officer --opened 2026-01-01
expect "a hearing cannot finish it while the charge stands" 3 "FAILED_PRECONDITION.*CRIMINAL" -- \
  as racu-ERSOU-cases 21 racu outcome "$ref" --outcome misconduct_hearing --finding misconduct \
  --result final_written_warning --category theft_and_fraud --role officer --opened 2026-01-01 \
  --closed 2026-06-01
expect "an action reg 42 does not allow names the field" 3 "outcome.misconduct_result" -- \
  as racu-ERSOU-cases 21 racu update-outcome "$ref" --outcome misconduct_meeting \
  --finding misconduct --result dismissal_without_notice --category theft_and_fraud --role officer \
  --opened 2026-01-01 --closed 2026-06-01
expect "unit records the outcome" 0 "OUTCOME_RECORDED" -- as racu-ERSOU-cases 21 racu outcome "$ref" \
  --outcome criminal_convicted --category theft_and_fraud \
  --role officer --opened 2026-01-01 --closed 2026-06-01 --summary "debts not declared"
for _ in $(seq 600); do
  as analyst-alice 2 --json nca timeline "$ref" 2>/dev/null | grep -q OUTCOME_RECORDED && break
  sleep 0.1
done
expect "NCA timeline ends with the outcome" 0 "OUTCOME_RECORDED +ERSOU" -- as analyst-alice 2 nca timeline "$ref"
expect "the NCA timeline names the person behind each step" 0 '"user": ?"cli-test"' -- \
  as analyst-alice 2 --json nca timeline "$ref"
expect "NCA summary counts it for NFK" 0 "NFK +1 +1" -- as analyst-alice 2 nca summary
expect "NCA summary in JSON" 0 '"feedbackReceived": ?1' -- as analyst-alice 2 --json nca summary
# The call must succeed and show the referral (the positive control) for the absence to mean
# anything.
if timeline=$(as analyst-alice 2 --json nca timeline "$ref" 2>&1) && [[ $timeline == *"$ref"* ]]; then
  [[ $timeline != *"cash deposits"* ]] && ok "NCA never shows the narrative" ||
    bad "NCA timeline shows the narrative: $(head -c 300 <<<"$timeline")"
  [[ $timeline == *INFORMATION_PROVIDED* && $timeline != *Sentinel-4Q* && $timeline != *Sentinel-7A* &&
     $timeline != *"DOC-1"* ]] && ok "NCA has the thread's events, never its words" ||
    bad "NCA timeline and the thread: $(head -c 300 <<<"$timeline")"
else
  bad "NCA timeline of $ref failed or did not name it: $(head -c 300 <<<"$timeline")"
fi
wait_drained 60 "$DIR/data/ukfiu.db"
expect "ukfiu backlog is drained" 0 "NCA +0" -- as ukfiu-intake 1 ops backlog
expect "health" 0 "SERVING" -- as analyst-alice 2 health
# The signing key lives apart from the data (beside the TLS key, 0600); only its public half is
# beside the database.
key=$DIR/pki/force-NFK/audit-signing.key
[[ -s $key && $(stat -c %a "$key") == 600 && ! -e $DIR/data/force-NFK.db.audit-key &&
  -s $DIR/data/force-NFK.db.audit-key.pub ]] &&
  ok "the audit signing key is apart from the data directory, 0600" ||
  bad "audit key: $(ls -l "$key" "$DIR"/data/force-NFK.db.audit-key* 2>&1)"
# Every service's audit head is witnessed by another organisation: NFK's, ukfiu's and the unit's
# by the NCA, the NCA's by UKFIU; each database holds the head its witness holds.
for pair in force-NFK:11:2 ukfiu:1:2 racu-ERSOU:21:2 nca:2:1; do
  IFS=: read -r svc _ wport <<<"$pair"
  out=""
  for _ in $(seq 300); do
    out=$("$CTL" --identity "$DIR/pki/$svc" --target "localhost:$((B + wport))" \
      audit verify --database "$DIR/data/$svc.db" --witness 2>&1) && [[ $out == *"witnessed at entry"* ]] && break
    sleep 0.1
  done
  [[ $out == *"witnessed at entry"* ]] && ok "$svc's log holds the head its witness holds: $out" ||
    bad "$svc against its witness: $out"
done
# The NCA and UKFIU witness each other, and each audits the heads it takes: a log grown by those
# entries alone is not reported at once, or the two would report to each other for ever. Once the
# chain is idle their logs stop growing: wait for 6 s without growth (while deliveries and the
# checks above settle), then none for 10 s more.
audit_heads() {
  local s
  for s in ukfiu nca; do
    sqlite3 "file:$DIR/data/$s.db?mode=ro" "SELECT COALESCE(MAX(seq), 0) FROM audit" 2>/dev/null
  done | paste -sd' '
}
settled="" last=$(audit_heads) since=$SECONDS
while ((SECONDS < since + 120)); do
  sleep 1
  now=$(audit_heads)
  if [[ $now != "$last" ]]; then last=$now since_change=$SECONDS; fi
  if ((SECONDS - ${since_change:-$since} >= 6)); then settled=$now; break; fi
done
if [[ -n $settled ]]; then
  sleep 10
  [[ $(audit_heads) == "$settled" ]] &&
    ok "idle, the two witnesses' audit logs stop growing (ukfiu, nca at $settled)" ||
    bad "idle, the witnesses' audit logs still grow: $settled -> $(audit_heads)"
else
  bad "the witnesses' audit logs never went 6 s without growing (last: $last)"
fi

# scan_files: every database file, WAL and shared-memory file of every service, and the logs.
scan() {
  local sentinel found=0
  for sentinel in "${SENTINELS[@]}"; do
    if grep -rlaF -- "$sentinel" "$DIR"/logs/ "$DIR"/data/ 2>/dev/null; then found=1; fi
  done
  return $found
}
ls "$DIR"/data/*.db-wal >/dev/null 2>&1 && ok "the scan covers live WAL files" ||
  bad "no WAL files to scan"
scan && ok "no sentinel in any log, database or WAL while running" ||
  bad "a sentinel is in clear on disk (files above)"
# The scan's positive control: what is not sealed (the user in the audit log) is found, so the
# scan reads what the services wrote.
grep -qaF "cli-test" "$DIR"/data/force-NFK.db* && ok "the scan finds unsealed text where it is held" ||
  bad "the scan cannot see text the force holds"
expect "the force's system still reads the subject (sealed, not lost)" 0 "Alex Cli" -- \
  as force-NFK-psd 11 --json force show "$ref"

# Key rotation: a new key first, reseal, drop the old key, and the force still reads its referral.
"$REPO/deploy/local/sarloop-local" stop force-NFK "$DIR" >/dev/null
conf="$DIR/config/force-NFK.textproto"
old_key="$DIR/pki/keys/force-NFK-data-1.key"
new_key="$DIR/pki/keys/force-NFK-data-2.key"
expect "keys new writes a key" 0 "wrote .*data-2.key" -- "$CTL" keys new --out "$new_key"
expect "keys new refuses to overwrite" 2 "already exists" -- "$CTL" keys new --out "$new_key"
sed -i "s|^data_key_files: .*|data_key_files: \"$new_key\"\ndata_key_files: \"$old_key\"|" "$conf"
expect "reencrypt dry run counts what would move" 0 "dry run: [1-9][0-9]* cell" -- \
  "$CTL" keys reencrypt --config "$conf" --dry-run
expect "reencrypt moves every cell to the new key" 0 "resealed [1-9][0-9]* cell" -- \
  "$CTL" keys reencrypt --config "$conf"
expect "reencrypt again has nothing to do" 0 "resealed 0 cell" -- \
  "$CTL" keys reencrypt --config "$conf"
sed -i "\|^data_key_files: \"$old_key\"|d" "$conf"
"$REPO/deploy/local/sarloop-local" start force-NFK "$DIR" >/dev/null
expect "with only the new key the force reads its referral" 0 "Alex Cli" -- \
  as force-NFK-psd 11 --json force show "$ref"
expect "a world-readable key is refused" 2 "chmod 600" -- bash -c "chmod 644 '$new_key' && \
  '$CTL' keys reencrypt --config '$conf'; rc=\$?; chmod 600 '$new_key'; exit \$rc"

# The audit log: every service's chain verifies; refusals are in it; tampering is named.
wait_checkpointed 30 "$DIR"/data/*.db || bad "audit checkpoints did not cover the logs' heads"
for db in "$DIR"/data/*.db; do
  expect "audit log of $(basename "$db" .db) verifies" 0 "audit log verifies: [0-9]+ entries" -- \
    "$CTL" audit verify --database "$db"
done
refused=$(sqlite3 "$DIR/data/force-NFK.db" \
  "SELECT COUNT(*) FROM audit WHERE code = 7 AND identity = 'spiffe://sarloop/force/SFK/psd'")
[[ $refused -ge 1 ]] && ok "the refused call is audited" || bad "refusal not in the audit log"
early=$(sqlite3 "$DIR/data/ukfiu.db" "SELECT COUNT(*) FROM audit WHERE code = 3 AND \
  method = '/sarloop.v1.Ukfiu/SubmitSar' AND user = 'cli-test'")
[[ $early -ge 1 ]] && ok "the SAR refused before its write is audited" ||
  bad "the early refusal is not in ukfiu's audit log ($early)"
submitted=$(sqlite3 "$DIR/data/ukfiu.db" "SELECT COUNT(*) FROM audit WHERE code = 0 AND \
  method = '/sarloop.v1.Ukfiu/SubmitSar' AND identity = 'spiffe://sarloop/ukfiu/intake'")
[[ $submitted -ge 3 ]] && ok "the SARs submitted are audited ($submitted)" ||
  bad "SubmitSar audited $submitted times"
acked=$(sqlite3 "$DIR/data/force-NFK.db" "SELECT COUNT(*) FROM audit WHERE code = 0 AND \
  method = '/sarloop.v1.Force/Acknowledge' AND referral_id = '$ref' AND user = 'cli-test'")
[[ $acked -eq 1 ]] && ok "the acknowledgement is audited once with its user" || bad "ack audited $acked times"
"$REPO/deploy/local/sarloop-local" down "$DIR" >/dev/null
cp "$DIR/data/force-NFK.db" "$DIR/tampered.db"
cp "$DIR/data/force-NFK.db.audit-checkpoints" "$DIR/tampered.db.audit-checkpoints"
sqlite3 "$DIR/tampered.db" "UPDATE audit SET user = 'nobody' WHERE seq = 3"
expect "a changed audit entry is named" 1 "first bad entry 3" -- \
  "$CTL" audit verify --database "$DIR/tampered.db" --key "$DIR/data/force-NFK.db.audit-key.pub"

scan && ok "no sentinel in any log, database or WAL after shutdown" ||
  bad "a sentinel is in clear on disk after shutdown (files above)"

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
