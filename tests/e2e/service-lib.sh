# Sourced by the service e2e scripts (after script-start.sh): a datastore layout, a config, and helpers to
# run a real `coldscan serve` on loopback and talk to it with the `coldscan` client and curl.
#
# Layout under $work:
#   fast/   datastore "fast" on host "fasthost" (no read cap): clean.qcow2, infected.qcow2
#   slow/   datastore "slow" on host "slowhost" (read cap $slow_rate): slow-infected.qcow2, slow-clean.qcow2
#   sigs/   a copy of the fixture signatures (tests change it to provoke a reload)
#   state/  the service's state folder

fail() {
    echo "FAIL: $*" >&2
    [[ -f "$work/serve.log" ]] && { echo "--- serve.log (last 40 lines)" >&2; tail -40 "$work/serve.log" >&2; }
    # A failed check must not leave a service running (with its engine host) after the test.
    [[ -n "${serve_pid:-}" ]] && kill -KILL "$serve_pid" 2>/dev/null
    exit 1
}
note() { echo "--- $*"; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

slow_rate=${slow_rate:-3M}

make_layout() {
    mkdir -p "$work/fast" "$work/slow" "$work/sigs" "$work/state"
    cp "$fixtures/images/clean.qcow2" "$work/fast/clean.qcow2"
    cp "$fixtures/images/ext4-gpt.qcow2" "$work/fast/infected.qcow2"
    cp "$fixtures/images/ext4-gpt.qcow2" "$work/slow/slow-infected.qcow2"
    cp "$fixtures/images/clean.qcow2" "$work/slow/slow-clean.qcow2"
    cp -r "$fixtures/sigs/clamav" "$fixtures/sigs/yara" "$work/sigs/"
    port=$(free_port)
    server="http://127.0.0.1:$port"
    export COLDSCAN_SERVER=$server
}

# write_config FILE [EXTRA TOML...]: the service config for the layout above.
write_config() {
    local file=$1
    shift
    cat >"$file" <<EOF
[service]
state_dir = "${state:-$work/state}"
threads = 2
max_attempts = 3
shutdown_grace = ${grace:-60}

[api]
listen = "${listen:-127.0.0.1:$port}"
$( [[ -n "${token:-}" ]] && echo "auth_token = \"$token\"" )

[signatures]
clamav_db = "$work/sigs/clamav"
yara_rules = ["$work/sigs/yara"]

[[host]]
name = "fasthost"
max_concurrent_scans = 2
${fasthost_extra:-}

[[host]]
name = "slowhost"
max_concurrent_scans = 1
max_read_per_second = "$slow_rate"

[[datastore]]
name = "fast"
roots = ["$work/fast"]
hosts = ["fasthost"]

[[datastore]]
name = "slow"
roots = ["$work/slow"]
hosts = ["slowhost"]
${slow_extra:-}
EOF
    local extra
    for extra in "$@"; do
        printf '%s\n' "$extra" >>"$file"
    done
    chmod 600 "$file"
}

# start_service CONFIG: runs `coldscan serve` in the background (pid in $serve_pid) and waits for healthz.
start_service() {
    "$coldscan" serve --config "$1" >>"$work/serve.log" 2>&1 &
    serve_pid=$!
    local i
    for i in $(seq 1 600); do
        if curl -fsS ${curl_auth:-} "$server/v1/healthz" >/dev/null 2>&1; then
            return 0
        fi
        kill -0 "$serve_pid" 2>/dev/null || fail "coldscan serve exited at start-up"
        sleep 0.1
    done
    fail "coldscan serve did not answer /v1/healthz within 60 s"
}

stop_service() {
    kill -TERM "$serve_pid" 2>/dev/null || true
    wait "$serve_pid" 2>/dev/null || true
}

api() { # METHOD PATH [BODY]: prints the body, then the status on a last line of its own
    local method=$1 path=$2 body=${3:-}
    if [[ -n "$body" ]]; then
        curl -sS ${curl_auth:-} -X "$method" -H 'Content-Type: application/json' --data "$body" \
            -w '\n%{http_code}\n' "$server$path"
    else
        curl -sS ${curl_auth:-} -X "$method" -w '\n%{http_code}\n' "$server$path"
    fi
}

# json_field JSON PYTHON-EXPRESSION: evaluates the expression with the parsed document as j.
json_field() {
    python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"
}

job_field() { # ID PYTHON-EXPRESSION (on the job as j)
    local answer
    answer=$(curl -fsS ${curl_auth:-} "$server/v1/scans/$1") || fail "GET /v1/scans/$1 failed"
    json_field "$answer" "$2"
}

# wait_for ID EXPRESSION SECONDS: polls the job until the expression is True.
wait_for() {
    local id=$1 expression=$2 seconds=$3 i
    for i in $(seq 1 $((seconds * 2))); do
        [[ "$(job_field "$id" "$expression")" == "True" ]] && return 0
        sleep 0.5
    done
    fail "job $id: '$expression' not true within $seconds s (job: $(curl -sS ${curl_auth:-} "$server/v1/scans/$id"))"
}
