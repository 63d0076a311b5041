#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The README's test command: installs what is missing, builds a Release tree and an
# ASan+UBSan tree, and runs every test in both (CTest drives the Criterion binaries).
set -euo pipefail
cd "$(dirname "$0")/.."
# prometheus (with promtool) is the oracle of the differential tests; chromium runs the
# dashboard's browser test (both tests skip without them)
MP_DEPS_EXTRA="prometheus chromium python3 ${MP_DEPS_EXTRA:-}" ./scripts/deps.sh
jobs=$(nproc 2>/dev/null || echo 2)

cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DMP_WERROR=ON >/dev/null
cmake --build build/release -j "$jobs"
cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DMP_WERROR=ON \
      -DMP_SANITIZE=address,undefined >/dev/null
cmake --build build/asan -j "$jobs"

status=0
echo "== release: all tests"
ctest --test-dir build/release --verbose --timeout 900 || status=1
echo "== asan+ubsan: unit tests"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build/asan --verbose --timeout 900 -L unit || status=1
echo "== demo: the README's main command, as a new user runs it"
./tests/demo_check.sh || status=1
exit $status
