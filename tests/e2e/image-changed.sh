#!/usr/bin/env bash
# image-changed.sh COLDSCAN FIXTURES WORKDIR
#
# An image that changes while it is scanned (a VM still writing, a copy still arriving) gives a report that
# may mix two states of the disk. coldscan takes every layer's identity (and the top layer's first MiB)
# before and after; here the image is written to at a known point, through the documented test hook
# COLDSCAN_TEST_PAUSE_FILE (the scan waits after taking the identity until the file exists):
#   1. coldscan scan: the target is `inconsistent`, errors[] has IMAGE_CHANGED naming the change, exit 2,
#      and the cache received nothing (verdicts_written 0);
#   2. the same scan again on the same cache: every file is read and scanned again (no identity or verdict
#      hit), the target is completed, exit 0; a third run then reads nothing (the cache works);
#   3. the service: the job is queued again (one attempt counted, last_error says what changed), then
#      succeeds on its next attempt.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/script-start.sh
source "$here/script-start.sh"
# shellcheck source=tests/e2e/service-lib.sh
source "$here/service-lib.sh"
cd "$work"
export PATH=$PATH:/usr/sbin:/sbin

mkdir -p tree/etc tree/home
for i in $(seq 1 20); do printf 'configuration %s\n' "$i" >"tree/etc/conf$i"; done
head -c 300000 /dev/urandom >tree/home/blob.bin
mkfs.ext4 -q -F -b 4096 -L changing -d tree fs.raw 32M
make_layout
image=$work/fast/changing.qcow2
qemu-img convert -f raw -O qcow2 fs.raw "$image"

# wait_file FILE: until it exists (the scan reached the hook), or fail after 120 s.
wait_file() {
    local i
    for i in $(seq 1 1200); do
        [[ -e "$1" ]] && return 0
        sleep 0.1
    done
    fail "$1 did not appear within 120 s"
}
# A guest write in the image's free space: new content, new size/mtime, still a valid qcow2.
write_into_image() {
    qemu-io -f qcow2 -c "write -P 0x55 24M 64k" "$1" >/dev/null
}

scan() { # NAME [ENV...]: exit status in NAME.exit
    local name=$1
    shift
    set +e
    env "$@" "$coldscan" scan --cache "$work/cache" --backend direct --clamav-db "$work/sigs/clamav" \
        --no-progress --report "$name.json" "$image" >"$name.out" 2>"$name.err"
    echo $? >"$name.exit"
    set -e
}

note "1. written to during the scan"
scan changed COLDSCAN_TEST_PAUSE_FILE="$work/go" &
scan_pid=$!
wait_file "$work/go.paused"
write_into_image "$image"
touch "$work/go"
wait "$scan_pid"
note "2. again on the same cache, then once more"
scan again
scan third
python3 - "$image" <<'PY'
import json, sys
image = sys.argv[1]
failures = []
def check(ok, what):
    if not ok:
        failures.append(what)
changed = json.load(open("changed.json"))
changed_exit = int(open("changed.exit").read())
target = changed["targets"][0]
check(changed_exit == 2, f"changed: exit {changed_exit}, want 2")
check(target["status"] == "inconsistent", f"changed: status {target['status']}")
check("changed while it was scanned" in target.get("error", ""), f"changed: error {target.get('error')}")
issues = [e for e in changed["errors"] if e["outcome"] == "IMAGE_CHANGED"]
check(len(issues) == 1 and image in issues[0]["reason"] and "size" in issues[0]["reason"],
      f"changed: IMAGE_CHANGED entry {changed['errors']}")
check(changed["status"] != "completed", f"changed: run status {changed['status']}")
check(changed["cache"]["verdicts_written"] == 0, f"changed: verdicts written {changed['cache']}")
check(target["counts"]["files"] == 21, f"changed: files {target['counts']}")
out = open("changed.out").read() + open("changed.err").read()
check("changed while it was scanned" in out, "changed: the console does not say the image changed")

again = json.load(open("again.json"))
again_exit = int(open("again.exit").read())
check(again_exit == 0, f"again: exit {again_exit}, want 0")
check(again["targets"][0]["status"] == "completed", f"again: status {again['targets'][0]['status']}")
cache = again["cache"]
check(cache["identity_hits"] == 0 and cache["verdict_hits"] == 0 and cache["files_not_read"] == 0,
      f"again: something came from the inconsistent run's cache: {cache}")
check(cache["engine_scans"] >= 21 and cache["verdicts_written"] >= 21, f"again: files not scanned again: {cache}")

third = json.load(open("third.json"))["cache"]
check(third["files_not_read"] == 21 and third["engine_scans"] == 0, f"third: the cache was not used: {third}")
if failures:
    print("FAIL: " + "; ".join(failures), file=sys.stderr)
    print(open("changed.err").read(), file=sys.stderr)
    sys.exit(1)
print(f"ok: inconsistent ({issues[0]['reason']}); nothing cached; the next run read every file again")
PY

note "3. the service queues the job again"
write_config config.toml
COLDSCAN_TEST_PAUSE_FILE="$work/service-go" start_service config.toml
submitted=$(api POST /v1/scans "{\"targets\": [\"$image\"]}")
[[ "$(tail -1 <<<"$submitted")" == 202 ]] || fail "submit: $submitted"
id=$(json_field "$(head -n -1 <<<"$submitted")" 'j["jobs"][0]["id"]')
wait_file "$work/service-go.paused"
write_into_image "$image"
touch "$work/service-go"
wait_for "$id" 'j["attempts"] == 1' 120
[[ "$(job_field "$id" 'j["status"]')" =~ ^(queued|running|succeeded)$ ]] || fail "job after a change: $(job_field "$id" 'j')"
job_field "$id" 'j["last_error"]' | grep -q "changed while it was scanned" || fail "last_error: $(job_field "$id" 'j')"
# The retry comes after the back-off (30 s for a first failure) and scans the image at rest.
wait_for "$id" 'j["status"] == "succeeded"' 240
[[ "$(job_field "$id" 'j["attempts"]')" == 1 ]] || fail "attempts after the retry: $(job_field "$id" 'j')"
stop_service
echo "ok: the service queued the changed image again and scanned it at rest"
