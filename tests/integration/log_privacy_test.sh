#!/usr/bin/env bash
# Logs carry ids, never personal data. A chain logging every call (debug) as JSON lines runs the
# Python workflow (tests/interop/workflow_client.py) with a sentinel word planted in every name,
# address, narrative and note, plus requests refused for bad input that carry it too. Then
# every log line must parse as JSON, no log may contain the sentinel, and each call about a
# referral must name the referral and its request id.
# Usage: log_privacy_test.sh BUILD_DIR. Prints 'N passed, N failed'.
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export SARLOOP_BUILD=${1:?usage: log_privacy_test.sh BUILD_DIR}
DIR=$(mktemp -d /tmp/sarloop-logs-XXXXXX)
# A free block of ports that sarloop-local picks (and moves from, should another process take one
# of them first); read back from DIR/base-port once the chain is up.
export SARLOOP_BASE_PORT=auto
cleanup() { "$REPO/deploy/local/sarloop-local" down "$DIR" >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap cleanup EXIT
SARLOOP_LOG_LEVEL=debug SARLOOP_LOG_JSON=1 "$REPO/deploy/local/sarloop-local" up "$DIR" >/dev/null ||
  { echo "0 passed, 1 failed"; exit 1; }
export SARLOOP_BASE_PORT=$(<"$DIR/base-port")
source "$REPO/tests/integration/lib.sh"
SENTINEL="Quagmirewort$RANDOM"
pass=0 fail=0
if SARLOOP_SENTINEL=$SENTINEL /usr/bin/python3 "$REPO/tests/interop/workflow_client.py" "$REPO" \
  "$DIR/pki" "$SARLOOP_BASE_PORT" >"$DIR/workflow.out" 2>&1; then
  echo "ok   the workflow ran with '$SENTINEL' in every name and free text"; pass=$((pass + 1))
else
  echo "FAIL the workflow: $(failures_of "$DIR/workflow.out")"; fail=$((fail + 1))
fi
# Refused requests carrying the sentinel: an unknown employer code and an oversized name.
if /usr/bin/python3 - "$DIR/pki" "$SARLOOP_BASE_PORT" "$SENTINEL" <<'EOF'; then
import sys
import grpc
pki, base, sentinel = sys.argv[1], int(sys.argv[2]), sys.argv[3]
read = lambda p: open(f"{pki}/ukfiu-intake/{p}", "rb").read()
creds = grpc.ssl_channel_credentials(read("ca.pem"), read("key.pem"), read("cert.pem"))
with grpc.secure_channel(f"localhost:{base + 1}", creds) as ch:
    submit = ch.unary_unary("/sarloop.v1.Ukfiu/SubmitSar")
    def s(field, value):  # a length-delimited protobuf field
        n, size = len(value), b""
        while True:
            size += bytes([(n & 0x7F) | (0x80 if n > 0x7F else 0)])
            n >>= 7
            if not n:
                return bytes([field << 3 | 2]) + size + value
    # Valid but for the employer code, whose error message would quote it.
    subject = (s(1, f"Mx {sentinel}".encode()) + s(2, b"1980-01-01") + bytes([4 << 3, 1]) +
               s(5, sentinel.upper().encode()))
    sar = (s(2, f"REF-{sentinel}".encode()) + s(3, b"bank") + s(5, f"narrative {sentinel}".encode())
           + s(7, subject))
    # request_id is the client's own id and is logged; the sentinel goes everywhere else.
    for request in (s(1, b"bad-employer") + s(2, sar),
                    s(1, b"bad-name") + s(2, s(7, s(1, sentinel.encode() * 40)))):
        try:
            submit(request, timeout=10, metadata=(("x-sarloop-user", "log.test"),))
            print("FAIL a bad SubmitSar was accepted"); sys.exit(1)
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e
print("ok   two SubmitSar calls carrying the sentinel refused INVALID_ARGUMENT")
EOF
  pass=$((pass + 1))
else
  fail=$((fail + 1))
fi
# Every delivery made (and logged) before the stop.
wait_drained 60 "$DIR"/data/*.db || fail=$((fail + 1))
"$REPO/deploy/local/sarloop-local" down "$DIR" >/dev/null
/usr/bin/python3 - "$DIR/logs" "$SENTINEL" "$pass" "$fail" <<'EOF'
import json, os, re, sys
logs, sentinel = sys.argv[1], sys.argv[2]
passed, failed = int(sys.argv[3]), int(sys.argv[4])  # the checks above
def check(name, ok, detail=""):
    global passed, failed
    print(f"{'ok  ' if ok else 'FAIL'} {name} {detail}")
    passed, failed = passed + ok, failed + (not ok)
lines, bad_json, leaks, calls, records = 0, [], [], [], []
for name in sorted(os.listdir(logs)):
    with open(os.path.join(logs, name), errors="replace") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line or line.startswith("=== "):  # sarloop-local's own start and stop marks
                continue
            lines += 1
            if sentinel.lower() in line.lower():
                leaks.append(f"{name}:{n}: {line[:160]}")
            if not re.match(r"(ukfiu|nca|force-\w+|racu-\w+)\.log$", name):
                continue  # the launcher's own logs (pki.log) are not the services'
            try:
                record = json.loads(line)
                assert {"time", "level", "service", "msg"} <= record.keys()
            except (ValueError, AssertionError):
                # The fault-free services write nothing but JSON; anything else is a finding.
                bad_json.append(f"{name}:{n}: {line[:160]}")
                continue
            if record["msg"].startswith("call "):
                calls.append(record["msg"])
                records.append(record)
check("every log line is a JSON object with time, level, service and msg",
      not bad_json and lines > 0, f"({lines} lines){' ' + bad_json[0] if bad_json else ''}")
check("no log contains the sentinel", not leaks, leaks[0] if leaks else f"({lines} lines scanned)")
steps = [c for c in calls if re.match(r"call /sarloop\.v1\.(Force|Racu)/(Acknowledge|StartResearch|"
                                      r"HandOver|Close|Accept|RecordOutcome) OK ", c)]
check("each step on a referral logs its referral and request id",
      steps and all(re.search(r" referral=REF-\S+ request=interop-\S+ ", c) for c in steps),
      f"({len(steps)} steps){' e.g. ' + steps[0] if steps else ''}")
refused = [c for c in calls if "INVALID_ARGUMENT" in c and "SubmitSar" in c]
check("a refused call logs the field at fault, not the value",
      any(" field=" in c for c in refused), refused[0] if refused else "(none)")
keyed = [r for r in records if isinstance(r.get("method"), str) and isinstance(r.get("code"), str)
         and isinstance(r.get("latency_ms"), (int, float)) and r["msg"].startswith(
             f"call {r['method']} {r['code']} ")]
with_caller = [r for r in records if r.get("caller", "").startswith("spiffe://sarloop/")]
with_referral = [r for r in records if r.get("referral_id", "").startswith("REF-")]
check("every call's line has method, code and latency_ms as their own JSON keys, and caller and "
      "referral_id where known",
      bool(records) and len(keyed) == len(records) and bool(with_caller) and bool(with_referral),
      f"({len(records)} calls, {len(keyed)} keyed, {len(with_caller)} with caller, "
      f"{len(with_referral)} with referral_id; e.g. {records[0] if records else None})")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
EOF
# The scan prints the summary of every check, the two above included.
