#!/usr/bin/env bash
# fs-sandbox.sh COLDSCAN FIXTURES WORKDIR
#
# The direct path parses each filesystem in a confined worker process. A filesystem that crashes its worker
# (test hook: COLDSCAN_TEST_FS_WORKER_CRASH_LABEL names the label whose listing crashes) fails that
# filesystem, with a reason, and nothing else: the other image in the same run is scanned in full. Checked:
# - target A (label crashme): its filesystem is failed, the reason names the filesystem worker, no file of it
#   is reported CLEAN, the target is not "completed";
# - target B (label fine): completed, EICAR found, the same files and outcomes as a run without the hook;
# - exit status 1 (a detection), and with --no-sandbox the hook means nothing (A is scanned: EICAR found);
# - a worker that hangs instead (COLDSCAN_TEST_FS_WORKER_HANG_LABEL) is stopped after --stall-timeout: the
#   same for A, B in full, and the run ends well inside its budget;
# - the partition table is read by a worker too: when it crashes (label ":partition-table"), each target is
#   failed with a reason naming that worker, nothing is reported CLEAN, exit 2.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/script-start.sh
source "$here/script-start.sh"
cd "$work"
export PATH=$PATH:/usr/sbin:/sbin

eicar='X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
mkdir -p tree/srv tree/etc
printf '%s' "$eicar" >tree/srv/eicar.com
for i in $(seq 1 20); do printf 'note %s\n' "$i" >"tree/etc/note$i.conf"; done
"$here/../fixtures/make-ext4-image.sh" --label crashme tree a.qcow2 >/dev/null
"$here/../fixtures/make-ext4-image.sh" --label fine tree b.qcow2 >/dev/null

scan() { # NAME ARGS...
    local name=$1
    shift
    set +e
    "$coldscan" scan --clamav-db "$fixtures/sigs/clamav" --no-progress --no-summary --quiet-issues \
        --backend direct --no-cache --report "$name.json" --inventory "$name.jsonl" "$@" a.qcow2 b.qcow2 \
        >"$name.out" 2>"$name.err"
    echo $? >"$name.exit"
    set -e
}
COLDSCAN_TEST_FS_WORKER_CRASH_LABEL=crashme scan hooked
COLDSCAN_TEST_FS_WORKER_CRASH_LABEL=crashme scan in-process --no-sandbox
hang_start=$(date +%s)
COLDSCAN_TEST_FS_WORKER_HANG_LABEL=crashme scan hung --stall-timeout 3
hang_seconds=$(($(date +%s) - hang_start))
COLDSCAN_TEST_FS_WORKER_CRASH_LABEL=:partition-table scan table
(( hang_seconds < 120 )) || { echo "FAIL: the hung worker held the run for $hang_seconds s"; exit 1; }

python3 - <<'PY'
import json, sys
failures = []
def check(ok, what):
    if not ok:
        failures.append(what)

def load(name):
    report = json.load(open(name + ".json"))
    targets = {t["path"].rsplit("/", 1)[-1]: t for t in report["targets"]}
    files = [json.loads(line) for line in open(name + ".jsonl")]
    return report, targets, files, int(open(name + ".exit").read())

def worker_failed_a(name, reason_words):
    report, targets, files, code = load(name)
    check(code == 1, f"{name}: exit {code}, expected 1")
    a, b = targets["a.qcow2"], targets["b.qcow2"]
    a_fs = [fs for fs in a["filesystems"] if fs.get("label") == "crashme"]
    check(len(a_fs) == 1 and a_fs[0]["status"] == "failed", f"{name}: a: filesystems {a['filesystems']}")
    if a_fs:
        reason = a_fs[0].get("reason", "")
        check(all(w in reason for w in reason_words), f"{name}: a: reason {reason!r}")
    check(a["status"] != "completed", f"{name}: a: status {a['status']}")
    a_clean = [f for f in files if f["target"].endswith("a.qcow2") and f["outcome"] == "CLEAN"]
    check(not a_clean, f"{name}: a: {len(a_clean)} files reported CLEAN")
    check(b["status"] == "completed", f"{name}: b: status {b['status']}")
    b_files = {f["path"]: f["outcome"] for f in files if f["target"].endswith("b.qcow2")}
    check(b_files.get("/srv/eicar.com") == "INFECTED", f"{name}: b: eicar {b_files.get('/srv/eicar.com')}")
    return b_files

b_files = worker_failed_a("hooked", ["filesystem worker"])
check(worker_failed_a("hung", ["filesystem worker", "stopped answering"]) == b_files, "hung: b's outcomes differ")

_, targets, files, code = load("in-process")
check(code == 1, f"in-process: exit {code}")
a_files = {f["path"]: f["outcome"] for f in files if f["target"].endswith("a.qcow2")}
check(a_files.get("/srv/eicar.com") == "INFECTED", f"in-process: a eicar {a_files.get('/srv/eicar.com')}")
check(a_files == b_files, "in-process: image a's outcomes differ from image b's under the worker")

report, targets, files, code = load("table")
check(code == 2, f"table: exit {code}, expected 2")
for name, t in targets.items():
    check(t["status"] == "failed" and "partition table worker" in t.get("error", ""), f"table: {name}: {t}")
check(not [f for f in files if f["outcome"] == "CLEAN"], "table: files reported CLEAN")

for f in failures:
    print("FAIL:", f)
if failures:
    sys.exit(1)
print("fs-sandbox: all checks passed")
PY
