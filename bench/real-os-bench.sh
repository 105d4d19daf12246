#!/usr/bin/env bash
# real-os-bench.sh: a real Debian 12 server (tests/fixtures/make-real-os.sh: ~27,500 files, 1.3 GiB; ext4 on
# GPT, and the same tree as a folder) scanned by coldscan and by ClamAV's own front ends, the same files,
# databases (the load set: about a million hash and a hundred thousand body signatures) and limits:
#   direct    coldscan --backend direct on the image, no cache (reads the disk through qemu-nbd)
#   folder    coldscan on the extracted tree, no cache
#   clamscan  clamscan -r on the tree (--allmatch --alert-exceeds-max --alert-encrypted, as coldscan reports)
#   clamd     clamd (MaxThreads = cores) + clamdscan --multiscan --fdpass on the tree
# ClamAV only on every arm (no YARA), each under /usr/bin/time (wall, peak RSS). bench/real_os_report.py
# prints the table, the ratios and the files each arm does not call clean, and writes its RESULTS.md section.
# Environment: COLDSCAN_BENCH_DIR (default build/bench), COLDSCAN (default: build it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
here=$root/bench

if [[ -z ${COLDSCAN:-} ]]; then
    ./scripts/build.sh
    COLDSCAN=$root/build/tools/coldscan
fi
"$here/install-clamd.sh"
bench_dir=${COLDSCAN_BENCH_DIR:-build/bench}
mkdir -p "$bench_dir"
bench_dir=$(cd "$bench_dir" && pwd)
real=$bench_dir/real-os
sigs=$bench_dir/sigs/clamav
cores=$(nproc)

echo "== Inputs"
"$here/make-load-signatures.sh" "$bench_dir/sigs"
"$root/tests/fixtures/make-real-os.sh" "$real"
image=$real/debian12-server.qcow2
tree=$real/debian12-server-tree

run=$bench_dir/real-os-run
rm -rf "$run"
mkdir -p "$run"
git -C "$root" describe --always --dirty >"$run/revision" 2>/dev/null || echo unknown >"$run/revision"
limits=(--max-filesize=256M --max-scansize=1024M --max-recursion=17 --max-files=10000 --max-scantime=120000)

timed() { # ARM COMMAND...: "wall-seconds peak-RSS-KiB" in ARM.time, stdout in ARM.out, stderr in ARM.err
    local arm=$1
    shift
    echo "== $arm: $*"
    /usr/bin/time -f "%e %M" -o "$run/$arm.time" "$@" >"$run/$arm.out" 2>"$run/$arm.err" || true
}

scan() { # ARM TARGET
    timed "$1" "$COLDSCAN" scan --clamav-db "$sigs" --no-cache --no-progress --no-summary --quiet-issues \
        --backend direct --report "$run/$1.json" --inventory "$run/$1.jsonl" "$2"
}
scan direct "$image"
scan folder "$tree"
timed clamscan clamscan -r --no-summary --infected --allmatch=yes --alert-exceeds-max=yes \
    --alert-encrypted=yes "${limits[@]}" -d "$sigs" "$tree"

# shellcheck source=bench/clamd-conf.sh
source "$here/clamd-conf.sh"
write_clamd_conf "$run/clamd.conf" "$run/clamd.sock" "$sigs" "$cores"
clamd -c "$run/clamd.conf" >"$run/clamd.log" 2>&1 &
clamd_pid=$!
for _ in $(seq 1 1200); do
    [[ -S $run/clamd.sock ]] && break
    sleep 0.1
done
timed clamd clamdscan -c "$run/clamd.conf" --multiscan --fdpass --allmatch --no-summary --infected "$tree"
grep VmHWM "/proc/$clamd_pid/status" | awk '{ print $2 }' >"$run/clamd.rss-kb"
kill "$clamd_pid"
wait "$clamd_pid" 2>/dev/null || true

python3 "$here/real_os_report.py" "$run" "$tree" "${BENCH_RESULTS:-$here/RESULTS.md}"
