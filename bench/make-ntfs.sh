#!/usr/bin/env bash
# make-ntfs.sh OUTDIR
#
# Builds run-all.sh's Windows-like disk:
#   OUTDIR/ntfs.qcow2     GPT disk, one "Microsoft basic data" partition holding NTFS (label Windows) with
#                         about BENCH_NTFS_MB (default 300) MiB in a Windows-shaped tree (full_inputs.py
#                         ntfs-tree: Windows/System32, drivers, WinSxS, Program Files, ProgramData, Users),
#                         planted clam.exe, clam.zip, clam-upx.exe and EICAR, and EICAR in the alternate data
#                         stream /Windows/System32/drivers/etc/hosts:payload
#   OUTDIR/ntfs-tree/     the same files in a folder, for the peers (no stream: a Linux folder has none)
#   OUTDIR/ntfs.manifest  one line per file: sha256, size, path
#   OUTDIR/ntfs.planted   the paths that must be detected (the stream included)
#
# As tests/fixtures/build-images.sh builds its NTFS fixture: one guestfish session under TCG partitions,
# formats (mkfs ntfs) and fills the disk (tar-in); ntfs-3g's ntfscp then writes the stream in user space
# into the partition cut out of a raw copy. Nothing is mounted on the host. Idempotent: reused when built
# with the same parameters.
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=tests/fixtures/lib.sh
source "$root/tests/fixtures/lib.sh"
export PATH=$PATH:/usr/sbin:/sbin
export LC_ALL=C.UTF-8
umask 022
mkdir -p "$1"
out=$(cd "$1" && pwd)
budget_mib=${BENCH_NTFS_MB:-300}
k_ntfs_version=1

exec 9>"$out/.make-ntfs.lock"
flock 9
params="version=$k_ntfs_version budget_mib=$budget_mib"
if [[ -f $out/ntfs.qcow2 && -d $out/ntfs-tree && -f $out/ntfs.manifest && -f $out/.ntfs.params &&
    $(cat "$out/.ntfs.params") == "$params" ]]; then
    echo "make-ntfs: ntfs.qcow2 is up to date ($params)"
    exit 0
fi

start=$(now_seconds)
work=$out/.work
rm -rf "$work" "$out/.ntfs.params" "$out/ntfs.qcow2"
mkdir -p "$work"
python3 "$here/full_inputs.py" ntfs-tree "$work/ntfs-tree" "$work/ntfs.manifest" "$work/ntfs.planted" "$budget_mib"
tree=$work/ntfs-tree
find "$tree" -type d -exec chmod 0755 {} +
find "$tree" -exec touch -h -d "$k_fixture_mtime" {} +
(cd "$tree" && tar --format=gnu --numeric-owner --owner=0 --group=0 --sort=name -cf "$work/ntfs.tar" .)
tree_mib=$(du -sm "$tree" | cut -f1)
disk_mib=$((tree_mib * 5 / 4 + 128)) # NTFS metadata ($MFT, logfile) and some free space

# KVM launches fail on these machines: TCG is forced for this guestfish run only.
(
    cd "$work"
    LIBGUESTFS_BACKEND_SETTINGS=force_tcg guestfish --no-progress-bars <<EOF
disk-create ntfs.qcow2 qcow2 ${disk_mib}M
add ntfs.qcow2 format:qcow2
run
part-disk /dev/sda gpt
part-set-gpt-type /dev/sda 1 EBD0A0A2-B9E5-4433-87C0-68B6B72699C7
part-set-name /dev/sda 1 "Basic data partition"
mkfs ntfs /dev/sda1 label:Windows
mount /dev/sda1 /
tar-in ntfs.tar /
umount-all
sync
shutdown
EOF
)

# EICAR in the alternate data stream hosts:payload, written by ntfscp on the partition cut out of the disk.
qemu-img convert -q -f qcow2 -O raw "$work/ntfs.qcow2" "$work/ntfs.raw"
read -r part_start part_size < <(sfdisk -d "$work/ntfs.raw" 2>/dev/null |
    sed -n 's/.*start= *\([0-9]*\), *size= *\([0-9]*\).*/\1 \2/p' | head -1)
dd if="$work/ntfs.raw" of="$work/ntfs-part.raw" bs=1M iflag=skip_bytes,count_bytes skip=$((part_start * 512)) \
    count=$((part_size * 512)) conv=sparse status=none
eicar_string >"$work/stream.txt"
ntfscp -q -N payload "$work/ntfs-part.raw" "$work/stream.txt" /Windows/System32/drivers/etc/hosts
dd if="$work/ntfs-part.raw" of="$work/ntfs.raw" bs=1M oflag=seek_bytes seek=$((part_start * 512)) conv=notrunc status=none
qemu-img convert -q -f raw -O qcow2 "$work/ntfs.raw" "$work/ntfs.qcow2"
chmod 0444 "$work/ntfs.qcow2"

rm -rf "$out/ntfs-tree"
mv "$tree" "$out/ntfs-tree"
mv -f "$work/ntfs.manifest" "$out/ntfs.manifest"
mv -f "$work/ntfs.planted" "$out/ntfs.planted"
mv -f "$work/ntfs.qcow2" "$out/ntfs.qcow2"
rm -rf "$work"
echo "$params" >"$out/.ntfs.params"
elapsed "$start" >"$out/.ntfs.seconds"
echo "make-ntfs: ntfs.qcow2 built in $(elapsed "$start") s: $(wc -l <"$out/ntfs.manifest") files, $tree_mib MiB," \
    "qcow2 file $(du -m "$out/ntfs.qcow2" | cut -f1) MiB"
