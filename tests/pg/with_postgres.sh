#!/usr/bin/env bash
# Runs a command beside a throwaway PostgreSQL 15 server: a fresh cluster (initdb) in a temporary
# directory, listening only on a Unix socket there (no TCP), trust authentication for the
# "postgres" role, stopped and deleted afterwards however the command ends. The command finds it
# in SARLOOP_TEST_POSTGRES, a libpq connection string for the "postgres" database (tests create
# their own databases from it).
#
#   tests/pg/with_postgres.sh COMMAND [ARGS...]
#
# As root, the server runs as the "postgres" user (initdb refuses root); Debian's postgresql-15
# package creates it. Exits with the command's status; 2 when no server can be started.
set -euo pipefail
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
if [[ -z $PG_BIN || ! -x $PG_BIN/initdb ]]; then
  echo "with_postgres.sh: no PostgreSQL server binaries (install postgresql-15: deploy/install-deps.sh --tests)" >&2
  exit 2
fi
DIR=$(mktemp -d /tmp/sarloop-pg-XXXXXX)
as_server() {
  if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}
cleanup() {
  as_server "$PG_BIN/pg_ctl" -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT
[[ $(id -u) == 0 ]] && chown postgres "$DIR"
as_server "$PG_BIN/initdb" -D "$DIR/data" -U postgres --auth=trust --no-sync -E UTF8 >"$DIR/initdb.log" 2>&1 ||
  { cat "$DIR/initdb.log" >&2; exit 2; }
# fsync stays on and synchronous_commit on: the tests check that commits are durable.
as_server "$PG_BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
  -o "-c listen_addresses='' -c unix_socket_directories='$DIR' -c max_connections=200" start >/dev/null ||
  { cat "$DIR/server.log" >&2; exit 2; }
export SARLOOP_TEST_POSTGRES="host=$DIR user=postgres dbname=postgres"
export SARLOOP_TEST_POSTGRES_DIR=$DIR
set +e
"$@"
status=$?
set -e
exit $status
