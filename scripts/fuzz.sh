#!/usr/bin/env bash
# fuzz.sh [TARGET...]: builds the libFuzzer targets of tests/fuzz with clang-16 into build-fuzz/ and runs
# each (default: all; one per core at a time) for COLDSCAN_FUZZ_SECONDS (default 20) on a copy of its seed
# corpus (tests/fuzz/corpus/<target>/), ASan + UBSan on. Exits non-zero when a target crashes, leaks, times out or
# breaks an oracle, naming the reproducer; re-run one with build-fuzz/tests/fuzz/fuzz_<target> FILE.
# Environment: COLDSCAN_FUZZ_SECONDS, COLDSCAN_FUZZ_DIR (working corpora and crashes, default
# build-fuzz/runs), COLDSCAN_FUZZ_BUILD_ONLY=1 (build, do not run).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

./scripts/install-deps.sh

seconds=${COLDSCAN_FUZZ_SECONDS:-20}
build_dir=build-fuzz
runs=${COLDSCAN_FUZZ_DIR:-$build_dir/runs}

if [[ ! -f $build_dir/CMakeCache.txt ]]; then
    # clang-16, not the default clang-14: std::expected needs clang >= 16 (cmake/Sanitizers.cmake).
    CC=clang-16 CXX=clang++-16 cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DCOLDSCAN_FUZZ=ON -DCOLDSCAN_TESTS=OFF
fi
# Only the fuzz targets and the few libraries they link, not the product.
cmake --build "$build_dir" -j"$(nproc)" --target coldscan_fuzz
# COLDSCAN_FUZZ_BUILD_ONLY=1: stop here (scripts/test.sh builds ahead of the run).
if [[ ${COLDSCAN_FUZZ_BUILD_ONLY:-0} != 0 ]]; then
    exit 0
fi

if (($#)); then
    targets=("$@")
else
    targets=()
    for source in tests/fuzz/fuzz_*.cpp; do
        name=${source##*/fuzz_}
        targets+=("${name%.cpp}")
    done
fi

# Symbolised stacks in the reports (llvm-16, from install-deps.sh).
if command -v llvm-symbolizer-16 >/dev/null; then
    export ASAN_SYMBOLIZER_PATH
    ASAN_SYMBOLIZER_PATH=$(command -v llvm-symbolizer-16)
fi

# run_target TARGET: fuzzes one target; its summary (and on failure its log's end) in $runs/TARGET/summary,
# exit status 1 when it failed.
run_target() {
    local target=$1 binary=$build_dir/tests/fuzz/fuzz_$1 seeds=tests/fuzz/corpus/$1 work=$runs/$1 status=0
    rm -rf "$work"
    mkdir -p "$work/corpus" "$work/crashes"
    if [[ -d $seeds ]]; then
        cp -r "$seeds/." "$work/corpus/"
    fi
    {
        echo "== fuzz_$target: ${seconds} s on $(find "$work/corpus" -type f | wc -l) seeds"
        # The seeds first, each once, so a regression seed fails at once; then the fuzzing proper.
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
            "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
            -artifact_prefix="$work/crashes/" "$work/corpus" >"$work/log" 2>&1 || status=$?
        grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE)' "$work/log" | tr '\n' ' ' ||
            true
        echo
        if ((status != 0)); then
            tail -n 40 "$work/log"
            for crash in "$work/crashes/"*; do
                [[ -e $crash ]] && echo "coldscan: fuzz_$target failed; reproducer: $crash"
            done
        fi
    } >"$runs/$target.summary"
    return $((status != 0))
}

# One target per core at a time (each is single-threaded), summaries printed in the targets' order.
jobs_at_once=$(nproc)
declare -A pid_of
failed=()
for ((i = 0; i < ${#targets[@]}; i += jobs_at_once)); do
    batch=("${targets[@]:i:jobs_at_once}")
    for target in "${batch[@]}"; do
        run_target "$target" &
        pid_of[$target]=$!
    done
    for target in "${batch[@]}"; do
        wait "${pid_of[$target]}" || failed+=("$target")
        cat "$runs/$target.summary"
    done
done

if ((${#failed[@]})); then
    echo "coldscan: fuzz targets that failed: ${failed[*]} (logs in $runs/<target>/log)" >&2
    exit 1
fi
echo "coldscan: ${#targets[@]} fuzz targets ran ${seconds} s each without a finding"
