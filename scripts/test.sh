#!/usr/bin/env bash
# test.sh [CTEST ARGS...]: build.sh, then every test (unit + end-to-end) with CTest on 2 jobs, then the same
# suite again on an ASan+UBSan build (build-asan/). The end-to-end tests build small real disk images first
# (tests/fixtures) and launch libguestfs appliances; CTest lets at most one appliance run at a time. Extra
# arguments go to ctest, e.g. `-L unit` or `-R e2e.check.ntfs` (the ASan pass skips the labels real-os and
# release-only). Then two more stages, whatever the arguments: the pipeline, cache and scheduler unit tests
# under ThreadSanitizer (build-tsan/, their own test executable only), and every libFuzzer target for
# COLDSCAN_FUZZ_SECONDS (default 20) each, one per core at a time (scripts/fuzz.sh, clang-16, build-fuzz/).
# COLDSCAN_SANITIZER_PASS=0 skips the ASan+UBSan pass, COLDSCAN_TSAN_PASS=0 the ThreadSanitizer stage,
# COLDSCAN_FUZZ_PASS=0 the fuzz stage.
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
    # The real-OS tests (label real-os: a 1.3 GiB server scanned five ways) and e2e.lvm-layouts (label
    # release-only: ten images each read by the direct path and by the appliance, ~8 minutes, most of it the
    # appliance's TCG) run in the release pass only: the code they reach is the code the smaller fixtures
    # (e2e.vm-gate, e2e.scan.direct-lvm) and the fuzzers reach, and under ASan they would cost ~25 minutes.
    # So do the appliance runs that test libguestfs and qemu more than our code (release-only too, see
    # tests/e2e/CMakeLists.txt): VMDK/VHDX/VDI and LVM through the appliance, the host-file canary.
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp" \
        ctest --test-dir build-asan --output-on-failure -j2 -LE "real-os|release-only" "$@"
fi

if [[ ${COLDSCAN_TSAN_PASS:-1} != 0 ]]; then
    echo
    echo "== The pipeline, cache and scheduler tests under ThreadSanitizer (build-tsan/)"
    if [[ ! -f build-tsan/CMakeCache.txt ]]; then
        cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCOLDSCAN_TSAN=ON
    fi
    # Only the tests of the code that runs threads (tests/CMakeLists.txt: coldscan_thread_tests).
    cmake --build build-tsan -j"$(nproc)" --target coldscan_thread_tests
    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/tests/tsan.supp" \
        build-tsan/tests/coldscan_thread_tests
fi

if [[ ${COLDSCAN_FUZZ_PASS:-1} != 0 ]]; then
    echo
    echo "== libFuzzer targets, ${COLDSCAN_FUZZ_SECONDS:-20} s each (scripts/fuzz.sh, build-fuzz/)"
    ./scripts/fuzz.sh
fi
