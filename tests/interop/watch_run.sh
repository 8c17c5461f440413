#!/usr/bin/env bash
# Watch streams against a chain of their own (the test kills and restarts NFK's service): see
# tests/interop/watch_test.py. Run by ctest.
# Usage: tests/interop/watch_run.sh BUILD_DIR
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export SARLOOP_BUILD=${1:?usage: watch_run.sh BUILD_DIR}
DIR=$(mktemp -d /tmp/sarloop-watch-XXXXXX)
export SARLOOP_BASE_PORT=auto
cleanup() { "$REPO/deploy/local/sarloop-local" down "$DIR" >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap cleanup EXIT
"$REPO/deploy/local/sarloop-local" up "$DIR" >/dev/null
/usr/bin/python3 "$REPO/tests/interop/watch_test.py" "$REPO" "$DIR" "$(<"$DIR/base-port")"
