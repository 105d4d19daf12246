#!/usr/bin/env bash
# service-api.sh COLDSCAN FIXTURES WORKDIR
#
# A real `coldscan serve` on loopback, used as its users do, through the `coldscan` client and curl:
#   1. submit --wait of a clean and an infected image: exit 0 and 1; status, report and alerts agree with a
#      plain `coldscan scan` of the same image;
#   2. the same submission again: the same job id, nothing scanned again, no second alert;
#   3. refused requests: outside every datastore root (403), missing (404), relative or malformed (400),
#      an unknown status filter (400), an unknown job (404), an oversized body (413);
#   4. /v1/hosts, /v1/plan and `coldscan plan`, /metrics;
#   5. the gate: a fresh clean verdict allows at once (no new job), the infected image denies, a libvirt
#      domain (test:/// driver) by name, and the shipped libvirt qemu hook as libvirt calls it;
#   5b. the engine host killed between scans: the next scan starts a new one, with the same verdicts;
#   5c. a retro-hunt: a hash line added for a file of the clean image is found by the reload's hunt without a
#       scan: one alert, a "retro_hunt" section in the job's report, the job's verdict no longer clean;
#   6. a non-loopback bind: refused without a token; with one, 401 without it and 200 with it.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/script-start.sh
source "$here/script-start.sh"
# shellcheck source=tests/e2e/service-lib.sh
source "$here/service-lib.sh"
hook=$here/../../scheduler/dist/libvirt-hook-qemu
cd "$work"
make_layout

# A libvirt test-driver node: one domain with the clean disk, one with the infected disk.
cat >node.xml <<EOF
<node>
  <domain type="test">
    <name>cleanvm</name>
    <memory>65536</memory>
    <os><type>hvm</type></os>
    <devices>
      <disk type="file" device="disk"><driver name="qemu" type="qcow2"/>
        <source file="$work/fast/clean.qcow2"/><target dev="vda" bus="virtio"/></disk>
      <disk type="file" device="cdrom"><source file="/nonexistent/install.iso"/><target dev="sda" bus="sata"/><readonly/></disk>
    </devices>
  </domain>
  <domain type="test">
    <name>infectedvm</name>
    <memory>65536</memory>
    <os><type>hvm</type></os>
    <devices>
      <disk type="file" device="disk"><driver name="qemu" type="qcow2"/>
        <source file="$work/fast/infected.qcow2"/><target dev="vda" bus="virtio"/></disk>
    </devices>
  </domain>
</node>
EOF
write_config config.toml "[libvirt]" "uri = \"test://$work/node.xml\""
start_service config.toml

note "1. submit --wait: clean and infected"
set +e
"$coldscan" submit --wait "$work/fast/clean.qcow2" >clean.out 2>clean.err
clean_exit=$?
"$coldscan" submit --wait --json "$work/fast/infected.qcow2" >infected.json 2>infected.err
infected_exit=$?
set -e
[[ $clean_exit -eq 0 ]] || fail "submit --wait clean: exit $clean_exit, want 0 ($(cat clean.err))"
[[ $infected_exit -eq 1 ]] || fail "submit --wait infected: exit $infected_exit, want 1 ($(cat infected.err))"
jobs=$(curl -fsS "$server/v1/scans")
infected_id=$(json_field "$jobs" '[x["id"] for x in j["jobs"] if x["target"].endswith("/infected.qcow2")][0]')
clean_id=$(json_field "$jobs" '[x["id"] for x in j["jobs"] if x["target"].endswith("/clean.qcow2")][0]')
[[ "$(job_field "$infected_id" 'j["status"]')" == succeeded ]] || fail "infected job not succeeded"
curl -fsS "$server/v1/scans/$infected_id/report" >service-report.json
"$coldscan" scan --no-cache --no-progress --no-summary --quiet-issues --clamav-db "$work/sigs/clamav" \
    --yara-rules "$work/sigs/yara" --report direct-report.json "$work/fast/infected.qcow2" >/dev/null 2>&1 || true
python3 - "$infected_id" <<'PY'
import json, sys
job_id = sys.argv[1]
service = json.load(open("service-report.json"))
direct = json.load(open("direct-report.json"))
key = lambda r: sorted((d["path"], d["signature"]) for d in r["detections"])
assert key(service) == key(direct), ("detections differ", key(service), key(direct))
assert len(key(service)) >= 10, key(service)
assert service["counts"]["files"] == direct["counts"]["files"], (service["counts"], direct["counts"])
alerts = [json.loads(l) for l in open("state/alerts.jsonl")]
mine = [a for a in alerts if a["job"] == job_id]
assert len(mine) == 1, alerts
assert sorted((d["path"], d["signature"]) for d in mine[0]["detections"]) == key(service)
assert not any(a["target"].endswith("/clean.qcow2") for a in alerts), alerts
PY
status_out=$("$coldscan" status)
grep -q "$infected_id" <<<"$status_out" || fail "coldscan status does not list $infected_id"
"$coldscan" status "$clean_id" | grep -q succeeded || fail "coldscan status ID: not succeeded"
# --server as the config's `listen` writes it (HOST:PORT, no scheme).
COLDSCAN_SERVER= "$coldscan" status --server "127.0.0.1:$port" "$clean_id" | grep -q succeeded ||
    fail "coldscan status --server 127.0.0.1:$port: not answered"

note "2. the same scan again: same id, no rescan, no second alert"
again=$(api POST /v1/scans "{\"targets\": [\"$work/fast/infected.qcow2\"]}")
[[ "$(tail -1 <<<"$again")" == 202 ]] || fail "resubmission: $again"
again_body=$(head -n -1 <<<"$again")
[[ "$(json_field "$again_body" 'j["jobs"][0]["id"]')" == "$infected_id" ]] || fail "resubmission got another id"
[[ "$(json_field "$again_body" 'j["jobs"][0]["status"]')" == succeeded ]] || fail "resubmission rescans"
[[ $(grep -c "\"job\":\"$infected_id\"" state/alerts.jsonl) -eq 1 ]] || fail "a second alert was written"

note "2b. findings: searched, counted, and the same through the CLI"
findings=$(curl -fsS "$server/v1/findings?kind=DETECTION&image=$(python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$work/fast/infected.qcow2")&limit=1000")
python3 - "$findings" "$infected_id" <<'PY'
import json, sys
found = json.loads(sys.argv[1])
report = json.load(open("service-report.json"))
want = sorted((d["path"], d["signature"]) for d in report["detections"])
got = sorted((f["path"], f["signature"]) for f in found["findings"])
assert found["total"] == len(want) and got == want, (found["total"], got, want)
assert all(f["job"] == sys.argv[2] and f["host"] == "fasthost" and f["datastore"] == "fast" for f in found["findings"])
PY
signature=$(json_field "$findings" 'j["findings"][0]["signature"]')
with_signature=$(json_field "$findings" "sum(1 for f in j['findings'] if f['signature'] == '$signature')")
cli=$("$coldscan" findings --signature "$signature" --json) || fail "coldscan findings --json: exit $?"
[[ $(json_field "$cli" 'j["total"]') -eq $with_signature ]] || fail "coldscan findings --signature: $cli"
"$coldscan" findings --limit 2 >findings.txt || fail "coldscan findings: exit $?"
grep -q "^1-2 of " findings.txt && [[ $(grep -c 'DETECTION' findings.txt) -eq 2 ]] || fail "coldscan findings: $(cat findings.txt)"
"$coldscan" findings --stats >stats.txt || fail "coldscan findings --stats: exit $?"
grep -Eq "^$signature +$with_signature\$" stats.txt || fail "coldscan findings --stats: $(cat stats.txt)"
set +e
"$coldscan" findings --since yesterday >bad.out 2>&1
bad_exit=$?
set -e
[[ $bad_exit -eq 2 ]] && grep -q 'ISO 8601' bad.out || fail "a bad --since: exit $bad_exit: $(cat bad.out)"
echo "ok: $with_signature finding(s) of $signature among $(json_field "$findings" 'j["total"]') detections; stats and CLI agree"

note "3. refused requests"
expect_status() { # WANT METHOD PATH [BODY]
    local want=$1 answer
    shift
    answer=$(api "$@")
    [[ "$(tail -1 <<<"$answer")" == "$want" ]] || fail "$1 $2: want $want, got: $answer"
    json_field "$(head -n -1 <<<"$answer")" 'j["error"]' >/dev/null || fail "$1 $2: no error message"
}
expect_status 403 POST /v1/scans '{"targets": ["/etc/passwd"]}'
expect_status 403 POST /v1/scans "{\"targets\": [\"$work/fast/../../$(basename "$work")/config.toml\"]}"
ln -s /etc/passwd "$work/fast/escape.qcow2"
expect_status 403 POST /v1/scans "{\"targets\": [\"$work/fast/escape.qcow2\"]}"
expect_status 404 POST /v1/scans "{\"targets\": [\"$work/fast/missing.qcow2\"]}"
expect_status 400 POST /v1/scans '{"targets": ["relative/path.qcow2"]}'
expect_status 400 POST /v1/scans '{"targets": "not-a-list"}'
expect_status 400 POST /v1/scans '{"targets": [], "priority": "urgent"}'
expect_status 400 POST /v1/scans 'not json'
expect_status 400 GET '/v1/scans?status=sleeping'
expect_status 404 GET /v1/scans/j-000000000000000000000000
expect_status 404 GET /v1/no-such-endpoint
big=$(python3 -c 'print("{\"targets\": [\"" + "a" * 1200000 + "\"]}")')
big_status=$(curl -sS -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    --data-binary @- "$server/v1/scans" <<<"$big")
[[ "$big_status" == 413 ]] || fail "oversized body: want 413, got $big_status"
set +e
"$coldscan" submit /etc/passwd >refused.out 2>refused.err
refused_exit=$?
set -e
[[ $refused_exit -eq 2 ]] || fail "coldscan submit outside the roots: exit $refused_exit, want 2"
grep -qi "outside" refused.err || fail "coldscan submit outside the roots: no reason given ($(cat refused.err))"

note "4. hosts, plan, metrics"
hosts=$(curl -fsS "$server/v1/hosts")
[[ "$(json_field "$hosts" '[h["max_concurrent_scans"] for h in j["hosts"] if h["name"]=="slowhost"][0]')" == 1 ]] ||
    fail "/v1/hosts: $hosts"
[[ "$(json_field "$hosts" '[h["bytes_read"] > 0 for h in j["hosts"] if h["name"]=="fasthost"][0]')" == True ]] ||
    fail "/v1/hosts: fasthost read nothing: $hosts"
curl -fsS "$server/v1/plan" | python3 -c 'import json,sys; p=json.load(sys.stdin); assert "jobs" in p and "now" in p, p'
"$coldscan" plan >plan.out || fail "coldscan plan failed"
metrics=$(curl -fsS "$server/metrics")
grep -q '^coldscan_jobs{state="succeeded"} 2$' <<<"$metrics" || fail "metrics: succeeded jobs: $metrics"
grep -q '^coldscan_detections_total [1-9]' <<<"$metrics" || fail "metrics: no detections counted"
grep -q '^coldscan_host_running_scans{host="fasthost"} 0$' <<<"$metrics" || fail "metrics: per-host running"
grep -q '^# TYPE coldscan_files_scanned_total counter$' <<<"$metrics" || fail "metrics: TYPE lines"

note "4b. signature reloads: by API call, and by themselves when the database folder changes"
set_before=$(json_field "$(curl -fsS "$server/v1/healthz")" 'j["signature_set"]')
reloaded=$(api POST /v1/signatures/reload '{}')
[[ "$(tail -1 <<<"$reloaded")" == 200 ]] || fail "POST /v1/signatures/reload: $reloaded"
[[ "$(json_field "$(head -n -1 <<<"$reloaded")" 'j["signature_set"]')" == "$set_before" ]] ||
    fail "a reload of unchanged files gave another set"
printf 'ColdscanWatchTest:0:*:636f6c647363616e2d77617463682d74657374\n' >"$work/sigs/clamav/watch.ndb"
for _ in $(seq 1 60); do # the watch looks every 5 s and waits for the files to settle
    set_after=$(json_field "$(curl -fsS "$server/v1/healthz")" 'j["signature_set"]')
    [[ "$set_after" != "$set_before" ]] && break
    sleep 0.5
done
[[ "$set_after" != "$set_before" ]] || fail "a new database file was not picked up within 30 s"
grep -q '^coldscan_signature_reloads_total 2$' <<<"$(curl -fsS "$server/metrics")" || fail "metrics: reloads"
# The verdicts above were for the old set: the same image is a new job now (and scanned again).
renewed=$(api POST /v1/scans "{\"targets\": [\"$work/fast/clean.qcow2\"]}")
[[ "$(json_field "$(head -n -1 <<<"$renewed")" 'j["jobs"][0]["id"]')" != "$clean_id" ]] ||
    fail "a new signature set reused the old job"
clean_id=$(json_field "$(head -n -1 <<<"$renewed")" 'j["jobs"][0]["id"]')
wait_for "$clean_id" 'j["status"] == "succeeded"' 120
set +e
"$coldscan" submit --wait "$work/fast/infected.qcow2" >/dev/null 2>&1 # (exit 1: detections)
set -e

note "5. the gate"
jobs_before=$(json_field "$(curl -fsS "$server/v1/scans")" 'len(j["jobs"])')
"$coldscan" gate "$work/fast/clean.qcow2" >gate-clean.out 2>&1 || fail "gate clean: $(cat gate-clean.out)"
grep -q '^allow' gate-clean.out || fail "gate clean says: $(cat gate-clean.out)"
set +e
"$coldscan" gate "$work/fast/infected.qcow2" >gate-infected.out 2>&1
gate_exit=$?
set -e
[[ $gate_exit -eq 1 ]] || fail "gate infected: exit $gate_exit, want 1 ($(cat gate-infected.out))"
grep -q '^deny' gate-infected.out || fail "gate infected says: $(cat gate-infected.out)"
jobs_after=$(json_field "$(curl -fsS "$server/v1/scans")" 'len(j["jobs"])')
[[ "$jobs_before" == "$jobs_after" ]] || fail "fresh verdicts made new jobs ($jobs_before -> $jobs_after)"
# --max-age 0: the verdict is stale, so the image is scanned again (gate priority) with the same answer.
"$coldscan" gate --max-age 0 "$work/fast/clean.qcow2" >gate-stale.out 2>&1 || fail "stale gate: $(cat gate-stale.out)"
[[ "$(job_field "$clean_id" 'j["priority"]')" == gate ]] || fail "the stale gate did not rescan at gate priority"
"$coldscan" gate libvirt:cleanvm >gate-domain.out 2>&1 || fail "gate libvirt:cleanvm: $(cat gate-domain.out)"
set +e
"$coldscan" gate libvirt:infectedvm >gate-domain2.out 2>&1
domain_exit=$?
"$coldscan" gate libvirt:novm >gate-domain3.out 2>&1
nodomain_exit=$?
set -e
[[ $domain_exit -eq 1 ]] || fail "gate libvirt:infectedvm: exit $domain_exit ($(cat gate-domain2.out))"
[[ $nodomain_exit -eq 2 ]] || fail "gate libvirt:novm: exit $nodomain_exit ($(cat gate-domain3.out))"

# The hook as libvirt runs it: arguments DOMAIN OPERATION SUBOP EXTRA, the domain XML on stdin.
cat >gate.env <<EOF
COLDSCAN_SERVER=$server
COLDSCAN_BIN=$coldscan
COLDSCAN_MAX_AGE=1h
EOF
domain_xml() { # NAME: that domain of node.xml, as libvirt passes it
    python3 - "$1" <<'PY'
import sys, xml.etree.ElementTree as ET
for d in ET.parse("node.xml").getroot():
    if d.find("name").text == sys.argv[1]:
        print(ET.tostring(d, encoding="unicode"))
PY
}
export COLDSCAN_GATE_ENV=$work/gate.env
domain_xml cleanvm | "$hook" cleanvm prepare begin - >hook-clean.out 2>&1 || fail "hook refused cleanvm: $(cat hook-clean.out)"
set +e
domain_xml infectedvm | "$hook" infectedvm prepare begin - >hook-infected.out 2>&1
hook_exit=$?
set -e
[[ $hook_exit -ne 0 ]] || fail "hook let infectedvm start"
grep -qi "deny\|refus" hook-infected.out || fail "hook gave no reason: $(cat hook-infected.out)"
domain_xml infectedvm >infectedvm.xml # (the hook reads no stdin for other calls: no pipe)
"$hook" infectedvm started begin - <infectedvm.xml >/dev/null 2>&1 || fail "hook refused a non-prepare call"

note "5b. the engine host killed between scans: the next scan starts a new one, with the same verdicts"
# A new raw disk whose files no cache has seen, so the scan needs engine workers: EICAR with a unique tail
# (a body signature still matches) and a random file.
mkdir -p fresh-root
eicar='X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
printf '%s' "$eicar" >fresh-root/eicar.com
head -c 32 /dev/urandom >>fresh-root/eicar.com
head -c 65536 /dev/urandom >fresh-root/random.bin
truncate -s 16M "$work/fast/fresh.img"
mkfs.ext4 -q -F -d fresh-root "$work/fast/fresh.img"
engine_host=$(pgrep -P "$serve_pid" -f __coldscan-engine-host) || fail "no engine host under the service"
kill -KILL "$engine_host"
set +e
"$coldscan" gate --format raw "$work/fast/fresh.img" >gate-rehost.out 2>&1
rehost_exit=$?
set -e
[[ $rehost_exit -eq 1 ]] || fail "gate after the engine host died: exit $rehost_exit ($(cat gate-rehost.out))"
grep -q "engine host (pid $engine_host) is gone; starting a new one" serve.log || fail "no restart logged"
new_host=$(pgrep -P "$serve_pid" -f __coldscan-engine-host) || fail "no new engine host"
[[ "$new_host" != "$engine_host" ]] || fail "the dead engine host is still listed"
rehost_id=$(json_field "$(curl -fsS "$server/v1/scans")" '[x["id"] for x in j["jobs"] if x["target"].endswith("/fresh.img")][0]')
curl -fsS "$server/v1/scans/$rehost_id/report" >rehost-report.json
python3 - <<'PY'
import json
report = json.load(open("rehost-report.json"))
detections = sorted((d["path"], d["signature"]) for d in report["detections"])
assert detections == [("/eicar.com", "Coldscan.Test.Eicar.UNOFFICIAL")], detections
assert report["counts"]["errors"] == 0 and report["counts"]["clean"] == 1, report["counts"]
PY

note "5c. retro-hunt: a hash line added for a file the service called clean; named without a scan"
[[ "$(job_field "$clean_id" 'j["verdict"]["exit_status"]')" == 0 ]] || fail "clean.qcow2's job is not clean"
"$coldscan" scan --no-cache --no-progress --no-summary --quiet-issues --clamav-db "$work/sigs/clamav" \
    --yara-rules "$work/sigs/yara" --inventory clean-inventory.jsonl "$work/fast/clean.qcow2" >/dev/null 2>&1 ||
    fail "the direct scan of clean.qcow2 failed"
read -r retro_sha retro_size retro_device retro_path < <(python3 - <<'PY'
import json
files = [json.loads(l) for l in open("clean-inventory.jsonl")]
f = max((f for f in files if f.get("sha256") and f["size"] > 0), key=lambda f: (f["size"], f["path"]))
print(f["sha256"], f["size"], f["device"], f["path"])
PY
)
files_scanned() { curl -fsS "$server/metrics" | sed -n 's/^coldscan_files_scanned_total \([0-9]*\)$/\1/p'; }
scanned_before=$(files_scanned)
echo "$retro_sha:$retro_size:Coldscan.Test.Retro" >"$work/sigs/clamav/retro.hsb"
reloaded=$(api POST /v1/signatures/reload '{}') # the reload runs the hunt (the folder watch may be first)
[[ "$(tail -1 <<<"$reloaded")" == 200 ]] || fail "reload with the hash line: $reloaded"
hunt=$(api POST /v1/retro-hunt '{}')
[[ "$(tail -1 <<<"$hunt")" == 200 ]] || fail "POST /v1/retro-hunt: $hunt"
head -n -1 <<<"$hunt" >hunt.json
curl -fsS "$server/v1/scans/$clean_id/report" >retro-report.json
python3 - "$retro_sha" "$retro_device" "$retro_path" "$work/fast/clean.qcow2" <<'PY'
import json, sys
sha, device, path, image = sys.argv[1:5]
hunt = json.load(open("hunt.json"))
hits = [h for h in hunt["hits"] if h["sha256"] == sha]
assert len(hits) == 1, hunt["hits"]
assert hits[0]["signatures"] == ["Coldscan.Test.Retro.UNOFFICIAL"], hits
assert any(p["target"] == image and p["device"] == device and p["path"] == path for p in hits[0]["places"]), hits
assert hunt["alerts_raised"] == 0, "the reload's hunt alerted already: " + str(hunt["alerts_raised"])
alerts = [json.loads(l) for l in open("state/alerts.jsonl")]
retro = [a for a in alerts if a.get("kind") == "retro_hunt" and a["target"] == image]
assert len(retro) == 1, retro  # once, though two hunts ran
assert [(d["path"], d["signature"], d["sha256"]) for d in retro[0]["detections"]] == [
    (path, "Coldscan.Test.Retro.UNOFFICIAL", sha)], retro
report = json.load(open("retro-report.json"))
found = [(f["path"], f["signature"]) for f in report.get("retro_hunt", [])]
assert found == [(path, "Coldscan.Test.Retro.UNOFFICIAL")], report.get("retro_hunt")
print(f"retro-hunt: {path} named in {image} without a scan; {hunt['compared']} contents compared")
PY
[[ "$(job_field "$clean_id" 'j["verdict"]["exit_status"]')" == 1 ]] ||
    fail "clean.qcow2's job still reads clean after the retro-hunt found $retro_path"
[[ "$(files_scanned)" == "$scanned_before" ]] || fail "the retro-hunt scanned files"
stop_service

note "6. non-loopback bind"
listen_any="0.0.0.0:$port"
listen=$listen_any write_config open.toml
set +e
"$coldscan" serve --config open.toml >open.out 2>&1
open_exit=$?
set -e
[[ $open_exit -eq 2 ]] || fail "serve on 0.0.0.0 without a token: exit $open_exit"
grep -qi token open.out || fail "serve on 0.0.0.0 without a token: no reason ($(cat open.out))"
token=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
listen=$listen_any token=$token write_config token.toml
curl_auth=(-H "Authorization: Bearer $token")
"$coldscan" serve --config token.toml >>serve.log 2>&1 &
serve_pid=$!
for _ in $(seq 1 600); do
    curl -fsS "${curl_auth[@]}" "$server/v1/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
no_token=$(curl -sS -o /dev/null -w '%{http_code}' "$server/v1/scans")
bad_token=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer wrong-token-0123456789" "$server/v1/scans")
good_token=$(curl -sS -o /dev/null -w '%{http_code}' "${curl_auth[@]}" "$server/v1/scans")
[[ "$no_token/$bad_token/$good_token" == "401/401/200" ]] || fail "auth: $no_token/$bad_token/$good_token, want 401/401/200"
echo "$token" >token.txt
chmod 600 token.txt
"$coldscan" status --token-file token.txt >/dev/null || fail "coldscan status with --token-file"
set +e
"$coldscan" status >/dev/null 2>&1
no_token_exit=$?
set -e
[[ $no_token_exit -eq 2 ]] || fail "coldscan status without a token: exit $no_token_exit"
kill -TERM "$serve_pid"
wait "$serve_pid" || fail "serve did not exit 0 on SIGTERM"
echo "service-api: all checks passed"
