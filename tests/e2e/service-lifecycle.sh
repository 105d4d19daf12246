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
#      answers, the nightly scan resumes and completes with every file;
#   6. the closed loop: a load probe above the host's threshold holds new scans back until it falls;
#   7. nightly windows: outside one a nightly scan waits and `coldscan plan` starts it at the window;
#      discovery queues a datastore's images when a window is open.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/script-start.sh
source "$here/script-start.sh"
# shellcheck source=tests/e2e/service-lib.sh
source "$here/service-lib.sh"
cd "$work"
make_layout
# fasthost's load comes from a command that prints the file load.txt (the closed loop, step 6).
printf '#!/bin/sh\ncat %s/load.txt\n' "$work" >probe.sh
chmod 755 probe.sh
echo 0.1 >load.txt
grace=3 fasthost_extra="load_probe = [\"$work/probe.sh\"]
pressure_threshold = 0.5" write_config config.toml
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
# Killed once at least 20 files are verdicted; if the scan happened to finish first, again on a new copy.
recovered=0
for attempt in 1 2 3; do
    cp "$work/slow/slow-infected.qcow2" "$work/slow/killed-$attempt.qcow2"
    id=$(submit_one "$work/slow/killed-$attempt.qcow2")
    wait_for "$id" 'j["status"] == "succeeded" or (j["progress"] or {}).get("files_done", 0) >= 20' 180
    before=$(job_field "$id" '(j["progress"] or {}).get("files_done", 0)')
    # Verdicts reach the store at checkpoints, at most every 250 ms (ScanCache::begin_target): once one has
    # passed, every file done at `before` is durable, which is what the resumed scan is checked against.
    sleep 0.6
    kill -9 "$serve_pid"
    wait "$serve_pid" 2>/dev/null || true
    recovered_before=$(grep -c "1 job(s) recovered from the queue" serve.log || true)
    start_service config.toml
    wait_for "$id" 'j["status"] == "succeeded"' 300
    if [[ $(grep -c "1 job(s) recovered from the queue" serve.log || true) -gt $recovered_before ]]; then
        recovered=1
        break
    fi
    echo "    the scan finished before the kill; again"
done
[[ $recovered == 1 ]] || fail "three scans finished before kill -9 could interrupt them"
target=$work/slow/killed-$attempt.qcow2
curl -fsS "$server/v1/scans/$id/report" >resumed.json
"$coldscan" scan --no-cache --no-progress --no-summary --quiet-issues --clamav-db "$work/sigs/clamav" \
    --yara-rules "$work/sigs/yara" --report reference.json "$target" >/dev/null 2>&1 || true
python3 - "$id" "$before" <<'PY'
import json, sys
job_id, before = sys.argv[1], int(sys.argv[2])
resumed = json.load(open("resumed.json"))
reference = json.load(open("reference.json"))
key = lambda r: sorted((d["path"], d["signature"]) for d in r["detections"])
assert key(resumed) == key(reference), (key(resumed), key(reference))
assert resumed["counts"] == reference["counts"], (resumed["counts"], reference["counts"])
cache = resumed["cache"]
# Files verdicted before the kill are known by identity: not read, not scanned again.
assert cache["files_not_read"] >= 0.8 * before, (before, cache)
assert cache["engine_scans"] < reference["cache"]["engine_scans"], (cache, reference["cache"])
alerts = [json.loads(l) for l in open("state/alerts.jsonl")]
assert len([a for a in alerts if a["job"] == job_id]) == 1, alerts
PY

note "3. signature reload mid-run"
old_set=$(json_field "$(curl -fsS "$server/v1/healthz")" 'j["signature_set"]')
# A new image (the scan is not known yet): it runs while the signatures change.
cp "$work/slow/slow-clean.qcow2" "$work/slow/reload.qcow2"
bytes_before=$(json_field "$(curl -fsS "$server/v1/hosts")" "[h['bytes_read'] for h in j['hosts'] if h['name']=='slowhost'][0]")
started=$(date +%s.%N)
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
grep -q '^coldscan_signature_reloads_total 1$' <<<"$(curl -fsS "$server/metrics")" || fail "reload not counted"
wait_for "$id" 'j["status"] == "succeeded"' 300
ended=$(date +%s.%N)
bytes_after=$(json_field "$(curl -fsS "$server/v1/hosts")" "[h['bytes_read'] for h in j['hosts'] if h['name']=='slowhost'][0]")
# The host's read budget held: no faster than its cap after the first burst (a lower bound on the time,
# which a loaded machine can only lengthen).
python3 - "$bytes_before" "$bytes_after" "$started" "$ended" <<'PY'
import sys
before, after, start, end = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
read = after - before
cap, burst = 3 * 2**20, 4 * 2**20
assert read > 20 * 2**20, read
assert end - start >= (read - burst) / cap * 0.95, (read, end - start)
print(f"slowhost read {read / 2**20:.1f} MiB in {end - start:.1f} s (cap 3 MiB/s)")
PY
[[ "$(job_field "$id" 'j["verdict"]["signature_set"]')" == "$old_set" ]] || fail "the running scan changed sets"
after=$(submit_one "$work/fast/clean.qcow2")
wait_for "$after" 'j["status"] == "succeeded"' 300
[[ "$(job_field "$after" 'j["verdict"]["signature_set"]')" == "$new_set" ]] || fail "a new scan used the old set"

note "4. SIGTERM: stop, requeue, resume at the next start"
# A fresh copy: slow-clean.qcow2's files verdicted by the earlier steps would be skipped by their blocks, and
# the rest (a MiB) read within the burst, before the job is ever seen running.
cp "$work/slow/slow-clean.qcow2" "$work/slow/sigterm.qcow2"
id=$(submit_one "$work/slow/sigterm.qcow2")
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
wait_for "$nightly" 'j["status"] == "succeeded"' 300
# The order in the service's log, not a status read after the gate returned: the resumed nightly scan may
# finish within that moment (its files verdicted before the pause are not read again).
gate_job=$(sed -n 's/.*job \(j-[0-9a-f]*\): starting .*gated\.qcow2$/\1/p' serve.log | head -1)
[[ -n $gate_job ]] || fail "no gate job in serve.log"
gate_done=$(grep -n "job $gate_job: completed" serve.log | head -1 | cut -d: -f1)
nightly_done=$(grep -n "job $nightly: completed" serve.log | tail -1 | cut -d: -f1)
[[ -n $gate_done && -n $nightly_done && $gate_done -lt $nightly_done ]] ||
    fail "the nightly scan finished before the gate scan (log lines ${gate_done:-none}, ${nightly_done:-none})"
clean_files=$(job_field "$after" 'j["verdict"]["files"]') # the same tree, scanned whole in step 3
[[ "$(job_field "$nightly" 'j["verdict"]["files"]')" == "$clean_files" ]] || fail "the resumed nightly scan lost files"
[[ "$(job_field "$nightly" 'j["attempts"]')" == 0 ]] || fail "a pause counted as a failed attempt"

note "6. closed loop: a host above its pressure threshold starts nothing until the pressure falls"
host_field() { # HOST EXPRESSION (on the host as h)
    json_field "$(curl -fsS "$server/v1/hosts")" "[$2 for h in j['hosts'] if h['name']=='$1'][0]"
}
echo 0.9 >load.txt
for _ in $(seq 1 40); do
    [[ "$(host_field fasthost "h['throttled']")" == True ]] && break
    sleep 0.5
done
[[ "$(host_field fasthost "h['throttled']")" == True ]] || fail "fasthost not throttled at load 0.9"
[[ "$(host_field fasthost "h['pressure']")" == 0.9 ]] || fail "fasthost pressure: $(host_field fasthost "h['pressure']")"
cp "$work/fast/clean.qcow2" "$work/fast/pressure.qcow2"
id=$(submit_one "$work/fast/pressure.qcow2")
sleep 8
[[ "$(job_field "$id" 'j["status"]')" == queued ]] || fail "a scan started on a throttled host"
grep -q '^coldscan_host_throttled{host="fasthost"} 1$' <<<"$(curl -fsS "$server/metrics")" || fail "metrics: throttled"
echo 0.2 >load.txt
wait_for "$id" 'j["status"] == "succeeded"' 120
[[ "$(host_field fasthost "h['throttled']")" == False ]] || fail "fasthost still throttled at load 0.2"
stop_service

note "7. nightly windows: outside a window a nightly scan waits, and the plan says until when"
# A one-hour window that opens in six hours (UTC); discovery of slow/*.qcow2 waits for it too.
window=$(python3 -c 'import datetime as d; s=(d.datetime.utcnow()+d.timedelta(hours=6)).replace(second=0, microsecond=0); e=s+d.timedelta(hours=1); print(s.strftime("%H:%M")+"-"+e.strftime("%H:%M"), s.strftime("%Y-%m-%dT%H:%M:00Z"))')
state=$work/state-night slow_extra='images = ["*.qcow2"]' write_config night.toml "[[nightly_window]]" "time = \"${window% *}\""
start_service night.toml
answer=$(api POST /v1/scans "{\"targets\": [\"$work/fast/clean.qcow2\"], \"priority\": \"nightly\"}")
nightly=$(json_field "$(head -n -1 <<<"$answer")" 'j["jobs"][0]["id"]')
sleep 6
[[ "$(job_field "$nightly" 'j["status"]')" == queued ]] || fail "a nightly scan started outside its window"
plan=$("$coldscan" plan --json)
[[ "$(json_field "$plan" "[e['start'] for e in j['jobs'] if e['id']=='$nightly'][0]")" == "${window#* }" ]] ||
    fail "plan: the nightly scan does not start at the window (${window#* }): $plan"
[[ "$(json_field "$(curl -fsS "$server/v1/scans")" 'len(j["jobs"])')" == 1 ]] || fail "discovery ran outside the window"
stop_service
# The same with a window open all day: discovery queues every image of the slow datastore at start.
state=$work/state-day slow_extra='images = ["*.qcow2"]' write_config day.toml "[[nightly_window]]" 'time = "00:00-24:00"'
start_service day.toml
expected=$(ls "$work"/slow/*.qcow2 | wc -l)
for _ in $(seq 1 60); do
    found=$(json_field "$(curl -fsS "$server/v1/scans")" 'len([x for x in j["jobs"] if x["requested_by"] == "nightly discovery" and x["priority"] == "nightly"])')
    [[ "$found" == "$expected" ]] && break
    sleep 0.5
done
[[ "$found" == "$expected" ]] || fail "discovery queued $found of $expected images"
stop_service
echo "service-lifecycle: all checks passed"
