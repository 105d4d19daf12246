#!/usr/bin/env bash
# stall.sh COLDSCAN FIXTURES WORKDIR
#
# A hung appliance must not hang the scan. The appliance's qemu is frozen with SIGSTOP while files are being
# read; with --stall-timeout 20 coldscan must kill it, report every file it could not read as ERROR (never
# clean), name the stall as the reason, and finish with status completed_with_issues. (20 s, not less: under
# TCG on a loaded 2-core machine one inspection call alone has taken more than 5 s.)
set -euo pipefail

# shellcheck source=tests/e2e/script-start.sh
source "$(dirname "${BASH_SOURCE[0]}")/script-start.sh"
cd "$work"

"$coldscan" -v scan --backend guestfs --stall-timeout 20 --no-progress --report report.json --inventory inventory.jsonl \
    --cache cache --clamav-db "$fixtures/sigs/clamav" --yara-rules "$fixtures/sigs/yara" \
    "$fixtures/images/ext4-gpt.qcow2" >stdout.txt 2>stderr.txt &
scan_pid=$!

# Only our own appliance: the qemu whose parent is this coldscan (other tests may run theirs).
qemu_pid=""
for _ in $(seq 1 600); do
    # Once files arrive: the freeze then lands among the reads (a freeze during the listing fails the
    # filesystem instead; both are accepted below, this one shows per-file ERRORs).
    if grep -q "scanning .*:/dev/sda1" stderr.txt && [[ -s inventory.jsonl ]]; then
        qemu_pid=$(pgrep -P "$scan_pid" -f qemu-system || true)
        break
    fi
    if ! kill -0 "$scan_pid" 2>/dev/null; then
        break
    fi
    sleep 0.2
done
if [[ -z $qemu_pid ]]; then
    echo "FAIL: the scan never reached the filesystem with its appliance running" >&2
    cat stderr.txt >&2
    kill -9 "$scan_pid" 2>/dev/null || true
    exit 1
fi
kill -STOP "$qemu_pid"
stopped_at=$SECONDS

# The watchdog's limit is 20 s; allow generous slack on a loaded machine, then call it a hang.
for _ in $(seq 1 600); do
    kill -0 "$scan_pid" 2>/dev/null || break
    sleep 0.2
done
if kill -0 "$scan_pid" 2>/dev/null; then
    echo "FAIL: the scan still hangs $((SECONDS - stopped_at)) s after its appliance froze" >&2
    kill -CONT "$qemu_pid" 2>/dev/null || true
    kill -9 "$scan_pid" 2>/dev/null || true
    exit 1
fi
set +e
wait "$scan_pid"
status=$?
set -e
echo "scan ended $((SECONDS - stopped_at)) s after the freeze, exit status $status"

python3 - "$status" <<'PY'
import json, sys
status = int(sys.argv[1])
report = json.load(open("report.json"))
lines = [json.loads(l) for l in open("inventory.jsonl")]
failures = []
def check(ok, what):
    if not ok:
        failures.append(what)
check(status in (1, 2), f"exit status {status}: expected 1 (detections) or 2 (files not scanned)")
check(report["status"] == "completed_with_issues", f"report status {report['status']}")
# Where the freeze lands decides what failed: the files being read (each ERROR), or the filesystem's listing
# (the filesystem FAILED, its files unknown). Either way the stall is named, and nothing unread is clean.
stalled = [e for e in report["errors"] if "--stall-timeout" in e.get("reason", "")]
check(len(stalled) >= 1, "no problem names the stall as its reason")
counts = report["counts"]
stalled_files = [e for e in stalled if e.get("outcome") == "ERROR"]
failed_fs = [fs for t in report["targets"] for fs in t["filesystems"] if fs["status"] == "failed"]
check(stalled_files or failed_fs, "the stall left neither a file ERROR nor a failed filesystem")
check(counts["errors"] >= len(stalled_files), "counts.errors is below the stalled files")
check(counts["files"] + counts["hardlinks"] == len(lines),
      f"{counts['files']} files and {counts['hardlinks']} hard links counted, {len(lines)} in the inventory")
check(counts["clean"] + counts["infected"] + counts["errors"] + counts["limit_exceeded"] + counts["skipped"]
      == counts["files"], "outcomes do not add up to the files listed")
unread = {e["path"] for e in stalled_files}
check(not [l for l in lines if l["path"] in unread and l["outcome"] == "CLEAN"],
      "a file the stall kept from being read is reported clean")
check(report["cache"]["verdicts_written"] <= counts["clean"] + counts["infected"],
      "more verdicts written than files fully scanned")
if failures:
    print("FAIL: " + "; ".join(failures), file=sys.stderr)
    sys.exit(1)
print(f"ok: {len(stalled_files)} files ERROR and {len(failed_fs)} filesystems failed for the stall; "
      f"{counts['clean']} clean, {counts['infected']} infected of {counts['files']} listed")
PY
