#!/usr/bin/env bash
# nbd-export.sh COLDSCAN FIXTURES WORKDIR
#
# NBD exports made by someone else (here qemu-nbd, as libvirt backup pull mode or qemu-storage-daemon would
# export a running VM's point-in-time disk), scanned by URI:
#   1. nbd+unix:// without a bitmap: the same files, digests and detections as the image file scanned directly;
#   2. with a persistent dirty bitmap: a second scan reuses every file (nothing read); after a write through
#      qemu (the bitmap marks it), only files in dirty blocks are read, and only the new content is scanned;
#   3. a bitmap the export lacks, and a URI nobody serves: clear errors, exit status 2.
set -euo pipefail

# shellcheck source=tests/e2e/script-start.sh
source "$(dirname "${BASH_SOURCE[0]}")/script-start.sh"
cd "$work"

cp "$fixtures/images/ext4-gpt.qcow2" disk.qcow2
chmod u+w disk.qcow2
qemu-img bitmap --add disk.qcow2 nightly
socket=$work/export.sock
server=""
serve() {
    qemu-nbd --read-only --persistent --shared=16 -f qcow2 --bitmap=nightly --socket="$socket" disk.qcow2 &
    server=$!
    for _ in $(seq 1 100); do [[ -S $socket ]] && return; sleep 0.1; done
    echo "FAIL: qemu-nbd did not start" >&2
    exit 1
}
stop() {
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    rm -f "$socket"
}
trap stop EXIT
uri="nbd+unix:///?socket=$socket"

scan() { # NAME TARGET ARGS...
    local name=$1 target=$2
    shift 2
    set +e
    "$coldscan" scan --clamav-db "$fixtures/sigs/clamav" --yara-rules "$fixtures/sigs/yara" \
        --no-progress --no-summary --quiet-issues --report "$name.json" --inventory "$name.jsonl" "$@" \
        "$target" >"$name.out" 2>"$name.err"
    echo $? >"$name.exit"
    set -e
}

scan file "$fixtures/images/ext4-gpt.qcow2" --backend direct --no-cache
serve
scan plain "$uri" --no-cache
scan first "$uri" --cache cache --dirty-bitmap nightly
scan second "$uri" --cache cache --dirty-bitmap nightly
scan missing-bitmap "$uri" --cache cache --dirty-bitmap no-such-bitmap
stop
# A write through qemu: the persistent bitmap marks the blocks it touched.
LIBGUESTFS_BACKEND_SETTINGS=force_tcg guestfish --rw -a disk.qcow2 -m /dev/sda1 >/dev/null <<'GF'
pwrite /srv/www/html/page02.html "REWRITTEN-IN-PLACE" 0
GF
serve
scan after-write "$uri" --cache cache --dirty-bitmap nightly
stop
scan nobody "nbd+unix:///?socket=$work/nobody.sock" --no-cache

python3 - <<'PY'
import json, sys
failures = []
def check(ok, what):
    if not ok:
        failures.append(what)
def load(name):
    report = json.load(open(name + ".json")) if name not in ("nobody",) else None
    lines = {l["path"]: l for l in map(json.loads, open(name + ".jsonl"))} if report else {}
    return report, lines, int(open(name + ".exit").read())
file, f_lines, f_exit = load("file")
plain, p_lines, p_exit = load("plain")
check({p: (l["sha256"], l["outcome"]) for p, l in p_lines.items()} ==
      {p: (l["sha256"], l["outcome"]) for p, l in f_lines.items()}, "the NBD export and the file differ")
check(p_exit == f_exit == 1, f"exit {p_exit} (export) and {f_exit} (file), expected 1")
check(plain["targets"][0]["format"] == "nbd", "the target is not reported as an NBD export")
files = plain["counts"]["files"]
first, _, _ = load("first")
second, _, s_exit = load("second")
check(first["cache"]["files_reused_by_blocks"] == 0, "the first bitmap scan reused files it never saw")
check(second["cache"]["files_reused_by_blocks"] == files and second["cache"]["engine_scans"] == 0,
      f"second scan: {second['cache']['files_reused_by_blocks']} of {files} reused, "
      f"{second['cache']['engine_scans']} engine scans")
check(sorted(map(str, second["detections"])) == sorted(map(str, first["detections"])), "detections changed")
after, a_lines, _ = load("after-write")
c = after["cache"]
check(files * 8 // 10 <= c["files_reused_by_blocks"] < files, f"after the write: {c['files_reused_by_blocks']} reused")
check(c["engine_scans"] == 1, f"after the write: {c['engine_scans']} engine scans, expected 1")
check(a_lines["/srv/www/html/page02.html"]["sha256"] != f_lines["/srv/www/html/page02.html"]["sha256"],
      "the rewritten file kept its old digest")
err = open("missing-bitmap.err").read()
check(int(open("missing-bitmap.exit").read()) == 2 and "no dirty bitmap named" in err, "missing bitmap: " + err)
err = open("nobody.err").read()
check(int(open("nobody.exit").read()) == 2 and "cannot connect" in err, "nobody serving: " + err)
if failures:
    print("FAIL: " + "; ".join(failures), file=sys.stderr)
    sys.exit(1)
print(f"ok: export = file ({files} files); bitmap re-scan reused {files}; after a write reused "
      f"{c['files_reused_by_blocks']}, scanned {c['engine_scans']}")
PY
