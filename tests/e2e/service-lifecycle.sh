#!/usr/bin/env bash
# service-lifecycle.sh COLDSCAN FIXTURES WORKDIR
#
# A real `coldscan serve` through its lifecycle, on a datastore whose host reads at $slow_rate so that scans
# last long enough to be interrupted:
#   1. cancel: a running scan stops reading within seconds and frees its host's slot;
#   2. kill -9 mid-scan, restart: the acknowledged job resumes and completes; files verdicted before the
#      kill are not read again; the detections equal a plain scan's; exactly one alert;
#   3. signature reload mid-run (a new database file, then SIGHUP): the running scan finishes with the set it
#      started with and its report names it; a scan submitted after the reload uses the new set;
#   4. SIGTERM with a short grace: a scan that cannot finish in time is stopped and queued again, serve
#      exits 0, and the next start picks the job up.
#   5. a gate scan on a host whose one slot a nightly scan holds: the nightly scan is paused, the gate
#      answers, the nightly scan resumes and completes with every file.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/script-start.sh
source "$here/script-start.sh"
# shellcheck source=tests/e2e/service-lib.sh
source "$here/service-lib.sh"
cd "$work"
make_layout
grace=3 write_config config.toml
start_service config.toml

submit_one() { # TARGET: prints the job id
    local answer
    answer=$(api POST /v1/scans "{\"targets\": [\"$1\"]}")
    [[ "$(tail -1 <<<"$answer")" == 202 ]] || fail "submit $1: $answer"
    json_field "$(head -n -1 <<<"$answer")" 'j["jobs"][0]["id"]'
}
running_on() { # HOST
    json_field "$(curl -fsS "$server/v1/hosts")" "[h['running'] for h in j['hosts'] if h['name']=='$1'][0]"
}

note "1. cancel a running scan"
id=$(submit_one "$work/slow/slow-clean.qcow2")
wait_for "$id" 'j["status"] == "running" and (j["progress"] or {}).get("bytes_done", 0) > 0' 120
"$coldscan" cancel "$id" >/dev/null || fail "coldscan cancel failed"
[[ "$(job_field "$id" 'j["status"]')" == cancelled ]] || fail "cancelled job has status $(job_field "$id" 'j["status"]')"
for _ in $(seq 1 20); do
    [[ "$(running_on slowhost)" == 0 ]] && break
    sleep 0.5
done
[[ "$(running_on slowhost)" == 0 ]] || fail "the cancelled scan still holds slowhost's slot after 10 s"

note "2. kill -9 mid-scan and resume"
id=$(submit_one "$work/slow/slow-infected.qcow2")
wait_for "$id" 'j["status"] == "running" and (j["progress"] or {}).get("files_done", 0) >= 50' 180
kill -9 "$serve_pid"
wait "$serve_pid" 2>/dev/null || true
start_service config.toml
wait_for "$id" 'j["status"] == "succeeded"' 300
curl -fsS "$server/v1/scans/$id/report" >resumed.json
"$coldscan" scan --no-cache --no-progress --no-summary --quiet-issues --clamav-db "$work/sigs/clamav" \
    --yara-rules "$work/sigs/yara" --report reference.json "$work/slow/slow-infected.qcow2" >/dev/null 2>&1 || true
python3 - "$id" <<'PY'
import json, sys
job_id = sys.argv[1]
resumed = json.load(open("resumed.json"))
reference = json.load(open("reference.json"))
key = lambda r: sorted((d["path"], d["signature"]) for d in r["detections"])
assert key(resumed) == key(reference), (key(resumed), key(reference))
assert resumed["counts"] == reference["counts"], (resumed["counts"], reference["counts"])
cache = resumed["cache"]
# Files verdicted before the kill are known by identity: not read, not scanned again.
assert cache["files_not_read"] >= 40, cache
assert cache["engine_scans"] < reference["cache"]["engine_scans"], (cache, reference["cache"])
alerts = [json.loads(l) for l in open("state/alerts.jsonl")]
assert len([a for a in alerts if a["job"] == job_id]) == 1, alerts
PY

note "3. signature reload mid-run"
old_set=$(json_field "$(curl -fsS "$server/v1/healthz")" 'j["signature_set"]')
# A new image (the scan is not known yet): it runs while the signatures change.
cp "$work/slow/slow-clean.qcow2" "$work/slow/reload.qcow2"
id=$(submit_one "$work/slow/reload.qcow2")
wait_for "$id" 'j["status"] == "running" and (j["progress"] or {}).get("bytes_done", 0) > 0' 120
printf 'ColdscanReloadTest:0:*:636f6c647363616e2d72656c6f61642d74657374\n' >"$work/sigs/clamav/reload.ndb"
kill -HUP "$serve_pid"
for _ in $(seq 1 60); do
    new_set=$(json_field "$(curl -fsS "$server/v1/healthz")" 'j["signature_set"]')
    [[ "$new_set" != "$old_set" ]] && break
    sleep 0.5
done
[[ "$new_set" != "$old_set" ]] || fail "SIGHUP did not load a new signature set"
curl -fsS "$server/metrics" | grep -q '^coldscan_signature_reloads_total 1$' || fail "reload not counted"
wait_for "$id" 'j["status"] == "succeeded"' 300
[[ "$(job_field "$id" 'j["verdict"]["signature_set"]')" == "$old_set" ]] || fail "the running scan changed sets"
after=$(submit_one "$work/fast/clean.qcow2")
wait_for "$after" 'j["status"] == "succeeded"' 300
[[ "$(job_field "$after" 'j["verdict"]["signature_set"]')" == "$new_set" ]] || fail "a new scan used the old set"

note "4. SIGTERM: stop, requeue, resume at the next start"
id=$(submit_one "$work/slow/slow-clean.qcow2")
wait_for "$id" 'j["status"] == "running" and (j["progress"] or {}).get("bytes_done", 0) > 0' 120
start=$(date +%s)
kill -TERM "$serve_pid"
wait "$serve_pid" || fail "serve did not exit 0 after SIGTERM"
took=$(($(date +%s) - start))
[[ $took -le 60 ]] || fail "shutdown took $took s with a 3 s grace"
grep -q "SIGTERM" serve.log || fail "serve.log does not mention SIGTERM"
start_service config.toml
wait_for "$id" 'j["status"] == "succeeded"' 300
[[ "$(job_field "$id" 'j["attempts"]')" == 0 ]] || fail "a shutdown counted as a failed attempt"

note "5. a gate scan on a full host pauses a nightly scan, which resumes afterwards"
cp "$work/slow/slow-clean.qcow2" "$work/slow/nightly.qcow2"
cp "$work/slow/slow-clean.qcow2" "$work/slow/gated.qcow2"
answer=$(api POST /v1/scans "{\"targets\": [\"$work/slow/nightly.qcow2\"], \"priority\": \"nightly\"}")
nightly=$(json_field "$(head -n -1 <<<"$answer")" 'j["jobs"][0]["id"]')
wait_for "$nightly" 'j["status"] == "running" and (j["progress"] or {}).get("bytes_done", 0) > 0' 120
"$coldscan" gate "$work/slow/gated.qcow2" >gate.out 2>&1 || fail "gate on a full host: $(cat gate.out)"
grep -q "job $nightly: paused for a gate scan" serve.log || fail "the nightly scan was not paused"
[[ "$(job_field "$nightly" 'j["status"]')" != succeeded ]] || fail "the nightly scan finished before the gate scan"
wait_for "$nightly" 'j["status"] == "succeeded"' 300
clean_files=$(job_field "$after" 'j["verdict"]["files"]') # the same tree, scanned whole in step 3
[[ "$(job_field "$nightly" 'j["verdict"]["files"]')" == "$clean_files" ]] || fail "the resumed nightly scan lost files"
[[ "$(job_field "$nightly" 'j["attempts"]')" == 0 ]] || fail "a pause counted as a failed attempt"
stop_service
echo "service-lifecycle: all checks passed"
