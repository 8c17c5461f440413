#!/usr/bin/env bash
# Browser tests of the NCA dashboard: a chain with seeded synthetic data, Debian's ChromeDriver
# and headless Chromium, then dashboard_test.py. Screenshots are kept in BUILD_DIR/tests/browser.
# Needs the chromium and chromium-driver packages (deploy/install-deps.sh --tests installs them).
# Usage: tests/browser/run.sh BUILD_DIR. Prints 'N passed, N failed'.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export SARLOOP_BUILD=${1:?usage: run.sh BUILD_DIR}
for tool in /usr/bin/chromium /usr/bin/chromedriver; do
  [[ -x $tool ]] || { echo "$tool not found: run deploy/install-deps.sh --tests"; echo "0 passed, 1 failed"; exit 1; }
done
OUT=$SARLOOP_BUILD/tests/browser
mkdir -p "$OUT"
DIR=$(mktemp -d /tmp/sarloop-browser-XXXXXX)
export SARLOOP_BASE_PORT=${SARLOOP_BASE_PORT:-$((61000 + RANDOM % 40 * 100 + 50))}
driver_pid=
cleanup() {
  [[ -z $driver_pid ]] || kill "$driver_pid" 2>/dev/null || true
  "$REPO/deploy/local/sarloop-local" down "$DIR" >/dev/null 2>&1 || true
  rm -rf "$DIR" "$OUT/chromium-profile"
}
trap cleanup EXIT
"$REPO/deploy/local/sarloop-local" up "$DIR" >/dev/null
"$SARLOOP_BUILD/tools/synth/sarloop-synth" --pki "$DIR/pki" --sars 300 --seed 7 >"$DIR/synth.log" 2>&1 ||
  { tail -20 "$DIR/synth.log"; echo "0 passed, 1 failed"; exit 1; }

port=$((SARLOOP_BASE_PORT + 90))
/usr/bin/chromedriver --port="$port" --log-path="$DIR/chromedriver.log" >/dev/null 2>&1 &
driver_pid=$!
for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
/usr/bin/python3 "$REPO/tests/browser/dashboard_test.py" "$DIR" "$port" "$OUT"
