#!/usr/bin/env bash
# quickstart.sh: one command from a Debian machine to a running sarloop chain with a synthetic
# scenario in it.
#
#   1. deploy/install-deps.sh: installs missing Debian packages (as root; otherwise it names
#      them and stops);
#   2. configures CMake + Ninja in build/ (ccache when present) and builds the four services,
#      sarloopctl and sarloop-synth;
#   3. starts every organisation's service with deploy/local/sarloop-local in a work directory
#      (default /tmp/sarloop-quickstart, wiped first);
#   4. runs sarloop-synth twice (1,000 SARs in all through the whole chain): the chain's clock
#      starts on the last 1 March at least 250 days ago and each run moves it about four months,
#      so the referrals span two financial years and end near today; prints the scenario checks;
#   5. writes the STA summary report for the later financial year (HTML with charts, Markdown,
#      CSV) and prints where it is and the NCA dashboard's address;
#   6. leaves the chain running and prints how to inspect and stop it.
#
# Environment: SARLOOP_QUICKSTART_DIR (work directory), SARLOOP_BUILD (build directory, default
# <repo>/build), SARLOOP_BASE_PORT (default 7400), SARLOOP_QUICKSTART_SARS (default 1000),
# SARLOOP_QUICKSTART_SEED (default random), SARLOOP_JOBS (parallel compile jobs).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${SARLOOP_QUICKSTART_DIR:-/tmp/sarloop-quickstart}
BUILD=${SARLOOP_BUILD:-$REPO/build}
SARS=${SARLOOP_QUICKSTART_SARS:-1000}
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
  sarloop-linkage sarloopctl sarloop-synth)
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
# The chain's clock starts on a 1 March far enough back that two scenario runs (each moves it
# about four months) end near today, with referrals in two financial years.
now=$(date -u +%s)
year=$(date -u +%Y)
(($(date -u -d "$year-03-01T00:00:00Z" +%s) + 250 * 86400 <= now)) || year=$((year - 1))
echo $(($(date -u -d "$year-03-01T00:00:00Z" +%s) - now)) >"$DIR/clock-offset"
"$LOCAL" up "$DIR"

step "Synthetic scenario: $SARS SARs through UKFIU, the forces, their units and the NCA"
synth_rc=0
for run in 1 2; do
  synth=("$BUILD/tools/synth/sarloop-synth" --pki "$DIR/pki" --sars $((SARS / 2))
    --json-summary "$DIR/synth-summary-$run.json")
  [[ -z ${SARLOOP_QUICKSTART_SEED:-} ]] || synth+=(--seed $((SARLOOP_QUICKSTART_SEED + run)))
  "${synth[@]}" | tee "$DIR/synth-$run.log" || synth_rc=$?
done

step "STA summary report for $year-$(printf %02d $(((year + 1) % 100)))"
# shellcheck disable=SC1091
source "$DIR/env.sh"
sarloopctl_as NCA report sta --year "$year" --out "$DIR/reports"
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

  Logs: $DIR/logs/   scenario summaries: $DIR/synth-summary-{1,2}.json

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
  echo "quickstart.sh: a synthetic scenario did not check out (exit $synth_rc); see $DIR/synth-*.log" >&2
  exit "$synth_rc"
fi
