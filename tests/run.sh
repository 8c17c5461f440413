#!/usr/bin/env bash
# tests/run.sh: the one command that installs what is missing (Debian 12, as root), builds, and
# runs every test through ctest: unit tests, then multi-process integration tests that start the
# real services over mTLS on loopback. Ends with ctest's summary.
#
# Environment: SARLOOP_BUILD (build directory, default <repo>/build), SARLOOP_TEST_JOBS (ctest
# parallelism, default 2), SARLOOP_SKIP_INSTALL=1 to skip the package check.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${SARLOOP_BUILD:-$REPO/build}
JOBS=${SARLOOP_TEST_JOBS:-2}

if [[ ${SARLOOP_SKIP_INSTALL:-0} != 1 ]]; then
  "$REPO/deploy/install-deps.sh"
fi

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$REPO" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}"
cmake --build "$BUILD" -j "$(nproc)"

cd "$BUILD"
exec ctest --output-on-failure -j "$JOBS" --timeout 600
