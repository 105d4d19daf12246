#!/usr/bin/env bash
# lvm-xfs-bench.sh: the direct path's own LVM2 and XFS readers (issue 17) on the real Debian 12 server of
# make-real-os.sh (~27,500 files, 1.3 GiB), the same tree in three disk layouts, ratios measured in one run:
#   ext4-gpt       --backend direct on debian12-server.qcow2 (ext4 on GPT: the baseline)
#   ext4-lvm       --backend direct on debian12-server-lvm-ext4.qcow2 (/boot ext4 + LVM, root LV ext4: Ubuntu)
#   xfs-lvm        --backend direct on debian12-server-lvm-xfs.qcow2 (/boot ext4 + LVM, root LV XFS: RHEL)
#   xfs-appliance  --backend guestfs on the XFS disk (the appliance; TCG here)
#   xfs-lvm-test-sigs, xfs-appliance-test-sigs
#                  the same two with the test signatures (make-signatures.sh: a handful of ClamAV and YARA
#                  signatures), the issue's reference conditions: how much faster the direct path reads when the
#                  engines are not the bound (with the load set, both paths wait for the engines on two cores)
#   cold           --backend direct on the XFS disk (the template), an empty --cache
#   clone          --backend direct on a linked clone of it (a qcow2 overlay, ~1% of the data rewritten inside
#                  the guest's XFS by one guestfish session), right after cold on the same cache: the files
#                  whose blocks lie in the template's layer are reused, not read
#   clone-4k       the same changes in an overlay with 4 KiB clusters, on a copy of cold's cache (diagnostic:
#                  how many files the default 64 KiB clusters add to the files read)
# Every arm: ClamAV only with the load signature set (as real-os-bench.sh), --threads = cores, --no-cache
# unless named; wall time, peak RSS (the largest single process: coldscan's own, a worker's or the appliance's
# qemu) and CPU time (user + system of the whole process tree: steadier than wall on a busy machine) from
# /usr/bin/time. BENCH_REPEATS (3) interleaved repeats of every arm, each ratio from the
# medians; the appliance arm runs BENCH_GUESTFS_REPEATS (BENCH_REPEATS) times. bench/lvm_xfs_report.py checks
# the results (every arm completed; every direct arm read the same contents as ext4-gpt; the appliance the same
# files as xfs-lvm; the clone reads back its changes and the template's other files), prints the tables and
# the targets (PASS/MISS), and writes its RESULTS.md section. Exit 1 when a check fails (never for a MISS), 2
# when an arm could not run.
# Environment: COLDSCAN_BENCH_DIR (default build/bench), COLDSCAN (default: build it), BENCH_REPEATS,
# BENCH_GUESTFS_REPEATS (0 skips the appliance), BENCH_CLONE_PERCENT (1), BENCH_RESULTS (bench/RESULTS.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
here=$root/bench
# shellcheck source=tests/fixtures/lib.sh
source "$root/tests/fixtures/lib.sh"
export LC_ALL=C.UTF-8

if [[ -z ${COLDSCAN:-} ]]; then
    ./scripts/build.sh
    COLDSCAN=$root/build/tools/coldscan
fi
repeats=${BENCH_REPEATS:-3}
guestfs_repeats=${BENCH_GUESTFS_REPEATS:-$repeats}
clone_percent=${BENCH_CLONE_PERCENT:-1}
bench_dir=${COLDSCAN_BENCH_DIR:-build/bench}
mkdir -p "$bench_dir"
bench_dir=$(cd "$bench_dir" && pwd)
sigs=$bench_dir/sigs/clamav
test_sigs=$bench_dir/test-sigs
cores=$(nproc)

echo "== Inputs"
"$here/make-load-signatures.sh" "$bench_dir/sigs"
"$root/tests/fixtures/make-signatures.sh" "$test_sigs"
# The ext4 disk and the tree (make-real-os.sh), then the two LVM disks; all idempotent.
"$root/tests/fixtures/make-real-os-lvm.sh" "$bench_dir/real-os" xfs ext4
real=$(cd "$bench_dir/real-os" && pwd -P) # the real folder: the clone's backing file and --allow-root name it
tree=$real/debian12-server-tree
ext4_gpt=$real/debian12-server.qcow2
ext4_lvm=$real/debian12-server-lvm-ext4.qcow2
template=$real/debian12-server-lvm-xfs.qcow2

# --- the linked clone: ~1% of the data rewritten inside the guest's XFS -----------------------------------
# clone.qcow2: a qcow2 overlay on the template (default 64 KiB clusters), the picked files rewritten by one
# guestfish session, which reads their checksums back. clone-4k.qcow2: the same changes in an overlay with
# 4 KiB clusters (a diagnostic arm: a file counts as changed when any of its bytes lies in a cluster of the
# top layer, and a 64 KiB cluster copied up for a rewritten file also holds its neighbours' data). Rebuilt when
# the template or lvm_xfs_inputs.py is newer, or the parameters changed.
clones=$bench_dir/lvm-xfs
clone=$clones/clone.qcow2
clone_4k=$clones/clone-4k.qcow2
clone_params="version=1 percent=$clone_percent"
mkdir -p "$clones"
quoted() { # PATH: a guestfish argument in double quotes
    local s=${1//\\/\\\\}
    printf '"%s"' "${s//\"/\\\"}"
}
write_clone() { # OVERLAY CLUSTER-BYTES: create it on the template and write the changes of $work/files into it
    local overlay=$1 cluster=$2 name=${1##*/}
    qemu-img create -q -f qcow2 -o "cluster_size=$cluster" -b "$template" -F qcow2 "$overlay"
    {
        echo "add $overlay format:qcow2"
        echo "run"
        echo "mount /dev/realvg/root /"
        while IFS=$'\t' read -r file _ _ _ path; do
            echo "upload $work/files/$file $(quoted "$path")"
        done <"$work/files/changes.tsv"
        echo "sync"
        echo "drop-caches 3" # the checksums below read the disk, not the appliance's page cache
        while IFS=$'\t' read -r _ _ _ _ path; do
            echo "checksum sha256 $(quoted "$path")"
        done <"$work/files/changes.tsv"
        printf '%s\n' "umount-all" "sync" "shutdown"
    } >"$work/$name.fish"
    # KVM launches fail on these machines: TCG is forced for this guestfish run only. One session per overlay:
    # both carry the template's VG, and one appliance cannot hold two copies of a PV.
    LIBGUESTFS_BACKEND_SETTINGS=force_tcg guestfish --no-progress-bars <"$work/$name.fish" >"$work/$name.readback"
    if ! cmp -s <(cut -f4 "$work/files/changes.tsv") "$work/$name.readback"; then
        echo "lvm-xfs-bench: $name does not read back what was written into it" >&2
        diff <(cut -f4 "$work/files/changes.tsv") "$work/$name.readback" | head -20 >&2 || true
        exit 2
    fi
}
build_clones() {
    local work=$clones/work start
    start=$(now_seconds)
    rm -rf "$work" "$clone" "$clone_4k" "$clones/changes.tsv" "$clones/clone.params"
    mkdir -p "$work"
    python3 "$here/lvm_xfs_inputs.py" clone-changes "$tree" "$clone_percent" "$work/files"
    write_clone "$work/clone.qcow2" 65536
    write_clone "$work/clone-4k.qcow2" 4096
    mv -f "$work/files/changes.tsv" "$clones/changes.tsv"
    mv -f "$work/clone.qcow2" "$clone"
    mv -f "$work/clone-4k.qcow2" "$clone_4k"
    echo "$clone_params" >"$clones/clone.params"
    rm -rf "$work"
    echo "lvm-xfs-bench: clones built in $(elapsed "$start") s (overlays: $(du -k "$clone" | cut -f1) KiB," \
        "4 KiB clusters $(du -k "$clone_4k" | cut -f1) KiB)"
}
if is_fresh "$clone" "$template" "$here/lvm_xfs_inputs.py" && is_fresh "$clone_4k" "$template" &&
    [[ -f $clones/changes.tsv && $(cat "$clones/clone.params" 2>/dev/null) == "$clone_params" ]]; then
    echo "lvm-xfs-bench: clones up to date ($(wc -l <"$clones/changes.tsv") files changed)"
else
    build_clones
fi

# --- the runs --------------------------------------------------------------------------------------------------
run=$bench_dir/lvm-xfs-run
rm -rf "$run"
mkdir -p "$run"
cp "$COLDSCAN" "$run/coldscan" # every arm runs the same binary, even if the build changes meanwhile
git -C "$root" describe --always --dirty >"$run/revision" 2>/dev/null || echo unknown >"$run/revision"
unset LIBGUESTFS_BACKEND_SETTINGS # coldscan decides on KVM or TCG itself
cp "$clones/changes.tsv" "$run/changes.tsv"
{
    echo "repeats=$repeats guestfs_repeats=$guestfs_repeats cores=$cores clone_percent=$clone_percent"
    for image in "$ext4_gpt" "$ext4_lvm" "$template" "$clone" "$clone_4k"; do
        echo "$(basename "$image") $(stat -c %s "$image")"
    done
} >"$run/inputs"

# The page cache warm for every arm alike (the images are ~1.4 GiB each): no arm pays the first read from disk.
cat "$ext4_gpt" "$ext4_lvm" "$template" "$clone" "$clone_4k" >/dev/null

failed=0
timed() { # ARM COMMAND...: "wall-s peak-RSS-KiB user-s sys-s" in ARM.time, exit status in ARM.rc, the load average
    local arm=$1 rc=0
    shift
    echo "== $arm: $*"
    printf '%s\n' "$*" >"$run/$arm.command"
    cut -d' ' -f1 /proc/loadavg >"$run/$arm.load"
    /usr/bin/time -f "%e %M %U %S" -o "$run/$arm.time" "$@" >"$run/$arm.out" 2>"$run/$arm.err" || rc=$?
    echo "$rc" >"$run/$arm.rc"
    echo "   $(tail -n 1 "$run/$arm.time") (wall s, peak RSS KiB, user s, sys s), exit $rc"
    if ((rc >= 2)); then
        failed=1
        tail -n 5 "$run/$arm.err" | sed 's/^/   /'
    fi
}
scan() { # ARM ARGS...
    local arm=$1
    shift
    timed "$arm" "$run/coldscan" scan --clamav-db "$sigs" --threads "$cores" --no-progress --no-summary \
        --quiet-issues --report "$run/$arm.json" --inventory "$run/$arm.jsonl" "$@"
}
scan_test_sigs() { # ARM ARGS...: with the test signatures (ClamAV and YARA)
    local arm=$1
    shift
    timed "$arm" "$run/coldscan" scan --clamav-db "$test_sigs/clamav" --yara-rules "$test_sigs/yara" \
        --threads "$cores" --no-progress --no-summary --quiet-issues --report "$run/$arm.json" \
        --inventory "$run/$arm.jsonl" "$@"
}
for ((r = 1; r <= repeats; r++)); do
    echo "=== repeat $r of $repeats"
    scan "ext4-gpt.$r" --backend direct --no-cache "$ext4_gpt"
    scan "ext4-lvm.$r" --backend direct --no-cache "$ext4_lvm"
    scan "xfs-lvm.$r" --backend direct --no-cache "$template"
    scan_test_sigs "xfs-lvm-test-sigs.$r" --backend direct --no-cache "$template"
    if ((r <= guestfs_repeats)); then
        scan "xfs-appliance.$r" --backend guestfs --no-cache "$template"
        scan_test_sigs "xfs-appliance-test-sigs.$r" --backend guestfs --no-cache "$template"
    fi
    rm -rf "$run/cache.$r" "$run/cache-4k.$r"
    scan "cold.$r" --backend direct --cache "$run/cache.$r" "$template"
    cp -a "$run/cache.$r" "$run/cache-4k.$r" # the template's cache for each clone
    scan "clone.$r" --backend direct --cache "$run/cache.$r" --allow-root "$real" "$clone"
    scan "clone-4k.$r" --backend direct --cache "$run/cache-4k.$r" --allow-root "$real" "$clone_4k"
    rm -rf "$run/cache.$r" "$run/cache-4k.$r"
done

echo
status=0
python3 "$here/lvm_xfs_report.py" "$run" "${BENCH_RESULTS:-$here/RESULTS.md}" || status=$?
if ((failed)); then
    echo "lvm-xfs-bench: an arm failed (exit status >= 2; its .err in $run)" >&2
    exit 2
fi
exit "$status"
