#!/usr/bin/env bash
# vm-gate.sh COLDSCAN FIXTURES WORKDIR
#
# A VM whose volume group spans two disks, through the scan service: the power-on gate must judge the VM, not
# each disk (a disk alone is an incomplete VG: never clean, so the gate could only refuse). The disks are the
# spanning-disk1/2 fixtures of make-lvm-layouts.sh (LV spanvg/data over both, /srv/eicar.com planted), disk 1
# in datastore "fast" and disk 2 in datastore "slow": a VM may lie in two datastores.
#   1. `coldscan gate --domain-xml` (what the libvirt hook runs): one job "vm:spanvm" of both disks; deny,
#      naming /srv/eicar.com; its report is one VM target with both disks and the LV read whole, no errors
#   2. `coldscan submit --one-vm` of the same disks finds that job (no second scan); a gate of disk 1 alone is
#      an error (exit 2, the LV is incomplete), never an allow
#   3. the shipped libvirt qemu hook refuses to start the VM, the XML on its stdin
#   4. POST /v1/scans {"vm": ...} refusals: a disk outside every datastore (403), a missing disk (404), a
#      vm: target without disks (400)
#   5. after a restart the job still lists its disks, and a gate reuses its verdict (no new job)
#   6. nightly discovery over libvirt (test:/// driver) queues the domain as one job "libvirt:spanvm", which
#      finds the same detection
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/script-start.sh
source "$here/script-start.sh"
# shellcheck source=tests/e2e/service-lib.sh
source "$here/service-lib.sh"
hook=$here/../../scheduler/dist/libvirt-hook-qemu
layouts=$(readlink -f "$fixtures/lvm-layouts")
for needed in spanning-disk1 spanning-disk2; do
    [[ -f $layouts/$needed.qcow2 ]] || fail "$layouts/$needed.qcow2 is missing (e2e.lvm-layouts.fixtures builds it)"
done
cd "$work"
make_layout
cp "$layouts/spanning-disk1.qcow2" "$work/fast/span1.qcow2"
cp "$layouts/spanning-disk2.qcow2" "$work/slow/span2.qcow2"
cat >span.xml <<EOF
<domain type="kvm">
  <name>spanvm</name>
  <devices>
    <disk type="file" device="disk"><driver name="qemu" type="qcow2"/>
      <source file="$work/fast/span1.qcow2"/><target dev="vda" bus="virtio"/></disk>
    <disk type="file" device="disk"><driver name="qemu" type="qcow2"/>
      <source file="$work/slow/span2.qcow2"/><target dev="vdb" bus="virtio"/></disk>
  </devices>
</domain>
EOF
slow_rate=64M write_config config.toml
start_service config.toml

note "1. gate --domain-xml: one VM job, deny"
set +e
"$coldscan" gate --domain-xml span.xml >gate.out 2>&1
gate_exit=$?
set -e
cat gate.out
[[ $gate_exit -eq 1 ]] || fail "gate --domain-xml: exit $gate_exit, want 1 (deny)"
grep -q '^deny' gate.out || fail "gate --domain-xml did not deny"
grep -q '/srv/eicar.com' gate.out || fail "the deny does not name /srv/eicar.com"
grep -q 'vm:spanvm' gate.out || fail "the deny does not name the VM"
jobs=$(curl -fsS "$server/v1/scans")
[[ "$(json_field "$jobs" 'len(j["jobs"])')" == 1 ]] || fail "the gate made other than one job: $jobs"
vm_id=$(json_field "$jobs" 'j["jobs"][0]["id"]')
[[ "$(job_field "$vm_id" 'j["target"]')" == vm:spanvm ]] || fail "the job's target is not vm:spanvm"
[[ "$(job_field "$vm_id" '[d["path"] for d in j["disks"]]')" == "['$work/fast/span1.qcow2', '$work/slow/span2.qcow2']" ]] ||
    fail "the job's disks: $(job_field "$vm_id" 'j["disks"]')"
[[ "$(job_field "$vm_id" 'j["priority"]')" == gate ]] || fail "the VM job is not at gate priority"
curl -fsS "$server/v1/scans/$vm_id/report" >vm-report.json
python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
report = json.load(open("vm-report.json"))
assert len(report["targets"]) == 1, report["targets"]
target = report["targets"][0]
assert target["path"] == "vm:spanvm" and target["format"] == "vm", (target["path"], target["format"])
assert [d["path"] for d in target["disks"]] == [work + "/fast/span1.qcow2", work + "/slow/span2.qcow2"], target["disks"]
devices = {fs["device"]: fs for fs in target["filesystems"]}
assert "/dev/spanvg/data" in devices, sorted(devices)
assert devices["/dev/spanvg/data"]["status"] != "failed", devices["/dev/spanvg/data"]
detections = sorted((d["device"], d["path"]) for d in report["detections"])
assert detections == [("/dev/spanvg/data", "/srv/eicar.com")], detections
assert report["counts"]["errors"] == 0, report["counts"]
print("vm report: disks", len(target["disks"]), "filesystems", sorted(devices), "files", report["counts"]["files"])
PY

note "2. submit --one-vm finds the same job; one disk alone is never allowed"
set +e
"$coldscan" submit --one-vm --wait "$work/fast/span1.qcow2" "$work/slow/span2.qcow2" >one-vm.out 2>&1
one_vm_exit=$?
"$coldscan" gate "$work/fast/span1.qcow2" >gate-disk1.out 2>&1
disk1_exit=$?
set -e
[[ $one_vm_exit -eq 1 ]] || fail "submit --one-vm --wait: exit $one_vm_exit, want 1 ($(cat one-vm.out))"
grep -q "$vm_id" one-vm.out || fail "submit --one-vm made another job than $vm_id: $(cat one-vm.out)"
cat gate-disk1.out
[[ $disk1_exit -eq 2 ]] || fail "gate of disk 1 alone: exit $disk1_exit, want 2 ($(cat gate-disk1.out))"
grep -q '/dev/spanvg/data: .*--domain-xml' gate-disk1.out || fail "the gate of disk 1 does not say why: $(cat gate-disk1.out)"

note "3. the libvirt hook refuses the VM"
cat >gate.env <<EOF
COLDSCAN_SERVER=$server
COLDSCAN_BIN=$coldscan
EOF
set +e
COLDSCAN_GATE_ENV=$work/gate.env "$hook" spanvm prepare begin - <span.xml >hook.out 2>&1
hook_exit=$?
set -e
[[ $hook_exit -ne 0 ]] || fail "the hook let spanvm start: $(cat hook.out)"
grep -q '/srv/eicar.com' hook.out || fail "the hook gave no reason: $(cat hook.out)"

note "4. API refusals"
expect_status() { # WANT BODY
    local answer status
    answer=$(api POST /v1/scans "$2")
    status=$(tail -n1 <<<"$answer")
    [[ "$status" == "$1" ]] || fail "POST $2: status $status, want $1 ($answer)"
    echo "$1: $(head -n1 <<<"$answer")"
}
cp "$work/fast/span1.qcow2" "$work/elsewhere.qcow2"
expect_status 403 "{\"vm\": {\"name\": \"x\", \"disks\": [{\"path\": \"$work/fast/span1.qcow2\"}, {\"path\": \"$work/elsewhere.qcow2\"}]}}"
expect_status 404 "{\"vm\": {\"name\": \"x\", \"disks\": [{\"path\": \"$work/fast/span1.qcow2\"}, {\"path\": \"$work/fast/gone.qcow2\"}]}}"
expect_status 400 "{\"targets\": [\"vm:x\"]}"

note "5. a restart keeps the VM job; a gate reuses its verdict"
stop_service
start_service config.toml
[[ "$(job_field "$vm_id" 'len(j["disks"])')" == 2 ]] || fail "after a restart the job has lost its disks"
set +e
"$coldscan" gate --domain-xml span.xml >gate-again.out 2>&1
again_exit=$?
set -e
[[ $again_exit -eq 1 ]] || fail "gate after restart: exit $again_exit ($(cat gate-again.out))"
[[ "$(json_field "$(curl -fsS "$server/v1/scans")" 'len(j["jobs"])')" == 2 ]] ||
    fail "the gate after a restart made a new job: $(curl -fsS "$server/v1/scans")"
stop_service

note "6. nightly discovery: a libvirt domain is one job"
python3 - span.xml >node.xml <<'PY'
import sys, xml.etree.ElementTree as ET
domain = ET.parse(sys.argv[1]).getroot()
domain.set("type", "test")
for tag, text in (("memory", "65536"),):
    ET.SubElement(domain, tag).text = text
ET.SubElement(ET.SubElement(domain, "os"), "type").text = "hvm"
print("<node>" + ET.tostring(domain, encoding="unicode") + "</node>")
PY
state=$work/state-night write_config night.toml "[libvirt]" "uri = \"test://$work/node.xml\"" \
    "[[nightly_window]]" 'time = "00:00-24:00"'
start_service night.toml
for _ in $(seq 1 120); do
    jobs=$(curl -fsS "$server/v1/scans")
    [[ "$(json_field "$jobs" 'len(j["jobs"])')" == 1 ]] && break
    sleep 0.5
done
[[ "$(json_field "$jobs" '[(x["target"], x["requested_by"]) for x in j["jobs"]]')" == "[('libvirt:spanvm', 'nightly discovery')]" ]] ||
    fail "discovery did not queue the domain as one job: $jobs"
night_id=$(json_field "$jobs" 'j["jobs"][0]["id"]')
wait_for "$night_id" 'j["status"] == "succeeded"' 300
[[ "$(job_field "$night_id" 'j["verdict"]["detections"], j["verdict"]["not_fully_scanned"]')" == "(1, 0)" ]] ||
    fail "the discovered domain's verdict: $(job_field "$night_id" 'j["verdict"]')"
stop_service
echo "PASS"
