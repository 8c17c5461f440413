#!/usr/bin/env bash
# tests/run.sh: the one command that installs what is missing (Debian 12, as root), builds, and
# runs every test through ctest: unit tests, then multi-process integration tests that start the
# real services over mTLS on loopback. Ends with ctest's summary.
#
# With clang++ present it also builds the libFuzzer targets in a second tree (tests/fuzz/run.sh
# --build) and ctest runs each for SARLOOP_FUZZ_SECONDS (15) seconds; for a longer run see
# tests/fuzz/run.sh.
#
# Environment: SARLOOP_BUILD (build directory, default <repo>/build), SARLOOP_FUZZ_BUILD (the clang
# tree, default <repo>/build-fuzz), SARLOOP_TEST_JOBS (ctest parallelism, default 2),
# SARLOOP_SKIP_INSTALL=1 to skip the package check.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${SARLOOP_BUILD:-$REPO/build}
FUZZ_BUILD=${SARLOOP_FUZZ_BUILD:-$REPO/build-fuzz}
JOBS=${SARLOOP_TEST_JOBS:-2}

if [[ ${SARLOOP_SKIP_INSTALL:-0} != 1 ]]; then
  "$REPO/deploy/install-deps.sh" --tests
fi

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)

# The libFuzzer targets need clang: a second tree holds them, and the main tree's ctest runs each
# briefly (fuzz.* tests). A failed clang build does not stop the suite: those tests then fail.
fuzz_dir=
if command -v clang++ >/dev/null; then
  fuzz_dir=$FUZZ_BUILD
  SARLOOP_FUZZ_BUILD=$FUZZ_BUILD "$REPO/tests/fuzz/run.sh" --build ||
    echo "tests/run.sh: the fuzz targets did not build; their tests will fail" >&2
else
  echo "tests/run.sh: clang++ not found; the fuzz targets are neither built nor run" >&2
fi

cmake -S "$REPO" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" \
  -DSARLOOP_FUZZ_DIR="$fuzz_dir"
cmake --build "$BUILD" -j "$(nproc)"

cd "$BUILD"
exec ctest --output-on-failure -j "$JOBS" --timeout 600
