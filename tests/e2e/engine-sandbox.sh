#!/usr/bin/env bash
# engine-sandbox.sh COLDSCAN FIXTURES WORKDIR
#
# A file that crashes or hangs an engine costs that file an ERROR verdict and nothing more. coldscan runs
# ClamAV and YARA in confined worker processes; two test markers (COLDSCAN_TEST_ENGINE_CRASH_MARKER and
# ..._HANG_MARKER, read only by the workers) make a worker crash with SIGSEGV or stop answering on a file
# that starts with them, as a file built against an engine would. Checked:
# - the crashing file and the hanging file are ERROR (never CLEAN), with a reason; every other file has the
#   verdict it has without the markers; the scan completes (status completed_with_issues, exit 1 for EICAR);
# - the errors are not cached: the same cache, without the markers, gives both files CLEAN;
# - with --no-sandbox the markers mean nothing (the hooks live only in the workers).
set -euo pipefail

# shellcheck source=tests/e2e/script-start.sh
source "$(dirname "${BASH_SOURCE[0]}")/script-start.sh"
cd "$work"

eicar='X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
mkdir -p tree/docs tree/bin
printf '%s' "$eicar" >tree/docs/eicar.com
for i in $(seq 1 40); do printf 'harmless file %s\n' "$i" >"tree/docs/note$i.txt"; done
cp /usr/share/clamav-testfiles/clam.exe tree/bin/clam.exe
printf 'COLDSCAN-CRASH-ME and then some bytes\n' >tree/bin/crash.bin
printf 'COLDSCAN-HANG-ME and then some bytes\n' >tree/bin/hang.bin

scan() { # NAME ARGS...: runs coldscan, keeps its outputs and exit status under NAME
    local name=$1
    shift
    set +e
    "$coldscan" scan --clamav-db "$fixtures/sigs/clamav" --yara-rules "$fixtures/sigs/yara" --no-progress \
        --no-summary --max-scantime 1 --yara-timeout 1 --report "$name.json" --inventory "$name.jsonl" "$@" tree >"$name.out" 2>"$name.err"
    echo $? >"$name.exit"
    set -e
}

COLDSCAN_TEST_ENGINE_CRASH_MARKER=COLDSCAN-CRASH-ME COLDSCAN_TEST_ENGINE_HANG_MARKER=COLDSCAN-HANG-ME \
    scan hooked --cache cache
scan again --cache cache
COLDSCAN_TEST_ENGINE_CRASH_MARKER=COLDSCAN-CRASH-ME COLDSCAN_TEST_ENGINE_HANG_MARKER=COLDSCAN-HANG-ME \
    scan in-process --no-cache --no-sandbox

python3 - <<'PY'
import json, sys
failures = []
def check(ok, what):
    if not ok:
        failures.append(what)

def load(name):
    report = json.load(open(name + ".json"))
    files = {}
    for line in open(name + ".jsonl"):
        entry = json.loads(line)
        files[entry["path"]] = entry
    return report, files, int(open(name + ".exit").read())

def outcome(files, suffix):
    matches = [e for p, e in files.items() if p.endswith(suffix)]
    return matches[0]["outcome"] if len(matches) == 1 else f"{len(matches)} entries"

hooked, files, code = load("hooked")
check(code == 1, f"hooked: exit {code}, expected 1 (EICAR found, the run completed)")
check(hooked["status"] == "completed_with_issues", f"hooked: status {hooked['status']}")
check(len(files) == 44, f"hooked: {len(files)} files reported, expected 44")
crash = [e for p, e in files.items() if p.endswith("crash.bin")]
hang = [e for p, e in files.items() if p.endswith("hang.bin")]
check(outcome(files, "crash.bin") == "ERROR", f"crash.bin: {outcome(files, 'crash.bin')}")
check(outcome(files, "hang.bin") == "ERROR", f"hang.bin: {outcome(files, 'hang.bin')}")
if crash:
    check("died" in crash[0].get("reason", ""), f"crash.bin reason: {crash[0].get('reason')!r}")
if hang:
    check("did not answer" in hang[0].get("reason", ""), f"hang.bin reason: {hang[0].get('reason')!r}")
check(outcome(files, "eicar.com") == "INFECTED", f"eicar.com: {outcome(files, 'eicar.com')}")
check(outcome(files, "clam.exe") == "INFECTED", f"clam.exe: {outcome(files, 'clam.exe')}")
notes = [e["outcome"] for p, e in files.items() if "/note" in p]
check(notes == ["CLEAN"] * 40, f"notes: {sorted(set(notes))} ({len(notes)})")

again, files, code = load("again")
check(code == 1, f"again: exit {code}")
check(outcome(files, "crash.bin") == "CLEAN", f"again: crash.bin {outcome(files, 'crash.bin')} (an error was cached?)")
check(outcome(files, "hang.bin") == "CLEAN", f"again: hang.bin {outcome(files, 'hang.bin')}")
check(again["status"] == "completed", f"again: status {again['status']}")

local, files, code = load("in-process")
check(outcome(files, "crash.bin") == "CLEAN", f"in-process: crash.bin {outcome(files, 'crash.bin')}")
check(outcome(files, "eicar.com") == "INFECTED", f"in-process: eicar.com {outcome(files, 'eicar.com')}")

for f in failures:
    print("FAIL:", f)
if failures:
    sys.exit(1)
print("engine-sandbox: all checks passed")
PY
grep -q "engine worker [0-9]* was killed by signal 11" hooked.err ||
    { echo "FAIL: the host did not log the worker's SIGSEGV" >&2; exit 1; }
