#!/usr/bin/env bash
# real-os.sh COLDSCAN FIXTURES WORKDIR
#
# A real Debian 12 server (tests/fixtures/make-real-os.sh: mmdebstrap, standard + kernel, openssh, apache2 +
# php, postgresql, python3-pip, default-jre-headless; ext4 on GPT), in FIXTURES/real-os/. Nothing in it is
# malware, so:
#   1. coldscan scan (auto: the direct path) exits 0, finds nothing, and fails nothing: every file it does not
#      call CLEAN is a limit warning (the JDK's ct.sym really holds more than --max-files members, as
#      clamscan says too), never a failure;
#   2. the same server with two planted samples exits 1 and names exactly those two;
#   3. through `coldscan serve`, the gate allows the clean server (exit 0, "allow:", the limit warnings on a
#      "warning:" line) and denies the planted one with a line naming both samples (exit 1); with
#      `[limits] policy = "fail"` the clean server's limit hits deny it (exit 2);
#   4. parity with clamscan on the extracted tree, same databases and limits (--allmatch, --alert-exceeds-max,
#      --alert-encrypted): the files coldscan does not call clean are exactly the files clamscan flags, but
#      for zip members libclamav cut at MaxFileSize without a word (coldscan names them, clamscan says OK).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/script-start.sh
source "$here/script-start.sh"
# shellcheck source=tests/e2e/service-lib.sh
source "$here/service-lib.sh"
cd "$work"
real=$(readlink -f "$fixtures/real-os")
clean_image=$real/debian12-server.qcow2
planted_image=$real/debian12-server-planted.qcow2
tree=$real/debian12-server-tree
for needed in "$clean_image" "$planted_image" "$tree"; do
    [[ -e $needed ]] || fail "$needed is missing (the e2e.real-os.fixtures test builds it)"
done
sigs=(--clamav-db "$fixtures/sigs/clamav" --yara-rules "$fixtures/sigs/yara")

# The clean server's scan is the cold one; every later run starts from a copy of the cache it left (the
# verdicts are the same by the cache's contract, which e2e.signature-updates checks against cold scans), so
# each reads only what differs: the two planted files, the service's and the tree's identities.
scan() { # NAME ARGS...: exit status in NAME.exit; NAME.cache starts as a copy of clean.cache
    local name=$1
    shift
    [[ $name == clean || ! -d clean.cache ]] || cp -a clean.cache "$name.cache"
    set +e
    "$coldscan" scan --cache "$name.cache" "${sigs[@]}" --no-progress --report "$name.json" --inventory "$name.jsonl" \
        "$@" >"$name.out" 2>"$name.err"
    echo $? >"$name.exit"
    set -e
}

note "1-2. the clean server and the planted one"
scan clean "$clean_image"
scan planted "$planted_image"
python3 - <<'PY'
import json, sys
failures = []
def check(ok, what):
    if not ok:
        failures.append(what)
exit_of = lambda name: int(open(name + ".exit").read())
clean = json.load(open("clean.json"))
check(exit_of("clean") == 0, f"clean server: exit {exit_of('clean')} ({open('clean.err').read()[-500:]})")
check(clean["status"] in ("completed", "completed_with_warnings"), f"clean server: status {clean['status']}")
check(clean["detections"] == [], f"clean server: detections {clean['detections'][:5]}")
check(clean["counts"]["files"] > 20000, f"clean server: only {clean['counts']['files']} files")
check(clean["counts"]["errors"] == 0, f"clean server: {clean['counts']['errors']} errors")
check(all(e["outcome"] == "LIMIT_EXCEEDED" for e in clean["errors"]),
      f"clean server: failures {[e for e in clean['errors'] if e['outcome'] != 'LIMIT_EXCEEDED'][:5]}")
readers = {fs.get("reader") for t in clean["targets"] for fs in t["filesystems"] if fs["status"] == "scanned"}
check(readers == {"direct"}, f"clean server: read by {readers}, want the direct path only")
summary = open("clean.out").read()
for e in clean["errors"]:
    check(e["path"] in summary and "Warning:" in summary, f"clean server: {e['path']} is not a summary warning")

planted = json.load(open("planted.json"))
check(exit_of("planted") == 1, f"planted server: exit {exit_of('planted')}")
found = sorted({d["path"] for d in planted["detections"]})
check(found == ["/home/admin/Downloads/clam.exe", "/var/www/html/uploads/eicar.com"],
      f"planted server: detections {found}")
if failures:
    print("FAIL: " + "\n".join(failures), file=sys.stderr)
    sys.exit(1)
print(f"ok: {clean['counts']['files']} files, status {clean['status']}, "
      f"{len(clean['errors'])} limit warnings; the planted server shows exactly its two samples")
PY

note "3. the gate through coldscan serve"
mkdir -p sigs
cp -r "$fixtures/sigs/clamav" "$fixtures/sigs/yara" sigs/
port=$(free_port)
server="http://127.0.0.1:$port"
export COLDSCAN_SERVER=$server
gate_config() { # FILE POLICY
    cat >"$1" <<EOF
[service]
state_dir = "$work/state-$2"
threads = 2

[api]
listen = "127.0.0.1:$port"

[signatures]
clamav_db = "$work/sigs/clamav"
yara_rules = ["$work/sigs/yara"]

[limits]
policy = "$2"

[[host]]
name = "realhost"
max_concurrent_scans = 1

[[datastore]]
name = "store"
roots = ["$real"]
hosts = ["realhost"]
EOF
}
gate() { # NAME IMAGE: exit status in NAME.exit
    set +e
    "$coldscan" gate --timeout 20m "$2" >"$1.out" 2>"$1.err"
    echo $? >"$1.exit"
    set -e
}
seed_store() { # POLICY: the service's store starts from the clean scan's cache
    mkdir -p "state-$1"
    cp -a clean.cache "state-$1/store"
}
gate_config warn.toml warn
seed_store warn
start_service warn.toml
gate gate-clean "$clean_image"
gate gate-planted "$planted_image"
stop_service
[[ $(cat gate-clean.exit) -eq 0 ]] || fail "gate on the clean server: exit $(cat gate-clean.exit): $(cat gate-clean.out gate-clean.err)"
grep -q '^allow: ' gate-clean.out || fail "gate on the clean server: no allow line: $(cat gate-clean.out)"
limited=$(python3 -c 'import json; print(sum(1 for e in json.load(open("clean.json"))["errors"]))')
if ((limited > 0)); then
    grep -q '^warning: .* not scanned in full (limits)' gate-clean.out ||
        fail "gate on the clean server: its limit hits are not a warning: $(cat gate-clean.out)"
fi
[[ $(cat gate-planted.exit) -eq 1 ]] || fail "gate on the planted server: exit $(cat gate-planted.exit): $(cat gate-planted.out)"
grep -q '^deny: [0-9]* detections: ' gate-planted.out || fail "gate on the planted server: $(cat gate-planted.out)"
grep -q '/var/www/html/uploads/eicar.com' gate-planted.out && grep -q '/home/admin/Downloads/clam.exe' gate-planted.out ||
    fail "the deny line does not name both samples: $(cat gate-planted.out)"
if ((limited > 0)); then
    gate_config fail.toml fail
    seed_store fail
    start_service fail.toml
    gate gate-strict "$clean_image"
    stop_service
    [[ $(cat gate-strict.exit) -eq 2 ]] ||
        fail "[limits] policy = fail: the gate gave $(cat gate-strict.exit), want 2: $(cat gate-strict.out)"
fi
echo "ok: the gate allows the clean server (warnings: $limited), denies the planted one naming both samples"

note "4. parity with clamscan on the same tree, databases and limits"
scan tree "$tree"
set +e
clamscan -r --no-summary --infected --allmatch=yes --alert-exceeds-max=yes --alert-encrypted=yes \
    --max-filesize=256M --max-scansize=1024M --max-recursion=17 --max-files=10000 --max-scantime=120000 \
    -d "$fixtures/sigs/clamav" "$tree" >clamscan.out 2>clamscan.err
clamscan_exit=$?
set -e
((clamscan_exit <= 1)) || fail "clamscan failed ($clamscan_exit): $(tail -5 clamscan.err)"
python3 - "$tree" <<'PY'
import json, sys
tree = sys.argv[1]
failures = []
flagged = {}
for line in open("clamscan.out"):
    line = line.rstrip("\n")
    if line.endswith(" FOUND"):
        path, _, name = line[: -len(" FOUND")].rpartition(": ")
        flagged.setdefault("/" + path[len(tree):].lstrip("/"), set()).add(name)
ours = {}
for line in map(json.loads, open("tree.jsonl")):
    if line["outcome"] != "CLEAN" and line.get("hardlink_of") is None:
        ours[line["path"]] = (line["outcome"], line.get("reason", ""))
only_ours = {p: v for p, v in ours.items() if p not in flagged}
only_clamscan = {p: v for p, v in flagged.items() if p not in ours}
# Deliberate: a zip member libclamav cut at MaxFileSize is a limit hit for coldscan, silence for clamscan.
unexplained = {p: v for p, v in only_ours.items() if "archive member" not in v[1]}
if unexplained:
    failures.append(f"coldscan alone calls these not clean: {dict(list(unexplained.items())[:10])}")
if only_clamscan:
    failures.append(f"clamscan alone flags these: {dict(list(only_clamscan.items())[:10])}")
if failures:
    print("FAIL: " + "\n".join(failures), file=sys.stderr)
    sys.exit(1)
print(f"ok: the same {len(ours)} files are not clean for coldscan and flagged by clamscan "
      f"({len(only_ours)} cut archive members named by coldscan alone)")
PY
