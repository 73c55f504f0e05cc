#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a tested tree: installs what
# is missing, then builds and runs the whole suite twice — under
# AddressSanitizer + UndefinedBehaviorSanitizer, then as the release build.
# Warnings are errors. The last line printed is ctest's summary.
#   GEOLEDGER_SKIP_SANITIZERS=1  run only the release build (quick local loop)
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
JOBS="$(nproc)"

if [ "${GEOLEDGER_SKIP_SANITIZERS:-0}" != "1" ]; then
  echo "== ASan+UBSan build and tests"
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DGEOLEDGER_SANITIZE=ON \
    -DGEOLEDGER_WERROR=ON -DGEOLEDGER_BUILD_BENCH=OFF >/dev/null
  cmake --build build-asan -j "$JOBS"
  ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    ctest --test-dir build-asan -j "$JOBS" --output-on-failure --timeout 600 > build-asan/ctest.log 2>&1 \
    || { tail -n 200 build-asan/ctest.log; echo "ASan+UBSan suite failed"; exit 1; }
  tail -n 3 build-asan/ctest.log
fi

echo "== release build and tests"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGEOLEDGER_WERROR=ON \
  -DGEOLEDGER_BUILD_TESTS=ON >/dev/null
cmake --build build -j "$JOBS"
exec ctest --test-dir build -j "$JOBS" --output-on-failure --timeout 600
