#!/usr/bin/env bash
# fleet-nodes.sh COLDSCAN FIXTURES WORKDIR
#
# Fleet mode, first part (issue 19): two `coldscan serve` nodes with [fleet] on one real PostgreSQL server
# (tests/fixtures/postgres-server.sh: Debian's postgresql-15, a Unix socket in WORKDIR, torn down after).
#   1. both start against an empty database (the schema is created once, under an advisory lock) and each
#      node's API lists both nodes, alive, with their datastores (GET /v1/nodes, `coldscan nodes`);
#   2. a third process under a live node's name is refused (exit 2), and the list does not change;
#   3. a node that stops reporting is shown silent once its lease (5 s) has run out;
#   4. PostgreSQL restarts: the nodes reconnect and report again;
#   5. bad [fleet] settings: no server there, a password file others can read (exit 2, a clear message that
#      never holds the password);
#   6. SIGTERM stops both nodes with exit 0.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/script-start.sh
source "$here/script-start.sh"
# shellcheck source=tests/e2e/service-lib.sh
source "$here/service-lib.sh"
cd "$work"
make_layout
chmod o+x "$work" # as root the server runs as nobody, who must reach its socket folder inside
pg_dir=$work/pg
uri=$("$here/../fixtures/postgres-server.sh" start "$pg_dir")
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    "$here/../fixtures/postgres-server.sh" stop "$pg_dir" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# node NAME PORT [EXTRA FLEET TOML]: the config of a node (its own state folder and port, same inventory).
node_config() {
    local name=$1 node_port=$2
    state="$work/state-$name" port=$node_port write_config "$name.toml" \
        "[fleet]" "database = \"$uri\"" "node = \"$name\"" "lease_seconds = 5" "${3:-}"
}
# start_node NAME: starts it in the background (pid in pid_NAME, dashes as underscores).
start_node() {
    "$coldscan" serve --config "$1.toml" >>"$work/serve-$1.log" 2>&1 &
    pids+=("$!")
    printf -v "pid_${1//-/_}" '%s' "$!"
}
# wait_healthy NAME PORT: waits for its healthz.
wait_healthy() {
    local name=$1 node_port=$2 i pid_var="pid_${1//-/_}"
    for i in $(seq 1 600); do
        curl -fsS "http://127.0.0.1:$node_port/v1/healthz" >/dev/null 2>&1 && return 0
        kill -0 "${!pid_var}" 2>/dev/null || fail "node $name exited at start-up: $(tail -5 "$work/serve-$name.log")"
        sleep 0.1
    done
    fail "node $name did not answer /v1/healthz within 60 s"
}
# serve_status NAME: runs `coldscan serve --config NAME.toml` in the foreground (output in NAME.out) and
# prints its exit status: for configurations that must not start.
serve_status() {
    local status=0
    "$coldscan" serve --config "$1.toml" >"$1.out" 2>&1 || status=$?
    echo "$status"
}
# nodes_of PORT EXPRESSION: the expression (python, over the list of nodes as n) on that node's GET /v1/nodes.
nodes_of() {
    local answer
    answer=$(curl -fsS "http://127.0.0.1:$1/v1/nodes") || fail "GET /v1/nodes on port $1 failed"
    python3 -c 'import json,sys; n=json.loads(sys.argv[1])["nodes"]; print(eval(sys.argv[2]))' "$answer" "$2"
}
# wait_nodes PORT EXPRESSION SECONDS
wait_nodes() {
    local i
    for i in $(seq 1 $(($3 * 4))); do
        [[ $(nodes_of "$1" "$2") == True ]] && return 0
        sleep 0.25
    done
    fail "GET /v1/nodes on port $1: '$2' not true within $3 s: $(curl -sS "http://127.0.0.1:$1/v1/nodes")"
}

note "1. two nodes on an empty database list each other"
port_a=$(free_port)
port_b=$(free_port)
node_config scan-a "$port_a"
node_config scan-b "$port_b"
start_node scan-a # both at once: one creates the schema, the other waits for it (advisory lock)
start_node scan-b
wait_healthy scan-a "$port_a"
wait_healthy scan-b "$port_b"
for p in "$port_a" "$port_b"; do
    wait_nodes "$p" '[x["name"] for x in n] == ["scan-a", "scan-b"] and all(x["alive"] for x in n)' 20
done
[[ $(nodes_of "$port_a" 'n[1]["datastores"] == ["fast", "slow"] and n[1]["version"] != ""') == True ]] ||
    fail "scan-b's entry: $(curl -sS "http://127.0.0.1:$port_a/v1/nodes")"
version=$(psql "$uri" -Atc "SELECT version FROM coldscan_schema")
[[ $version -ge 1 ]] || fail "schema version $version"
"$coldscan" nodes --server "http://127.0.0.1:$port_b" >nodes.out || fail "coldscan nodes: exit $?"
grep -Eq '^scan-a +alive ' nodes.out && grep -Eq '^scan-b +alive ' nodes.out || fail "coldscan nodes: $(cat nodes.out)"
echo "ok: both nodes list both (schema version $version)"

note "2. a second process under a live node's name is refused"
port_c=$(free_port)
state="$work/state-dup" port=$port_c write_config dup.toml "[fleet]" "database = \"$uri\"" "node = \"scan-a\""
status=$(serve_status dup)
[[ $status -eq 2 ]] || fail "a duplicate node name: exit $status: $(cat dup.out)"
grep -q 'another coldscan runs as node scan-a' dup.out || fail "duplicate node: $(cat dup.out)"
[[ $(nodes_of "$port_a" 'len(n)') == 2 ]] || fail "the refused process changed the list"
echo "ok: refused ($(grep -o 'another coldscan runs as node scan-a[^"]*' dup.out | head -1))"

note "3. a node that stops reporting is silent once its lease ran out"
kill -STOP "$pid_scan_b"
wait_nodes "$port_a" '[x["alive"] for x in n] == [True, False]' 30
kill -CONT "$pid_scan_b"
wait_nodes "$port_a" 'all(x["alive"] for x in n)' 30
echo "ok: scan-b silent while stopped, alive again after SIGCONT"

note "4. PostgreSQL restarts: the nodes reconnect"
"$here/../fixtures/postgres-server.sh" halt "$pg_dir"
set +e
answer=$(curl -sS -w '\n%{http_code}' "http://127.0.0.1:$port_a/v1/nodes")
set -e
[[ ${answer##*$'\n'} == 500 ]] || fail "GET /v1/nodes without the database: $answer"
sleep 6 # past both leases: no node could report meanwhile
uri_again=$("$here/../fixtures/postgres-server.sh" start "$pg_dir")
[[ $uri_again == "$uri" ]] || fail "the server came back under another URI: $uri_again"
wait_nodes "$port_b" 'len(n) == 2 and all(x["alive"] for x in n)' 30
grep -q 'reports itself to the node directory again' serve-scan-a.log ||
    fail "scan-a did not log its return: $(tail -5 serve-scan-a.log)"
echo "ok: GET /v1/nodes failed (500) while the server was down; both nodes report again after its restart"

note "5. bad [fleet] settings"
state="$work/state-x" port=$port_c write_config nowhere.toml "[fleet]" \
    "database = \"postgresql:///postgres?host=$work/no-server&user=coldscan\"" "node = \"scan-x\""
status=$(serve_status nowhere)
[[ $status -eq 2 ]] && grep -q 'cannot connect to PostgreSQL' nowhere.out || fail "no server: exit $status: $(cat nowhere.out)"
echo 'pa55-secret' >password
chmod 644 password
state="$work/state-x" port=$port_c write_config exposed.toml "[fleet]" "database = \"$uri\"" \
    "node = \"scan-x\"" "password_file = \"$work/password\""
status=$(serve_status exposed)
[[ $status -eq 2 ]] && grep -q 'chmod o-rw' exposed.out || fail "exposed password file: exit $status: $(cat exposed.out)"
if grep -q 'pa55-secret' nowhere.out exposed.out serve-*.log; then
    fail "a password reached the output"
fi
echo "ok: both refused at start-up with exit 2, no password in any output"

note "6. SIGTERM stops both nodes cleanly"
kill -TERM "$pid_scan_a" "$pid_scan_b"
for pid in "$pid_scan_a" "$pid_scan_b"; do
    wait "$pid" || fail "a node exited with status $? on SIGTERM"
done
pids=()
grep -q "fleet mode: node scan-a in " serve-scan-a.log || fail "scan-a's log does not name its fleet: $(head -5 serve-scan-a.log)"
echo "ok: both exited 0"
