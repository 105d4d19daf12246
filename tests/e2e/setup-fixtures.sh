#!/usr/bin/env bash
# setup-fixtures.sh OUTDIR: the e2e.fixtures test. Builds every image and directory the scans use
# (tests/fixtures/build-images.sh) and the test signatures (tests/fixtures/make-signatures.sh) into OUTDIR.
set -euo pipefail
if [[ $# -ne 1 ]]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
fixtures=$(cd "$(dirname "${BASH_SOURCE[0]}")/../fixtures" && pwd)
export PATH=$PATH:/usr/sbin:/sbin
missing=()
for tool in clamscan yara qemu-img sgdisk sfdisk mkfs.ext4 mkfs.fat mkfs.btrfs guestfish 7z xxd flock; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
    echo "setup-fixtures: missing tools: ${missing[*]} (run scripts/install-deps.sh)" >&2
    exit 2
fi
"$fixtures/build-images.sh" "$1"
"$fixtures/make-signatures.sh" "$1/sigs"
