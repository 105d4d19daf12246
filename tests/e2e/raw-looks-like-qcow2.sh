#!/usr/bin/env bash
# raw-looks-like-qcow2.sh COLDSCAN FIXTURES WORKDIR
#
# A raw disk whose first bytes are a qcow2 header naming /etc/passwd as its backing file: what a guest (or
# anyone who can write a raw disk's first sector) can make. ext4 made directly on the file leaves bytes
# 0-1023 free, so the filesystem (with EICAR in it) stays intact under the fake header.
#   1. coldscan scan --format raw: scanned as raw ext4, EICAR found (exit 1), /etc/passwd never opened;
#   2. without --format: the gate refuses it (backing file outside the roots), says to give --format raw,
#      exit 2;
#   3. through the service: a libvirt domain XML with <driver type='raw'/> (coldscan gate --domain-xml) is
#      scanned as raw (deny, the detection named); the same XML without a type is refused by the gate
#      (exit 2); coldscan submit --format raw carries the format into the job (the gate's job); a format
#      detection finds too is the same job, a raw reading of a qcow2 file another.
# --backend direct / the service's direct path: no appliance launch.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/script-start.sh
source "$here/script-start.sh"
# shellcheck source=tests/e2e/service-lib.sh
source "$here/service-lib.sh"
cd "$work"
export PATH=$PATH:/usr/sbin:/sbin

eicar='X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
mkdir -p tree/docs
printf '%s' "$eicar" >tree/docs/eicar.com
for i in $(seq 1 10); do printf 'file %s\n' "$i" >"tree/docs/f$i.txt"; done
make_layout
disk=$work/fast/disk.img
mkfs.ext4 -q -F -b 4096 -L rawdisk -d tree "$disk" 16M
qemu-img create -q -f qcow2 -u -b /etc/passwd -F raw header.qcow2 16M
python3 - "$disk" <<'PY'
import sys
header = open("header.qcow2", "rb").read(1024)
assert header.startswith(b"QFI\xfb") and b"/etc/passwd" in header, "the qcow2 header does not fit in 1 KiB"
with open(sys.argv[1], "r+b") as disk:
    assert disk.read(1024) == bytes(1024), "ext4 left the first KiB in use"
    disk.seek(0)
    disk.write(header)
PY
[[ "$(qemu-img info --output=json "$disk" | python3 -c 'import json,sys; print(json.load(sys.stdin)["format"])')" == qcow2 ]] ||
    fail "qemu-img does not take the doctored raw disk for qcow2"

scan() { # NAME ARGS...: exit status in NAME.exit
    local name=$1
    shift
    set +e
    "$coldscan" scan --no-cache --backend direct --clamav-db "$work/sigs/clamav" --no-progress --no-summary \
        --report "$name.json" --inventory "$name.jsonl" "$@" >"$name.out" 2>"$name.err"
    echo $? >"$name.exit"
    set -e
}

note "1. --format raw: scanned as raw"
scan as-raw --format raw "$disk"
note "2. detected: refused"
scan detected "$disk"
python3 - "$disk" <<'PY'
import json, sys
disk = sys.argv[1]
failures = []
def check(ok, what):
    if not ok:
        failures.append(what)
raw = json.load(open("as-raw.json"))
raw_exit = int(open("as-raw.exit").read())
check(raw_exit == 1, f"--format raw: exit {raw_exit}, want 1 ({open('as-raw.err').read()})")
target = raw["targets"][0]
check(target["format"] == "raw", f"--format raw: target format {target['format']}")
check(target["backing_chain"] == [], f"--format raw: a backing chain {target['backing_chain']}")
check([fs["type"] for fs in target["filesystems"]] == ["ext4"], f"filesystems {target['filesystems']}")
check(sorted(d["path"] for d in raw["detections"]) == ["/docs/eicar.com"], f"detections {raw['detections']}")
check(raw["counts"]["files"] == 11, f"files {raw['counts']}")
lines = [json.loads(l) for l in open("as-raw.jsonl")]
check(not any("passwd" in l["path"] for l in lines), "a file named passwd was scanned")

detected_exit = int(open("detected.exit").read())
err = open("detected.err").read()
report = json.load(open("detected.json"))
check(detected_exit == 2, f"detected: exit {detected_exit}, want 2")
check(report["targets"][0]["status"] == "failed", f"detected: status {report['targets'][0]['status']}")
check("backing file '/etc/passwd'" in err and "outside the allowed roots" in err,
      f"detected: the error does not name the backing file outside the roots: {err}")
check("--format raw" in err, f"detected: the error does not say how to scan it as raw: {err}")
check(report["counts"]["files"] == 0, "detected: files were scanned")
if failures:
    print("FAIL: " + "; ".join(failures), file=sys.stderr)
    sys.exit(1)
print("ok: --format raw scans the doctored disk as raw (EICAR found); detection refuses it")
PY

note "3. the service: a domain XML with <driver type='raw'/>"
domain_xml() { # FILE DRIVER-ELEMENT
    cat >"$1" <<XML
<domain type="kvm">
  <name>rawvm</name>
  <devices>
    <disk type="file" device="disk">$2
      <source file="$disk"/><target dev="vda" bus="virtio"/></disk>
  </devices>
</domain>
XML
}
domain_xml raw-domain.xml "<driver name='qemu' type='raw'/>"
domain_xml typeless-domain.xml "<driver name='qemu'/>"
write_config config.toml
start_service config.toml
set +e
"$coldscan" gate --domain-xml raw-domain.xml >gate-raw.out 2>gate-raw.err
gate_raw_exit=$?
"$coldscan" gate --domain-xml typeless-domain.xml >gate-typeless.out 2>gate-typeless.err
gate_typeless_exit=$?
set -e
[[ $gate_raw_exit -eq 1 ]] || fail "gate <driver type='raw'>: exit $gate_raw_exit, want 1 ($(cat gate-raw.out gate-raw.err))"
grep -q '^deny: 1 detection: .*/docs/eicar.com' gate-raw.out || fail "gate raw: $(cat gate-raw.out)"
[[ $gate_typeless_exit -eq 2 ]] || fail "gate without a type: exit $gate_typeless_exit, want 2 ($(cat gate-typeless.out))"
grep -q "outside the allowed roots" gate-typeless.out || fail "gate without a type: $(cat gate-typeless.out)"

jobs=$(curl -fsS "$server/v1/scans")
raw_id=$(json_field "$jobs" '[x["id"] for x in j["jobs"] if x["target"].endswith("/disk.img")][0]')
[[ "$(job_field "$raw_id" 'j["format"]')" == raw ]] || fail "the gate's job does not carry the format: $jobs"
[[ "$(job_field "$raw_id" 'j["status"]')" == succeeded ]] || fail "the gate's job did not succeed"
curl -fsS "$server/v1/scans/$raw_id/report" >service-report.json
python3 - <<'PY'
import json
report = json.load(open("service-report.json"))
target = report["targets"][0]
assert target["format"] == "raw", target["format"]
assert [d["path"] for d in report["detections"]] == ["/docs/eicar.com"], report["detections"]
PY

# submit --format raw: the same job as the gate's (same image, format and signatures), already done.
set +e
"$coldscan" submit --format raw --wait "$disk" >submit.out 2>submit.err
submit_exit=$?
set -e
[[ $submit_exit -eq 1 ]] || fail "submit --format raw --wait: exit $submit_exit, want 1 ($(cat submit.out submit.err))"
jobs=$(curl -fsS "$server/v1/scans")
count=$(json_field "$jobs" 'len([x for x in j["jobs"] if x["target"].endswith("/disk.img")])')
[[ $count -eq 1 ]] || fail "submit --format raw made another job for the same image and format: $jobs"
# Job ids: a format detection would find too is the same job; a raw reading of a qcow2 file is another.
cp "$fixtures/images/clean.qcow2" "$work/fast/plain.qcow2"
submit_id() { # BODY: the first job's id
    local answer
    answer=$(api POST /v1/scans "$1")
    [[ "$(tail -1 <<<"$answer")" == 202 ]] || fail "submit $1: $answer"
    json_field "$(head -n -1 <<<"$answer")" 'j["jobs"][0]["id"]'
}
detected_id=$(submit_id "{\"targets\": [\"$work/fast/plain.qcow2\"]}")
given_id=$(submit_id "{\"targets\": [\"$work/fast/plain.qcow2\"], \"format\": \"qcow2\"}")
as_raw_id=$(submit_id "{\"targets\": [\"$work/fast/plain.qcow2\"], \"format\": \"raw\"}")
[[ "$detected_id" == "$given_id" ]] || fail "format qcow2 given and detected are different jobs"
[[ "$as_raw_id" != "$detected_id" ]] || fail "a raw reading of a qcow2 file is the same job as its qcow2 reading"
[[ "$(job_field "$as_raw_id" 'j["format"]')" == raw ]] || fail "the raw job does not carry its format"
# An unknown format is refused by the API.
answer=$(api POST /v1/scans "{\"targets\": [\"$disk\"], \"format\": \"iso\"}")
[[ "$(tail -1 <<<"$answer")" == 400 ]] || fail "format iso: $answer"
stop_service
echo "ok: raw disk with a qcow2 header scanned as raw through --format, the domain XML and submit --format"
