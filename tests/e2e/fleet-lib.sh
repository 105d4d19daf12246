# Sourced by the fleet e2e scripts (after script-start.sh, service-lib.sh and make_layout): a real PostgreSQL
# server in $work/pg (tests/fixtures/postgres-server.sh, torn down at exit with every node started here), and
# helpers to run `coldscan serve` nodes with [fleet] on it.
chmod o+x "$work" # as root the server runs as nobody, who must reach its socket folder inside
pg_dir=$work/pg
uri=$("$here/../fixtures/postgres-server.sh" start "$pg_dir")
pids=() # every node started here: killed at exit
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

