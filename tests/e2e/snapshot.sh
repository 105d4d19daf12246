#!/usr/bin/env bash
# snapshot.sh COLDSCAN FIXTURES WORKDIR
#
# --snapshot NAME: a qcow2 internal snapshot is scanned as it was, whatever the image's current state, on the
# direct path and through the appliance (which reads the snapshot from the same qemu-nbd export). Here the
# current state is wiped after the snapshot (its partition table and first filesystem blocks zeroed): the
# snapshot still gives every file and detection of the original, the current state gives no filesystem, and
# an unknown snapshot name is a clear error.
set -euo pipefail

# shellcheck source=tests/e2e/script-start.sh
source "$(dirname "${BASH_SOURCE[0]}")/script-start.sh"
cd "$work"

cp "$fixtures/images/ext4-gpt.qcow2" vm.qcow2
chmod u+w vm.qcow2
qemu-img snapshot -c before-wipe vm.qcow2
qemu-io -f qcow2 -c "write -z 0 4M" vm.qcow2 >/dev/null

scan() { # NAME ARGS...
    local name=$1
    shift
    set +e
    "$coldscan" scan --no-cache --clamav-db "$fixtures/sigs/clamav" --yara-rules "$fixtures/sigs/yara" \
        --no-progress --no-summary --quiet-issues --report "$name.json" --inventory "$name.jsonl" "$@" \
        >"$name.out" 2>"$name.err"
    echo $? >"$name.exit"
    set -e
}
scan original --backend direct "$fixtures/images/ext4-gpt.qcow2"
scan snapshot --backend direct --snapshot before-wipe vm.qcow2
scan snapshot-appliance --backend guestfs --accel tcg --snapshot before-wipe vm.qcow2
scan current --backend direct vm.qcow2
scan unknown --backend direct --snapshot no-such-snapshot vm.qcow2

python3 - <<'PY'
import json, sys
failures = []
def check(ok, what):
    if not ok:
        failures.append(what)
def lines(name):
    return {l["path"]: (l["sha256"], l["outcome"]) for l in map(json.loads, open(name + ".jsonl"))}
exit_of = lambda name: int(open(name + ".exit").read())
check(lines("snapshot") == lines("original"), "the snapshot does not give the original's files")
check(exit_of("snapshot") == exit_of("original") == 1, "exit status of the snapshot scan")
check(lines("snapshot-appliance") == lines("original"), "the appliance does not give the snapshot's files")
check(exit_of("snapshot-appliance") == 1, "exit status of the snapshot scan through the appliance")
current = json.load(open("current.json"))
check(exit_of("current") == 2 and any(e["outcome"] == "NO_FILESYSTEM" for e in current["errors"]),
      "the wiped current state was not reported as holding no filesystem")
err = open("unknown.err").read()
check(exit_of("unknown") == 2 and 'no internal snapshot named "no-such-snapshot" (it has before-wipe)' in err,
      "unknown snapshot: " + err)
if failures:
    print("FAIL: " + "; ".join(failures), file=sys.stderr)
    sys.exit(1)
print(f"ok: snapshot gives the original's {len(lines('snapshot'))} files; current state has no filesystem")
PY
