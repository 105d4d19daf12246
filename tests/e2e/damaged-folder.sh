#!/usr/bin/env bash
# damaged-folder.sh COLDSCAN FIXTURES WORKDIR
#
# The direct reader never skips a folder silently. An ext4 disk is built with two folders, each holding
# EICAR; one folder's directory block is then overwritten, as damage or a crafted image would leave it. TSK
# moves on past a folder it cannot load without a word: coldscan must report that folder as ERROR (the run
# is not "completed"; the exit status stays 1 for the detection in the intact folder), and still scan and
# report everything else.
set -euo pipefail

# shellcheck source=tests/e2e/script-start.sh
source "$(dirname "${BASH_SOURCE[0]}")/script-start.sh"
cd "$work"
export PATH=$PATH:/usr/sbin:/sbin

eicar='X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
mkdir -p tree/ok tree/hidden/deeper
printf '%s' "$eicar" >tree/ok/eicar.com
printf '%s' "$eicar" >tree/hidden/eicar.com
printf 'inside the damaged folder\n' >tree/hidden/deeper/note.txt
for i in $(seq 1 40); do printf 'file %s\n' "$i" >"tree/ok/f$i.txt"; done
mkfs.ext4 -q -F -b 4096 -L damaged -d tree fs.raw 16M
block=$(debugfs -R "blocks /hidden" fs.raw 2>/dev/null | tr -d ' \n')
[[ $block =~ ^[0-9]+$ ]] || { echo "FAIL: no directory block for /hidden: '$block'" >&2; exit 1; }
# 0xff over the folder's entries: record lengths that run past the block, names of garbage.
head -c 4096 /dev/zero | tr '\0' '\377' | dd of=fs.raw bs=4096 seek="$block" conv=notrunc status=none
qemu-img convert -f raw -O qcow2 fs.raw damaged.qcow2

set +e
"$coldscan" scan --no-cache --clamav-db "$fixtures/sigs/clamav" --no-progress --no-summary --quiet-issues \
    --backend direct --report direct.json --inventory direct.jsonl damaged.qcow2 >direct.out 2>direct.err
echo $? >direct.exit
set -e

python3 - <<'PY'
import json, sys
failures = []
def check(ok, what):
    if not ok:
        failures.append(what)
report = json.load(open("direct.json"))
lines = {l["path"]: l for l in map(json.loads, open("direct.jsonl"))}
exit_code = int(open("direct.exit").read())
check(exit_code == 1, f"exit status {exit_code}, expected 1 (a detection, with issues)")
check(report["status"] == "completed_with_issues", f"run status {report['status']}: a folder was not scanned")
hidden = lines.get("/hidden")
check(hidden is not None and hidden["outcome"] == "ERROR" and "could not list this folder" in hidden["reason"],
      f"/hidden is not reported as an unreadable folder: {hidden}")
check(any(e["path"] == "/hidden" and e["outcome"] == "ERROR" for e in report["errors"]),
      "/hidden is not in the report's errors")
check(lines.get("/ok/eicar.com", {}).get("outcome") == "INFECTED", "/ok/eicar.com was not detected")
check(sum(1 for p in lines if p.startswith("/ok/f")) == 40, "the intact folder's files were not all scanned")
check(not any(p.startswith("/hidden/") and lines[p]["outcome"] == "CLEAN" for p in lines),
      "a file of the damaged folder was called clean")
if failures:
    print("FAIL: " + "; ".join(failures), file=sys.stderr)
    print(open("direct.err").read(), file=sys.stderr)
    sys.exit(1)
print(f"ok: /hidden reported as ERROR ({hidden['reason']}); {len(lines)} entries, exit 1, with issues")
PY
