#!/usr/bin/env bash
# tools/bench/wal_pages.py over a trace whose frames are known: a real database's pages, written
# as strace prints WAL frame headers (two commits, one with a frame of a page freed since). It must
# count the commits and frames and name each page's table or index; and commit_page_cost.py must
# print each of its measurements. Prints 'N passed, N failed'.
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PY=/usr/bin/python3
WORK=$(mktemp -d /tmp/sarloop-wal-pages-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
pass=0 fail=0
check() {  # name, command...
  local name=$1; shift
  if "$@"; then echo "ok   $name"; pass=$((pass + 1)); else echo "FAIL $name"; fail=$((fail + 1)); fi
}
"$PY" - "$WORK" <<'PYEOF'
import sqlite3, sys
work = sys.argv[1]
con = sqlite3.connect(f"{work}/t.db")
con.execute("CREATE TABLE a (k TEXT PRIMARY KEY, v BLOB)")
con.execute("CREATE TABLE b (k INTEGER PRIMARY KEY, v BLOB)")
con.commit()
root = dict(con.execute("SELECT name, rootpage FROM sqlite_schema"))
pages = [root["a"], root["sqlite_autoindex_a_1"], root["b"], root["a"]]
def frame(t, page, commit):
    h = page.to_bytes(4, "big") + commit.to_bytes(4, "big")
    return (f'4242  07:00:{t:09.6f} pwrite64(9, "' + "".join(f"\\x{c:02x}" for c in h)
            + f'"..., 24, 32) = 24\n4242  07:00:{t:09.6f} pwrite64(9, "\\x0d"..., 4096, 56) = 4096\n')
with open(f"{work}/trace", "w") as f:
    f.write("4242  07:00:01.000000 fdatasync(9) = 0\n")
    f.write(frame(1.0, pages[0], 0) + frame(1.1, pages[1], 0) + frame(1.2, pages[2], 9))
    f.write(frame(5.0, pages[3], 0) + frame(5.1, 9999, 9))
PYEOF
out=$("$PY" "$REPO/tools/bench/wal_pages.py" --db "$WORK/t.db" --strace "$WORK/trace")
echo "$out"
check "two commits of 3 and 2 frames" grep -q "^2 commits, 2.5 frames per commit" <<<"$out"
check "table a, 2 frames in 2 commits" grep -Eq "^  a +1.00$" <<<"$out"
check "a's key index" grep -Eq "^  sqlite_autoindex_a_1 +0.50$" <<<"$out"
check "table b" grep -Eq "^  b +0.50$" <<<"$out"
check "a page not in the database" grep -Eq "^  \(freed or new since\) +0.50$" <<<"$out"
last=$("$PY" "$REPO/tools/bench/wal_pages.py" --db "$WORK/t.db" --strace "$WORK/trace" --last 2)
check "--last keeps the last commit only" grep -q "^1 commits, 2.0 frames per commit" <<<"$last"
if "$PY" "$REPO/tools/bench/wal_pages.py" --db "$WORK/t.db" --strace "$WORK/none" 2> "$WORK/err"; then
  echo "FAIL a missing trace exited 0"; fail=$((fail + 1))
else
  check "a missing trace is an error naming it" grep -q "none" "$WORK/err"
fi
# --wal: the same count from a WAL file's own frames. Two commits after the WAL starts again (a
# row into a and its key index, then a row into b); frames of an older generation after them
# must not count.
"$PY" - "$WORK" <<'PYEOF'
import sqlite3, sys
work = sys.argv[1]
con = sqlite3.connect(f"{work}/w.db", isolation_level=None)
con.execute("PRAGMA journal_mode = WAL")
con.execute("PRAGMA wal_autocheckpoint = 0")
con.execute("CREATE TABLE a (k TEXT PRIMARY KEY, v BLOB)")
con.execute("CREATE TABLE b (k INTEGER PRIMARY KEY, v BLOB)")
for i in range(30):  # a longer first generation, whose frames stay in the file after the restart
    con.execute("INSERT INTO b (v) VALUES (zeroblob(3000))")
con.execute("PRAGMA wal_checkpoint(PASSIVE)")
con.execute("INSERT INTO a VALUES ('x', 'y')")
con.execute("INSERT INTO b (v) VALUES ('z')")
import shutil
shutil.copy(f"{work}/w.db", f"{work}/copy.db")
shutil.copy(f"{work}/w.db-wal", f"{work}/copy.db-wal")
PYEOF
wal=$("$PY" "$REPO/tools/bench/wal_pages.py" --db "$WORK/copy.db" --wal)
echo "$wal"
check "--wal: the current generation's two commits" grep -q "^2 commits, 1.5 frames per commit" <<<"$wal"
check "--wal: table a and its key, once each" \
  bash -c 'grep -Eq "^  a +0.50$" <<<"$1" && grep -Eq "^  sqlite_autoindex_a_1 +0.50$" <<<"$1"' _ "$wal"
check "--wal: table b's last leaf" grep -Eq "^  b +0.50$" <<<"$wal"
if "$PY" "$REPO/tools/bench/wal_pages.py" --db "$WORK/t.db" --wal 2> "$WORK/err"; then
  echo "FAIL a database without a WAL exited 0"; fail=$((fail + 1))
else
  check "a database without a WAL is an error naming it" grep -q "t.db-wal" "$WORK/err"
fi
# Its companion, the cost of a page in a commit: every measurement printed, a number each.
cost=$("$PY" "$REPO/tools/bench/commit_page_cost.py" --dir "$WORK" --commits 5)
echo "$cost"
check "commit_page_cost prints eight measurements" \
  test "$(grep -Ec '^ +(1|10|20|30) +[0-9]+\.[0-9]{3} +[0-9]+\.[0-9]{3}$' <<<"$cost")" -eq 8
echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
