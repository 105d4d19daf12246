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
# shellcheck source=tests/e2e/fleet-lib.sh
source "$here/fleet-lib.sh"

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
