#!/usr/bin/env bash
# fleet-claim-bench.sh: the fleet queue's claim throughput and latency with 1, 4 and 16 concurrent claimers
# (nodes) against a real PostgreSQL started here (tests/fixtures/postgres-server.sh: Debian's postgresql-15,
# a Unix socket; torn down after). Each run gets an empty database, submits JOBS jobs over HOSTS hosts with a
# cap of CAP each, and lets every claimer claim and end jobs (a claim, then the fenced write that ends the
# job) until all are done (coldscan-claim-bench). Prints one line per claimer count and the throughput
# ratios against one claimer, and writes OUT/fleet-claims.json.
#
# Environment:
#   CLAIM_BENCH  the tool (default build/bench/coldscan-claim-bench)
#   OUT          results folder (default ${COLDSCAN_BENCH_DIR:-build/bench}/fleet-claims)
#   JOBS, HOSTS, CAP, CLAIMERS (default 2000, 50, 2, "1 4 16")
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
tool=${CLAIM_BENCH:-$root/build/bench/coldscan-claim-bench}
out=${OUT:-${COLDSCAN_BENCH_DIR:-$root/build/bench}/fleet-claims}
[[ -x $tool ]] || { echo "$tool is missing: ./scripts/build.sh" >&2; exit 2; }
mkdir -p "$out"
pg_dir=$(mktemp -d /tmp/coldscan-claim-bench.XXXXXX)
chmod o+x "$pg_dir"
trap '"$root/tests/fixtures/postgres-server.sh" stop "$pg_dir/server" >/dev/null 2>&1 || true; rm -rf "$pg_dir"' EXIT
uri=$("$root/tests/fixtures/postgres-server.sh" start "$pg_dir/server")
results=()
for claimers in ${CLAIMERS:-1 4 16}; do
    db="bench_$claimers"
    psql "$uri" -qc "CREATE DATABASE $db"
    line=$("$tool" --uri "${uri/\/postgres\?//$db?}" --claimers "$claimers" --jobs "${JOBS:-2000}" \
        --hosts "${HOSTS:-50}" --cap "${CAP:-2}")
    results+=("$line")
    echo "$line"
done
printf '%s\n' "${results[@]}" >"$out/runs.jsonl"
python3 - "$out/runs.jsonl" "$out/fleet-claims.json" <<'PY'
import json, sys
runs = [json.loads(line) for line in open(sys.argv[1])]
base = runs[0]["claims_per_second"]
print("claimers  claims/s   p50 ms   p99 ms  attempts  vs 1")
for r in runs:
    ratio = r["claims_per_second"] / base
    print(f'{r["claimers"]:>8}  {r["claims_per_second"]:>8.0f}  {r["p50_ms"]:>7.2f}  {r["p99_ms"]:>7.2f}  {r["attempts"]:>8}  {ratio:.2f}x')
json.dump(runs, open(sys.argv[2], "w"), indent=1)
PY
