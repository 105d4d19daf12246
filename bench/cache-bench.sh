#!/usr/bin/env bash
# cache-bench.sh: the verdict-cache benchmark (issue 3). Builds coldscan (scripts/build.sh, incremental),
# the load signature set (make-load-signatures.sh) and the template + linked clone (make-template.sh) into
# ${COLDSCAN_BENCH_DIR:-build/bench}, then runs five scans, each with --report and --no-progress:
#   a  cold          empty cache, template.qcow2
#   b  warm          same cache, template.qcow2 again (unchanged)
#   c  clone         same cache (it holds the template's scan), clone.qcow2 (a linked clone: 20 changed,
#                    20 added files, one new EICAR)
#   d  new-signature same cache, template.qcow2, with the ClamAV database plus one body signature (taken from
#                    a file in the template, so that file must now be detected)
#   e  clone-nocache clone.qcow2 with --no-cache (control)
# and prints the figures and the ratios cold/warm, cold template/clone and cold/new-signature, checks that
# the new signature rescanned every distinct content exactly once (verdict_misses == distinct contents) and
# found its file, and writes bench/RESULTS.md (bench_report.py). Ratios come from one run, never thresholds.
#
# Exit status: 0 when every scan completed (coldscan exits 1 for the planted samples: that is success) and
# every check holds; 1 when a check failed; 2 when a scan failed (coldscan exit status >= 2) or coldscan
# has no --cache option yet.
#
# Environment: COLDSCAN_BENCH_DIR (default build/bench), COLDSCAN (a coldscan binary: skips the build),
# BENCH_ACCEL (--accel, default auto), BENCH_BACKEND (--backend, default auto; each backend has its own
# section in RESULTS.md), BENCH_TEMPLATE_MB and the signature counts of the input builders,
# BENCH_RESULTS (default bench/RESULTS.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
here=$root/bench

if [[ -z ${COLDSCAN:-} ]]; then
    ./scripts/build.sh
    COLDSCAN=$root/build/tools/coldscan
fi
if [[ $("$COLDSCAN" scan --help) != *--cache* ]]; then
    echo "cache-bench: $COLDSCAN has no --cache option (the verdict cache is not wired in yet)" >&2
    exit 2
fi

bench_dir=${COLDSCAN_BENCH_DIR:-build/bench}
mkdir -p "$bench_dir"
bench_dir=$(cd "$bench_dir" && pwd)
accel=${BENCH_ACCEL:-auto}
backend=${BENCH_BACKEND:-auto} # guestfs: through the appliance; auto/direct: the direct path
results=${BENCH_RESULTS:-$here/RESULTS.md}

echo "== Inputs"
"$here/make-load-signatures.sh" "$bench_dir/sigs"
"$here/make-template.sh" "$bench_dir/images"

run=$bench_dir/run
rm -rf "$run"
mkdir -p "$run"
# Every arm runs the same binary, even if the build tree is rebuilt meanwhile.
cp "$COLDSCAN" "$run/coldscan"
COLDSCAN=$run/coldscan
git -C "$root" describe --always --dirty >"$run/revision" 2>/dev/null || echo unknown >"$run/revision"

# d's database: the load set plus one body signature cut from a file of the template.
cp -r "$bench_dir/sigs/clamav" "$run/clamav-plus-one"
python3 "$here/bench_report.py" new-signature "$bench_dir/images/template.manifest" \
    "$run/clamav-plus-one/bench-new.ndb" >"$run/new-signature.path"
echo "cache-bench: the new signature is cut from $(cat "$run/new-signature.path")"

# The product decides on KVM or TCG itself: never force TCG for it.
unset LIBGUESTFS_BACKEND_SETTINGS

# scan ARM CLAMAV_DB CACHE_OPTION... IMAGE: one coldscan run; exit status >= 2 stops the benchmark.
scan() {
    local arm=$1 db=$2 status start
    shift 2
    local args=(scan --clamav-db "$db" --yara-rules "$bench_dir/sigs/yara" --accel "$accel" --backend "$backend"
        --report "$run/$arm.json" --no-progress "$@")
    echo "== $arm: coldscan ${args[*]}"
    printf '%s\n' "$COLDSCAN ${args[*]}" >"$run/$arm.command"
    cut -d' ' -f1 /proc/loadavg >"$run/$arm.load" # other work on the machine distorts the figures
    start=$(date +%s.%N)
    set +e
    "$COLDSCAN" "${args[@]}" >"$run/$arm.out" 2>"$run/$arm.err"
    status=$?
    set -e
    echo "$status $(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.3f", e - s }')" >"$run/$arm.status"
    tail -n 4 "$run/$arm.out" | sed 's/^/    /'
    if ((status >= 2)); then
        echo "cache-bench: $arm: coldscan exited $status (a target failed or a file was not fully scanned):" >&2
        tail -n 20 "$run/$arm.err" >&2
        exit 2
    fi
}

cache=$run/cache
images=$bench_dir/images
scan a-cold "$bench_dir/sigs/clamav" --cache "$cache" "$images/template.qcow2"
scan b-warm "$bench_dir/sigs/clamav" --cache "$cache" "$images/template.qcow2"
scan c-clone "$bench_dir/sigs/clamav" --cache "$cache" "$images/clone.qcow2"
scan d-new-signature "$run/clamav-plus-one" --cache "$cache" "$images/template.qcow2"
scan e-clone-nocache "$bench_dir/sigs/clamav" --no-cache "$images/clone.qcow2"

echo
python3 "$here/bench_report.py" summarize "$bench_dir" "$COLDSCAN" "$results" "$backend"
