#!/usr/bin/env bash
# direct-bench.sh: the direct disk path (issue 4), ratios measured in one run. Builds coldscan (unless
# COLDSCAN is given), the load signature set and a ~2 GiB ext4 qcow2 template of this host's binaries with a
# linked clone (~1% of the data changed), keeping the template's files in a folder for the peers. Then:
#   engines   coldscan-engines-only: ClamAV alone on the template's files held in memory, all cores (the
#             ceiling for any disk path)
#   clamd     clamd (MaxThreads = cores, the same databases and limits) + clamdscan --multiscan --fdpass over
#             the same files in a folder
#   direct    coldscan --backend direct on the template image, no cache
#   guestfs   coldscan --backend guestfs on the template image, no cache (the appliance; TCG here)
#   cold      coldscan --backend direct on the template, empty cache (fills it)
#   clone     coldscan --backend direct on the clone after the template, same cache
# Every coldscan and peer arm is ClamAV-only (no YARA), so the arms compare the same signatures; each runs
# under /usr/bin/time for its peak RSS. bench/direct_report.py prints the table and ratios and writes its
# section of bench/RESULTS.md.
# Environment: COLDSCAN_BENCH_DIR (default build/bench), COLDSCAN, BENCH_DIRECT_TEMPLATE_MB (default 2048),
# BENCH_CLONE_CHANGES (default "150 100": changed and added files), BENCH_SKIP_GUESTFS=1 (skip that arm).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
here=$root/bench

if [[ -z ${COLDSCAN:-} ]]; then
    ./scripts/build.sh
    COLDSCAN=$root/build/tools/coldscan
fi
engines_only=$(dirname "$COLDSCAN")/../bench/coldscan-engines-only
if [[ ! -x $engines_only ]]; then
    echo "direct-bench: $engines_only is missing (build the bench target)" >&2
    exit 2
fi
"$here/install-clamd.sh" # a peer only: installed on demand, its system service disabled

bench_dir=${COLDSCAN_BENCH_DIR:-build/bench}
mkdir -p "$bench_dir"
bench_dir=$(cd "$bench_dir" && pwd)
images=$bench_dir/direct/images
sigs=$bench_dir/sigs/clamav
cores=$(nproc)

echo "== Inputs"
"$here/make-load-signatures.sh" "$bench_dir/sigs"
BENCH_TEMPLATE_MB=${BENCH_DIRECT_TEMPLATE_MB:-2048} BENCH_CLONE_CHANGES=${BENCH_CLONE_CHANGES:-150 100} \
    BENCH_KEEP_TREE=1 "$here/make-template.sh" "$images"

run=$bench_dir/direct/run
rm -rf "$run"
mkdir -p "$run"
cp "$COLDSCAN" "$run/coldscan"
cp "$engines_only" "$run/engines-only"
git -C "$root" describe --always --dirty >"$run/revision" 2>/dev/null || echo unknown >"$run/revision"
unset LIBGUESTFS_BACKEND_SETTINGS

timed() { # ARM COMMAND...: wall seconds and peak RSS in ARM.time, stdout in ARM.out, stderr in ARM.err
    local arm=$1
    shift
    echo "== $arm: $*"
    printf '%s\n' "$*" >"$run/$arm.command"
    cut -d' ' -f1 /proc/loadavg >"$run/$arm.load"
    /usr/bin/time -f "%e %M" -o "$run/$arm.time" "$@" >"$run/$arm.out" 2>"$run/$arm.err" || true
    tail -n 2 "$run/$arm.out" | sed 's/^/    /'
}

# The engines alone, and the engine's own size (signatures loaded, nothing scanned).
mkdir -p "$run/empty"
timed engine-size "$run/engines-only" --clamav-db "$sigs" --threads "$cores" "$run/empty"
timed engines "$run/engines-only" --clamav-db "$sigs" --threads "$cores" "$images/template-tree"

# clamd with the same databases and limits as coldscan's defaults.
cat >"$run/clamd.conf" <<CONF
LocalSocket $run/clamd.sock
DatabaseDirectory $sigs
MaxThreads $cores
MaxFileSize 256M
MaxScanSize 1024M
MaxRecursion 17
MaxFiles 10000
MaxScanTime 120000
Foreground yes
CONF
start=$(date +%s.%N)
clamd -c "$run/clamd.conf" >"$run/clamd.log" 2>&1 &
clamd_pid=$!
for _ in $(seq 1 600); do
    [[ -S $run/clamd.sock ]] && break
    sleep 0.1
done
awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.3f\n", e - s }' >"$run/clamd.load-seconds"
timed clamd clamdscan -c "$run/clamd.conf" --multiscan --fdpass --no-summary --infected "$images/template-tree"
grep VmHWM "/proc/$clamd_pid/status" | awk '{ print $2 }' >"$run/clamd.rss-kb"
kill "$clamd_pid"
wait "$clamd_pid" 2>/dev/null || true

scan() { # ARM ARGS...
    local arm=$1
    shift
    timed "$arm" "$run/coldscan" scan --clamav-db "$sigs" --no-progress --no-summary --quiet-issues \
        --report "$run/$arm.json" "$@"
}
scan direct --backend direct --no-cache "$images/template.qcow2"
if [[ ${BENCH_SKIP_GUESTFS:-0} != 1 ]]; then
    scan guestfs --backend guestfs --no-cache "$images/template.qcow2"
fi
scan cold --backend direct --cache "$run/cache" "$images/template.qcow2"
scan clone --backend direct --cache "$run/cache" "$images/clone.qcow2"

echo
python3 "$here/direct_report.py" "$bench_dir" "${BENCH_RESULTS:-$here/RESULTS.md}"
