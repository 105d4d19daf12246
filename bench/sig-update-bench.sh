#!/usr/bin/env bash
# sig-update-bench.sh: what a signature update costs the next scan (issue 18, docs/signature-updates.md).
# On the real Debian 12 server (real-os fixtures, ~28k files, 1.3 GiB) with the 1.1M-signature load set
# (make-load-signatures.sh) and the project's YARA rules, the direct path, each arm BENCH_REPEATS times
# (default 3; the median is reported):
#   cold        an empty cache, the load set
#   daily       the cache the cold scan left, the set after a realistic daily update (sig_update_inputs.py:
#               1,000 hash lines, 50 typed body/logical lines, 2 YARA rule files added; 300 lines removed)
#   generic     the same, with 3 of the 50 pattern lines for any file type (generic, text, HTML)
#   hash-only   the cache the cold scan left, 1,000 hash lines added
#   no-cache    the daily set without a cache (the oracle: every file's outcome must equal the daily arm's)
# Prints the medians, the ratios cold / update, and per update arm the files read again (verdicts rechecked
# by the engines of the added lines, files scanned in full), then writes its section of bench/RESULTS.md.
# Ratios come from one run, never thresholds.
#
# Environment: COLDSCAN (a coldscan binary: skips the build), COLDSCAN_BENCH_DIR (default build/bench),
# BENCH_REPEATS, BENCH_RESULTS (default bench/RESULTS.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=bench/bench-lib.sh
source bench/bench-lib.sh
bench_setup sig-update-run
image=$real/debian12-server.qcow2
for kind in daily generic hash-only; do
    cp -r "$bench_dir/sigs/yara" "$run/yara-$kind"
    python3 "$here/sig_update_inputs.py" "$kind" "$bench_dir/sigs/clamav" "$bench_dir/sigs/plain" \
        "$run/clamav-$kind" "$run/yara-$kind"
done

scan() { # ARM CLAMAV YARA CACHE-ARGS...: one run, its report and wall time under ARM
    local arm=$1 clamav=$2 yara=$3 status start
    shift 3
    cut -d' ' -f1 /proc/loadavg >"$run/$arm.load"
    start=$(date +%s.%N)
    set +e
    "$COLDSCAN" scan --backend direct --clamav-db "$clamav" --yara-rules "$yara" --allow-root "$real" \
        --no-progress --quiet-issues --report "$run/$arm.json" --inventory "$run/$arm.jsonl" "$@" "$image" \
        >"$run/$arm.out" 2>"$run/$arm.err"
    status=$?
    set -e
    echo "$status $(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.3f", e - s }')" >"$run/$arm.status"
    if ((status >= 2)); then
        echo "sig-update-bench: $arm: coldscan exited $status:" >&2
        tail -n 20 "$run/$arm.err" >&2
        exit 2
    fi
    echo "   $arm: $(cut -d' ' -f2 "$run/$arm.status") s"
}

base_clamav=$bench_dir/sigs/clamav
base_yara=$bench_dir/sigs/yara
for ((i = 1; i <= repeats; i++)); do
    echo "== Round $i of $repeats"
    rm -rf "$run/cache-cold"
    scan "cold-$i" "$base_clamav" "$base_yara" --cache "$run/cache-cold"
    for kind in daily generic hash-only; do
        rm -rf "$run/cache-$kind"
        cp -a "$run/cache-cold" "$run/cache-$kind"
        scan "$kind-$i" "$run/clamav-$kind" "$run/yara-$kind" --cache "$run/cache-$kind"
    done
done
scan no-cache "$run/clamav-daily" "$run/yara-daily" --no-cache

python3 "$here/sig_update_report.py" "$run" "$repeats" "$results"
