#!/usr/bin/env bash
# Online backup and restore of a service's database through sarloopctl, on a real chain:
#   1. the Python workflow makes referrals; NFK's database is backed up while NFK runs and takes
#      new referrals at the same time;
#   2. restore is refused while NFK still listens, and a damaged backup is refused;
#   3. NFK is stopped, its database deleted, the backup restored, NFK started: the referrals of
#      step 1 are there, the audit chain verifies against the restored checkpoints, and NFK takes
#      new referrals again.
# Usage: backup_restore_test.sh BUILD_DIR. Prints 'N passed, N failed'.
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export SARLOOP_BUILD=${1:?usage: backup_restore_test.sh BUILD_DIR}
DIR=$(mktemp -d /tmp/sarloop-backup-XXXXXX)
# A free block of ports that sarloop-local picks (and moves from, should another process take one
# of them first); read back from DIR/base-port once the chain is up.
export SARLOOP_BASE_PORT=auto
LOCAL=$REPO/deploy/local/sarloop-local
cleanup() { "$LOCAL" down "$DIR" >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap cleanup EXIT
"$LOCAL" up "$DIR" >/dev/null || { echo "0 passed, 1 failed"; exit 1; }
export SARLOOP_BASE_PORT=$(<"$DIR/base-port")
source "$DIR/env.sh"
CTL=$SARLOOP_CTL
NFK_CONFIG=$DIR/config/force-NFK.textproto
NFK_DB=$DIR/data/force-NFK.db
source "$REPO/tests/integration/lib.sh"
pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
workflow() {
  /usr/bin/python3 "$REPO/tests/interop/workflow_client.py" "$REPO" "$DIR/pki" "$SARLOOP_BASE_PORT" \
    >"$DIR/workflow-$1.out" 2>&1
}
# Referral ids from a workflow run's first line ("ok   UKFIU: ... REF-a REF-b").
referrals_of() { grep -o 'REF-[0-9a-f]*' "$DIR/workflow-$1.out" | head -2; }

workflow before && ok "the workflow made referrals at NFK" || bad "workflow: $(failures_of "$DIR/workflow-before.out")"
# A running service signs an audit checkpoint within 2 s of its log growing; the backup takes it.
wait_checkpointed 30 "$NFK_DB" || bad "NFK signed no checkpoint of its audit head"
workflow during &
during=$!
if out=$("$CTL" db backup --config "$NFK_CONFIG" --out "$DIR/nfk.backup" 2>&1); then
  ok "online backup while NFK takes new referrals: $out"
else
  bad "backup: $out"
fi
wait $during || bad "the workflow running during the backup failed: $(failures_of "$DIR/workflow-during.out")"
# The NCA witnesses NFK's signed audit head; wait until it holds one past what the backup holds, so
# the restore below is a rollback the witness can see.
backup_entries=$(sqlite3 "file:$DIR/nfk.backup?mode=ro" "SELECT COUNT(*) FROM audit")
witness() {
  "$CTL" --identity "$DIR/pki/force-NFK" --target "localhost:$((SARLOOP_BASE_PORT + 2))" \
    audit verify --database "$NFK_DB" --witness 2>&1
}
witnessed=0
for _ in $(seq 150); do
  out=$(witness) && witnessed=$(grep -o 'witnessed at entry [0-9]*' <<<"$out" | grep -o '[0-9]*$')
  ((${witnessed:-0} > backup_entries)) && break
  sleep 0.2
done
((${witnessed:-0} > backup_entries)) &&
  ok "the NCA witnesses NFK's audit head (entry $witnessed; the backup holds $backup_entries)" ||
  bad "the witnessed head of NFK: ${witnessed:-none} (backup holds $backup_entries): $out"
modes=$(stat -c '%a' "$DIR/nfk.backup" "$DIR/nfk.backup.audit-checkpoints" | tr '\n' ' ')
[[ $modes == "600 600 " ]] && ok "the backup and its checkpoints are readable by their owner only (600)" ||
  bad "backup file modes: $modes"
if out=$("$CTL" db backup --config "$NFK_CONFIG" --out "$DIR/nfk.backup" 2>&1); then
  bad "a second backup overwrote the first"
else
  ok "a backup never overwrites: $out"
fi

if out=$("$CTL" db restore --config "$NFK_CONFIG" --from "$DIR/nfk.backup" 2>&1); then
  bad "restore went ahead while NFK runs"
else
  [[ $out == *"stop it before restoring"* ]] && ok "restore refused while NFK listens" || bad "restore while running: $out"
fi
# The same service named another way: an IPv6 form of its address (brackets), and a host that does
# not resolve. A restore must not take "cannot connect as written" for "stopped".
sed 's/^listen: "127.0.0.1:\([0-9]*\)"/listen: "[::ffff:127.0.0.1]:\1"/' "$NFK_CONFIG" >"$DIR/nfk-v6.textproto"
sed 's/^listen: "127.0.0.1:\([0-9]*\)"/listen: "no-such-host.invalid:\1"/' "$NFK_CONFIG" >"$DIR/nfk-unknown.textproto"
if out=$("$CTL" db restore --config "$DIR/nfk-v6.textproto" --from "$DIR/nfk.backup" 2>&1); then
  bad "restore went ahead while NFK runs, its address in brackets"
else
  [[ $out == *"stop it before restoring"* ]] && ok "restore refused while NFK listens, its address in brackets" ||
    bad "restore with a bracketed address: $out"
fi
if out=$("$CTL" db restore --config "$DIR/nfk-unknown.textproto" --from "$DIR/nfk.backup" 2>&1); then
  bad "restore went ahead though it could not tell whether NFK runs"
else
  [[ $out == *"cannot tell whether the service listens"* ]] &&
    ok "restore refused when it cannot tell whether NFK runs: $out" || bad "restore to an unknown host: $out"
fi
# A watch cursor NFK signed before the restore: the restored feed will number its next events as
# it did at the backup, so the cursor must be refused, not resumed past them.
sarloopctl_as NFK --json force watch --from-start --count 1 --cursor-file "$DIR/nfk.cursor" \
  >/dev/null 2>"$DIR/watch-before.err" && [[ -s $DIR/nfk.cursor ]] ||
  bad "a watch before the restore kept no cursor: $(cat "$DIR/watch-before.err")"
cp "$DIR/nfk.backup" "$DIR/damaged.backup"
size=$(stat -c %s "$DIR/damaged.backup")
# Garbage over the first page's b-tree (the schema, past the 100-byte file header) and over the
# middle of the file: whichever pages are in use, the copy is damaged where it is read.
for at in 100 $((size / 2)); do
  printf 'garbage!garbage!garbage!garbage!' | dd of="$DIR/damaged.backup" bs=1 seek="$at" conv=notrunc status=none
done
"$LOCAL" stop force-NFK "$DIR" >/dev/null
if out=$("$CTL" db restore --config "$NFK_CONFIG" --from "$DIR/damaged.backup" 2>&1); then
  bad "a damaged backup was restored"
else
  [[ -f $NFK_DB ]] && ok "a damaged backup is refused, the database left alone: $out" || bad "damaged restore removed the database"
fi

rm -f "$NFK_DB" "$NFK_DB-wal" "$NFK_DB-shm" "$NFK_DB.audit-checkpoints"
# As root, the restore must leave files the service's user can write: here the data directory
# belongs to 'nobody' for the restore, so the restored files must too.
data_owner=$(stat -c '%U' "$(dirname "$NFK_DB")")
[[ $EUID == 0 ]] && chown nobody "$(dirname "$NFK_DB")"
if out=$("$CTL" db restore --config "$NFK_CONFIG" --from "$DIR/nfk.backup" 2>&1); then
  ok "restored: $out"
else
  bad "restore: $out"
fi
if [[ $EUID == 0 ]]; then
  owners=$(stat -c '%U %a' "$NFK_DB" "$NFK_DB.audit-checkpoints" | tr '\n' ' ')
  [[ $owners == "nobody 600 nobody 600 " ]] &&
    ok "a restore run as root leaves the service's owner and mode on the files ($owners)" ||
    bad "restored files' owner and mode: $owners"
  chown "$data_owner" "$(dirname "$NFK_DB")"
else
  echo "(not root: the restore's owner check needs root to give files away)"
fi
if out=$("$CTL" audit verify --database "$NFK_DB" 2>&1); then
  ok "the restored audit chain verifies against the restored checkpoints: $out"
else
  bad "audit verify after restore: $out"
fi
# A restore is a rollback: the disk cannot tell, the witness can.
out=$(witness)
rc=$?
held=$(grep -o 'holds the head at entry [0-9]*' <<<"$out" | grep -o '[0-9]*$')
[[ $rc != 0 && $out == *"rolled back or cut"* ]] &&
  ok "against the NCA's witnessed head the restored log is a rollback: $out" ||
  bad "verify --witness after the restore: exit $rc: $out"
# An analyst can check any service against what the NCA witnessed.
out=$("$CTL" --identity "$DIR/pki/analyst-alice" --target "localhost:$((SARLOOP_BASE_PORT + 2))" \
  audit verify --database "$NFK_DB" --witness --service spiffe://sarloop/force/NFK 2>&1)
[[ $? != 0 && $out == *"rolled back"* ]] && ok "an analyst sees the same" || bad "analyst verify --witness: $out"
"$LOCAL" start force-NFK "$DIR" >/dev/null || bad "NFK did not start on the restored database"
if out=$(SARLOOP_TARGET=$SARLOOP_NFK_TARGET SARLOOP_IDENTITY=$SARLOOP_NFK_IDENTITY SARLOOP_USER=psd timeout 60 \
  "$SARLOOP_CTL" force watch --count 1 --cursor-file "$DIR/nfk.cursor" 2>&1); then
  bad "a cursor signed before the restore was resumed: $out"
else
  [[ $out == *"restored from a backup"* ]] && ok "a cursor signed before the restore is refused" ||
    bad "a cursor from before the restore: $out"
fi
found=0
for ref in $(referrals_of before); do
  sarloopctl_as NFK force show "$ref" >/dev/null 2>&1 && found=$((found + 1))
done
((found == 2)) && ok "NFK has the referrals made before the backup ($found of 2)" || bad "NFK has $found of 2 referrals"
# A log rolled back and grown again to exactly the witnessed length has the witnessed entry's number
# but not its hash, and the witness must still hear of it (a reporter that compared numbers only
# once sent nothing here). Audited reads pad the restored log to that length; nothing else calls
# NFK now, so it stays there.
entries() { sqlite3 "file:$NFK_DB?mode=ro" "SELECT COALESCE(MAX(seq), 0) FROM audit" 2>/dev/null; }
first_ref=$(referrals_of before | head -1)
for _ in $(seq 400); do
  (($(entries) >= ${held:-0})) && break
  sarloopctl_as NFK force show "$first_ref" >/dev/null 2>&1
done
if [[ -n $held && $(entries) == "$held" ]]; then
  for _ in $(seq 600); do
    grep -q "refuses this service's head at entry $held: .*another hash" "$DIR/logs/force-NFK.log" && break
    sleep 0.1
  done
  grep -q "refuses this service's head at entry $held: .*another hash" "$DIR/logs/force-NFK.log" &&
    ok "the restored log grown back to the witnessed entry $held is refused: that entry has another hash" ||
    bad "the restored log at the witnessed entry $held was not refused by the witness"
else
  bad "the restored log could not be brought to the witnessed entry ${held:-?}: it is at $(entries)"
fi
workflow after && ok "NFK takes new referrals after the restore" || bad "workflow after restore: $(failures_of "$DIR/workflow-after.out")"
# The report goes out within seconds of the log growing; a loaded machine may take longer, so wait
# for both logs (up to two minutes) rather than a fixed few seconds.
for _ in $(seq 1200); do
  grep -q "audit witness NCA refuses" "$DIR/logs/force-NFK.log" &&
    grep -q "audit witness: .*force/NFK" "$DIR/logs/nca.log" && break
  sleep 0.1
done
grep -q "audit witness NCA refuses" "$DIR/logs/force-NFK.log" &&
  ok "the witness refuses the restored NFK's heads, and NFK's log says so" ||
  bad "NFK's log does not show the witness refusing its rolled-back head"
grep -q "audit witness: .*force/NFK" "$DIR/logs/nca.log" && ok "the NCA's log names the rollback" ||
  bad "the NCA's log does not name NFK's rollback"
echo "$pass passed, $fail failed"
((fail == 0))
