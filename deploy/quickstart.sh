#!/usr/bin/env bash
# quickstart.sh: one command from a Debian machine to a running sarloop chain with a synthetic
# scenario in it.
#
#   1. deploy/install-deps.sh: installs missing Debian packages (as root; otherwise it names
#      them and stops);
#   2. configures CMake + Ninja in build/ (ccache when present) and builds the four services,
#      sarloopctl and sarloop-exercise;
#   3. starts the whole federation with deploy/local/sarloop-local's national mode in a work
#      directory (default /tmp/sarloop-quickstart, wiped first): one node per organisation of the
#      reference data and per unit, UKFIU, the NCA register and the linkage service (about 65
#      processes, about 30 MB resident each), with the chain's clock on the 1 April that opens the
#      last full financial year;
#   4. runs sarloop-exercise: referrals (800 a year nationally by default) from that day to today,
#      the clock moving day by day and each step of each case on its own day, drawn from the
#      distributions it prints; checks the NCA register against the plan referral by referral;
#   5. writes the STA summary report for the last full financial year (HTML with charts,
#      Markdown, CSV), prints its headline timeliness and where it is, and the dashboard's address;
#   6. leaves the chain running and prints how to inspect and stop it.
#
# Environment: SARLOOP_QUICKSTART_DIR (work directory), SARLOOP_BUILD (build directory, default
# <repo>/build), SARLOOP_BASE_PORT (default 7400; the national chain takes 200 ports from it),
# SARLOOP_QUICKSTART_PER_YEAR (default 800), SARLOOP_QUICKSTART_SEED (default random),
# SARLOOP_JOBS (parallel compile jobs).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${SARLOOP_QUICKSTART_DIR:-/tmp/sarloop-quickstart}
BUILD=${SARLOOP_BUILD:-$REPO/build}
PER_YEAR=${SARLOOP_QUICKSTART_PER_YEAR:-800}
LOCAL=$REPO/deploy/local/sarloop-local
MARKER=.sarloop-quickstart
export SARLOOP_BUILD=$BUILD

step() { printf '\n==> %s\n' "$*"; }
die() {
  echo "quickstart.sh: error: $*" >&2
  exit 1
}

step "Debian packages"
"$REPO/deploy/install-deps.sh"

step "Configure and build in $BUILD"
configure=(cmake -S "$REPO" -B "$BUILD")
# Keep an existing build directory's generator; a new one uses Ninja.
[[ -f $BUILD/CMakeCache.txt ]] || configure+=(-G Ninja)
if command -v ccache >/dev/null 2>&1; then
  configure+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  export CCACHE_BASEDIR=$REPO
fi
"${configure[@]}"
build=(cmake --build "$BUILD" --target sarloop-ukfiu sarloop-force sarloop-racu sarloop-nca
  sarloop-linkage sarloopctl sarloop-exercise)
[[ -z ${SARLOOP_JOBS:-} ]] || build+=(--parallel "$SARLOOP_JOBS")
"${build[@]}"

step "Start the chain in $DIR"
# Only wipe a directory an earlier quickstart made (or an empty one): never someone's data.
if [[ -e $DIR ]]; then
  case $(cd "$DIR" && pwd) in
    / | "$HOME" | "$REPO") die "refusing to use $DIR as the work directory" ;;
  esac
  if [[ -f $DIR/$MARKER ]]; then
    "$LOCAL" down "$DIR" || true
    rm -rf -- "$DIR"
  elif [[ -n $(ls -A -- "$DIR") ]]; then
    die "$DIR exists and was not made by quickstart.sh; remove it or set SARLOOP_QUICKSTART_DIR"
  fi
fi
mkdir -p -- "$DIR"
touch "$DIR/$MARKER"
DIR=$(cd "$DIR" && pwd)
# The chain's clock starts on the 1 April that opens the last full financial year: at least a
# year of traffic, ending today.
year=$(date -u +%Y)
(($(date -u +%m) >= 4)) || year=$((year - 1))
year=$((year - 1))
# Every message leaves at once (delivery.inform_within_ms -1, unless SARLOOP_INFORM_WITHIN_MS says
# otherwise): the exercise waits for every delivery at the end of each of its ~440 chain days, and
# the default 100 ms window for events that only inform would be most of its time (same seed, one
# run each: 26 s at once, 66 s with the window). The register ends the same either way.
INFORM_WITHIN_MS=${SARLOOP_INFORM_WITHIN_MS:--1}
SARLOOP_INFORM_WITHIN_MS=$INFORM_WITHIN_MS SARLOOP_NATIONAL=1 SARLOOP_CLOCK_START=$year-04-01 \
  "$LOCAL" up "$DIR" >"$DIR/up.log" 2>&1 || {
  tail -n 20 "$DIR/up.log" >&2
  die "the chain did not start (log: $DIR/up.log)"
}
tail -n 1 "$DIR/up.log"
rss=0
for f in "$DIR"/run/*.pid; do rss=$((rss + $(ps -o rss= -p "$(<"$f")"))); done
echo "$(ls "$DIR"/run/*.pid | wc -l) nodes, $((rss / 1024)) MB resident in all"
echo "delivery.inform_within_ms $INFORM_WITHIN_MS: events that only inform leave at once, so the" \
  "exercise's chain days settle without waiting (the services' default is 100 ms)"

step "National exercise: $PER_YEAR referrals a year from $year-04-01 to today"
exercise=("$BUILD/tools/synth/sarloop-exercise" --chain "$DIR" --per-year "$PER_YEAR"
  --json-summary "$DIR/exercise-summary.json")
[[ -z ${SARLOOP_QUICKSTART_SEED:-} ]] || exercise+=(--seed "$SARLOOP_QUICKSTART_SEED")
synth_rc=0
"${exercise[@]}" | tee "$DIR/exercise.log" | grep -v '^\[' || synth_rc=$?

step "STA summary report for $year-$(printf %02d $(((year + 1) % 100)))"
# shellcheck disable=SC1091
source "$DIR/env.sh"
sarloopctl_as NCA report sta --year "$year" --out "$DIR/reports"
echo
echo "Headline figures of $year-$(printf %02d $(((year + 1) % 100))) (from the report):"
grep -E '^\| (Referred|Feedback received|Response rate|Median days to feedback|Median days to outcome|90th percentile days to outcome|Overdue|Escalated|Open over 12 months) ' \
  "$DIR/reports/sta-$year.md" | head -12 || true
base=$(<"$DIR/base-port")
cat <<EOF

==> The chain is still running (base port $base; services listen on 127.0.0.1 only).

Inspect it:
  source $DIR/env.sh
  sarloopctl_as NCA nca summary                  # the register per organisation
  sarloopctl_as NCA nca aggregates --by region --by financial-year
  sarloopctl_as NCA report sta --year $year --out $DIR/reports
  sarloopctl_as NCA nca overdue                  # referrals past their due date
  sarloopctl_as NCA nca list --org NFK           # the register entries for Norfolk
  sarloopctl_as NCA nca timeline REF_ID          # one referral's events in order
  sarloopctl_as NFK force inbox                  # Norfolk PSD's inbox
  sarloopctl_as ERSOU racu inbox                 # ERSOU's handovers
  sarloopctl_as UKFIU ukfiu referrals --state RECEIVED
  sarloopctl_as UKFIU ops backlog                # UKFIU's outbox per destination
  \$SARLOOP_CTL help                              # every command
  $LOCAL status $DIR

  Logs: $DIR/logs/   the exercise: $DIR/exercise.log and $DIR/exercise-summary.json

The STA summary report: $DIR/reports/sta-$year.html (also .md and .csv)

The NCA dashboard: $SARLOOP_DASHBOARD
  It serves nothing without an analyst credential. Get a one-time sign-in link (valid for a
  minute) with the analyst's certificate, then open it in a browser on this machine:
    sarloopctl_as NCA nca dashboard-login
  The chain's certificates come from its own CA ($DIR/pki/ca/ca.pem); a browser that does not
  trust it will warn once.
  Service clocks are $(( $(<"$DIR/clock-offset") / 86400 )) days off the system clock (the offset in seconds is in $DIR/clock-offset).

Stop it:
  $LOCAL down $DIR
EOF

if ((synth_rc != 0)); then
  echo
  echo "quickstart.sh: the exercise did not check out (exit $synth_rc); see $DIR/exercise.log" >&2
  exit "$synth_rc"
fi
