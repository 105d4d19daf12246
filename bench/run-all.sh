#!/usr/bin/env bash
# run-all.sh: the benchmarks of issue 6 in one command, from a fresh machine to bench/RESULTS.md.
#
# Users pick a scanner on evidence: what a full-disk scan costs next to the in-guest antivirus they run
# today, what a nightly re-scan costs, what a fleet of linked clones costs, and what one new signature
# costs. Every figure here is a ratio between arms measured in the same run on the same files with the
# same signatures, each arm repeated BENCH_REPEATS times (median, min, max); nothing is compared with a
# stored number. The checks make the run fail when a result is wrong (a missed sample, a cache that scans
# what it should not), never when it is slow.
#
# 1. Builds coldscan and the bench tools (scripts/build.sh: every target), unless COLDSCAN names a binary.
#    Installs clamd/clamdscan when missing (a peer only: its system service is disabled).
# 2. Inputs, under ${COLDSCAN_BENCH_DIR:-build/bench}, each reused when present with the same parameters:
#      sigs/                 make-load-signatures.sh: ~1M hash + 100k body signatures + the test samples'
#      full/images/          make-template.sh: template.qcow2, ~BENCH_TEMPLATE_MB (2048) MiB of this host's
#                            binaries on ext4/GPT, its files kept in template-tree/ for the peers;
#                            make-fleet.sh: fleet-01..NN.qcow2, linked clones after a package update
#      full/ntfs/            make-ntfs.sh: ntfs.qcow2, a Windows-like NTFS disk (~BENCH_NTFS_MB MiB) and
#                            its tree
# 3. Arms (full/run/ARM.R.*, R = 1..BENCH_REPEATS, the repeats interleaved), ClamAV only everywhere (no
#    YARA), the same databases and limits, wall time and peak RSS from /usr/bin/time (clamd: the daemon's
#    VmHWM); the page cache holds every input before the first arm:
#      full     template: coldscan --backend direct and --backend guestfs (--no-cache), clamscan -r (one
#               thread) and clamd (MaxThreads = cores) + clamdscan --multiscan --fdpass on template-tree,
#               then clamdscan again on the same clamd (its warm in-memory cache)
#      ntfs     the same four arms on ntfs.qcow2 / ntfs-tree (no second clamdscan)
#      cache    an empty cache: template cold, template warm (unchanged re-scan), template with one added
#               signature (cut from a file of the template)
#      fleet    for N in BENCH_FLEET (1 5 10): an empty cache, the template, then clones 1..N
# 4. bench/full_report.py: the tables, ratios and checks, its sections of RESULTS.md, full/bars.json and
#    full/fleet.json, and the plots (bench/plots.py, when there).
# 5. bench/storm-bench.sh and bench/gate-latency.sh (the scheduler's arms), when there and executable.
#
# Exit status: 0 when every check holds; 1 when a check failed (a wrong result); 2 when an arm could not
# run (build, inputs, a scan that failed outright).
#
# Environment: COLDSCAN (a coldscan binary: skips the build), COLDSCAN_BENCH_DIR (default build/bench),
# BENCH_REPEATS (3), BENCH_ARMS ("full ntfs cache fleet"), BENCH_FLEET ("1 5 10"), BENCH_TEMPLATE_MB
# (2048), BENCH_NTFS_MB (300), BENCH_FLEET_CHANGES ("200 100 10": changed, added, deleted files per
# clone), BENCH_SKIP_GUESTFS=1 (no appliance arms), BENCH_SKIP_SCHEDULER=1 (no storm/gate scripts),
# BENCH_RESULTS (bench/RESULTS.md), BENCH_PLOTS (the folder of BENCH_RESULTS, plots/).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
here=$root/bench

if [[ -z ${COLDSCAN:-} ]]; then
    ./scripts/build.sh # every target: coldscan, coldscan-engines-only, coldscan-storm-sim
    COLDSCAN=$root/build/tools/coldscan
fi
COLDSCAN=$(realpath "$COLDSCAN")
if [[ ! -x $COLDSCAN ]]; then
    echo "run-all: $COLDSCAN is not an executable" >&2
    exit 2
fi
"$here/install-clamd.sh" # a peer only: installed on demand, its system service disabled

bench_dir=${COLDSCAN_BENCH_DIR:-build/bench}
mkdir -p "$bench_dir"
bench_dir=$(cd "$bench_dir" && pwd)
full=$bench_dir/full
images=$full/images
ntfs=$full/ntfs
run=$full/run
sigs=$bench_dir/sigs/clamav
repeats=${BENCH_REPEATS:-3}
arms=" ${BENCH_ARMS:-full ntfs cache fleet} "
read -r -a fleet_sizes <<<"${BENCH_FLEET:-1 5 10}"
template_mb=${BENCH_TEMPLATE_MB:-2048}
skip_guestfs=${BENCH_SKIP_GUESTFS:-0}
results=$(realpath -m "${BENCH_RESULTS:-$here/RESULTS.md}")
plots=$(realpath -m "${BENCH_PLOTS:-$(dirname "$results")/plots}")
cores=$(nproc)
max_fleet=0
for n in "${fleet_sizes[@]}"; do
    if ((n > max_fleet)); then
        max_fleet=$n
    fi
done
wants() { [[ $arms == *" $1 "* ]]; }

echo "== Inputs (reused when present)"
"$here/make-load-signatures.sh" "$bench_dir/sigs"
BENCH_TEMPLATE_MB=$template_mb BENCH_KEEP_TREE=1 "$here/make-template.sh" "$images"
if wants fleet; then
    "$here/make-fleet.sh" "$images" "$max_fleet"
fi
if wants ntfs; then
    "$here/make-ntfs.sh" "$ntfs"
fi

rm -rf "$run"
mkdir -p "$run"
# Every arm runs the same binary, even if the build tree is rebuilt meanwhile.
cp "$COLDSCAN" "$run/coldscan"
git -C "$root" describe --always --dirty >"$run/revision" 2>/dev/null || echo unknown >"$run/revision"
date -u +%Y-%m-%dT%H:%M:%SZ >"$run/started_at"
{
    echo "BENCH_REPEATS=$repeats"
    echo "BENCH_ARMS=\"${BENCH_ARMS:-full ntfs cache fleet}\""
    echo "BENCH_FLEET=\"${fleet_sizes[*]}\""
    echo "BENCH_TEMPLATE_MB=$template_mb"
    echo "BENCH_NTFS_MB=${BENCH_NTFS_MB:-300}"
    echo "BENCH_FLEET_CHANGES=\"${BENCH_FLEET_CHANGES:-200 100 10}\""
    echo "BENCH_SKIP_GUESTFS=$skip_guestfs"
} >"$run/settings"
unset LIBGUESTFS_BACKEND_SETTINGS # the product decides on KVM or TCG itself

# The signature update: the load set plus one body signature cut from a file of the template.
if wants cache; then
    cp -r "$sigs" "$run/clamav-plus-one"
    python3 "$here/bench_report.py" new-signature "$images/template.manifest" \
        "$run/clamav-plus-one/bench-new.ndb" >"$run/new-signature.path"
    echo "run-all: the new signature is cut from $(cat "$run/new-signature.path")"
fi

echo "== Page cache: reading every input once, so that no arm pays for the disk"
inputs=("$images/template.qcow2")
wants fleet && inputs+=("$images"/fleet-*.qcow2)
wants ntfs && inputs+=("$ntfs/ntfs.qcow2")
cat "${inputs[@]}" "$sigs"/* >/dev/null
trees=("$images/template-tree")
wants ntfs && trees+=("$ntfs/ntfs-tree")
find "${trees[@]}" -type f -print0 | xargs -0 -r cat >/dev/null

# timed ARM COMMAND...: ARM.command, ARM.load (1-minute load average at the start), ARM.time ("wall-seconds
# peak-RSS-KiB"), ARM.status (exit status), ARM.out, ARM.err.
timed() {
    local arm=$1 status=0
    shift
    printf '%q ' "$@" >"$run/$arm.command"
    echo >>"$run/$arm.command"
    cut -d' ' -f1 /proc/loadavg >"$run/$arm.load"
    /usr/bin/time -f "%e %M" -o "$run/$arm.time" "$@" >"$run/$arm.out" 2>"$run/$arm.err" || status=$?
    echo "$status" >"$run/$arm.status"
    read -r wall rss < <(tail -n 1 "$run/$arm.time")
    printf '  %-24s %8.1f s %7.0f MiB  exit %s  (load %s)\n' "$arm" "$wall" "$((rss / 1024))" "$status" \
        "$(cat "$run/$arm.load")"
}

# scan ARM DATABASE ARGS...: one coldscan run with its JSON report. ClamAV only: no --yara-rules.
scan() {
    local arm=$1 db=$2
    shift 2
    timed "$arm" "$run/coldscan" scan --clamav-db "$db" --no-progress --no-summary --quiet-issues \
        --report "$run/$arm.json" "$@"
    if [[ ! -s $run/$arm.json ]]; then
        echo "run-all: $arm: coldscan wrote no report (exit $(cat "$run/$arm.status")):" >&2
        tail -n 20 "$run/$arm.err" >&2
        exit 2
    fi
}

# The peers get coldscan's default limits and scan options: all matches, alerts for files over a limit and
# for encrypted content.
k_limits=(--max-filesize=256M --max-scansize=1024M --max-recursion=17 --max-files=10000 --max-scantime=120000)
clamscan_arm() { # ARM TREE: one thread, as an in-guest agent runs; the summary line counts the signatures
    timed "$1" clamscan -r --allmatch=yes --alert-exceeds-max=yes --alert-encrypted=yes --infected -d "$sigs" \
        "${k_limits[@]}" "$2"
}

# shellcheck source=bench/clamd-conf.sh
source "$here/clamd-conf.sh"
write_clamd_conf "$run/clamd.conf" "$run/clamd.sock" "$sigs" "$cores"
clamd_pid=
stop_clamd() {
    if [[ -n $clamd_pid ]]; then
        kill "$clamd_pid" 2>/dev/null || true
        wait "$clamd_pid" 2>/dev/null || true
        clamd_pid=
    fi
}
trap stop_clamd EXIT
# clamd_arms ARM TREE [WARM_ARM]: a fresh clamd (empty in-memory cache), clamdscan once (ARM) and, with
# WARM_ARM, once more on the same daemon. ARM.load-seconds: the daemon's start until its socket answers;
# ARM.rss-kb: the daemon's VmHWM after that run.
clamd_arms() {
    local arm=$1 tree=$2 warm=${3:-} start
    rm -f "$run/clamd.sock"
    start=$(date +%s.%N)
    clamd -c "$run/clamd.conf" >"$run/$arm.clamd.log" 2>&1 &
    clamd_pid=$!
    for _ in $(seq 1 1200); do
        [[ -S $run/clamd.sock ]] && break
        if ! kill -0 "$clamd_pid" 2>/dev/null; then
            echo "run-all: clamd did not start:" >&2
            tail -n 20 "$run/$arm.clamd.log" >&2
            exit 2
        fi
        sleep 0.1
    done
    awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.3f\n", e - s }' >"$run/$arm.load-seconds"
    local name
    for name in "$arm" $warm; do
        timed "$name" clamdscan -c "$run/clamd.conf" --multiscan --fdpass --allmatch --infected --no-summary "$tree"
        awk '/^VmHWM/ { print $2 }' "/proc/$clamd_pid/status" >"$run/$name.rss-kb"
        echo "    (clamd: $(($(cat "$run/$name.rss-kb") / 1024)) MiB peak RSS; its signatures loaded in" \
            "$(cat "$run/$arm.load-seconds") s before the first clamdscan)"
    done
    stop_clamd
}

read -r -a arm_words <<<"$arms"
echo "== Arms: $repeats repeats of [${arm_words[*]}] (all ClamAV only; $cores cores)"
for ((r = 1; r <= repeats; r++)); do
    echo "-- repeat $r of $repeats"
    if wants full; then
        scan "tpl-direct.$r" "$sigs" --backend direct --no-cache "$images/template.qcow2"
        if [[ $skip_guestfs != 1 ]]; then
            scan "tpl-guestfs.$r" "$sigs" --backend guestfs --no-cache "$images/template.qcow2"
        fi
        clamscan_arm "tpl-clamscan.$r" "$images/template-tree"
        clamd_arms "tpl-clamd.$r" "$images/template-tree" "tpl-clamd-warm.$r"
    fi
    if wants ntfs; then
        scan "ntfs-direct.$r" "$sigs" --backend direct --no-cache "$ntfs/ntfs.qcow2"
        if [[ $skip_guestfs != 1 ]]; then
            scan "ntfs-guestfs.$r" "$sigs" --backend guestfs --no-cache "$ntfs/ntfs.qcow2"
        fi
        clamscan_arm "ntfs-clamscan.$r" "$ntfs/ntfs-tree"
        clamd_arms "ntfs-clamd.$r" "$ntfs/ntfs-tree"
    fi
    if wants cache; then
        cache=$run/cache-rescan.$r
        scan "rescan-cold.$r" "$sigs" --backend direct --cache "$cache" "$images/template.qcow2"
        scan "rescan-warm.$r" "$sigs" --backend direct --cache "$cache" "$images/template.qcow2"
        scan "sigupdate.$r" "$run/clamav-plus-one" --backend direct --cache "$cache" "$images/template.qcow2"
        rm -rf "$cache"
    fi
    if wants fleet; then
        for n in "${fleet_sizes[@]}"; do
            cache=$run/cache-fleet$n.$r
            scan "fleet$n-00.$r" "$sigs" --backend direct --cache "$cache" "$images/template.qcow2"
            for ((k = 1; k <= n; k++)); do
                clone=$(printf 'fleet-%02d' "$k")
                scan "fleet$n-${clone#fleet-}.$r" "$sigs" --backend direct --cache "$cache" "$images/$clone.qcow2"
            done
            rm -rf "$cache"
        done
    fi
done

echo
status=0
python3 "$here/full_report.py" "$bench_dir" "$results" "$plots" || status=$?

# The scheduler's arms (written apart): the storm simulation and the gate's latency on this template.
storm_sim=${STORM_SIM:-$(dirname "$COLDSCAN")/../bench/coldscan-storm-sim}
if [[ ${BENCH_SKIP_SCHEDULER:-0} != 1 ]]; then
    for script in storm-bench.sh gate-latency.sh; do
        if [[ -x $here/$script ]]; then
            echo
            echo "== $script"
            script_status=0
            COLDSCAN=$COLDSCAN COLDSCAN_BENCH_DIR=$bench_dir BENCH_RESULTS=$results BENCH_PLOTS=$plots \
                IMAGE=$images/template.qcow2 SIGS=$sigs STORM_SIM=$storm_sim "$here/$script" || script_status=$?
            if ((script_status != 0)); then
                echo "run-all: $script exited $script_status" >&2
                if ((script_status > status)); then
                    status=$script_status
                fi
            fi
        else
            echo "run-all: bench/$script is not there: its arms are skipped"
        fi
    done
fi
exit "$status"
