#!/usr/bin/env bash
# console.sh COLDSCAN FIXTURES WORKDIR
#
# The web console (issue 20) in a real browser: a real `coldscan serve` (with a token) on loopback serves
# the console, and tests/browser/console.mjs drives Debian's chromium through playwright-core against it
# (every view with real data, a scan started from the console and its findings, cancel, a hostile file name
# shown as text, the token asked for first, a 1,000-finding search paged and filtered, a service restart
# under an open page). Before that, this script scans a clean image and "drop.qcow2": an ext4 image built
# here holding 1,000 copies of EICAR under drop/NNN/ and one more in a file named `<img src=x onerror=...>`.
# Screenshots go to WORKDIR/screenshots (and to $COLDSCAN_CONSOLE_SHOTS when set: the README's images).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/script-start.sh
source "$here/script-start.sh"
# shellcheck source=tests/e2e/service-lib.sh
source "$here/service-lib.sh"
# shellcheck source=tests/fixtures/lib.sh
source "$here/../fixtures/lib.sh"
cd "$work"
make_layout

note "building drop.qcow2: 1,000 EICAR copies and a hostile file name"
mkdir -p drop-tree/etc drop-tree/drop
echo "drop" >drop-tree/etc/hostname
for i in $(seq -w 0 999); do
    mkdir -p "drop-tree/drop/${i:0:2}"
    eicar_string >"drop-tree/drop/${i:0:2}/eicar-$i.com"
done
hostile='<img src=x onerror=window.__coldscan_xss=1>'
eicar_string >"drop-tree/drop/$hostile"
"$here/../fixtures/make-ext4-image.sh" --label colddrop --disk-mib 64 drop-tree fast/drop.qcow2 >/dev/null

token=console-e2e-token-0123456789
auth=(-H "Authorization: Bearer $token")
write_config "$work/config.toml"
start_service_with_token() {
    "$coldscan" serve --config "$work/config.toml" >>"$work/serve.log" 2>&1 &
    serve_pid=$!
    for _ in $(seq 1 600); do
        curl -fsS "${auth[@]}" "$server/v1/healthz" >/dev/null 2>&1 && return 0
        kill -0 "$serve_pid" 2>/dev/null || fail "coldscan serve exited at start-up"
        sleep 0.1
    done
    fail "coldscan serve did not answer /v1/healthz within 60 s"
}
start_service_with_token

note "scanning clean.qcow2 and drop.qcow2 through the API"
answer=$(curl -fsS "${auth[@]}" -H 'Content-Type: application/json' \
    --data "{\"targets\": [\"$work/fast/clean.qcow2\", \"$work/fast/drop.qcow2\"], \"priority\": \"on-demand\"}" \
    "$server/v1/scans") || fail "POST /v1/scans failed"
for id in $(json_field "$answer" '" ".join(job["id"] for job in j["jobs"])'); do
    for _ in $(seq 1 240); do
        status=$(curl -fsS "${auth[@]}" "$server/v1/scans/$id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
        [[ $status == succeeded ]] && break
        [[ $status == failed || $status == dead_letter ]] && fail "job $id $status"
        sleep 0.5
    done
    [[ $status == succeeded ]] || fail "job $id did not succeed within 120 s ($status)"
done
total=$(curl -fsS "${auth[@]}" "$server/v1/findings?image=$work/fast/drop.qcow2&limit=1" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
[[ $total == 1001 ]] || fail "drop.qcow2 has $total findings, not 1001"
echo "ok: drop.qcow2 scanned: 1,001 findings"

# The browser test restarts the service under an open page through this script.
cat >restart.sh <<RESTART
#!/usr/bin/env bash
kill -TERM \$(cat "$work/serve.pid"); while kill -0 \$(cat "$work/serve.pid") 2>/dev/null; do sleep 0.1; done
sleep \${1:-2}
"$coldscan" serve --config "$work/config.toml" >>"$work/serve.log" 2>&1 &
echo \$! >"$work/serve.pid"
RESTART
chmod +x restart.sh
echo "$serve_pid" >serve.pid

note "the console in chromium (tests/browser/console.mjs)"
set +e
COLDSCAN_SERVER=$server COLDSCAN_TOKEN=$token CONSOLE_WORK=$work CONSOLE_RESTART="$work/restart.sh" \
    SCREENSHOTS=${COLDSCAN_CONSOLE_SHOTS:-$work/screenshots} node "$here/../browser/console.mjs"
status=$?
set -e
serve_pid=$(cat serve.pid)
stop_service
[[ $status -eq 0 ]] || fail "the browser test failed (exit $status)"
echo PASS
