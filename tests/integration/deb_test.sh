#!/usr/bin/env bash
# The Debian package: `cpack -G DEB` builds it from the build tree; dpkg installs it (binaries in
# /usr/bin, the systemd unit, the policy, the `sarloop` user); the installed ukfiu checks a
# configuration, starts, reports SERVING to the installed sarloopctl and stops cleanly on SIGTERM;
# `dpkg --purge` removes binaries, unit and user. Installing needs root (CI runs as root); the
# test refuses to touch a sarloop package it did not install.
# Usage: deb_test.sh BUILD_DIR. Prints 'N passed, N failed'.
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=$(cd "${1:?usage: deb_test.sh BUILD_DIR}" && pwd)
export SARLOOP_BUILD=$BUILD
DIR=$(mktemp -d /tmp/sarloop-deb-XXXXXX)
# A free block of ports that sarloop-local picks (and moves from, should another process take one
# of them first); read back from DIR/base-port once the chain is up.
export SARLOOP_BASE_PORT=auto
installed=0 pid=0
cleanup() {
  ((pid > 0)) && kill -KILL "$pid" 2>/dev/null
  ((installed)) && dpkg --purge sarloop >/dev/null 2>&1
  "$REPO/deploy/local/sarloop-local" down "$DIR/chain" >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT
pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
finish() { echo "$pass passed, $fail failed"; ((fail == 0)); exit; }

if (cd "$BUILD" && cpack -G DEB -B "$DIR/pkg" >"$DIR/cpack.log" 2>&1); then
  deb=$(ls "$DIR"/pkg/sarloop_*.deb 2>/dev/null | head -1)
fi
if [[ -n ${deb:-} ]]; then ok "cpack built $(basename "$deb")"; else bad "cpack: $(tail -5 "$DIR/cpack.log")"; finish; fi
contents=$(dpkg-deb -c "$deb")
missing=""
for f in usr/bin/sarloop-ukfiu usr/bin/sarloop-force usr/bin/sarloop-racu usr/bin/sarloop-nca \
  usr/bin/sarloop-linkage \
  usr/bin/sarloopctl usr/bin/sarloop-pki usr/lib/systemd/system/sarloop@.service \
  usr/share/sarloop/sarloop-policy.textproto; do
  grep -q "\./$f\$" <<<"$contents" || missing+=" $f"
done
[[ -z $missing ]] && ok "the package holds the services, sarloopctl, sarloop-pki, the unit and the policy" ||
  bad "missing from the package:$missing"
depends=$(dpkg-deb -f "$deb" Depends)
[[ $depends == *libgrpc++* && $depends == *libsqlite3* && $depends == *adduser* ]] &&
  ok "dependencies from dpkg-shlibdeps: ${depends:0:120}..." || bad "Depends: $depends"

if ((EUID != 0)); then bad "installing the package needs root (CI runs as root)"; finish; fi
if dpkg -s sarloop >/dev/null 2>&1; then bad "a sarloop package is already installed here; not touching it"; finish; fi
if dpkg -i "$deb" >"$DIR/dpkg-i.log" 2>&1; then
  installed=1; ok "dpkg -i installs it"
else
  bad "dpkg -i: $(tail -5 "$DIR/dpkg-i.log")"; finish
fi
getent passwd sarloop >/dev/null && ok "the sarloop system user exists" || bad "no sarloop user"
grep -q '^ExecStart=/usr/bin/sarloop-%i ' /usr/lib/systemd/system/sarloop@.service 2>/dev/null ||
  grep -q '^ExecStart=/usr/bin/sarloop-%i ' /lib/systemd/system/sarloop@.service 2>/dev/null
[[ $? == 0 ]] && ok "the unit runs the installed binaries" || bad "the unit's ExecStart is not /usr/bin/sarloop-%i"

# A configuration and PKI from the local launcher; the installed binary serves it.
"$REPO/deploy/local/sarloop-local" up "$DIR/chain" >/dev/null && "$REPO/deploy/local/sarloop-local" down "$DIR/chain" >/dev/null
export SARLOOP_BASE_PORT=$(<"$DIR/chain/base-port")
cfg=$DIR/chain/config/ukfiu.textproto
if out=$(/usr/bin/sarloop-ukfiu --config="$cfg" --check-config 2>&1); then
  ok "the installed sarloop-ukfiu checks its configuration"
else
  bad "--check-config: $out"
fi
/usr/bin/sarloop-ukfiu --config="$cfg" >"$DIR/ukfiu.log" 2>&1 &
pid=$!
health=""
for _ in $(seq 600); do
  health=$(/usr/bin/sarloopctl --target "localhost:$((SARLOOP_BASE_PORT + 1))" \
    --identity "$DIR/chain/pki/ukfiu-intake" --timeout 2 health 2>&1) && break
  sleep 0.1
done
# Exactly SERVING: a glob would also take NOT_SERVING.
[[ $health == "status: SERVING" ]] && ok "it starts and the installed sarloopctl sees it SERVING" ||
  bad "health: expected 'status: SERVING', saw '$health'"
kill -TERM "$pid"
wait "$pid"
rc=$?
pid=0
[[ $rc == 0 ]] && grep -q "stopped cleanly" "$DIR/ukfiu.log" && ok "it stops cleanly on SIGTERM" ||
  bad "stop: exit $rc, $(tail -2 "$DIR/ukfiu.log")"

if dpkg --purge sarloop >"$DIR/dpkg-r.log" 2>&1; then
  installed=0; ok "dpkg --purge removes it"
else
  bad "dpkg --purge: $(tail -5 "$DIR/dpkg-r.log")"
fi
[[ ! -e /usr/bin/sarloop-ukfiu && ! -e /usr/bin/sarloopctl ]] && ok "the binaries are gone" || bad "binaries left behind"
getent passwd sarloop >/dev/null && bad "the sarloop user is left behind" || ok "the sarloop user is gone"
finish
