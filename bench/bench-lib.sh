# bench-lib.sh: what the real-server benchmarks share (sourced, after `cd` to the project root).
# bench_setup RUN-NAME: sets root, here, COLDSCAN (built by scripts/build.sh unless given), bench_dir
# (COLDSCAN_BENCH_DIR, default build/bench), repeats (BENCH_REPEATS, default 3), results (BENCH_RESULTS,
# default bench/RESULTS.md), real (the real-os fixtures) and run (bench_dir/RUN-NAME, emptied, holding a copy of
# the binary and the revision measured); makes the load signature set and the real-OS fixtures.
bench_setup() {
    root=$(pwd)
    here=$root/bench
    if [[ -z ${COLDSCAN:-} ]]; then
        ./scripts/build.sh
        COLDSCAN=$root/build/tools/coldscan
    fi
    bench_dir=${COLDSCAN_BENCH_DIR:-build/bench}
    mkdir -p "$bench_dir"
    bench_dir=$(cd "$bench_dir" && pwd)
    repeats=${BENCH_REPEATS:-3}
    results=${BENCH_RESULTS:-$here/RESULTS.md}

    echo "== Inputs"
    "$here/make-load-signatures.sh" "$bench_dir/sigs"
    real=$bench_dir/real-os
    "$root/tests/fixtures/make-real-os.sh" "$real" >/dev/null

    run=$bench_dir/$1
    rm -rf "$run"
    mkdir -p "$run"
    cp "$COLDSCAN" "$run/coldscan"
    COLDSCAN=$run/coldscan
    git -C "$root" describe --always --dirty >"$run/revision" 2>/dev/null || echo unknown >"$run/revision"
}
