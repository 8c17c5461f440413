#!/usr/bin/env bash
# The analysts' queries on both engines in one script: sarloop-query-bench over a register of N
# referrals in SQLite, then the same register built the same way on PostgreSQL (a throwaway
# server, tests/pg/with_postgres.sh), on the same machine.
#
#   tools/bench/register_engines_compare.sh [BUILD_DIR] [--referrals N] [--reps R]
#
# Prints both tables and writes sqlite.json and postgres.json to the current directory, and
# sqlite.answers and postgres.answers: every query shape's first answer on each engine. The two
# registers are built from the same seed, so the answers must be equal: exit 1 naming the first
# shape that differs.
#
# On each engine the register is built by one run (--build-only) and timed by a second. Between
# the two, PostgreSQL is settled as its manual advises after a bulk load ("Populating a Database":
# run ANALYZE afterwards): VACUUM ANALYZE and a CHECKPOINT, so that autovacuum and the
# checkpointer, woken by 3.4 million new rows, do not share the two cores with the timed queries.
# The script prints the autovacuum workers it found running before and after settling.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${1:-$REPO/build}
shift || true
BENCH=$BUILD/tools/bench/sarloop-query-bench
[[ -x $BENCH ]] || { echo "register_engines_compare: $BENCH not built" >&2; exit 1; }
WORK=$(mktemp -d /tmp/sarloop-engines-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
echo "=== SQLite"
"$BENCH" --build-only --db "$WORK/register.db" "$@"
"$BENCH" --db "$WORK/register.db" --json sqlite.json --answers sqlite.answers "$@"
echo
echo "=== PostgreSQL 15"
# shellcheck disable=SC2016  # expanded by the inner shell, beside the server
"$REPO/tests/pg/with_postgres.sh" bash -c '
  set -euo pipefail
  bench=$0
  db="$SARLOOP_TEST_POSTGRES dbname=sarloop_query_bench"
  autovacuum() {
    psql "$db" -tAc "SELECT count(*) FROM pg_stat_activity WHERE backend_type = '"'"'autovacuum worker'"'"'"
  }
  psql "$SARLOOP_TEST_POSTGRES" -qc "CREATE DATABASE sarloop_query_bench"
  "$bench" --build-only --postgres "$db" "$@"
  echo "autovacuum workers running after the build: $(autovacuum)"
  psql "$db" -qc "VACUUM ANALYZE"
  psql "$db" -qc "CHECKPOINT"
  echo "autovacuum workers running after VACUUM ANALYZE and CHECKPOINT: $(autovacuum)"
  "$bench" --json postgres.json --answers postgres.answers --postgres "$db" "$@"
' "$BENCH" "$@"
echo
shapes=$(grep -c '^=== ' sqlite.answers || true)
if [[ $shapes -gt 0 ]] && cmp -s sqlite.answers postgres.answers; then
  echo "answers: SQLite and PostgreSQL agree on all $shapes query shapes"
else
  echo "answers: SQLite and PostgreSQL differ (or none were written; $shapes shapes):" >&2
  diff sqlite.answers postgres.answers | head -20 >&2
  exit 1
fi
