#!/usr/bin/env bash
# block-reuse.sh COLDSCAN FIXTURES WORKDIR
#
# Block-level incremental scans of linked clones (qcow2 overlays on the ext4 fixture), on the direct path:
#   1. the template, on a fresh cache;
#   2. an unchanged clone: a new image (no file identity known), yet every file lies in the template's blocks,
#      so every verdict is reused from the block layer: nothing read, no engine run, the same detections;
#   3. a changed clone, written in an appliance: one file rewritten in place with the same size and its mtime
#      put back (only the block layer can tell), one file replaced, one EICAR added (bytes the template
#      already holds elsewhere). The two new contents are scanned; the rest is reused from the blocks, except
#      files that share a 64 KiB qcow2 cluster with a written block: those are read again (same digests, no
#      engine run). Every detection is reported, the new one included.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/script-start.sh
source "$here/script-start.sh"
# shellcheck source=tests/fixtures/lib.sh
source "$here/../fixtures/lib.sh"
cd "$work"

template=$fixtures/images/ext4-gpt.qcow2
qemu-img create -q -f qcow2 -b "$template" -F qcow2 unchanged.qcow2
qemu-img create -q -f qcow2 -b "$template" -F qcow2 changed.qcow2
eicar_string >new-eicar.com
# In place, same size, mtime restored: the inode looks untouched; only its blocks moved to the top layer.
LIBGUESTFS_BACKEND_SETTINGS=force_tcg guestfish --rw -a changed.qcow2 -m /dev/sda1 >/dev/null <<'GF'
pwrite /srv/www/html/page02.html "REWRITTEN-IN-PLACE" 0
utimens /srv/www/html/page02.html 1709294400 0 1709294400 0
write /srv/www/html/page03.html "replaced"
upload new-eicar.com /var/tmp/new-eicar.com
GF

scan() { # NAME IMAGE
    set +e
    "$coldscan" scan --backend direct --cache cache --clamav-db "$fixtures/sigs/clamav" \
        --yara-rules "$fixtures/sigs/yara" --allow-root "$fixtures/images" --no-progress --no-summary \
        --quiet-issues --report "$1.json" --inventory "$1.jsonl" "$2" >"$1.out" 2>"$1.err"
    echo $? >"$1.exit"
    set -e
}
scan template "$template"
scan unchanged unchanged.qcow2
scan changed changed.qcow2

python3 - <<'PY'
import json, sys
failures = []
def check(ok, what):
    if not ok:
        failures.append(what)
def load(name):
    report = json.load(open(name + ".json"))
    lines = [json.loads(l) for l in open(name + ".jsonl")]
    return report, {l["path"]: l for l in lines}, int(open(name + ".exit").read())
template, t_files, t_exit = load("template")
unchanged, u_files, u_exit = load("unchanged")
changed, c_files, c_exit = load("changed")
files = template["counts"]["files"]
detections = lambda r: sorted((d["path"], d["signature"]) for d in r["detections"])

u = unchanged["cache"]
check(u["identity_hits"] == 0, f"unchanged clone: {u['identity_hits']} identity hits (a new image has none)")
check(u["files_reused_by_blocks"] == files, f"unchanged clone: {u['files_reused_by_blocks']} of {files} reused")
check(u["files_not_read"] == files and u["engine_scans"] == 0,
      f"unchanged clone: {u['files_not_read']} not read, {u['engine_scans']} engine scans")
check(detections(unchanged) == detections(template), "unchanged clone: detections differ from the template's")
check(u_exit == t_exit, f"unchanged clone exit {u_exit}, template {t_exit}")

c = changed["cache"]
touched = {"/srv/www/html/page02.html", "/srv/www/html/page03.html", "/var/tmp/new-eicar.com"}
check(changed["counts"]["files"] == files + 1, f"changed clone: {changed['counts']['files']} files")
# The two rewritten files can never be reused; most others must be (a written block moves its whole qcow2
# cluster to the top layer, so a few neighbours are read again).
check(files * 8 // 10 <= c["files_reused_by_blocks"] <= files - 2,
      f"changed clone: {c['files_reused_by_blocks']} reused of {files + 1}")
check(c["engine_scans"] == 2, f"changed clone: {c['engine_scans']} engine scans, expected 2 (the new contents)")
check(c_files["/srv/www/html/page02.html"]["sha256"] != t_files["/srv/www/html/page02.html"]["sha256"],
      "the file rewritten in place kept its old digest")
check(c_files["/srv/www/html/page02.html"]["size"] == t_files["/srv/www/html/page02.html"]["size"],
      "the in-place rewrite changed the size")
check(("/var/tmp/new-eicar.com", "Coldscan.Test.Eicar.UNOFFICIAL") in detections(changed),
      "the EICAR added to the clone was not detected")
check(set(detections(template)) <= set(detections(changed)), "a template detection is missing in the clone")
for path, line in c_files.items():
    if path not in touched:
        check(line["sha256"] == t_files[path]["sha256"] and line["outcome"] == t_files[path]["outcome"],
              f"{path}: differs from the template")
if failures:
    print("FAIL: " + "; ".join(failures), file=sys.stderr)
    sys.exit(1)
print(f"ok: unchanged clone reused {u['files_reused_by_blocks']}/{files} files "
      f"({u['bytes_reused_by_blocks']} bytes); changed clone reused {c['files_reused_by_blocks']}, "
      f"scanned {c['engine_scans']}")
PY
