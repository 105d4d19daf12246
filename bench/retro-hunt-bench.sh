#!/usr/bin/env bash
# retro-hunt-bench.sh: what a retro-hunt costs and finds (issue 18, docs/signature-updates.md "Retro-hunt").
# The real Debian 12 server (real-os fixtures, ~28k files) as a template plus BENCH_CLONES (default 10)
# linked clones (qcow2 overlays, as a fleet of VMs made from one template), each scanned once into one cache
# with the 1.1M-signature load set (make-load-signatures.sh). Then a hash-only update (1,000 hash lines,
# sig_update_inputs.py) plus one line for a binary of the server (/usr/bin/python3.11), and `coldscan retro-hunt`
# over that cache BENCH_REPEATS times (default 3; the median): its time, the verdicts it compared, and the
# images and paths it named, without reading a disk. Writes its section of bench/RESULTS.md.
#
# Environment: COLDSCAN (a coldscan binary: skips the build), COLDSCAN_BENCH_DIR (default build/bench),
# BENCH_CLONES, BENCH_REPEATS, BENCH_RESULTS (default bench/RESULTS.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=bench/bench-lib.sh
source bench/bench-lib.sh
bench_setup retro-hunt-run
clones=${BENCH_CLONES:-10}
template=$real/debian12-server.qcow2
mkdir -p "$run/images"
images=("$template")
for ((i = 1; i <= clones; i++)); do
    qemu-img create -q -f qcow2 -b "$template" -F qcow2 "$run/images/clone-$i.qcow2"
    images+=("$run/images/clone-$i.qcow2")
done
cp -r "$bench_dir/sigs/yara" "$run/yara-hash"
python3 "$here/sig_update_inputs.py" hash-only "$bench_dir/sigs/clamav" "$bench_dir/sigs/plain" \
    "$run/clamav-hash" "$run/yara-hash"
target=$real/debian12-server-tree/usr/bin/python3.11
echo "$(md5sum <"$target" | cut -d' ' -f1):$(stat -c %s "$target"):Coldscan.Bench.Retro.Python" \
    >"$run/clamav-hash/retro-bench.hdb"

echo "== Scanning the template and $clones clones into one cache"
start=$(date +%s.%N)
for image in "${images[@]}"; do
    set +e
    "$COLDSCAN" scan --backend direct --clamav-db "$bench_dir/sigs/clamav" --yara-rules "$bench_dir/sigs/yara" \
        --allow-root "$real" --cache "$run/cache" --no-progress --no-summary --quiet-issues \
        --report "$run/scan-$(basename "$image" .qcow2).json" "$image" >/dev/null 2>"$run/scan.err"
    status=$?
    set -e
    ((status < 2)) || { echo "retro-hunt-bench: scanning $image: exit $status" >&2; tail "$run/scan.err" >&2; exit 2; }
done
awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f\n", e - s }' >"$run/scans.seconds"
echo "   $(cat "$run/scans.seconds") s"

echo "== Retro-hunt, $repeats times"
for ((i = 1; i <= repeats; i++)); do
    rm -rf "$run/cache-$i"
    cp -a "$run/cache" "$run/cache-$i" # each hunt records the new set's lines once, as the service would
    start=$(date +%s.%N)
    set +e
    "$COLDSCAN" retro-hunt --cache "$run/cache-$i" --clamav-db "$run/clamav-hash" --yara-rules "$run/yara-hash" \
        --json >"$run/hunt-$i.json" 2>"$run/hunt-$i.err"
    status=$?
    set -e
    ((status < 2)) || { echo "retro-hunt-bench: retro-hunt exited $status" >&2; cat "$run/hunt-$i.err" >&2; exit 2; }
    awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.3f\n", e - s }' >"$run/hunt-$i.seconds"
    echo "   round $i: $(cat "$run/hunt-$i.seconds") s"
done

BENCH_HERE=$here python3 - "$run" "$repeats" "$clones" "$results" <<'PY'
import json, os, platform, statistics, sys
sys.path.insert(0, os.environ["BENCH_HERE"])
from results_md import replace_section
run, repeats, clones, results = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
times = [float(open(f"{run}/hunt-{i}.seconds").read()) for i in range(1, repeats + 1)]
hunt = json.load(open(f"{run}/hunt-1.json"))
places = [(h["signatures"], p["target"], p["path"]) for h in hunt["hits"] for p in h["places"]]
targets = sorted({os.path.basename(t) for _, t, _ in places})
lines = [
    "## Retro-hunt: a hash update over the cache of a template and its clones (`retro-hunt-bench.sh`)",
    "",
    f"Revision `{open(run + '/revision').read().strip()}`, {platform.machine()}, 2 cores; the real Debian 12 "
    f"server as a template plus {clones} linked clones, each scanned once into one cache "
    f"({open(run + '/scans.seconds').read().strip()} s for all {clones + 1}) with the 1.1M-signature set; then "
    f"1,000 hash lines added plus one for the server's /usr/bin/python3.11. `coldscan retro-hunt`, median of {repeats}:",
    "",
    "| retro-hunt | verdicts read | contents | compared | unproven (left to the next scan) | hits | places named | images named |",
    "|---|---|---|---|---|---|---|---|",
    f"| {statistics.median(times):.2f} s | {hunt['verdicts']} | {hunt['contents']} | {hunt['compared']} | "
    f"{hunt['unproven']} | {len(hunt['hits'])} | {len(places)} | {len(targets)} |",
    "",
    "Named: " + "; ".join(f"{', '.join(s)} at {p} in {len(targets)} images" for s, p in
                          sorted({(tuple(s), p) for s, _, p in places})) + ".",
    "No disk is read: the hunt compares recorded layer digests (the time includes reading the new set's",
    "lines once to record them). `unproven` counts contents with a text or HTML layer, where libclamav also",
    "hashes buffers it derives unseen: the next scan checks them with an engine of the added lines.",
]
print("\n".join(lines))
replace_section(results, "retro-hunt", "\n".join(lines))
PY
