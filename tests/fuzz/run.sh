#!/usr/bin/env bash
# tests/fuzz/run.sh: builds and runs sarloop's libFuzzer targets (tests/fuzz/fuzz_*.cc) in a
# separate clang tree (libFuzzer, AddressSanitizer and UndefinedBehaviorSanitizer need clang).
#
# The longer run: every target for N seconds (here 10 minutes each), growing a corpus kept in
# build-fuzz/corpus/<target>/ and saving any crashing input in build-fuzz/tests/fuzz/findings/<target>/:
#
#   tests/fuzz/run.sh 600                  (or one target: tests/fuzz/run.sh 600 fuzz_register)
#
# It configures and builds the clang tree first (incrementally). Reproduce a finding with
#   build-fuzz/tests/fuzz/<target> build-fuzz/tests/fuzz/findings/<target>/crash-<sha1>
#
# Other modes:
#   tests/fuzz/run.sh --build              configure and build the clang tree only (tests/run.sh):
#                                          the targets, and every library the services are built
#                                          from, which clang checks for thread safety
#   tests/fuzz/run.sh --check-locks BIN_DIR
#                                          what ctest runs (build.thread_safety): those libraries
#                                          in BIN_DIR are up to date, or clang's findings
#   tests/fuzz/run.sh --ctest BIN_DIR TARGET SECONDS
#                                          what ctest runs: TARGET from BIN_DIR for SECONDS on fresh
#                                          seeds in a temporary directory; prints the executions
#
# Environment: SARLOOP_FUZZ_BUILD (the clang tree, default <repo>/build-fuzz).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
FUZZ_BUILD=${SARLOOP_FUZZ_BUILD:-$REPO/build-fuzz}
TARGETS=(fuzz_validation fuzz_register fuzz_delivery)
# Every library the services are built from: the clang tree compiles them with
# -Werror=thread-safety (CMakeLists.txt), so a guarded field touched without its lock fails it.
LOCK_CHECKED=(sarloop_base sarloop_storage sarloop_security sarloop_client sarloop_rpc
  sarloop_messaging sarloop_reference sarloop_server sarloop_linkage sarloop_referral
  ukfiu_lib force_lib racu_lib nca_lib linkage_lib)
# -timeout: one input running this long is a hang, reported like a crash.
FUZZ_FLAGS=(-timeout=10 -rss_limit_mb=2048 -print_final_stats=1)

build() {
  if ! command -v clang++ >/dev/null; then
    echo "tests/fuzz/run.sh: clang++ not found (Debian: clang libclang-rt-14-dev)" >&2
    return 1
  fi
  # -O1 and line tables only, as fuzzing builds usually are: quicker to build, and symbolized
  # reports still name file and line.
  cmake -S "$REPO" -B "$FUZZ_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -fno-omit-frame-pointer" \
    -DCMAKE_CXX_COMPILER=clang++ -DSARLOOP_FUZZ=ON -DSARLOOP_TESTS=ON -DSARLOOP_BENCHMARKS=OFF
  local rc=0
  cmake --build "$FUZZ_BUILD" -j "$(nproc)" --target "${TARGETS[@]}" fuzz_seeds || rc=1
  # Apart, so that a lock finding in a library no fuzz target links still leaves the targets.
  cmake --build "$FUZZ_BUILD" -j "$(nproc)" --target "${LOCK_CHECKED[@]}" || rc=1
  return $rc
}

# seeds BIN_DIR OUT_DIR: the seed corpora, freshly generated from the protos.
seeds() {
  ASAN_OPTIONS=detect_leaks=0 "$1/fuzz_seeds" "$2"
}

# summarize TARGET LOG: the executions line(s) of a finished run.
summarize() {
  local runs
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$2" | tail -1)
  echo "$1: ${runs:-?} executions"
  grep -E '^#[0-9]+[[:space:]]+DONE|^stat::number_of_executed_units|^Done [0-9]+ runs' "$2" || true
}

# fuzz BIN_DIR TARGET SECONDS CORPUS... : runs one target; on a finding prints the report.
fuzz() {
  local bin=$1 target=$2 seconds=$3 findings log rc=0
  shift 3
  findings=$bin/findings/$target
  mkdir -p "$findings"
  log=$(mktemp /tmp/sarloop-fuzz-log-XXXXXX)
  "$bin/$target" "${FUZZ_FLAGS[@]}" -max_total_time="$seconds" -artifact_prefix="$findings/" \
    "$@" >"$log" 2>&1 || rc=$?
  summarize "$target" "$log"
  if ((rc != 0)); then
    echo "FAIL $target (exit $rc); the report:"
    grep -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)' "$log" | tail -80
    echo "FAIL $target: the input is saved in $findings/"
  fi
  rm -f "$log"
  return $rc
}

case ${1:-} in
  --build)
    build
    ;;
  --check-locks)
    bin=${2:?usage: run.sh --check-locks BIN_DIR}
    if ! out=$(cmake --build "$bin" --target "${LOCK_CHECKED[@]}" 2>&1); then
      echo "$out" | grep -E ': (error|warning):' | head -40
      echo "FAIL the libraries do not build with clang's thread-safety analysis"
      exit 1
    fi
    echo "ok   ${#LOCK_CHECKED[@]} libraries built by clang with -Werror=thread-safety:"
    echo "     ${LOCK_CHECKED[*]}"
    ;;
  --ctest)
    bin=${2:?usage: run.sh --ctest BIN_DIR TARGET SECONDS} target=${3:?} seconds=${4:-15}
    if [[ ! -x $bin/$target || ! -x $bin/fuzz_seeds ]]; then
      echo "FAIL $bin/$target is not built (tests/fuzz/run.sh --build builds it)"
      exit 1
    fi
    tmp=$(mktemp -d /tmp/sarloop-fuzz-XXXXXX)
    trap 'rm -rf "$tmp"' EXIT
    seeds "$bin" "$tmp"
    echo "$target: $(ls "$tmp/$target" | wc -l) seeds, ${seconds}s"
    fuzz "$bin" "$target" "$seconds" "$tmp/$target"
    ;;
  '' | -*)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 2
    ;;
  *)
    seconds=$1
    shift
    (($#)) && TARGETS=("$@")
    build
    bin=$FUZZ_BUILD/tests/fuzz
    seeds "$bin" "$FUZZ_BUILD/corpus-seeds"
    failed=0
    for target in "${TARGETS[@]}"; do
      mkdir -p "$FUZZ_BUILD/corpus/$target"
      fuzz "$bin" "$target" "$seconds" "$FUZZ_BUILD/corpus/$target" \
        "$FUZZ_BUILD/corpus-seeds/$target" || failed=1
    done
    exit $failed
    ;;
esac
