#!/usr/bin/env bash
# Group commit's effect, before and after in one script on one machine: the same sarloop-bench
# against a local chain with serial commits (every write its own fsync, handlers on gRPC's threads,
# as before group commit) and against one with group commit (the default).
#
#   tools/bench/group_commit_compare.sh [BUILD_DIR] [sarloop-bench flags...]
#
# Prints both tables and writes before.json and after.json to the current directory.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export SARLOOP_BUILD=${1:-$REPO/build}
shift || true
BENCH=$SARLOOP_BUILD/tools/bench/sarloop-bench
[[ -x $BENCH ]] || { echo "group_commit_compare: $BENCH not built" >&2; exit 1; }
export SARLOOP_BASE_PORT=${SARLOOP_BASE_PORT:-7950}
DIR=$(mktemp -d /tmp/sarloop-compare-XXXXXX)
cleanup() { "$REPO/deploy/local/sarloop-local" down "$DIR" >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap cleanup EXIT
for mode in before after; do
  serial=0
  [[ $mode == before ]] && serial=1
  rm -rf "$DIR" && mkdir -p "$DIR"
  SARLOOP_SERIAL_COMMITS=$serial "$REPO/deploy/local/sarloop-local" up "$DIR" >/dev/null
  echo "=== $mode group commit (serial_commits: $([[ $serial == 1 ]] && echo true || echo false))"
  "$BENCH" --chain "$DIR" --json "$mode.json" "$@"
  "$REPO/deploy/local/sarloop-local" down "$DIR" >/dev/null
  echo
done
