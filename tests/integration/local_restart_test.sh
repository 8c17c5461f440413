#!/usr/bin/env bash
# sarloop-local stop and start against an instance whose process is still exiting. A killed
# service's main thread can be a zombie while another of its threads finishes an fdatasync with
# the listening socket and the database files still open. 'start' must wait for that last thread
# rather than report the port taken by "another process", and 'stop' must not call the instance
# stopped while it still holds its port. A stand-in process plays the exiting service: it listens
# on force-NFK's port with force-NFK's config on its command line, and its main thread exits
# while a second thread keeps the socket. A port held by a process of no chain is named by pid,
# and a chain on a chosen base claims its block as auto chains do.
# Usage: local_restart_test.sh BUILD_DIR. Prints 'N passed, N failed'.
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export SARLOOP_BUILD=${1:?usage: local_restart_test.sh BUILD_DIR}
LOCAL=$REPO/deploy/local/sarloop-local
DIR=$(mktemp -d /tmp/sarloop-restart-XXXXXX)
export SARLOOP_BASE_PORT=auto
pids=()
cleanup() {
  for p in "${pids[@]+"${pids[@]}"}"; do kill -KILL "$p" 2>/dev/null; done
  "$LOCAL" down "$DIR" >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT
"$LOCAL" up "$DIR" >/dev/null || { echo "chain did not start"; exit 1; }
unset SARLOOP_BASE_PORT
PORT=$(($(<"$DIR/base-port") + 11))
CONFIG=$DIR/config/force-NFK.textproto
PIDFILE=$DIR/run/force-NFK.pid

pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
leader_state() { { s=$(<"/proc/$1/stat"); } 2>/dev/null || return 1; s=${s##*) }; echo "${s%% *}"; }

# stand_in MODE HOLD_SECONDS [--config=...]: listens on PORT, writes its pid to PIDFILE when given
# a config, then its main thread exits. Its other thread keeps the socket for HOLD_SECONDS, at once
# (MODE hold) or once SIGTERM arrives (MODE term, 20 s at most), then ends the process.
STAND_IN='
import ctypes, os, platform, signal, socket, sys, threading, time
mode, hold, port, pidfile = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen()
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
def linger():
    if mode == "term":  # bounded: a stop that never signals must fail the test, not hang it
        signal.sigtimedwait({signal.SIGTERM}, 20)
    time.sleep(hold)
    os._exit(0)
threading.Thread(target=linger).start()
if any(a.startswith("--config=") for a in sys.argv):
    with open(pidfile, "w") as f:
        f.write(str(os.getpid()))
# exit(2), not exit_group(2): only the main thread ends, as when a kill finds a thread in the kernel.
ctypes.CDLL(None).syscall({"x86_64": 60, "aarch64": 93}[platform.machine()], 0)
'
stand_in() {
  /usr/bin/python3 -c "$STAND_IN" "$1" "$2" "$PORT" "$PIDFILE" "${@:3}" &
  STAND_IN_PID=$!
  pids+=("$STAND_IN_PID")
  local deadline=$((SECONDS + 20))
  until [[ $(leader_state "$STAND_IN_PID") == Z ]] && port_open "$PORT"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.05
  done
}

# --- start: the instance's last process is still exiting. --------------------------------------
"$LOCAL" stop force-NFK "$DIR" >/dev/null
if stand_in hold 2 "--config=$CONFIG" && [[ $(<"$PIDFILE") == "$STAND_IN_PID" ]]; then
  ok "the stand-in's main thread is a zombie while its other thread holds force-NFK's port"
  out=$("$LOCAL" start force-NFK "$DIR" 2>&1)
  rc=$?
  new=$(cat "$PIDFILE" 2>/dev/null)
  if ((rc == 0)) && [[ $new != "$STAND_IN_PID" ]] && [[ -z $(leader_state "$STAND_IN_PID") ||
    $(leader_state "$STAND_IN_PID") == Z ]]; then
    ok "start waits for the exiting process's last thread, then starts the service"
  else
    bad "start while the last process still exits (exit $rc, pid $new; output: $(head -c 300 <<<"$out"))"
  fi
else
  bad "the stand-in did not become a zombie main thread holding the port"
fi
wait "$STAND_IN_PID" 2>/dev/null

# --- stop: SIGTERM reaches a process whose main thread is gone. --------------------------------
"$LOCAL" stop force-NFK "$DIR" >/dev/null
if stand_in term 1.5 "--config=$CONFIG"; then
  out=$("$LOCAL" stop force-NFK "$DIR" 2>&1)
  rc=$?
  if ((rc == 0)) && ! port_open "$PORT" && [[ ! -e $PIDFILE ]]; then
    ok "stop returns once the process's last thread has exited and its port is free"
  else
    bad "stop of an exiting process (exit $rc, port open: $(port_open "$PORT" && echo yes || echo no); output: $(head -c 300 <<<"$out"))"
  fi
else
  bad "the stand-in for stop did not start"
fi
wait "$STAND_IN_PID" 2>/dev/null

# --- a process of no chain holds the port: start says which. -----------------------------------
if stand_in hold 30; then
  out=$("$LOCAL" start force-NFK "$DIR" 2>&1)
  rc=$?
  if ((rc != 0)) && grep -q "port $PORT on 127.0.0.1 is already in use by pid $STAND_IN_PID" <<<"$out"; then
    ok "start refuses a port another process holds, naming that process's pid"
  else
    bad "start on a foreign process's port (exit $rc; output: $(head -c 300 <<<"$out"))"
  fi
  kill -KILL "$STAND_IN_PID"
  wait "$STAND_IN_PID" 2>/dev/null
  if "$LOCAL" start force-NFK "$DIR" >/dev/null 2>&1; then
    ok "once that process is gone, start serves again"
  else
    bad "start after the foreign process went"
  fi
else
  bad "the foreign stand-in did not start"
fi

# --- a chain on a base the user chose claims its block too. ------------------------------------
# Auto chains keep off claimed blocks; without a claim, a chosen-base chain with a service down for
# a restart looked free to them.
CLAIMS=${TMPDIR:-/tmp}/sarloop-port-claims
BASE=$(<"$DIR/base-port")
"$LOCAL" down "$DIR" >/dev/null
rm -f -- "$CLAIMS/$BASE"
if SARLOOP_BASE_PORT=$BASE "$LOCAL" up "$DIR" >/dev/null 2>&1 &&
  [[ $(cat "$CLAIMS/$BASE" 2>/dev/null) == "$DIR" ]]; then
  ok "up on a chosen base claims the block for the chain"
else
  bad "up on a chosen base (claim: $(cat "$CLAIMS/$BASE" 2>&1))"
fi

echo "$pass passed, $fail failed"
((fail == 0))
