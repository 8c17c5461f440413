#!/usr/bin/env bash
# install-deps.sh: makes sure the Debian packages sarloop needs to build, test and run the demo
# are installed. Checks with dpkg-query first and touches apt only when something is missing:
# as root it runs apt-get update and apt-get install for the missing packages; otherwise it names
# them, says that root is needed, and exits 1. Exit 0 when everything is present afterwards.
#
#   deploy/install-deps.sh          (or: sudo deploy/install-deps.sh)
#   deploy/install-deps.sh --tests  also what the test suite needs (Chromium for the browser tests,
#                                   a PostgreSQL server for the NCA register's second engine)
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libboost-dev libspdlog-dev libabsl-dev libsqlite3-dev sqlite3 libssl-dev openssl libpq-dev
  libgtest-dev libgmock-dev libbenchmark-dev libicu-dev libgoogle-perftools-dev
  python3-grpcio python3-protobuf clang-format
  clang libclang-rt-14-dev
)
# The browser tests drive Debian's Chromium through ChromeDriver (W3C WebDriver over HTTP); the
# PostgreSQL tests start a throwaway PostgreSQL 15 server (initdb, pg_ctl); the benchmark's
# wake-up attribution records the scheduler's switch events with perf.
[[ ${1:-} != --tests ]] || PACKAGES+=(chromium chromium-driver postgresql-15 linux-perf)

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "install-deps.sh: dpkg-query not found; this script supports Debian (bookworm) and" \
    "derivatives. Install these packages by other means: ${PACKAGES[*]}" >&2
  exit 1
fi

missing_packages() {
  local p status
  for p in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
    [[ $status == ii* ]] || echo "$p"
  done
}

mapfile -t missing < <(missing_packages)
if ((${#missing[@]} == 0)); then
  echo "install-deps.sh: all ${#PACKAGES[@]} required packages are installed"
  exit 0
fi

if ((EUID != 0)); then
  echo "install-deps.sh: missing Debian packages: ${missing[*]}" >&2
  echo "install-deps.sh: installing them needs root; run: sudo $0" >&2
  echo "  (or: sudo apt-get install -y --no-install-recommends ${missing[*]})" >&2
  exit 1
fi

echo "install-deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"

mapfile -t still < <(missing_packages)
if ((${#still[@]})); then
  echo "install-deps.sh: still missing after apt-get install: ${still[*]}" >&2
  exit 1
fi
echo "install-deps.sh: all ${#PACKAGES[@]} required packages are installed"
