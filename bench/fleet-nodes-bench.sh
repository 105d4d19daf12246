#!/usr/bin/env bash
# fleet-nodes-bench.sh: the same batch of images scanned by one `coldscan serve` node with two scan threads,
# and by a fleet of two nodes with one thread each sharing a real PostgreSQL (tests/fixtures/postgres-server.sh);
# each arm from an empty state (and an empty database). Every node runs one scan at a time (max_scans = 1),
# each scan with its node's threads; the host's cap is 2 (fleet-wide in the second arm), so the second node
# gets the slot the first leaves. Prints each arm's makespan (submission to the last job's success), the engine scans, and the
# ratio; writes OUT/fleet-nodes.json. What it shows: a fleet's overhead (claims, leases, adoption, shared
# verdicts) against the same cores in one process.
#
# Environment:
#   COLDSCAN  the coldscan binary (default build/tools/coldscan)
#   IMAGES    the batch (default: the e2e fixture images and the slim real server, build/fixtures)
#   OUT       results folder (default ${COLDSCAN_BENCH_DIR:-build/bench}/fleet-nodes)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
coldscan=$(realpath "${COLDSCAN:-build/tools/coldscan}")
fixtures=$root/build/fixtures
read -r -a images <<<"${IMAGES:-$fixtures/images/clean.qcow2 $fixtures/images/ext4-gpt.qcow2 $fixtures/images/lvm.qcow2 $fixtures/images/ntfs.qcow2 $fixtures/images/formats/dormant.vmdk $fixtures/images/formats/dormant.vhdx $fixtures/images/formats/dormant.vdi $fixtures/real-os/debian12-server-slim.qcow2}"
out=$(realpath -m "${OUT:-${COLDSCAN_BENCH_DIR:-$root/build/bench}/fleet-nodes}")
rm -rf "$out" && mkdir -p "$out/store" "$out/sigs"
chmod o+x "$out"
for image in "${images[@]}"; do
    cp "$image" "$out/store/"
done
cp -r "$fixtures/sigs/clamav" "$fixtures/sigs/yara" "$out/sigs/"
uri=$("$root/tests/fixtures/postgres-server.sh" start "$out/pg")
pids=()
trap 'kill -TERM "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; "$root/tests/fixtures/postgres-server.sh" stop "$out/pg" >/dev/null 2>&1 || true' EXIT

# config NAME PORT THREADS [FLEET]: a node's config.
config() {
    cat >"$out/$1.toml" <<TOML
[service]
state_dir = "$out/state-$1"
threads = $3
max_scans = 1
[api]
listen = "127.0.0.1:$2"
[signatures]
clamav_db = "$out/sigs/clamav"
yara_rules = ["$out/sigs/yara"]
[[host]]
name = "kvm01"
max_concurrent_scans = 2
[[datastore]]
name = "store"
roots = ["$out/store"]
hosts = ["kvm01"]
$( [[ -n ${4:-} ]] && printf '[fleet]\ndatabase = "%s"\nnode = "%s"\nlease_seconds = 10\n' "$uri" "$1" )
TOML
}
start() { # NAME PORT
    "$coldscan" serve --config "$out/$1.toml" >"$out/serve-$1.log" 2>&1 &
    pids+=("$!")
    for _ in $(seq 1 600); do
        curl -fsS "http://127.0.0.1:$2/v1/healthz" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "node $1 did not start: $(tail -3 "$out/serve-$1.log")" >&2
    exit 2
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# run_batch PORT: submits every image through that node, waits for all; prints "SECONDS ENGINE_SCANS".
run_batch() {
    local server="http://127.0.0.1:$1" started ids
    started=$(date +%s.%N)
    ids=$(for image in "$out"/store/*; do
        COLDSCAN_SERVER=$server "$coldscan" submit --priority nightly --json "$image" |
            python3 -c 'import json,sys; print(json.load(sys.stdin)["jobs"][0]["id"])'
    done)
    # shellcheck disable=SC2086
    COLDSCAN_SERVER=$server "$coldscan" wait --timeout 2h $ids >/dev/null || [[ $? -eq 1 ]]
    local ended
    ended=$(date +%s.%N)
    local engines=0 id
    for id in $ids; do
        engines=$((engines + $(curl -fsS "$server/v1/scans/$id/report" | python3 -c 'import json,sys; print(json.load(sys.stdin)["cache"]["engine_scans"])')))
    done
    echo "$(python3 -c "print(round($ended - $started, 2))") $engines"
}

port=$(free_port)
config single "$port" 2
start single "$port"
read -r single_s single_engines < <(run_batch "$port")
kill -TERM "${pids[-1]}" && wait "${pids[-1]}" || true

port_a=$(free_port)
port_b=$(free_port)
config scan-a "$port_a" 1 fleet
config scan-b "$port_b" 1 fleet
start scan-a "$port_a"
start scan-b "$port_b"
read -r fleet_s fleet_engines < <(run_batch "$port_a")
ran_on=$(psql "$uri" -Atc "SELECT string_agg(DISTINCT node, ',') FROM coldscan_jobs")

python3 - "$out/fleet-nodes.json" "${#images[@]}" "$single_s" "$single_engines" "$fleet_s" "$fleet_engines" "$ran_on" <<'PY'
import json, sys
path, images, single_s, single_e, fleet_s, fleet_e, ran_on = sys.argv[1:]
result = {"images": int(images), "one_node_two_threads_s": float(single_s), "one_node_engine_scans": int(single_e),
          "two_nodes_one_thread_s": float(fleet_s), "two_nodes_engine_scans": int(fleet_e),
          "ran_on": ran_on.split(","), "ratio": float(fleet_s) / float(single_s)}
json.dump(result, open(path, "w"), indent=1)
print(f"{images} images: one node, two threads {single_s} s ({single_e} engine scans); "
      f"two nodes, one thread each {fleet_s} s ({fleet_e} engine scans, ran on {ran_on}); "
      f"two nodes / one node = {result['ratio']:.2f}")
PY
