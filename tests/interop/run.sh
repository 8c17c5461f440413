#!/usr/bin/env bash
# Interop and transport checks against a real chain: a generic (Python, no sarloop types) gRPC
# client, a Python client of a force's and a unit's whole workflow, and TLS versions with openssl
# s_client (TLS 1.3 accepted, TLS 1.2 refused), and which servers send bandwidth probes. Run by
# ctest.
# Usage: tests/interop/run.sh BUILD_DIR
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export SARLOOP_BUILD=${1:?usage: run.sh BUILD_DIR}
DIR=$(mktemp -d /tmp/sarloop-interop-XXXXXX)
# A free block of ports that sarloop-local picks (and moves from, should another process take one
# of them first); read back from DIR/base-port once the chain is up.
export SARLOOP_BASE_PORT=auto
cleanup() { "$REPO/deploy/local/sarloop-local" down "$DIR" >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap cleanup EXIT
"$REPO/deploy/local/sarloop-local" up "$DIR" >/dev/null
export SARLOOP_BASE_PORT=$(<"$DIR/base-port")

failed=0
/usr/bin/python3 "$REPO/tests/interop/foreign_client.py" "$DIR/pki" "$SARLOOP_BASE_PORT" || failed=1
# A force's and a unit's whole workflow through stubs protoc generates for Python.
/usr/bin/python3 "$REPO/tests/interop/workflow_client.py" "$REPO" "$DIR/pki" "$SARLOOP_BASE_PORT" ||
  failed=1
# Every service's Prometheus endpoint, scraped with the monitoring identity after that workflow.
/usr/bin/python3 "$REPO/tests/interop/metrics_check.py" "$DIR/pki" "$SARLOOP_BASE_PORT" || failed=1
# Bandwidth probing: a force's server sends none, the linkage service's does.
/usr/bin/python3 "$REPO/tests/interop/pings.py" "$DIR/pki" "$SARLOOP_BASE_PORT" || failed=1

P=$DIR/pki
handshake() {
  echo | timeout 10 openssl s_client "-$1" -connect "127.0.0.1:$((SARLOOP_BASE_PORT + 11))" \
    -cert "$P/force-NFK-psd/cert.pem" -key "$P/force-NFK-psd/key.pem" -CAfile "$P/ca/ca.pem" \
    2>&1 | grep -E '^New, ' || true
}
v13=$(handshake tls1_3)
v12=$(handshake tls1_2)
if [[ $v13 == *TLSv1.3* ]]; then echo "ok   TLS 1.3 handshake: $v13"; else echo "FAIL TLS 1.3 handshake: '$v13'"; failed=1; fi
if [[ $v12 == *"(NONE)"* ]]; then echo "ok   TLS 1.2 refused: $v12"; else echo "FAIL TLS 1.2 accepted: '$v12'"; failed=1; fi
# SIGTERM: every instance stops cleanly (health NOT_SERVING, calls drained, outbox stopped). All
# stop at once on a machine that may be busy: no SIGKILL for a minute.
SARLOOP_STOP_TIMEOUT=60 "$REPO/deploy/local/sarloop-local" down "$DIR" >/dev/null
for log in "$DIR"/logs/{ukfiu,nca,force-*,racu-*}.log; do
  if grep -q "stopped cleanly" "$log"; then echo "ok   $(basename "$log" .log) stopped cleanly on SIGTERM"
  else echo "FAIL $(basename "$log" .log) did not stop cleanly"; failed=1; fi
done
# Text logs (the default) mark their times as UTC.
first=$(grep -m1 -E '^[0-9]{4}-' "$DIR/logs/ukfiu.log" || true)
if [[ $first =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z\  ]]; then
  echo "ok   text log times are marked UTC: ${first:0:40}"
else
  echo "FAIL text log times are not marked UTC: '${first:0:60}'"; failed=1
fi
exit $failed
