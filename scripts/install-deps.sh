#!/usr/bin/env bash
# Installs the Debian packages geoledger needs to build, test and benchmark.
# This is the only place the list lives. Idempotent: when everything is
# present it prints one line and returns without touching apt.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
  # libraries
  librocksdb-dev libpistache-dev libsodium-dev libssl-dev
  libprotobuf-dev protobuf-compiler libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libspdlog-dev libcli11-dev libarchive-dev libyaml-cpp-dev libjemalloc-dev
  # test and benchmark peers
  curl openssl wrk nginx-light postgresql postgresql-contrib procps
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
