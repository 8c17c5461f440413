#!/usr/bin/env bash
# The retention policy on a real chain (retention_years: 6): two referrals that ended and one still
# open; the chain's clock moves 7 years on; `sarloopctl db purge` (what each service runs hourly)
# deletes the ended ones at NFK and at UKFIU (with their SARs) and keeps the open one; the purge is
# an entry in each audit chain, which still verifies.
# Usage: retention_test.sh BUILD_DIR. Prints 'N passed, N failed'.
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export SARLOOP_BUILD=${1:?usage: retention_test.sh BUILD_DIR}
DIR=$(mktemp -d /tmp/sarloop-retention-XXXXXX)
# A free block of ports that sarloop-local picks (and moves from, should another process take one
# of them first); read back from DIR/base-port once the chain is up.
export SARLOOP_BASE_PORT=auto
LOCAL=$REPO/deploy/local/sarloop-local
cleanup() { "$LOCAL" down "$DIR" >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap cleanup EXIT
SARLOOP_RETENTION_YEARS=6 "$LOCAL" up "$DIR" >/dev/null || { echo "0 passed, 1 failed"; exit 1; }
export SARLOOP_BASE_PORT=$(<"$DIR/base-port")
source "$DIR/env.sh"
CTL=$SARLOOP_CTL
source "$REPO/tests/integration/lib.sh"
pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }

/usr/bin/python3 "$REPO/tests/interop/workflow_client.py" "$REPO" "$DIR/pki" "$SARLOOP_BASE_PORT" \
  >"$DIR/workflow.out" 2>&1 || bad "workflow: $(failures_of "$DIR/workflow.out")"
mapfile -t ended < <(grep -o 'REF-[0-9a-f]*' "$DIR/workflow.out" | head -2)
json() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
sar=$(sarloopctl_as UKFIU --json ukfiu submit --sector bank --narrative "cash deposits" \
  --subject "Rowan Stillwater|1979-05-06|officer|NFK" | json 'd["sar"]["sarId"]')
open=$(sarloopctl_as UKFIU --json ukfiu refer "$sar" --org NFK --threat high --risk medium \
  --harm low --rationale "Unexplained deposits" | json 'd["referral"]["referralId"]')
for _ in $(seq 600); do sarloopctl_as NFK force show "$open" >/dev/null 2>&1 && break; sleep 0.1; done
((${#ended[@]} == 2)) && [[ $open == REF-* ]] && ok "two ended referrals (${ended[*]}) and an open one ($open)" ||
  bad "setup: ended '${ended[*]}', open '$open'"
# The last events delivered everywhere, then every audit head signed.
wait_drained 60 "$DIR"/data/*.db || bad "outboxes did not drain"
wait_checkpointed 30 "$DIR"/data/*.db || bad "audit checkpoints did not cover the logs' heads"

if out=$("$CTL" db purge --config "$DIR/config/force-NFK.textproto" --clock-offset-file "$DIR/clock-offset" 2>&1) && [[ $out == *" 0 referrals"* ]]; then
  ok "nothing is purged before its time: $out"
else
  bad "early purge: $out"
fi
# Seven years on (the chain's clock file, as sarloop-synth moves it).
echo $((7 * 366 * 86400)) >"$DIR/clock-offset.tmp" && mv "$DIR/clock-offset.tmp" "$DIR/clock-offset"
if out=$("$CTL" db purge --config "$DIR/config/force-NFK.textproto" --clock-offset-file "$DIR/clock-offset" 2>&1) && [[ $out == *": 2 referrals"* ]]; then
  ok "NFK purges the two ended referrals: $out"
else
  bad "NFK purge: $out"
fi
if out=$("$CTL" db purge --config "$DIR/config/ukfiu.textproto" --clock-offset-file "$DIR/clock-offset" 2>&1) && [[ $out == *": 2 referrals"*"2 SARs"* ]]; then
  ok "UKFIU purges them and their SARs: $out"
else
  bad "UKFIU purge: $out"
fi
# The services follow the moved clock, and say so loudly.
for _ in $(seq 300); do grep -q "DEVELOPMENT CLOCK.*$((7 * 366 * 86400)) s" "$DIR/logs/force-NFK.log" && break; sleep 0.1; done
grep -q "DEVELOPMENT MODE" "$DIR/logs/force-NFK.log" && grep -q "DEVELOPMENT CLOCK.*$((7 * 366 * 86400)) s" "$DIR/logs/force-NFK.log" &&
  ok "NFK's log says its clock is moved, and by how much" || bad "NFK's log does not warn of the moved clock"
gone=0
for ref in "${ended[@]}"; do
  out=$(sarloopctl_as NFK force show "$ref" 2>&1)
  [[ $out == *NOT_FOUND* ]] && gone=$((gone + 1))
done
((gone == 2)) && ok "NFK no longer has the ended referrals" || bad "$gone of 2 ended referrals gone at NFK"
sarloopctl_as NFK force show "$open" >/dev/null 2>&1 && ok "the open referral stays" || bad "the open referral was purged"
sarloopctl_as UKFIU ukfiu sar "$sar" >/dev/null 2>&1 && ok "its SAR stays at UKFIU" || bad "the open referral's SAR was purged"
entry=$(sqlite3 "file:$DIR/data/force-NFK.db?mode=ro" "SELECT identity || ' ' || detail FROM audit WHERE method = 'retention.purge' ORDER BY seq DESC LIMIT 1")
[[ $entry == "sarloopctl/db-purge ended before"*"2 referrals"* ]] && ok "the purge is in NFK's audit log: $entry" || bad "audit entry: '$entry'"
if out=$("$CTL" audit verify --database "$DIR/data/force-NFK.db" 2>&1); then
  ok "NFK's audit chain verifies after the purge: $out"
else
  bad "audit verify: $out"
fi
if out=$("$CTL" db purge --config "$DIR/config/nca.textproto" --years 6 2>&1); then
  bad "the NCA register was purged"
else
  ok "the NCA register is not purged: $out"
fi
echo "$pass passed, $fail failed"
((fail == 0))
