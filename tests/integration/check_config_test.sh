#!/usr/bin/env bash
# `sarloop-<kind> --check-config`: every configuration sarloop-local writes (one per instance) and
# every example in deploy/config/ (one per role) passes, text proto and JSON alike; each kind of mistake an operator makes is refused with exit 2 and a
# message naming the field and what is wrong. Nothing is started.
# Usage: check_config_test.sh BUILD_DIR. Prints 'N passed, N failed'.
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export SARLOOP_BUILD=${1:?usage: check_config_test.sh BUILD_DIR}
DIR=$(mktemp -d /tmp/sarloop-checkconfig-XXXXXX)
# A free block of ports that sarloop-local picks (and moves from, should another process take one
# of them first); read back from DIR/base-port once the chain is up.
export SARLOOP_BASE_PORT=auto
cleanup() { "$REPO/deploy/local/sarloop-local" down "$DIR" >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap cleanup EXIT
# `up` writes the PKI and every configuration; the services themselves are not needed.
"$REPO/deploy/local/sarloop-local" up "$DIR" >/dev/null && "$REPO/deploy/local/sarloop-local" down "$DIR" >/dev/null ||
  { echo "0 passed, 1 failed"; exit 1; }
pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }

binary() { echo "$SARLOOP_BUILD/services/$1/sarloop-$1"; }
kind_of() { sed -n 's/^kind: SERVICE_KIND_\(.*\)$/\1/p' "$1" | tr 'A-Z' 'a-z'; }

for cfg in "$DIR"/config/*.textproto; do
  name=$(basename "$cfg" .textproto)
  kind=$(kind_of "$cfg")
  if out=$("$(binary "$kind")" --config="$cfg" --check-config 2>&1) && [[ $out == *"configuration OK"* ]]; then
    ok "$name: configuration OK"
  else
    bad "$name: $out"
  fi
done

# The example configuration for each role in deploy/config/, its /etc/sarloop and /var/lib/sarloop
# paths moved into a sandbox holding the dev PKI's files for that role.
for pair in ukfiu:ukfiu nca:nca force:force-NFK racu:racu-ERSOU linkage:linkage; do
  kind=${pair%%:*} name=${pair#*:} ex=$DIR/examples/${pair%%:*}
  mkdir -p "$ex/etc/tls" "$ex/etc/keys" "$ex/var/$kind"
  cp "$DIR/pki/$name"/{cert,key,ca}.pem "$ex/etc/tls/" && cp -r "$DIR/pki/crl" "$ex/etc/tls/crl"
  cp "$DIR/pki/keys/$name-data-1.key" "$ex/etc/keys/data-1.key"
  cp "$DIR/pki/keys/subject-hmac.key" "$ex/etc/keys/subject-hmac.key"
  sed -e "s|/etc/sarloop/|$ex/etc/|g" -e "s|/var/lib/sarloop/|$ex/var/|g" \
    "$REPO/deploy/config/$kind.textproto" >"$ex/config.textproto"
  if out=$("$(binary "$kind")" --config="$ex/config.textproto" --check-config 2>&1); then
    ok "deploy/config/$kind.textproto: configuration OK"
  else
    bad "deploy/config/$kind.textproto: $out"
  fi
done

# The same configuration as JSON (protobuf's JSON mapping).
cat >"$DIR/ukfiu.json" <<EOF
{
  "kind": "SERVICE_KIND_UKFIU",
  "listen": "127.0.0.1:1",
  "database": "$DIR/data/ukfiu-json.db",
  "tls": {"certFile": "$DIR/pki/ukfiu/cert.pem", "keyFile": "$DIR/pki/ukfiu/key.pem",
          "caFile": "$DIR/pki/ukfiu/ca.pem"},
  "dataKeyFiles": ["$DIR/pki/keys/ukfiu-data-1.key"],
  "subjectKeyFile": "$DIR/pki/keys/subject-hmac.key",
  "peers": [{"code": "NCA", "address": "localhost:2"}, {"code": "NFK", "address": "localhost:3"}]
}
EOF
if out=$("$(binary ukfiu)" --config="$DIR/ukfiu.json" --check-config 2>&1); then
  ok "ukfiu: a JSON configuration is checked the same way"
else
  bad "ukfiu JSON: $out"
fi

# expect NAME KIND CONFIG_TEXT WANT...: refused with exit 2, the message containing every WANT.
expect() {
  local name=$1 kind=$2 text=$3 out rc
  shift 3
  printf '%s\n' "$text" >"$DIR/broken.textproto"
  out=$("$(binary "$kind")" --config="$DIR/broken.textproto" --check-config 2>&1)
  rc=$?
  local missing=""
  for want in "$@"; do [[ $out == *"$want"* ]] || missing+=" '$want'"; done
  if [[ $rc == 2 && -z $missing ]]; then ok "$name: refused: $out"; else bad "$name: exit $rc, lacks$missing: $out"; fi
}
force=$(cat "$DIR/config/force-NFK.textproto")
expect "unknown field" force "$force
colour: \"blue\"" colour
expect "missing certificate" force "${force//cert.pem/gone.pem}" tls gone.pem
expect "unknown organisation" force "${force//code: \"NFK\"/code: \"XYZ\"}" code "unknown organisation 'XYZ'"
expect "missing data key" force "${force//data-1.key/data-9.key}" data_key_files data-9.key
expect "database directory absent" force "${force//\/data\//\/no-such-dir\/}" database no-such-dir
expect "a required field" force "$(grep -v '^listen' <<<"$force")" listen "is required"
racu=$(cat "$DIR/config/racu-ERSOU.textproto")
expect "a served force unknown" racu "$racu
served_forces: \"QQQ\"" "served_forces[" "unknown organisation 'QQQ'"
expect "a wrong kind for the binary" racu "$force" kind SERVICE_KIND_FORCE
expect "retention out of range" force "$force
retention_years: 101" retention_years "0 (keep everything) to 100"
expect "retention on the NCA" nca "$(cat "$DIR/config/nca.textproto")
retention_years: 6" retention_years "not for nca"
expect "too many calls in flight" force "$force
max_inflight_calls: 5000" max_inflight_calls "at most 4096"
expect "an unreadable policy" force "$force
authz_policy_file: \"$DIR/no-policy.textproto\"" authz_policy_file
# Configurations that parse and cannot work.
expect "a force with no NCA peer" force "$(grep -v 'code: "NCA"' <<<"$force")" peers NCA register
expect "a force with no UKFIU peer" force "$(grep -v 'code: "UKFIU"' <<<"$force")" peers UKFIU
expect "a handover unit with no peer entry" force "$(grep -v 'code: "ERSOU"' <<<"$force")" \
  peers ERSOU handover_unit
expect "an unknown handover unit" force "${force//\"ERSOU\"/\"QQQ\"}" handover_unit "unknown unit 'QQQ'"
expect "a further unit with no peer entry" force "$force
other_handover_units: \"EMSOU\"" peers EMSOU other_handover_units
expect "an unknown further unit" force "$force
other_handover_units: \"QQQ\"
peers { code: \"QQQ\" address: \"127.0.0.1:1\" }" "other_handover_units[" "unknown unit 'QQQ'"
expect "handing over on receipt with no unit" force "$(grep -v -e '^handover_unit' -e '^other_handover_units' <<<"$force")
hand_over_on_receipt: true" hand_over_on_receipt handover_unit
expect "a decline reviewer that is not an oversight identity" racu "$racu
decline_reviewer: \"spiffe://sarloop/force/NFK/psd\"" decline_reviewer "not an oversight identity"
expect "a unit with no peer for a force it serves" racu "$(grep -v 'code: "SFK"' <<<"$racu")" \
  peers SFK served_forces
expect "another organisation's certificate" force "${force//pki\/force-NFK\//pki/force-SFK/}" \
  tls.cert_file "spiffe://sarloop/force/SFK" "force NFK"
expect "a client system's certificate" force "${force//pki\/force-NFK\//pki/force-NFK-psd/}" \
  tls.cert_file "spiffe://sarloop/force/NFK/psd"
expect "port 99999" force "$(sed 's/^listen: .*/listen: "127.0.0.1:99999"/' <<<"$force")" listen 99999 "1 to 65535"
expect "a listen address without a port" force "$(sed 's/^listen: .*/listen: "localhost"/' <<<"$force")" \
  listen "host:port"
expect "a peer on port 0" force "$(sed 's/\(code: "NCA" address: "[^:]*:\)[0-9]*/\10/' <<<"$force")" \
  "peers[" ".address" "1 to 65535"
expect "initial backoff above the maximum" force \
  "$(sed 's/^delivery {.*/delivery { initial_backoff_ms: 90000 max_backoff_ms: 1000 }/' <<<"$force")" \
  delivery.initial_backoff_ms max_backoff_ms
expect "a linkage threshold on a force" force "$force
linkage_threshold_milli: 800" linkage_threshold_milli "linkage service only"
expect "an escalation ladder of two rungs" force "$force
feedback { escalation_ladder: \"spiffe://sarloop/oversight/{org}/dcc\" escalation_ladder: \"spiffe://sarloop/oversight/{org}/pcc\" }" \
  feedback.escalation_ladder "exactly three rungs"
expect "a rung that is not an oversight identity" force "$force
feedback { escalation_ladder: \"spiffe://sarloop/force/{org}/psd\" escalation_ladder: \"spiffe://sarloop/oversight/{org}/dcc\" escalation_ladder: \"spiffe://sarloop/oversight/{org}/pcc\" }" \
  "feedback.escalation_ladder[0]" "oversight/{org}/<office>"
expect "a delivery batch of 501" force \
  "$(sed 's/^delivery {.*/delivery { batch_size: 501 }/' <<<"$force")" delivery.batch_size "at most 500"
expect "a dashboard on a force" force "$force
dashboard_listen: \"127.0.0.1:1\"" dashboard_listen "nca only"
expect "a publication threshold of 2000" force "$force
publication_min_count: 2000" publication_min_count "0 (default 5) to 1000"
expect "a peer named twice" force "$force
peers { code: \"NCA\" address: \"localhost:1\" }" peers "NCA twice"
# The development clock: refused without development_mode, in the file or as a flag, and by
# `sarloopctl db purge`.
expect "a clock offset file outside development mode" force \
  "$(grep -v '^development_mode' <<<"$force")
dev_clock_offset_file: \"$DIR/clock-offset\"" dev_clock_offset_file development_mode
printf '%s\n' "$(grep -v '^development_mode' <<<"$force")" >"$DIR/prod.textproto"
out=$("$(binary force)" --config="$DIR/prod.textproto" --dev_clock_offset_file="$DIR/clock-offset" \
  --check-config 2>&1)
rc=$?
[[ $rc == 2 && $out == *dev_clock_offset_file* ]] && ok "the clock offset flag on a production configuration: exit 2" ||
  bad "clock offset flag on a production configuration: exit $rc: $out"
out=$("$SARLOOP_BUILD/tools/sarloopctl" db purge --config "$DIR/prod.textproto" --years 1 \
  --clock-offset-file "$DIR/clock-offset" 2>&1)
rc=$?
[[ $rc == 2 && $out == *"development chains only"* ]] && ok "db purge refuses a moved clock outside development mode" ||
  bad "db purge with a moved clock on a production configuration: exit $rc: $out"
# Starting (not only --check-config) refuses the same mistakes, before listening.
printf '%s\n' "${force//code: \"NFK\"/code: \"XYZ\"}" >"$DIR/broken.textproto"
out=$(timeout 20 "$(binary force)" --config="$DIR/broken.textproto" 2>&1)
rc=$?
[[ $rc == 2 && $out == *"unknown organisation 'XYZ'"* ]] && ok "a service started with a bad configuration exits 2 naming the field: $out" ||
  bad "start with an unknown organisation: exit $rc: $out"
echo "$pass passed, $fail failed"
((fail == 0))
