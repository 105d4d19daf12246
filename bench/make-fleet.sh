#!/usr/bin/env bash
# make-fleet.sh IMAGES_DIR COUNT
#
# Builds the clone fleet of run-all.sh next to the template make-template.sh left in IMAGES_DIR:
#   IMAGES_DIR/fleet-NN.qcow2     NN = 01..COUNT, linked clones (qcow2 overlays whose backing file is
#                                 template.qcow2, by relative name) changed as a package update does:
#                                 BENCH_FLEET_CHANGES (default "200 100 10") = files of the template
#                                 rewritten in place, host files added, template files deleted; clone
#                                 BENCH_FLEET_SAMPLE_CLONE (default 1) also gets clam-upx.exe dropped at
#                                 /var/tmp/.cache/update-agent. No two clones share a change
#                                 (full_inputs.py fleet-trees).
#   IMAGES_DIR/fleet-NN.manifest  the clone's files: sha256, size, path
#   IMAGES_DIR/fleet-NN.changes   its changes: changed|added|deleted|sample, path
#
# All clones are written by ONE guestfish session under TCG (one appliance launch, every overlay added as a
# drive; about 20 drives per session), which also reads back the checksum of every written file and checks
# that every deleted file is gone. Nothing is mounted on the host.
#
# Idempotent: the fleet is reused when it was built with the same parameters from the same template (the
# template's parameters match and every clone is newer than template.qcow2).
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 IMAGES_DIR COUNT" >&2
    exit 2
fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=tests/fixtures/lib.sh
source "$root/tests/fixtures/lib.sh"
export LC_ALL=C.UTF-8
umask 022
out=$(cd "$1" && pwd)
count=$2
changes=${BENCH_FLEET_CHANGES:-200 100 10} # "CHANGED ADDED DELETED" files per clone
sample_clone=${BENCH_FLEET_SAMPLE_CLONE:-1}
k_fleet_version=1
k_drives_per_session=20

if [[ ! -f $out/template.qcow2 || ! -f $out/template.manifest || ! -f $out/.template.params ]]; then
    echo "make-fleet: $out has no template (run make-template.sh first)" >&2
    exit 2
fi
exec 9>"$out/.make-fleet.lock"
flock 9

params="version=$k_fleet_version count=$count changes=$changes sample=$sample_clone template=($(cat "$out/.template.params"))"
up_to_date() {
    [[ -f $out/.fleet.params && $(cat "$out/.fleet.params") == "$params" ]] || return 1
    local index name
    for ((index = 1; index <= count; index++)); do
        name=$(printf 'fleet-%02d' "$index")
        [[ -f $out/$name.qcow2 && $out/$name.qcow2 -nt $out/template.qcow2 && -f $out/$name.manifest ]] || return 1
    done
}
if up_to_date; then
    echo "make-fleet: $count clones are up to date ($changes)"
    exit 0
fi

start=$(now_seconds)
work=$out/.fleet-work
rm -rf "$work" "$out/.fleet.params" "$out"/fleet-*.qcow2 "$out"/.fleet-*.qcow2.tmp "$out"/fleet-*.manifest \
    "$out"/fleet-*.changes
mkdir -p "$work"
python3 "$here/full_inputs.py" fleet-trees "$out" "$work" "$count" "$changes" "$sample_clone"

# quoted PATH: a guestfish argument in double quotes.
quoted() {
    local s=${1//\\/\\\\}
    printf '"%s"' "${s//\"/\\\"}"
}

# One session writes up to k_drives_per_session clones: FIRST LAST.
write_clones() {
    local first=$1 last=$2 index name tree drive script expected letters=abcdefghijklmnopqrstuvwxyz
    script=$work/session-$first.fish
    expected=$work/expected-$first.txt
    : >"$script"
    : >"$expected"
    for ((index = first; index <= last; index++)); do
        name=$(printf 'fleet-%02d' "$index")
        (cd "$out" && qemu-img create -q -f qcow2 -b template.qcow2 -F qcow2 ".$name.qcow2.tmp")
        echo "add $out/.$name.qcow2.tmp format:qcow2" >>"$script"
    done
    echo "run" >>"$script"
    for ((index = first; index <= last; index++)); do
        name=$(printf 'fleet-%02d' "$index")
        tree=$work/$name
        drive=/dev/sd${letters:index - first:1}
        find "$tree" -type d -exec chmod 0755 {} +
        find "$tree" -exec touch -h -d "2024-06-$(printf '%02d' $((index % 28 + 1))) 03:00:00 UTC" {} +
        (cd "$tree" && tar --format=gnu --numeric-owner --owner=0 --group=0 --sort=name -cf "$work/$name.tar" .)
        {
            echo "mount ${drive}1 /"
            echo "tar-in $work/$name.tar /"
            while IFS= read -r file; do
                echo "rm $(quoted "$file")"
            done <"$work/$name.deleted"
            while IFS= read -r file; do
                echo "checksum sha256 $(quoted "/${file#./}")"
            done < <(cd "$tree" && find . -type f | sort)
            while IFS= read -r file; do
                echo "exists $(quoted "$file")"
            done <"$work/$name.deleted"
            echo "umount-all"
        } >>"$script"
        {
            (cd "$tree" && find . -type f | sort | tr '\n' '\0' | xargs -0 -r sha256sum | cut -d' ' -f1)
            sed 's/.*/false/' "$work/$name.deleted"
        } >>"$expected"
    done
    printf '%s\n' "sync" "shutdown" >>"$script"
    # KVM launches fail on these machines: TCG is forced for this guestfish run only, as make-template.sh does.
    LIBGUESTFS_BACKEND_SETTINGS=force_tcg guestfish --no-progress-bars <"$script" >"$work/readback-$first.txt"
    if ! cmp -s "$expected" "$work/readback-$first.txt"; then
        echo "make-fleet: clones $first..$last do not read back what was written into them" >&2
        diff "$expected" "$work/readback-$first.txt" | head -20 >&2 || true
        exit 1
    fi
    for ((index = first; index <= last; index++)); do
        name=$(printf 'fleet-%02d' "$index")
        mv -f "$out/.$name.qcow2.tmp" "$out/$name.qcow2"
    done
}

for ((first = 1; first <= count; first += k_drives_per_session)); do
    last=$((first + k_drives_per_session - 1))
    ((last <= count)) || last=$count
    write_clones "$first" "$last"
done
rm -rf "$work"
echo "$params" >"$out/.fleet.params"
elapsed "$start" >"$out/.fleet.seconds"
echo "make-fleet: $count clones built in $(elapsed "$start") s ($(du -shc "$out"/fleet-*.qcow2 | tail -1 | cut -f1) of overlays)"
