#!/usr/bin/env bash
# fleet-storm-bench.sh: the scan storm on a fleet of scanner nodes (issue 19). coldscan-fleet-storm
# (bench/storm-sim/fleet_storm.hpp) runs 20 nodes, each with its own scheduler core, claiming through the real
# fleet queue on a real PostgreSQL started here (tests/fixtures/postgres-server.sh: Debian's postgresql-15,
# a Unix socket; torn down after), over 200 hosts, 20 datastores and 5,000 images due at once plus gate
# requests mid-run, in simulated time; then one scheduler with the same total capacity on the same jobs.
# Checks the caps after every claim (exit 1 when one was exceeded or a job did not complete exactly once) and
# prints the makespan of both and their ratio, the claims (granted, refused at the caps, taken) and the rows
# the adoptions read. Takes about two minutes (the database's work).
#
# Environment: FLEET_STORM (the tool; default build/bench/coldscan-fleet-storm), OUT (results folder,
# default ${COLDSCAN_BENCH_DIR:-build/bench}/fleet-storm). Arguments go to coldscan-fleet-storm (--nodes,
# --node-scans, --hosts, --templates, --seed, ...).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
tool=${FLEET_STORM:-$root/build/bench/coldscan-fleet-storm}
out=${OUT:-${COLDSCAN_BENCH_DIR:-$root/build/bench}/fleet-storm}
[[ -x $tool ]] || { echo "$tool is missing: cmake --build build --target coldscan-fleet-storm" >&2; exit 2; }
mkdir -p "$out"
pg_dir=$(mktemp -d /tmp/coldscan-fleet-storm.XXXXXX)
chmod o+x "$pg_dir"
trap '"$root/tests/fixtures/postgres-server.sh" stop "$pg_dir/server" >/dev/null 2>&1 || true; rm -rf "$pg_dir"' EXIT
uri=$("$root/tests/fixtures/postgres-server.sh" start "$pg_dir/server")
psql "$uri" -qc "CREATE DATABASE storm"
set +e
"$tool" --database "${uri/\/postgres\?//storm?}" --json "$out/fleet-storm.json" "$@" 2>"$out/log.txt" |
    tee "$out/summary.txt"
status=${PIPESTATUS[0]}
set -e
grep -v '\[info\]' "$out/log.txt" >&2 || true
echo "fleet-storm-bench: $out/fleet-storm.json"
exit "$status"
