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
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${1:-$REPO/build}
shift || true
BENCH=$BUILD/tools/bench/sarloop-query-bench
[[ -x $BENCH ]] || { echo "register_engines_compare: $BENCH not built" >&2; exit 1; }
echo "=== SQLite"
"$BENCH" --json sqlite.json --answers sqlite.answers "$@"
echo
echo "=== PostgreSQL 15"
# shellcheck disable=SC2016  # expanded by the inner shell, beside the server
"$REPO/tests/pg/with_postgres.sh" bash -c '
  psql "$SARLOOP_TEST_POSTGRES" -qc "CREATE DATABASE sarloop_query_bench" &&
  "$0" --json postgres.json --answers postgres.answers \
    --postgres "$SARLOOP_TEST_POSTGRES dbname=sarloop_query_bench" "$@"
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
