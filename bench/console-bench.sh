#!/usr/bin/env bash
# console-bench.sh: the web console's two targets (issue 20), measured against a real `coldscan serve`:
#   1. the first load of the console (/ and everything it fetches, API answers included) in Debian's
#      chromium: bytes transferred (target: under 300 KB);
#   2. findings searches over 100,000 stored findings (a STATE/findings.jsonl of 100 runs of 1,000 findings
#      written here: 100 images on 10 hosts, 50 signatures, 30 days): each query's time at the API, median
#      of 7 with curl (target: under 200 ms).
# Needs the e2e fixtures (build/fixtures: signatures) and playwright-core (scripts/install-deps.sh).
# Writes ${COLDSCAN_BENCH_DIR:-build/bench}/console/console.json and prints a table.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
coldscan=${COLDSCAN:-$root/build/tools/coldscan}
fixtures=${COLDSCAN_FIXTURES:-$root/build/fixtures}
out=${COLDSCAN_BENCH_DIR:-$root/build/bench}/console
[[ -x $coldscan ]] || { echo "console-bench: no coldscan at $coldscan (./scripts/build.sh)" >&2; exit 2; }
[[ -d $fixtures/sigs ]] || { echo "console-bench: no fixtures at $fixtures" >&2; exit 2; }
work=$(mktemp -d /tmp/coldscan-console-bench.XXXXXX)
trap 'kill "$serve_pid" 2>/dev/null; wait "$serve_pid" 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$work/state" "$work/images" "$out"

python3 - "$work/state/findings.jsonl" <<'PY'
import json, random, sys
random.seed(1)
start = 1_796_000_000
with open(sys.argv[1], "w") as f:
    for run in range(100):
        image = f"/datastores/ds{run % 5}/image-{run:03}.qcow2"
        findings = []
        for i in range(1000):
            findings.append({"at": start + run * 25_000, "datastore": f"ds{run % 5}", "device": "/dev/sda1",
                             "engine": "clamav", "host": f"esx{run % 10:02}", "image": image,
                             "job": f"j-{run:024x}", "kind": "DETECTION", "node": "bench",
                             "path": f"/var/www/site{i % 40}/upload/file-{i:04}.php",
                             "sha256": f"{random.getrandbits(256):064x}",
                             "signature": f"Bench.Sig.{random.randrange(50)}", "signature_set": "bench"})
        f.write(json.dumps({"run": f"j-{run:024x}:1", "findings": findings}) + "\n")
PY
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
server=http://127.0.0.1:$port
cat >"$work/config.toml" <<TOML
[service]
state_dir = "$work/state"
threads = 1
[api]
listen = "127.0.0.1:$port"
[signatures]
clamav_db = "$fixtures/sigs/clamav"
yara_rules = ["$fixtures/sigs/yara"]
[[host]]
name = "esx00"
max_concurrent_scans = 1
[[datastore]]
name = "images"
roots = ["$work/images"]
hosts = ["esx00"]
TOML
"$coldscan" serve --config "$work/config.toml" >"$work/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 1 300); do curl -fsS "$server/v1/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
total=$(curl -fsS "$server/v1/findings?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
[[ $total == 100000 ]] || { echo "console-bench: the service holds $total findings, not 100000" >&2; exit 2; }

queries=(
    "/v1/findings"
    "/v1/findings?signature=Bench.Sig.7"
    "/v1/findings?image=/datastores/ds3/image-042.qcow2"
    "/v1/findings?path=site17/upload"
    "/v1/findings?host=esx04&since=2026-12-01T00:00:00Z"
    "/v1/findings?offset=99000&limit=1000"
    "/v1/stats"
)
: >"$work/queries.jsonl"
for query in "${queries[@]}"; do
    times=()
    for _ in 1 2 3 4 5 6 7; do
        times+=("$(curl -fsS -o /dev/null -w '%{time_total}' "$server$query")")
    done
    printf '%s\n' "${times[@]}" | python3 -c '
import json, statistics, sys
times = [float(t) * 1000 for t in sys.stdin.read().split()]
print(json.dumps({"query": sys.argv[1], "median_ms": statistics.median(times), "max_ms": max(times)}))' \
        "$query" >>"$work/queries.jsonl"
done

node --input-type=module - "$server" >"$work/load.json" <<'JS'
const { launchBrowser, newPage } = await import(process.cwd() + '/tests/browser/lib.mjs');
const browser = await launchBrowser();
const t = await newPage(browser);
const sizes = [];
t.page.on('response', async (r) => {
  try { sizes.push({ url: r.url(), bytes: (await r.body()).length + 300 /* status line and headers, about */ }); } catch {}
});
await t.page.goto(process.argv[2] + '/', { waitUntil: 'networkidle' });
await browser.close();
console.log(JSON.stringify({ requests: sizes.length, bytes: sizes.reduce((a, s) => a + s.bytes, 0), sizes }));
JS

python3 - "$work/queries.jsonl" "$work/load.json" "$out/console.json" <<'PY'
import json, sys
queries = [json.loads(line) for line in open(sys.argv[1])]
load = json.load(open(sys.argv[2]))
json.dump({"first_load": load, "queries": queries}, open(sys.argv[3], "w"), indent=1)
print(f"first load of /: {load['requests']} requests, {load['bytes'] / 1024:.0f} KiB (target: under 300 KB)")
print(f"{'query over 100,000 findings':60} {'median ms':>10} {'max ms':>8}")
for q in queries:
    print(f"{q['query']:60} {q['median_ms']:>10.1f} {q['max_ms']:>8.1f}")
PY
echo "console-bench: $out/console.json"
