#!/usr/bin/env bash
# test.sh [CTEST ARGS...]: build.sh, then every test (unit + end-to-end) with CTest on 2 jobs, then the same
# suite again on an ASan+UBSan build (build-asan/). The end-to-end tests build small real disk images first
# (tests/fixtures) and launch libguestfs appliances; CTest lets at most one appliance run at a time. Extra
# arguments go to ctest, e.g. `-L unit` or `-R e2e.check.ntfs`.
# COLDSCAN_SANITIZER_PASS=0 skips the sanitizer pass.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

./scripts/build.sh

# coldscan must pick TCG by itself when KVM is unusable (nested clouds): never force it for the product.
unset LIBGUESTFS_BACKEND_SETTINGS
ctest --test-dir "${COLDSCAN_BUILD_DIR:-build}" --output-on-failure -j2 "$@"

if [[ ${COLDSCAN_SANITIZER_PASS:-1} != 0 ]]; then
    echo
    echo "== The same suite under AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/)"
    COLDSCAN_BUILD_DIR=build-asan CMAKE_BUILD_TYPE=Debug COLDSCAN_CMAKE_ARGS=-DCOLDSCAN_SANITIZE=ON \
        ./scripts/build.sh
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ctest --test-dir build-asan --output-on-failure -j2 "$@"
fi
