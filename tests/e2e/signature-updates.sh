#!/usr/bin/env bash
# signature-updates.sh COLDSCAN FIXTURES WORKDIR
#
# Signature updates keep the verdict cache (issue 18, docs/signature-updates.md), on the real Debian server
# with its two planted samples (FIXTURES/real-os), the direct path. One cache; the signatures change one kind
# at a time, each change on top of the ones before:
#   removed   a body signature removed
#   ign2      a signature name ignored (.ign2)
#   fp        a file allow-listed by its hash (.fp)
#   hash      a hash signature added for a file of the server (/etc/debian_version)
#   yara      a YARA rule file added
# After each, the oracle: every file's outcome and detections equal a --no-cache scan with the same set.
# The cost: after a removal or an allow-list line, every verdict but the INFECTED ones stands with no work
# (counted as carried; only the files called INFECTED before are scanned again); after an added hash line,
# only contents in which libclamav scanned a layer of the size it names are scanned again; an added YARA rule
# re-scans everything.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/script-start.sh
source "$here/script-start.sh"
# shellcheck source=tests/fixtures/lib.sh
source "$here/../fixtures/lib.sh"
cd "$work"
real=$(readlink -f "$fixtures/real-os")
image=$real/debian12-server-planted.qcow2
tree=$real/debian12-server-tree
for needed in "$image" "$tree"; do
    [[ -e $needed ]] || { echo "FAIL: $needed is missing (the e2e.real-os.fixtures test builds it)" >&2; exit 1; }
done
cp -r "$fixtures/sigs/clamav" clamav
cp -r "$fixtures/sigs/yara" yara

scan() { # NAME CACHE-ARGS...: report, inventory and exit status under NAME
    local name=$1
    shift
    set +e
    "$coldscan" scan --backend direct "$@" --clamav-db clamav --yara-rules yara --allow-root "$real" \
        --no-progress --no-summary --quiet-issues --report "$name.json" --inventory "$name.jsonl" \
        "$image" >"$name.out" 2>"$name.err"
    echo $? >"$name.exit"
    set -e
}
check() { # STEP PREVIOUS EXPECT: compare STEP (cached) with STEP.oracle; EXPECT: carried or rescanned
    python3 - "$@" <<'PY'
import json, sys
step, previous, expect = sys.argv[1:]
failures = []
def check(ok, what):
    if not ok:
        failures.append(f"{step}: {what}")
def files(name):
    out = {}
    for line in open(name + ".jsonl"):
        entry = json.loads(line)
        detections = sorted(entry.get("signatures", []))
        out[(entry["device"], entry["path"])] = (entry["outcome"], detections)
    return out
exit_of = lambda name: int(open(name + ".exit").read())
cached, oracle, before = files(step), files(step + ".oracle"), files(previous)
check(exit_of(step) == exit_of(step + ".oracle"), f"exit {exit_of(step)}, the oracle {exit_of(step + '.oracle')}")
check(exit_of(step) in (0, 1), f"exit {exit_of(step)}: {open(step + '.err').read()[-400:]}")
check(set(cached) == set(oracle), f"{len(set(cached) ^ set(oracle))} files differ in the two listings")
wrong = [(k, cached[k], oracle.get(k)) for k in cached if cached[k] != oracle.get(k)]
check(not wrong, f"{len(wrong)} files differ from the oracle: {wrong[:5]}")
report = json.load(open(step + ".json"))
cache = report["cache"]
check(cache["lineage"] is True, "the set's lines were not recorded")
infected_before = len({json.loads(l)["sha256"] for l in open(previous + ".jsonl")
                       if json.loads(l)["outcome"] == "INFECTED"})  # contents
contents = len({json.loads(l)["sha256"] for l in open(previous + ".jsonl")} - {None})
if expect in ("carried", "few"):
    # carried: only the INFECTED contents are scanned again; few: also those with a layer of the size an
    # added hash line names (a handful on a real server).
    if expect == "carried":
        check(cache["verdicts_outdated"] == infected_before,
              f"{cache['verdicts_outdated']} verdicts outdated, want the {infected_before} INFECTED contents")
    limit = infected_before if expect == "carried" else 0.01 * len(cached)
    check(cache["engine_scans"] <= limit, f"{cache['engine_scans']} files scanned, want at most {limit}")
    check(cache["verdicts_carried"] >= 0.9 * contents,
          f"only {cache['verdicts_carried']} of {contents} contents' verdicts carried")
else:
    check(cache["verdicts_carried"] == 0, f"{cache['verdicts_carried']} verdicts carried over an added line")
    check(cache["engine_scans"] > 0.5 * len(cached), f"only {cache['engine_scans']} files scanned again")
detections = sorted({d for _, ds in cached.values() for d in ds})
if failures:
    print("FAIL: " + "\n".join(failures), file=sys.stderr)
    sys.exit(1)
print(f"ok {step}: {len(cached)} files as the oracle, detections {detections}; carried "
      f"{cache['verdicts_carried']}, outdated {cache['verdicts_outdated']}, engine scans {cache['engine_scans']}, "
      f"{report['timings']['total_seconds']:.1f} s")
PY
}
update() { # STEP PREVIOUS EXPECT: the cached scan and the oracle after the change just made
    scan "$1" --cache cache
    scan "$1.oracle" --no-cache
    check "$@"
}

scan cold --cache cache
[[ $(cat cold.exit) == 1 ]] || { echo "FAIL: cold scan exit $(cat cold.exit): $(tail -3 cold.err)" >&2; exit 1; }

grep -v '^Coldscan.Test.Eicar:' clamav/coldscan-test.ndb >ndb.tmp && mv ndb.tmp clamav/coldscan-test.ndb
update removed cold carried

echo "Coldscan.Test.ClamExe" >clamav/local.ign2
update ign2 removed carried

eicar=$(eicar_string | md5sum | cut -d' ' -f1)
echo "$eicar:68:Coldscan.Test.Eicar.Allowed" >clamav/local.fp
update fp ign2 carried

version=$tree/etc/debian_version
echo "$(md5sum <"$version" | cut -d' ' -f1):$(stat -c %s "$version"):Coldscan.Test.New.Hash" >clamav/daily-update.hdb
update hash fp few
grep -q Coldscan.Test.New.Hash hash.jsonl || { echo "FAIL: the added hash signature found nothing" >&2; exit 1; }

cat >yara/added.yar <<'YAR'
rule debian_version_file { strings: $v = "12." condition: $v at 0 and filesize < 16 }
YAR
update yara hash rescanned
grep -q debian_version_file yara.jsonl || { echo "FAIL: the added YARA rule found nothing" >&2; exit 1; }
echo "ok: every update as a scan without the cache"
