#!/usr/bin/env bash
# Before and after in one script on one machine: the same sarloop-bench against two local chains.
#
#   tools/bench/group_commit_compare.sh [BUILD_DIR] [sarloop-bench flags...]
#     before: BUILD_DIR's services with serial commits (every write its own fsync, handlers on
#     gRPC's threads, as before group commit); after: the same services with group commit (the
#     default).
#   SARLOOP_BEFORE_BUILD=OTHER_BUILD_DIR tools/bench/group_commit_compare.sh [BUILD_DIR] [flags...]
#     before: OTHER_BUILD_DIR's services (an earlier commit, built alike); after: BUILD_DIR's;
#     both with the default settings. The benchmark itself is BUILD_DIR's in both halves.
#
# Prints both tables and writes before.json and after.json to the current directory.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
AFTER_BUILD=${1:-$REPO/build}
shift || true
BENCH=$AFTER_BUILD/tools/bench/sarloop-bench
[[ -x $BENCH ]] || { echo "group_commit_compare: $BENCH not built" >&2; exit 1; }
BEFORE_BUILD=${SARLOOP_BEFORE_BUILD:-}
if [[ -n $BEFORE_BUILD && ! -x $BEFORE_BUILD/services/ukfiu/sarloop-ukfiu ]]; then
  echo "group_commit_compare: $BEFORE_BUILD has no services built" >&2
  exit 1
fi
export SARLOOP_BASE_PORT=${SARLOOP_BASE_PORT:-7950}
DIR=$(mktemp -d /tmp/sarloop-compare-XXXXXX)
cleanup() { "$REPO/deploy/local/sarloop-local" down "$DIR" >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap cleanup EXIT
for mode in before after; do
  serial=0
  export SARLOOP_BUILD=$AFTER_BUILD
  if [[ -n $BEFORE_BUILD ]]; then
    [[ $mode == before ]] && SARLOOP_BUILD=$BEFORE_BUILD
    label="$mode: services from $SARLOOP_BUILD"
  else
    [[ $mode == before ]] && serial=1
    label="$mode group commit (serial_commits: $([[ $serial == 1 ]] && echo true || echo false))"
  fi
  rm -rf "$DIR" && mkdir -p "$DIR"
  SARLOOP_SERIAL_COMMITS=$serial "$REPO/deploy/local/sarloop-local" up "$DIR" >/dev/null
  echo "=== $label"
  "$BENCH" --chain "$DIR" --json "$mode.json" "$@"
  "$REPO/deploy/local/sarloop-local" down "$DIR" >/dev/null
  echo
done
