#!/usr/bin/env bash
# make-template.sh OUTDIR
#
# Builds the disk images of the verdict-cache benchmark (issue 3):
#   OUTDIR/template.qcow2     a VM template: GPT disk, one ext4 partition (label benchroot) holding about
#                             BENCH_TEMPLATE_MB (default 1024) MiB of real files copied from this host
#                             (bench_inputs.py: /usr/bin, /usr/sbin, /usr/libexec, /usr/lib at their own
#                             paths, files of at most BENCH_MAX_FILE_MB = 64 MiB, a deterministic mix), a
#                             minimal /etc (libguestfs inspection sees Debian 12), merged-/usr symlinks and
#                             planted test samples: EICAR (assembled at run time, as tests/fixtures/lib.sh
#                             does), clam.exe and clam.zip from clamav-testfiles
#   OUTDIR/clone.qcow2        a linked clone: a qcow2 overlay whose backing file is template.qcow2 (same
#                             folder, relative name), changed in a libguestfs appliance: 20 files of the
#                             template rewritten (same path and size, new bytes), 20 host files added, one
#                             EICAR dropped at /var/tmp/.cache/update.com
#   OUTDIR/template.manifest  one line per file in the template: sha256, size, path
#   OUTDIR/clone.manifest     the same for the clone
#   OUTDIR/images.json        files, bytes and distinct contents of both, image sizes, build times
#
# The template is made in user space (mkfs.ext4 -d through tests/fixtures/make-ext4-image.sh, fixed UUIDs
# and hash seed); the clone is written by one guestfish session (tar-in) under TCG, which also reads the
# checksums of the written files back. Nothing is ever mounted on the host. The template file is made read-only.
#
# Idempotent: the template is reused when it exists with the same parameters, the clone when it exists
# with the same parameters and is newer than the template.
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

budget_mib=${BENCH_TEMPLATE_MB:-1024}
max_file_mib=${BENCH_MAX_FILE_MB:-64}
clone_changes=${BENCH_CLONE_CHANGES:-20 20} # "CHANGED ADDED" files
keep_tree=${BENCH_KEEP_TREE:-0}              # 1: keep the template's files in OUTDIR/template-tree
testfiles=${CLAMAV_TESTFILES:-/usr/share/clamav-testfiles}
k_template_version=2
k_root_uuid=5c0d5ca4-0000-4000-8000-0000000be7c0

exec 9>"$out/.make-template.lock"
flock 9

template_params="version=$k_template_version budget_mib=$budget_mib max_file_mib=$max_file_mib"
if [[ $keep_tree == 1 ]]; then
    template_params+=" keep_tree=1"
fi
clone_params="$template_params changes=$clone_changes"
work="$out/.work"

# --- the template -----------------------------------------------------------------------------------------
build_template() {
    local tree="$work/template-tree" start
    start=$(now_seconds)
    rm -rf "$work" "$out/template.qcow2" "$out/clone.qcow2" "$out/.template.params" "$out/.clone.params"
    mkdir -p "$tree"
    python3 "$here/bench_inputs.py" template-tree "$tree" "$work/template.manifest" "$budget_mib" "$max_file_mib"

    # A minimal /etc, so inspection sees a Debian system, and the planted samples.
    mkdir -p "$tree/etc" "$tree/home/admin/Downloads" "$tree/srv/www/uploads" "$tree/tmp" "$tree/var/tmp"
    cat /usr/lib/os-release >"$tree/etc/os-release"
    echo "bench-template" >"$tree/etc/hostname"
    echo "UUID=$k_root_uuid  /  ext4  errors=remount-ro  0  1" >"$tree/etc/fstab"
    eicar_string >"$tree/srv/www/uploads/eicar.com"
    cp "$testfiles/clam.exe" "$tree/home/admin/Downloads/clam.exe"
    cp "$testfiles/clam.zip" "$tree/home/admin/Downloads/invoice.zip"
    ln -s usr/bin "$tree/bin" # merged /usr, as Debian 12 has it
    ln -s usr/sbin "$tree/sbin"
    ln -s usr/lib "$tree/lib"
    local f
    for f in etc/os-release etc/hostname etc/fstab srv/www/uploads/eicar.com home/admin/Downloads/clam.exe \
        home/admin/Downloads/invoice.zip; do
        chmod 0644 "$tree/$f"
        printf '%s\t%s\t/%s\n' "$(sha256sum "$tree/$f" | cut -d' ' -f1)" "$(stat -c %s "$tree/$f")" "$f" \
            >>"$work/template.manifest"
    done
    find "$tree" -type d -exec chmod 0755 {} +
    find "$tree" -exec touch -h -d "$k_fixture_mtime" {} +

    local tree_mib disk_mib
    tree_mib=$(du -sm "$tree" | cut -f1)
    disk_mib=$((tree_mib * 5 / 4 + 256)) # room for metadata and for the clone's additions
    echo "make-template: $(wc -l <"$work/template.manifest") files, $tree_mib MiB; building a $disk_mib MiB disk"
    "$root/tests/fixtures/make-ext4-image.sh" --label benchroot --uuid "$k_root_uuid" --disk-mib "$disk_mib" \
        "$tree" "$work/template.qcow2"
    rm -rf "$out/template-tree"
    if [[ $keep_tree == 1 ]]; then
        mv "$tree" "$out/template-tree" # the very same files, for peers that scan a folder
    else
        rm -rf "$tree"
    fi
    chmod 0444 "$work/template.qcow2"
    mv -f "$work/template.manifest" "$out/template.manifest"
    mv -f "$work/template.manifest.unused" "$out/template.manifest.unused"
    mv -f "$work/template.qcow2" "$out/template.qcow2"
    echo "$template_params" >"$out/.template.params"
    elapsed "$start" >"$out/.template.seconds"
    echo "make-template: template.qcow2 built in $(elapsed "$start") s"
}

if [[ -f $out/template.qcow2 && -f $out/template.manifest && -f $out/.template.params &&
    $(cat "$out/.template.params") == "$template_params" && ($keep_tree != 1 || -d $out/template-tree) ]]; then
    echo "make-template: template.qcow2 is up to date ($template_params)"
else
    build_template
fi

# --- the linked clone -------------------------------------------------------------------------------------
build_clone() {
    local tree="$work/clone-tree" start
    start=$(now_seconds)
    rm -rf "$work" "$out/clone.qcow2" "$out/.clone.qcow2.tmp" "$out/.clone.params"
    mkdir -p "$tree/var/tmp/.cache"
    python3 "$here/bench_inputs.py" clone-tree "$out/template.manifest" "$tree" "$clone_changes" \
        "$work/clone.manifest"
    eicar_string >"$tree/var/tmp/.cache/update.com"
    chmod 0644 "$tree/var/tmp/.cache/update.com"
    printf '%s\t%s\t/var/tmp/.cache/update.com\n' "$(eicar_string | sha256sum | cut -d' ' -f1)" \
        "$(eicar_string | wc -c)" >>"$work/clone.manifest"
    find "$tree" -type d -exec chmod 0755 {} +
    find "$tree" -exec touch -h -d '2024-06-01 08:00:00 UTC' {} + # the day the clone was changed
    (cd "$tree" && tar --format=gnu --numeric-owner --owner=0 --group=0 --sort=name -cf "$work/changes.tar" .)
    # The checksums guestfish must read back from the clone.
    local checks=() file expected
    while IFS= read -r file; do
        checks+=("checksum sha256 \"/${file#./}\"")
    done < <(cd "$tree" && find . -type f | sort)
    expected=$(cd "$tree" && find . -type f | sort | tr '\n' '\0' | xargs -0 sha256sum | cut -d' ' -f1)

    # The overlay names its backing file relatively, so the pair can be moved together.
    (cd "$out" && qemu-img create -q -f qcow2 -b template.qcow2 -F qcow2 .clone.qcow2.tmp)
    # KVM launches fail on these machines: TCG is forced for this guestfish run only (coldscan itself
    # decides on its own).
    printf '%s\n' "add $out/.clone.qcow2.tmp format:qcow2" "run" "mount /dev/sda1 /" "tar-in $work/changes.tar /" \
        "${checks[@]}" "umount-all" "sync" "shutdown" |
        LIBGUESTFS_BACKEND_SETTINGS=force_tcg guestfish --no-progress-bars >"$work/checksums.txt"
    if [[ $expected != "$(cat "$work/checksums.txt")" ]]; then
        echo "make-template: the clone does not read back what was written into it" >&2
        diff <(echo "$expected") "$work/checksums.txt" >&2 || true
        exit 1
    fi
    mv -f "$work/clone.manifest" "$out/clone.manifest"
    mv -f "$out/.clone.qcow2.tmp" "$out/clone.qcow2"
    rm -rf "$work"
    echo "$clone_params" >"$out/.clone.params"
    elapsed "$start" >"$out/.clone.seconds"
    echo "make-template: clone.qcow2 built in $(elapsed "$start") s ($(wc -l <"$out/clone.manifest") files)"
}

if [[ -f $out/clone.qcow2 && -f $out/clone.manifest && -f $out/.clone.params &&
    $(cat "$out/.clone.params") == "$clone_params" && $out/clone.qcow2 -nt $out/template.qcow2 ]]; then
    echo "make-template: clone.qcow2 is up to date"
else
    build_clone
fi

# --- summary ----------------------------------------------------------------------------------------------
python3 "$here/bench_inputs.py" images-json "$out"
