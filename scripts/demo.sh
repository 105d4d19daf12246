#!/usr/bin/env bash
# demo.sh: builds coldscan (build.sh), builds a small "dormant VM" disk image with planted test samples,
# generates test signatures (no network needed) and scans the image:
#   demo-output/dormant-vm.qcow2   GPT disk, ext4 root of a Debian 12 server (tests/fixtures/make-tree.sh)
#   demo-output/sigs/              ClamAV test signatures + demo YARA rules
#   demo-output/report.json        the JSON report (docs/report-schema.md)
#   demo-output/inventory.jsonl    one line per file with its SHA-256 and outcome
# coldscan exits 1 when it detects something, which is the expected outcome here: the demo then exits 0.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)

./scripts/build.sh

fixtures=$root/tests/fixtures
# shellcheck source=tests/fixtures/lib.sh
source "$fixtures/lib.sh"
out=$root/demo-output
mkdir -p "$out"

echo
echo "== Building the demo image: a dormant Debian 12 web server with planted test samples"
scripts=("$fixtures/lib.sh" "$fixtures/make-tree.sh" "$fixtures/make-ext4-image.sh")
if is_fresh "$out/dormant-vm.qcow2" "${scripts[@]}"; then
    echo "demo-output/dormant-vm.qcow2 is up to date"
else
    "$fixtures/make-tree.sh" "$out/tree" dormant
    "$fixtures/make-ext4-image.sh" --label coldroot "$out/tree" "$out/dormant-vm.qcow2"
fi
"$fixtures/make-signatures.sh" "$out/sigs"

echo
echo "== Scanning demo-output/dormant-vm.qcow2 (read-only: qemu-nbd export, ext4 read in a confined worker; a few seconds)"
set +e
"$root/build/tools/coldscan" scan \
    --clamav-db "$out/sigs/clamav" --yara-rules "$out/sigs/yara" \
    --report "$out/report.json" --inventory "$out/inventory.jsonl" \
    "$out/dormant-vm.qcow2"
status=$?
set -e

echo
echo "Report:    $out/report.json"
echo "Inventory: $out/inventory.jsonl"
case $status in
1)
    echo "coldscan exited 1 (detections found). That is the expected demo outcome: the image contains"
    echo "planted test samples (ClamAV test files, EICAR, a fake ransom note and miner config)."
    exit 0
    ;;
0)
    echo "coldscan exited 0 (nothing found), but the demo image contains planted samples: something is wrong." >&2
    exit 1
    ;;
*)
    echo "coldscan exited $status: the scan failed or did not complete (see the messages above)." >&2
    exit "$status"
    ;;
esac
