#!/usr/bin/env bash
# fleet-queue.sh COLDSCAN FIXTURES WORKDIR
#
# Fleet mode's shared queue (issue 19): three `coldscan serve` nodes on one real PostgreSQL, leases of 5 s,
# host "slowhost" with a cap of one scan and a slow read budget (so scans last long enough to be interrupted).
# Sampled all along: the running jobs of slowhost with a live lease in the database, never more than 1.
#   1. racing submissions through all nodes: the same image through three nodes is one job, and the jobs
#      spread over the nodes one at a time;
#   2. SIGKILL the node that scans the infected image: another node completes the job after the lease ran
#      out, with the detection, and exactly one alert is raised in the whole fleet;
#   3. SIGSTOP a node past its lease, then SIGCONT: another node took its job over; the woken node stops,
#      says its lease is lost, and writes nothing (fencing);
#   4. PostgreSQL restarts while a job runs: the nodes reconnect and every job ends succeeded; a gate scan
#      submitted through one node takes the slot of a nightly scan running on another, which runs again after;
#   5. every node's API answers for the whole fleet: the same jobs, each with the node that ran it, and the
#      same findings and counts (the killed node's partial scan recorded none);
#   6. shared verdicts: a fourth node with an empty cache scans another copy of a scanned image and runs no
#      engine.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/script-start.sh
source "$here/script-start.sh"
slow_rate=4M
# shellcheck source=tests/e2e/service-lib.sh
source "$here/service-lib.sh"
cd "$work"
make_layout
for i in 1 2 3 4 5 6 7; do
    cp "$fixtures/images/clean.qcow2" "$work/slow/clone-$i.qcow2"
done
# shellcheck source=tests/e2e/fleet-lib.sh
source "$here/fleet-lib.sh"

declare -A node_port
for name in scan-a scan-b scan-c; do
    node_port[$name]=$(free_port)
    node_config "$name" "${node_port[$name]}"
    start_node "$name"
done
for name in scan-a scan-b scan-c; do
    wait_healthy "$name" "${node_port[$name]}"
done
pid_of() { local var="pid_${1//-/_}"; echo "${!var}"; }

# The sampler: the live leases on slowhost, five times a second, one line each (until it is killed).
(
    while true; do
        psql "$uri" -Atc "SELECT count(*) FROM coldscan_jobs WHERE host = 'slowhost' AND status = 'running' AND
                          lease_until > clock_timestamp()" 2>/dev/null || true
        sleep 0.2
    done
) >samples.txt &
sampler=$!
pids+=("$sampler")

# job_on NODE ID EXPRESSION: the expression over the job as j, from that node's API.
job_on() {
    local answer
    answer=$(curl -fsS "http://127.0.0.1:${node_port[$1]}/v1/scans/$2") || fail "GET /v1/scans/$2 on $1 failed"
    json_field "$answer" "$3"
}
# wait_job NODE ID EXPRESSION SECONDS
wait_job() {
    local i
    for i in $(seq 1 $(($4 * 2))); do
        [[ $(job_on "$1" "$2" "$3") == True ]] && return 0
        sleep 0.5
    done
    fail "job $2: '$3' not true within $4 s on $1: $(curl -sS "http://127.0.0.1:${node_port[$1]}/v1/scans/$2")"
}
# submit NODE IMAGE: the job id (POST /v1/scans through that node, nightly so nothing preempts).
submit() {
    local answer
    answer=$(curl -fsS -X POST -H 'Content-Type: application/json' \
        --data "{\"targets\": [\"$work/slow/$2\"], \"priority\": \"nightly\"}" \
        "http://127.0.0.1:${node_port[$1]}/v1/scans") || fail "POST /v1/scans on $1 failed"
    json_field "$answer" 'j["jobs"][0]["id"]'
}
alerts_of() { # ID: alerts raised for the job in the whole fleet (every node's alerts.jsonl)
    cat "$work"/state-scan-*/alerts.jsonl 2>/dev/null | grep -c "\"job\":\"$1\"" || true
}

note "1. racing submissions through all nodes"
submitters=()
for pair in scan-a:slow-infected.qcow2:a scan-b:slow-infected.qcow2:b scan-c:slow-infected.qcow2:c \
    scan-b:slow-clean.qcow2:clean scan-c:clone-1.qcow2:1 scan-a:clone-2.qcow2:2; do
    IFS=: read -r name image out <<<"$pair"
    submit "$name" "$image" >"id-$out" &
    submitters+=("$!")
done
for pid in "${submitters[@]}"; do
    wait "$pid" || fail "a submission failed"
done
infected=$(cat id-a)
[[ -n $infected && $(cat id-b) == "$infected" && $(cat id-c) == "$infected" ]] ||
    fail "one image through three nodes: $(cat id-a id-b id-c)"
clean=$(cat id-clean)
clone1=$(cat id-1)
clone2=$(cat id-2)
all_jobs=("$infected" "$clean" "$clone1" "$clone2")
[[ $(psql "$uri" -Atc "SELECT count(*) FROM coldscan_jobs") -eq 4 ]] || fail "the queue holds $(psql "$uri" -Atc "SELECT count(*) FROM coldscan_jobs") jobs"
echo "ok: one job for three submissions of the same image; 4 jobs in the fleet's queue"

note "2. SIGKILL the node that scans the infected image"
wait_job scan-a "$infected" 'j["status"] == "running"' 300
victim=$(job_on scan-a "$infected" 'j["node"]')
[[ -n $victim ]] || fail "the running job names no node"
sleep 2 # mid-scan
kill -KILL "$(pid_of "$victim")"
survivor=scan-a
[[ $victim == scan-a ]] && survivor=scan-b
wait_job "$survivor" "$infected" 'j["status"] == "succeeded"' 300
finisher=$(job_on "$survivor" "$infected" 'j["node"]')
[[ $finisher != "$victim" ]] || fail "the killed node $victim is named as the job's"
[[ $(job_on "$survivor" "$infected" 'j["verdict"]["detections"] >= 1') == True ]] ||
    fail "the infected image's verdict: $(job_on "$survivor" "$infected" 'j["verdict"]')"
[[ $(alerts_of "$infected") -eq 1 ]] || fail "$(alerts_of "$infected") alerts for the infected image"
[[ $(psql "$uri" -Atc "SELECT count(*) FROM coldscan_alerts WHERE job = '$infected'") -eq 1 ]] ||
    fail "coldscan_alerts: $(psql "$uri" -Atc "SELECT * FROM coldscan_alerts")"
echo "ok: $victim killed mid-scan; $finisher completed the job with its detection; one alert in the fleet"

note "3. SIGSTOP a node past its lease"
live=()
for name in scan-a scan-b scan-c; do
    [[ $name != "$victim" ]] && live+=("$name")
done
clone3=$(submit "${live[0]}" clone-3.qcow2)
all_jobs+=("$clone3")
held=""
for i in $(seq 1 600); do
    held=$(psql "$uri" -Atc "SELECT id || ' ' || node FROM coldscan_jobs WHERE status = 'running' LIMIT 1")
    [[ -n $held ]] && break
    sleep 0.5
done
[[ -n $held ]] || fail "no job ran after the kill"
stopped_job=${held% *}
sleeper=${held#* }
other=${live[0]}
[[ $other == "$sleeper" ]] && other=${live[1]}
kill -STOP "$(pid_of "$sleeper")"
wait_job "$other" "$stopped_job" "j[\"node\"] not in ('$sleeper', '') and j[\"status\"] in ('running', 'succeeded')" 60
kill -CONT "$(pid_of "$sleeper")"
wait_job "$other" "$stopped_job" 'j["status"] == "succeeded"' 300
[[ $(job_on "$other" "$stopped_job" 'j["node"]') != "$sleeper" ]] || fail "the woken node's result was taken"
for i in $(seq 1 40); do
    grep -q "job $stopped_job: this node's lease on it is lost" "serve-$sleeper.log" && break
    sleep 0.25
done
grep -q "job $stopped_job: this node's lease on it is lost" "serve-$sleeper.log" ||
    fail "$sleeper does not say its lease is lost: $(tail -5 "serve-$sleeper.log")"
if grep -q "job $stopped_job: completed" "serve-$sleeper.log"; then
    fail "$sleeper recorded a result without its lease"
fi
echo "ok: $sleeper stopped past its lease; $(job_on "$other" "$stopped_job" 'j["node"]') took $stopped_job over; $sleeper stopped and wrote nothing"

note "4. PostgreSQL restarts while a job runs"
clone4=$(submit "$other" clone-4.qcow2)
all_jobs+=("$clone4")
for i in $(seq 1 600); do
    [[ -n $(psql "$uri" -Atc "SELECT id FROM coldscan_jobs WHERE status = 'running' LIMIT 1") ]] && break
    sleep 0.5
done
"$here/../fixtures/postgres-server.sh" halt "$pg_dir"
sleep 1
"$here/../fixtures/postgres-server.sh" start "$pg_dir" >/dev/null
for id in "${all_jobs[@]}"; do
    wait_job "$other" "$id" 'j["status"] == "succeeded"' 600
done
echo "ok: after the restart every job ended succeeded"

note "4b. a gate scan through one node preempts a nightly scan running on another"
night=$(submit "$other" clone-5.qcow2)
wait_job "$other" "$night" 'j["status"] == "running"' 120
runner=$(job_on "$other" "$night" 'j["node"]')
gate_via=${live[0]}
[[ $gate_via == "$runner" ]] && gate_via=${live[1]}
answer=$(curl -fsS -X POST -H 'Content-Type: application/json' \
    --data "{\"targets\": [\"$work/slow/clone-6.qcow2\"], \"priority\": \"gate\"}" \
    "http://127.0.0.1:${node_port[$gate_via]}/v1/scans") || fail "gate submission through $gate_via"
gate=$(json_field "$answer" 'j["jobs"][0]["id"]')
all_jobs+=("$night" "$gate")
wait_job "$other" "$gate" 'j["status"] == "succeeded"' 120
# The runner makes room either way: asked by the gate's claim elsewhere (it queues its job again), or its
# own scheduler adopted the gate job and paused the nightly one for it (then it runs the gate itself).
grep -Eq "job $night: (stopped for a gate scan on another node|paused for a gate scan)" "serve-$runner.log" ||
    fail "$runner did not make room: $(tail -5 "serve-$runner.log")"
wait_job "$other" "$night" 'j["status"] == "succeeded"' 300
[[ $(psql "$uri" -Atc "SELECT (SELECT updated_at FROM coldscan_jobs WHERE id = '$gate') <=
                             (SELECT updated_at FROM coldscan_jobs WHERE id = '$night')") == t ]] ||
    fail "the nightly job finished before the gate job"
gate_node=$(job_on "$other" "$gate" 'j["node"]')
echo "ok: the gate job through $gate_via ran on $gate_node in the slot of $runner's nightly job, which finished after it"

note "5. every node answers for the whole fleet"
for name in "${live[@]}"; do
    answer=$(curl -fsS "http://127.0.0.1:${node_port[$name]}/v1/scans") || fail "GET /v1/scans on $name"
    [[ $(json_field "$answer" 'sorted((x["id"], x["status"], x["node"] != "") for x in j["jobs"])') == \
        "$(python3 -c 'import sys; print(sorted((i, "succeeded", True) for i in sys.argv[1:]))' "${all_jobs[@]}")" ]] ||
        fail "GET /v1/scans on $name: $answer"
    report=$(curl -fsS "http://127.0.0.1:${node_port[$name]}/v1/scans/$infected/report") ||
        fail "GET /v1/scans/$infected/report on $name"
    [[ $(json_field "$report" 'len(j["detections"]) >= 1') == True ]] || fail "the infected image's report from $name"
done
for id in "$clean" "$clone1" "$clone2" "$clone3" "$clone4" "$night" "$gate"; do
    [[ $(job_on "$other" "$id" 'j["verdict"]["detections"]') -eq 0 ]] || fail "job $id: detections"
done
[[ $(alerts_of "$infected") -eq 1 ]] || fail "$(alerts_of "$infected") alerts for the infected image at the end"
# Findings: the infected scan's detections once (the killed node's partial scan recorded none), the same from
# every node, and counted the same.
detections=$(json_field "$report" 'len(j["detections"])')
answers=()
for name in "${live[@]}"; do
    answers+=("$(curl -fsS "http://127.0.0.1:${node_port[$name]}/v1/findings?kind=DETECTION&limit=1000")")
    [[ $(json_field "${answers[-1]}" "j['total'] == $detections and {f['node'] for f in j['findings']} == {'$finisher'}") == True ]] ||
        fail "findings from $name: ${answers[-1]}"
    stats=$(curl -fsS "http://127.0.0.1:${node_port[$name]}/v1/stats?kind=DETECTION")
    [[ $(json_field "$stats" 'j["total"]') -eq $detections ]] || fail "stats from $name: $stats"
done
[[ ${answers[0]} == "${answers[1]}" ]] || fail "two nodes answer the findings search differently"
"$coldscan" findings --server "http://127.0.0.1:${node_port[${live[1]}]}" --image "$work/slow/slow-infected.qcow2" \
    --kind DETECTION >findings.txt || fail "coldscan findings: exit $?"
grep -q "^1-$detections of $detections finding" findings.txt || fail "coldscan findings: $(tail -3 findings.txt)"
metrics=$(curl -fsS "http://127.0.0.1:${node_port[$other]}/metrics")
grep -qx 'coldscan_nodes{state="alive"} 2' <<<"$metrics" && grep -qx 'coldscan_nodes{state="silent"} 1' <<<"$metrics" &&
    grep -qx 'coldscan_jobs{state="succeeded"} 8' <<<"$metrics" ||
    fail "/metrics on $other: $(grep -E '^coldscan_(nodes|jobs)' <<<"$metrics")"
ran_on=$(psql "$uri" -Atc "SELECT count(DISTINCT node) FROM coldscan_jobs")
echo "ok: both live nodes list the 8 jobs, succeeded, each with its node (ran on $ran_on nodes)"

kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
max=$(sort -n samples.txt | tail -1)
[[ $(wc -l <samples.txt) -gt 100 ]] || fail "only $(wc -l <samples.txt) samples"
[[ $max -le 1 ]] || fail "slowhost ran $max scans at once (cap 1)"
echo "ok: $(wc -l <samples.txt) samples of slowhost's live leases, at most $max at once"

for name in "${live[@]}"; do
    kill -TERM "$(pid_of "$name")"
    wait "$(pid_of "$name")" || fail "$name exited with status $? on SIGTERM"
done

note "6. shared verdicts: a new node with an empty cache scans another copy of the clean image"
node_port[scan-d]=$(free_port)
node_config scan-d "${node_port[scan-d]}"
start_node scan-d
wait_healthy scan-d "${node_port[scan-d]}"
fresh=$(submit scan-d clone-7.qcow2)
wait_job scan-d "$fresh" 'j["status"] == "succeeded"' 300
engines=$(json_field "$(curl -fsS "http://127.0.0.1:${node_port[scan-d]}/v1/scans/$fresh/report")" \
    '(j["cache"]["engine_scans"], j["counts"]["files"])')
[[ $engines == "(0, 263)" ]] || fail "scan-d ran the engines on what the fleet had verdicts for: (engine scans, files) $engines"
kill -TERM "$(pid_of scan-d)"
wait "$(pid_of scan-d)" || fail "scan-d exited with status $? on SIGTERM"
echo "ok: scan-d, alone and with an empty cache, called the copy's 263 files clean without running an engine"
echo "PASS"
