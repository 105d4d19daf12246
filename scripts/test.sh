#!/usr/bin/env bash
# test.sh [CTEST ARGS...]: build.sh, then every test (unit + end-to-end) with CTest on 2 jobs, then three
# more stages on other builds of the same sources (docs/testing.md):
#   asan  the unit tests and the label asan (our own code on hostile, damaged and direct-path input, the cache
#         and the service API) on an ASan+UBSan build (build-asan/, sharing build/fixtures);
#   tsan  the tests of the code that runs threads under ThreadSanitizer (build-tsan/, its own executable);
#   fuzz  every libFuzzer target for COLDSCAN_FUZZ_SECONDS (default 20) each (scripts/fuzz.sh, build-fuzz/).
# Those three builds run behind the release tests at the lowest CPU and I/O priority: they take what the tests
# leave idle (appliance boots, service pauses) and are mostly done when the tests end (their log:
# build/overlap-builds.log; COLDSCAN_OVERLAP_BUILDS=0 builds each in its stage instead).
# The end-to-end tests build small real disk images first (tests/fixtures) and launch libguestfs appliances;
# CTest lets at most one appliance run at a time. Extra arguments go to the first ctest, e.g. `-L unit` or
# `-R e2e.check.ntfs`, and to the asan one. COLDSCAN_SANITIZER_PASS=0, COLDSCAN_TSAN_PASS=0 and
# COLDSCAN_FUZZ_PASS=0 skip a stage. Each stage's time is printed at the end, also when one fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

stage_times=()
stage_name="" stage_start=0
overlap_pid=""
stage() { # NAME: ends the running stage's clock and starts NAME's
    if [[ -n $stage_name ]]; then
        stage_times+=("$(printf '%-12s %5d s' "$stage_name" $((SECONDS - stage_start)))")
    fi
    stage_name=$1 stage_start=$SECONDS
    [[ -z $1 ]] || echo "== test.sh: $1 ($(date -u +%H:%M:%S) UTC, ${SECONDS} s in)"
}
finish() {
    local status=$?
    [[ -z $overlap_pid ]] || kill -- -"$overlap_pid" 2>/dev/null || true
    stage ""
    echo
    echo "== test.sh stage times (exit $status, ${SECONDS} s in all):"
    printf '   %s\n' "${stage_times[@]}"
}
trap finish EXIT

release_dir=${COLDSCAN_BUILD_DIR:-build}
asan_build() {
    local fixtures
    fixtures=$(realpath "$release_dir")/fixtures
    COLDSCAN_BUILD_DIR=build-asan CMAKE_BUILD_TYPE=Debug \
        COLDSCAN_CMAKE_ARGS="-DCOLDSCAN_SANITIZE=ON -DCOLDSCAN_E2E_FIXTURES=$fixtures" \
        COLDSCAN_BUILD_TARGETS="coldscan coldscan_unit_tests coldscan_e2e_tests" ./scripts/build.sh
}
tsan_build() {
    if [[ ! -f build-tsan/CMakeCache.txt ]]; then
        cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCOLDSCAN_TSAN=ON
    fi
    # Only the tests of the code that runs threads (tests/CMakeLists.txt: coldscan_thread_tests).
    cmake --build build-tsan -j"$(nproc)" --target coldscan_thread_tests
}
fuzz_build() { COLDSCAN_FUZZ_BUILD_ONLY=1 ./scripts/fuzz.sh; }
later_builds() {
    if [[ ${COLDSCAN_SANITIZER_PASS:-1} != 0 ]]; then asan_build; fi
    if [[ ${COLDSCAN_TSAN_PASS:-1} != 0 ]]; then tsan_build; fi
    if [[ ${COLDSCAN_FUZZ_PASS:-1} != 0 ]]; then fuzz_build; fi
}

stage "build"
./scripts/build.sh
if [[ ${COLDSCAN_OVERLAP_BUILDS:-1} != 0 ]]; then
    # Its own process group (setsid), so that a failing test run can stop it whole.
    setsid nice -n 19 ionice -c 3 bash -c "$(declare -f asan_build tsan_build fuzz_build later_builds)
        release_dir=$release_dir; set -euo pipefail; later_builds" </dev/null >"$release_dir/overlap-builds.log" 2>&1 &
    overlap_pid=$!
fi

# coldscan must pick TCG by itself when KVM is unusable (nested clouds): never force it for the product.
unset LIBGUESTFS_BACKEND_SETTINGS
stage "tests"
ctest --test-dir "$release_dir" --output-on-failure -j2 "$@"

if [[ -n $overlap_pid ]]; then
    stage "later-builds"
    # The tests are done: full speed now (raising a priority needs root; otherwise it stays low).
    renice -n 0 -g "$overlap_pid" >/dev/null 2>&1 || true
    ionice -c 2 -P "$overlap_pid" >/dev/null 2>&1 || true
    if ! wait "$overlap_pid"; then
        overlap_pid=""
        echo "the sanitizer, TSan or fuzz build failed ($release_dir/overlap-builds.log):" >&2
        tail -60 "$release_dir/overlap-builds.log" >&2
        exit 1
    fi
    overlap_pid=""
fi

if [[ ${COLDSCAN_SANITIZER_PASS:-1} != 0 ]]; then
    stage "asan"
    asan_build # nothing to do when the builds ran behind the tests
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp" \
        ctest --test-dir build-asan --output-on-failure -j2 -L "unit|asan" "$@"
fi

if [[ ${COLDSCAN_TSAN_PASS:-1} != 0 ]]; then
    stage "tsan"
    tsan_build
    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/tests/tsan.supp" \
        build-tsan/tests/coldscan_thread_tests
fi

if [[ ${COLDSCAN_FUZZ_PASS:-1} != 0 ]]; then
    stage "fuzz"
    ./scripts/fuzz.sh
fi
