#!/usr/bin/env bash
# signature-updates.sh COLDSCAN FIXTURES WORKDIR
#
# Signature updates keep the verdict cache (issue 18, docs/signature-updates.md), on the real Debian server
# with its two planted samples, slim (FIXTURES/real-os/debian12-server-slim.qcow2: its configuration,
# programs, Python, Perl, PHP, Java archives and documentation, ~190 MiB: each step scans it cold once more
# as its oracle), the direct path. One cache; the signatures change one kind
# at a time, each change on top of the ones before:
#   removed   a body signature removed
#   ign2      a signature name ignored (.ign2)
#   fp        a file allow-listed by its hash (.fp)
#   hash      a hash signature added for a file of the server (/etc/debian_version)
#   body      a body signature of any target added (it matches /etc/motd)
#   logical   a logical signature for PE files added (it matches the planted clam.exe)
#   yara      a YARA rule file added
#   skipped   the cache as the cold scan left it, scanned with the set of the yara step: seven updates at once
#   container the plain database files packed into one container (.cud), as freshclam ships databases:
#             libclamav names detections by where their line was read, so every line changed
#   repacked  the same container rewritten (another member order and compression), as freshclam rewrites a
#             .cvd into a .cld: the same set
#   bytecode  a bytecode file added (engine part: libclamav skips unsigned bytecode, coldscan rescans all)
# After each, the oracle: every file's outcome and detections equal a --no-cache scan with the same set. Where
# the cached scan must rescan everything (container, bytecode), it is checked to have run the engines on every
# content of the image, which makes it that cold scan itself: no second one is run (a minute each).
# Before the hash step's scan, and before the skipped one, `coldscan retro-hunt` must name the content that
# scan then finds by the added hash line, with the name it reports, at every place the scan finds it.
# The cost: after a removal or an allow-list line, every verdict but the INFECTED ones stands with no work
# (counted as carried; only the files called INFECTED before are scanned again); after an added hash line,
# only contents in which libclamav scanned a layer of the size it names, or a text or HTML layer, are checked
# again; after an added
# pattern signature or YARA rule, every other CLEAN verdict is checked with an engine of the added lines
# alone (rechecked), skipped where no layer has the type the signature targets (carried); a container rewritten
# with the same lines changes nothing; an engine-part change re-scans everything.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/script-start.sh
source "$here/script-start.sh"
# shellcheck source=tests/fixtures/lib.sh
source "$here/../fixtures/lib.sh"
cd "$work"
real=$(readlink -f "$fixtures/real-os")
image=$real/debian12-server-slim.qcow2
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
check() { # STEP PREVIOUS EXPECT [ORACLE]: compare STEP (cached) with ORACLE (default STEP.oracle)
    python3 - "$@" <<'PY'
import json, sys
step, previous, expect = sys.argv[1:4]
oracle_name = sys.argv[4] if len(sys.argv) > 4 else step + ".oracle"
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
cached, oracle = files(step), files(oracle_name)
check(exit_of(step) == exit_of(oracle_name), f"exit {exit_of(step)}, the oracle {exit_of(oracle_name)}")
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
rechecked = cache["verdicts_rechecked"]
if expect == "same":
    check(cache["engine_scans"] == 0, f"{cache['engine_scans']} files scanned, the set did not change")
    check(cache["verdicts_carried"] + rechecked + cache["verdicts_outdated"] == 0, "verdicts were not plain hits")
elif expect == "rechecked":
    check(cache["engine_scans"] <= infected_before + 0.01 * len(cached),
          f"{cache['engine_scans']} files scanned with the whole set")
    check(rechecked >= 0.9 * contents, f"only {rechecked} of {contents} contents' verdicts rechecked")
elif expect in ("carried", "few"):
    # carried: only the INFECTED contents are scanned again; few: also those with a layer of the size an
    # added hash line names (a handful on a real server).
    if expect == "carried":
        check(cache["verdicts_outdated"] == infected_before,
              f"{cache['verdicts_outdated']} verdicts outdated, want the {infected_before} INFECTED contents")
    limit = infected_before if expect == "carried" else 0.01 * len(cached)
    check(cache["engine_scans"] <= limit, f"{cache['engine_scans']} files scanned, want at most {limit}")
    # few: text and HTML layers are also checked for the added hash lines (libclamav hashes what it derives
    # from them, unseen by the layer record), by an engine of those lines alone.
    kept = cache["verdicts_carried"] + (rechecked if expect == "few" else 0)
    check(kept >= 0.9 * contents, f"only {kept} of {contents} contents' verdicts kept")
else:
    # full: a cold scan, every content of this image through the engines with the new set.
    check(cache["verdicts_carried"] + rechecked == 0, f"{cache['verdicts_carried'] + rechecked} verdicts kept")
    scanned_contents = len({json.loads(l)["sha256"] for l in open(step + ".jsonl")} - {None})
    check(cache["engine_scans"] == scanned_contents,
          f"{cache['engine_scans']} files scanned again, the image holds {scanned_contents} contents")
detections = sorted({d for _, ds in cached.values() for d in ds})
if failures:
    print("FAIL: " + "\n".join(failures), file=sys.stderr)
    sys.exit(1)
print(f"ok {step}: {len(cached)} files as the oracle, detections {detections}; carried "
      f"{cache['verdicts_carried']}, rechecked {rechecked}, outdated {cache['verdicts_outdated']}, engine scans {cache['engine_scans']}, "
      f"{report['timings']['total_seconds']:.1f} s")
PY
}
update() { # STEP PREVIOUS EXPECT: the cached scan and the oracle after the change just made
    scan "$1" --cache cache
    scan "$1.oracle" --no-cache
    check "$@"
}
update_full() { # STEP PREVIOUS REFERENCE: a change that must rescan everything, compared with REFERENCE
    scan "$1" --cache cache
    check "$1" "$2" full "$3"
}
hunt() { # NAME CACHE: coldscan retro-hunt over CACHE with the current set, as JSON, before any scan with it
    set +e
    "$coldscan" retro-hunt --cache "$2" --clamav-db clamav --yara-rules yara --json >"$1.hunt.json" \
        2>"$1.hunt.err"
    echo $? >"$1.hunt.exit"
    set -e
}
hunt_found() { # NAME STEP PATH: the hunt NAME named exactly the content at PATH, where the scan STEP then
    # found it, with the detection names that scan reported for the added hash lines
    python3 - "$@" "$image" <<'PY'
import json, sys
name, step, path, image = sys.argv[1:5]
exit_status = int(open(name + ".hunt.exit").read())
if exit_status != 1:
    sys.exit(f"FAIL: retro-hunt {name} exit {exit_status}, want 1: {open(name + '.hunt.err').read()[-400:]}")
hunt = json.load(open(name + ".hunt.json"))
scanned = [json.loads(l) for l in open(step + ".jsonl")]
entry = next(e for e in scanned if e["path"] == path)
hits = hunt["hits"]
if [h["sha256"] for h in hits] != [entry["sha256"]]:
    sys.exit(f"FAIL: retro-hunt {name} named {[h['sha256'] for h in hits]}, want {path}'s {entry['sha256']}")
# The hunt names what the added hash lines detect; the scan also what added patterns and rules find.
if not hits[0]["signatures"] or not set(hits[0]["signatures"]) <= set(entry["signatures"]):
    sys.exit(f"FAIL: retro-hunt {name} says {hits[0]['signatures']}, the scan {entry['signatures']}")
places = {(p["target"], p["device"], p["path"]) for p in hits[0]["places"]}
held = {(e["device"], e["path"]) for e in scanned if e["sha256"] == entry["sha256"]}
if {(d, p) for _, d, p in places} != held or any(t != image for t, _, _ in places):
    sys.exit(f"FAIL: retro-hunt {name} places {sorted(places)}, the scan found the content at {sorted(held)}")
print(f"ok retro-hunt {name}: {hits[0]['signatures']} in {sorted(places)}; {hunt['compared']} contents "
      f"compared, {hunt['unproven']} left to the next scan")
PY
}
found() { # STEP SIGNATURE: the step found what the signature added there names
    grep -q "$2" "$1.jsonl" || { echo "FAIL: $1: $2 found nothing" >&2; exit 1; }
}

scan cold --cache cache
[[ $(cat cold.exit) == 1 ]] || { echo "FAIL: cold scan exit $(cat cold.exit): $(tail -3 cold.err)" >&2; exit 1; }
cp -a cache cache.cold

grep -v '^Coldscan.Test.Eicar:' clamav/coldscan-test.ndb >ndb.tmp && mv ndb.tmp clamav/coldscan-test.ndb
update removed cold carried

echo "Coldscan.Test.ClamExe" >clamav/local.ign2
update ign2 removed carried

eicar=$(eicar_string | md5sum | cut -d' ' -f1)
echo "$eicar:68:Coldscan.Test.Eicar.Allowed" >clamav/local.fp
update fp ign2 carried

version=$tree/etc/debian_version
echo "$(md5sum <"$version" | cut -d' ' -f1):$(stat -c %s "$version"):Coldscan.Test.New.Hash" >clamav/daily-update.hdb
hunt hash cache
update hash fp few
found hash Coldscan.Test.New.Hash
hunt_found hash hash /etc/debian_version

hex() { python3 -c 'import sys; print(sys.argv[1].encode().hex())' "$1"; }
echo "Coldscan.Test.Body.Motd:0:*:$(hex 'programs included with the Debian GNU/Linux system')" >clamav/daily-update.ndb
update body hash rechecked
found body Coldscan.Test.Body.Motd

clam_exe_code=$(python3 -c 'import sys; print(open(sys.argv[1], "rb").read()[0x200:0x220].hex())' \
    /usr/share/clamav-testfiles/clam.exe)
echo "Coldscan.Test.Logical.ClamExe;Engine:51-255,Target:1;0;$clam_exe_code" >clamav/daily-update.ldb
update logical body carried
found logical Coldscan.Test.Logical.ClamExe

cat >yara/added.yar <<'YAR'
rule debian_version_file { strings: $v = "12." condition: $v at 0 and filesize < 16 }
YAR
update yara logical rechecked
found yara debian_version_file

hunt skipped cache.cold
scan skipped --cache cache.cold
check skipped cold rechecked yara.oracle
hunt_found skipped skipped /etc/debian_version

# The plain files packed as freshclam ships databases: one container (sigtool's unsigned .cud; a signed
# .cvd/.cld needs Talos's key). Where a line was read decides how libclamav names its detections (".UNOFFICIAL"
# for plain files and, in libclamav 1.4, for a .cud): every line is another line, so all is scanned again.
(
    mkdir -p pack && cd pack
    for file in ../clamav/*; do awk 1 "$file" >>"daily.${file##*.}"; done
    echo "coldscan e2e test signatures" >COPYING
    echo coldscan-tests | sigtool --build=daily.cud --unsigned >build.log 2>&1 || { cat build.log >&2; exit 1; }
)
rm -f clamav/*
mv pack/daily.cud clamav/
update_full container yara container

# The container rewritten (members in another order, another compression level), as freshclam rewrites a
# .cvd it updated into a .cld: the same lines, so the same set, and every verdict a plain hit.
python3 - clamav/daily.cud <<'PY'
import gzip, io, sys, tarfile
path = sys.argv[1]
data = open(path, "rb").read()
members = []
with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data[512:])), mode="r:") as tar:
    members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
out = io.BytesIO()
with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1, mtime=0) as packed:
    with tarfile.open(fileobj=packed, mode="w:", format=tarfile.USTAR_FORMAT) as tar:
        for member, content in reversed(members):
            tar.addfile(member, io.BytesIO(content))
open(path, "wb").write(data[:512] + out.getvalue())
PY
scan repacked --cache cache
check repacked container same container

# libclamav says it skips unsigned bytecode, yet its reports change (the .ign2 inside the .cud no longer hides
# a name): only a full rescan can say, and it is its own reference.
echo 'ClamBCaa`|``````|`agafp`clamcoincidencejb:4096' >clamav/local.cbc
update_full bytecode repacked bytecode

# The cache keeps the lines of every detection set seen: cold, removed, ign2, fp, hash, body, logical, yara
# and container (repacked and bytecode have the container's lines).
"$coldscan" cache --cache cache stats >stats.out
sets=$(sed -n 's/^Signature sets: *\([0-9]*\) sets.*/\1/p' stats.out)
[[ $sets == 9 ]] || { echo "FAIL: cache stats shows '${sets}' signature sets, want 9: $(cat stats.out)" >&2; exit 1; }
echo "ok: every update as a scan without the cache; cache stats: $sets signature sets"
