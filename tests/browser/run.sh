#!/usr/bin/env bash
# Browser tests of the NCA dashboard: a chain with a national exercise's referrals, Debian's ChromeDriver
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
# A free block of ports that sarloop-local picks (and moves from, should another process take one
# of them first); read back from DIR/base-port once the chain is up.
export SARLOOP_BASE_PORT=auto
driver_pid=
cleanup() {
  [[ -z $driver_pid ]] || kill "$driver_pid" 2>/dev/null || true
  "$REPO/deploy/local/sarloop-local" down "$DIR" >/dev/null 2>&1 || true
  rm -rf "$DIR" "$OUT/chromium-profile"
}
trap cleanup EXIT
# The chain's clock starts on the 1 April opening the last full financial year, and the national
# exercise plays referrals from there to today, so the timeliness an analyst sorts by is real.
year=$(date -u +%Y)
(($(date -u +%m) >= 4)) || year=$((year - 1))
SARLOOP_CLOCK_START=$((year - 1))-04-01 "$REPO/deploy/local/sarloop-local" up "$DIR" >/dev/null
export SARLOOP_BASE_PORT=$(<"$DIR/base-port")
"$SARLOOP_BUILD/tools/synth/sarloop-exercise" --chain "$DIR" --per-year 300 --seed 7 >"$DIR/exercise.log" 2>&1 ||
  { tail -20 "$DIR/exercise.log"; echo "0 passed, 1 failed"; exit 1; }

# ChromeDriver on a port the kernel hands out (bound, read back, released); should another process
# take it before ChromeDriver binds, the next attempt takes another.
free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port=
for attempt in 1 2 3 4 5; do
  candidate=$(free_port)
  /usr/bin/chromedriver --port="$candidate" --log-path="$DIR/chromedriver.log" >/dev/null 2>&1 &
  driver_pid=$!
  for _ in $(seq 100); do
    kill -0 "$driver_pid" 2>/dev/null || break
    if (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then port=$candidate; break; fi
    sleep 0.1
  done
  [[ -z $port ]] || break
  kill "$driver_pid" 2>/dev/null || true
  driver_pid=
done
[[ -n $port ]] || { echo "FAIL chromedriver did not start: $(tail -3 "$DIR/chromedriver.log")"; echo "0 passed, 1 failed"; exit 1; }
/usr/bin/python3 "$REPO/tests/browser/dashboard_test.py" "$DIR" "$port" "$OUT"
