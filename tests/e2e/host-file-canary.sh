#!/usr/bin/env bash
# host-file-canary.sh COLDSCAN FIXTURES WORKDIR
#
# No guest byte decides what a qemu process opens (issue 15). The canary is a small ext4 disk holding EICAR,
# outside every allowed root: whoever opened it as a disk would find EICAR and report it. The hostile disk
# is a raw disk with no filesystem whose first KiB is a qcow2 header naming the canary as its backing file;
# without a filesystem the direct path hands it to the appliance, whose qemu would probe the guest's bytes.
#   1. scanned with --format raw through direct, auto and guestfs, and as the raw base of a qcow2 overlay
#      (auto): under strace, no process opens the canary; each scan is an honest error (NO_FILESYSTEM, exit
#      2); no detection. The guestfs run has LIBGUESTFS_DEBUG=1: every -drive of qemu's command line has an
#      explicit top-level format.
#   2. defence in depth: a test hook makes the appliance read the export as qcow2 (the mistake the file view
#      is for); qemu then tries to open the canary, and every such open fails (EACCES), nothing is found.
#   3. the service: coldscan gate with a libvirt domain XML whose disk is <driver type='raw'/> on the hostile
#      disk, with `coldscan serve` under strace: the gate refuses (exit 2, "not fully scanned"), the canary is
#      never opened.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/script-start.sh
source "$here/script-start.sh"
# shellcheck source=tests/e2e/service-lib.sh
source "$here/service-lib.sh"
cd "$work"
export PATH=$PATH:/usr/sbin:/sbin
command -v strace >/dev/null || fail "strace is missing (scripts/install-deps.sh installs it)"

eicar='X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
mkdir -p outside/tree
printf '%s' "$eicar" >outside/tree/canary-eicar.com
canary=$work/outside/canary.img
mkfs.ext4 -q -F -d outside/tree "$canary" 8M
make_layout
hostile=$work/fast/hostile.raw
truncate -s 16M "$hostile"
qemu-img create -q -f qcow2 -u -b "$canary" -F raw header.qcow2 16M
dd if=header.qcow2 of="$hostile" bs=1024 count=1 conv=notrunc status=none
qemu-img create -q -f qcow2 -b hostile.raw -F raw "$work/fast/overlay.qcow2"
[[ "$(qemu-img info --output=json "$hostile" | python3 -c 'import json,sys; print(json.load(sys.stdin)["format"])')" == qcow2 ]] ||
    fail "qemu-img does not take the hostile raw disk for qcow2"

# LeakSanitizer cannot work under ptrace: the sanitizer pass's leak checks stay with the other tests.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"

traced() { # NAME ARGS...: a scan under strace; exit status in NAME.exit
    local name=$1
    shift
    set +e
    strace -f -qq --seccomp-bpf -e trace=open,openat,openat2 -o "$name.trace" \
        "$coldscan" scan --no-cache --clamav-db "$work/sigs/clamav" --no-progress --no-summary \
        --report "$name.json" --inventory "$name.jsonl" "$@" >"$name.out" 2>"$name.err"
    echo $? >"$name.exit"
    set -e
}

note "1. --format raw through direct, auto and guestfs; the overlay through auto"
traced direct --backend direct --format raw "$hostile"
traced auto --format raw --accel tcg "$hostile"
LIBGUESTFS_DEBUG=1 traced guestfs --backend guestfs --format raw --accel tcg "$hostile"
traced overlay --accel tcg "$work/fast/overlay.qcow2"
note "2. the export read as qcow2 by mistake: the file view stops qemu"
COLDSCAN_TEST_APPLIANCE_EXPORT_FORMAT=qcow2 traced mistake --backend guestfs --format raw --accel tcg "$hostile"

python3 - "$canary" <<'PY'
import json, re, sys
canary = sys.argv[1]
failures = []
def check(ok, what):
    if not ok:
        failures.append(what)

def canary_opens(name):
    return [l.rstrip() for l in open(name + ".trace") if canary in l]

for name in ["direct", "auto", "guestfs", "overlay", "mistake"]:
    exit_code = int(open(name + ".exit").read())
    report = json.load(open(name + ".json"))
    check(exit_code == 2, f"{name}: exit {exit_code}, want 2 ({open(name + '.err').read()[-400:]})")
    check(report["detections"] == [], f"{name}: detections {report['detections']}")
    check(report["counts"]["files"] == 0, f"{name}: {report['counts']['files']} files scanned")
    text = open(name + ".json").read() + open(name + ".jsonl").read() + open(name + ".out").read()
    check("canary-eicar" not in text, f"{name}: a file of the canary shows in its report")
    if name != "mistake":
        check(any(e["outcome"] == "NO_FILESYSTEM" for e in report["errors"]),
              f"{name}: no NO_FILESYSTEM error: {report['errors']}")
        check(canary_opens(name) == [], f"{name}: the canary was opened: {canary_opens(name)[:3]}")
        check(canary not in text, f"{name}: the report names the canary")
    if name != "direct":  # the appliance's qemu started through its confinement (it reads its view file)
        check(re.search(r'coldscan-appliance-[^/]*/view"', open(name + ".trace").read()) is not None,
              f"{name}: the appliance's qemu did not start confined")

# The mistake: qemu tried (the hook works) and the kernel refused every time.
opens = canary_opens("mistake")
check(len(opens) > 0, "mistake: qemu never tried to open the canary (the hook did nothing?)")
check(all(re.search(r"= -1 EACCES", l) for l in opens), f"mistake: an open of the canary got through: {opens}")
check("Permission denied" in open("mistake.err").read(), "mistake: the error does not say qemu was refused")

# qemu's command line (LIBGUESTFS_DEBUG): every drive has a top-level format.
def top_level_keys(spec):
    keys = set()
    for part in re.split(r"(?<!,),(?!,)", spec):
        key = part.split("=", 1)[0]
        keys.add(key)
    return keys
drives = re.findall(r"-drive (\S+)", open("guestfs.err").read())
check(len(drives) >= 2, f"guestfs: no -drive in the debug output ({len(drives)})")
for spec in drives:
    check("format" in top_level_keys(spec), f"a drive without a top-level format: {spec}")
if failures:
    print("FAIL: " + "\n".join(failures), file=sys.stderr)
    sys.exit(1)
print(f"ok: {len(drives)} drives with a format; canary never opened; the mistake refused {len(opens)} times")
PY

note "3. the service: a domain XML with <driver type='raw'/> on the hostile disk"
cat >raw-domain.xml <<XML
<domain type="kvm">
  <name>hostilevm</name>
  <devices>
    <disk type="file" device="disk"><driver name='qemu' type='raw'/>
      <source file="$hostile"/><target dev="vda" bus="virtio"/></disk>
  </devices>
</domain>
XML
write_config config.toml
strace -f -qq --seccomp-bpf -e trace=open,openat,openat2 -o service.trace \
    "$coldscan" serve --config config.toml >>"$work/serve.log" 2>&1 &
strace_pid=$!
for _ in $(seq 1 100); do
    serve_pid=$(pgrep -P "$strace_pid" || true)
    [[ -n "$serve_pid" ]] && break
    sleep 0.1
done
[[ -n "$serve_pid" ]] || fail "coldscan serve did not start under strace"
for _ in $(seq 1 600); do
    curl -fsS "$server/v1/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
set +e
"$coldscan" gate --domain-xml raw-domain.xml >gate.out 2>gate.err
gate_exit=$?
set -e
stop_service
wait "$strace_pid" 2>/dev/null || true
[[ $gate_exit -eq 2 ]] || fail "gate: exit $gate_exit, want 2 ($(cat gate.out gate.err))"
grep -q "not fully scanned" gate.out || fail "gate: the answer does not say it was not scanned: $(cat gate.out)"
if grep -q "$canary" service.trace; then
    fail "the service opened the canary: $(grep "$canary" service.trace | head -3)"
fi
grep -q 'coldscan-appliance-[^/]*/view"' service.trace || fail "the service's appliance did not run its confined qemu"
echo "ok: the service's gate denied the hostile raw disk without opening the canary"
