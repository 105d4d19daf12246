#!/usr/bin/env bash
# gate-latency.sh: how long `coldscan gate` holds a VM's power-on, through a real `coldscan serve` on loopback.
#   cold     the first gate on the image: no verdict yet, so the whole image is scanned (empty cache)
#   warm     REPEATS gates answered from the fresh verdict (the default --max-age 24h): no scan at all
#   rescan   REPEATS `gate --max-age 0`: the verdict is stale, so the image is scanned again at gate priority,
#            but every file is a cache hit by identity (a warm rescan through the service)
# Each wall time is taken with `date +%s.%N` around the client, so it includes the client's start, the API
# round trips and its polling (the client asks once a second). A gate that denies (exit 1: the bench template
# carries planted samples) is a verdict like an allow; exit 2 (no verdict) stops the script. Each arm is
# checked against the service's log: cold and every rescan started exactly one scan, warm gates none.
# The service dates verdicts in whole seconds and takes a verdict as fresh unless it is older than
# now - max-age, so a `--max-age 0` gate in the same second as the previous verdict is answered from it: each
# rescan starts in a later second than the one before ended (a short sleep outside the timed window).
#
# Environment:
#   COLDSCAN  the coldscan binary (default build/tools/coldscan)
#   IMAGE     the disk image (default ${COLDSCAN_BENCH_DIR:-build/bench}/direct/images/template.qcow2)
#   SIGS      ClamAV databases (default ${COLDSCAN_BENCH_DIR:-build/bench}/sigs/clamav)
#   YARA      YARA rule file or folder (default: none)
#   OUT       results folder (default ${COLDSCAN_BENCH_DIR:-build/bench}/gate-latency); its state/ is
#             emptied first, so the cold arm really is cold
#   REPEATS   warm and rescan repetitions (default 5)
#   BENCH_RESULTS  when set (bench/run-all.sh sets it): also write the "gate-latency" section of that
#             RESULTS.md (bench/results_md.py keeps the other sections as they are)
# Writes OUT/gate-latency.json {"cold_s", "warm_s": [...], "rescan_s": [...], ...} and prints a summary.
# The service's state folder, config and log (serve.log) stay in OUT.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)

bench_dir=${COLDSCAN_BENCH_DIR:-build/bench}
coldscan=${COLDSCAN:-$root/build/tools/coldscan}
image=${IMAGE:-$bench_dir/direct/images/template.qcow2}
sigs=${SIGS:-$bench_dir/sigs/clamav}
yara=${YARA:-}
out=${OUT:-$bench_dir/gate-latency}
repeats=${REPEATS:-5}

die() {
    echo "gate-latency: $*" >&2
    exit 2
}
[[ -x $coldscan ]] || die "no coldscan binary at $coldscan (set COLDSCAN)"
[[ -f $image ]] || die "no image at $image (set IMAGE, or build the direct-bench inputs)"
[[ -e $sigs ]] || die "no ClamAV databases at $sigs (set SIGS)"
[[ $repeats =~ ^[1-9][0-9]*$ ]] || die "REPEATS must be a positive number"
coldscan=$(realpath "$coldscan")
# The datastore root is the image's own folder (a symlink to the image from elsewhere would resolve outside
# the root and be refused).
image=$(realpath "$image")
sigs=$(realpath "$sigs")
[[ -z $yara ]] || yara=$(realpath "$yara")
mkdir -p "$out"
out=$(realpath "$out")
rm -rf "$out/state"
mkdir -p "$out/state"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export COLDSCAN_SERVER=http://127.0.0.1:$port
config=$out/coldscan.toml
cat >"$config" <<EOF
[service]
state_dir = "$out/state"
threads = 0
shutdown_grace = 5

[api]
listen = "127.0.0.1:$port"

[signatures]
clamav_db = "$sigs"
$([[ -n $yara ]] && echo "yara_rules = [\"$yara\"]")

[[host]]
name = "benchhost"
max_concurrent_scans = 2

[[datastore]]
name = "bench"
roots = ["$(dirname "$image")"]
hosts = ["benchhost"]
EOF
chmod 600 "$config"

serve_pid=
stop_service() {
    if [[ -n $serve_pid ]]; then
        kill -TERM "$serve_pid" 2>/dev/null || true
        wait "$serve_pid" 2>/dev/null || true
        serve_pid=
    fi
}
trap stop_service EXIT

: >"$out/serve.log"
"$coldscan" serve --config "$config" >>"$out/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 1 600); do
    curl -fsS "$COLDSCAN_SERVER/v1/healthz" >/dev/null 2>&1 && break
    kill -0 "$serve_pid" 2>/dev/null || die "coldscan serve exited at start-up: $(tail -5 "$out/serve.log")"
    sleep 0.1
done
curl -fsS "$COLDSCAN_SERVER/v1/healthz" >/dev/null 2>&1 || die "coldscan serve did not answer within 60 s"

scans_started() { grep -c ': starting ' "$out/serve.log" || true; }

# report_cache NAME: the cache counters of the image's job report (the last scan) into OUT/NAME.cache.json.
report_cache() {
    local id
    id=$(curl -fsS "$COLDSCAN_SERVER/v1/scans" | python3 -c '
import json, sys
jobs = [j for j in json.load(sys.stdin)["jobs"] if j["target"] == sys.argv[1]]
print(jobs[-1]["id"] if jobs else "")' "$image") || die "GET /v1/scans failed"
    [[ -n $id ]] || die "the service lists no job for $image"
    curl -fsS "$COLDSCAN_SERVER/v1/scans/$id/report" |
        python3 -c 'import json, sys; json.dump(json.load(sys.stdin).get("cache", {}), sys.stdout)' \
            >"$out/$1.cache.json" || die "GET /v1/scans/$id/report failed"
}

# timed_gate NAME SCANS [GATE OPTIONS...]: one gate on the image, which must start SCANS scans; its wall
# seconds on stdout, its output in OUT/NAME.out, its exit status in OUT/NAME.status.
timed_gate() {
    local name=$1 want=$2 start end status before after
    shift 2
    before=$(scans_started)
    start=$(date +%s.%N)
    set +e
    "$coldscan" gate "$@" "$image" >"$out/$name.out" 2>&1
    status=$?
    set -e
    end=$(date +%s.%N)
    echo "$status" >"$out/$name.status"
    if ((status > 1)); then
        die "$name: no verdict (exit $status): $(cat "$out/$name.out")"
    fi
    after=$(scans_started)
    if ((after - before != want)); then
        die "$name: the service started $((after - before)) scans, expected $want (see $out/serve.log)"
    fi
    python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.3f}")' "$start" "$end"
}

echo "gate-latency: $image ($(du -h --apparent-size "$image" | cut -f1)), signatures $sigs, service on :$port"
cold=$(timed_gate cold 1)
report_cache cold
echo "  cold     ${cold} s  ($(head -c 120 "$out/cold.out" | head -1))"
warm=()
for i in $(seq 1 "$repeats"); do
    warm+=("$(timed_gate "warm-$i" 0)")
done
echo "  warm     ${warm[*]} s"
rescan=()
for i in $(seq 1 "$repeats"); do
    sleep 1.1 # a later second than the last verdict (see above)
    rescan+=("$(timed_gate "rescan-$i" 1 --max-age 0)")
    report_cache "rescan-$i"
done
echo "  rescan   ${rescan[*]} s"
# The service's peak RSS over every gate (its scans run inside it).
awk '/^VmHWM:/ { print int($2 / 1024) }' "/proc/$serve_pid/status" >"$out/serve.peak-rss-mib" || true
stop_service

revision=$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)
python3 - "$out" "$image" "$cold" "${warm[*]}" "${rescan[*]}" "$root" "$revision" "$sigs" <<'PY'
import datetime, json, os, statistics, sys
out, image, cold, warm, rescan, root, revision, sigs = sys.argv[1:9]
warm = [float(v) for v in warm.split()]
rescan = [float(v) for v in rescan.split()]
def verdict(name):
    status = open(os.path.join(out, name + ".status")).read().strip()
    return {"0": "allow", "1": "deny"}.get(status, "exit " + status)
verdicts = {verdict(n) for n in ["cold"] + [f"warm-{i}" for i in range(1, len(warm) + 1)]
            + [f"rescan-{i}" for i in range(1, len(rescan) + 1)]}
doc = {
    "image": image,
    "image_bytes": os.path.getsize(image),
    "cold_s": float(cold),
    "warm_s": warm,
    "rescan_s": rescan,
    "warm_median_s": statistics.median(warm),
    "rescan_median_s": statistics.median(rescan),
    "verdicts": sorted(verdicts),
}
# What the engines did: the cold scan reads and scans everything; a rescan should scan nothing.
def cache(name):
    return json.load(open(os.path.join(out, name + ".cache.json")))
peak_rss = open(os.path.join(out, "serve.peak-rss-mib")).read().strip()
doc["service_peak_rss_mib"] = int(peak_rss) if peak_rss.isdigit() else None
doc["cold_engine_scans"] = cache("cold").get("engine_scans")
doc["rescan_engine_scans"] = [cache(f"rescan-{i}").get("engine_scans") for i in range(1, len(rescan) + 1)]
doc["rescan_files_not_read"] = [cache(f"rescan-{i}").get("files_not_read") for i in range(1, len(rescan) + 1)]
if any(n != 0 for n in doc["rescan_engine_scans"]):
    print(f"gate-latency: warning: rescans ran the engines ({doc['rescan_engine_scans']} files): "
          "not every file was a cache hit", file=sys.stderr)
with open(os.path.join(out, "gate-latency.json"), "w") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")
print(f"gate-latency: cold {doc['cold_s']:.2f} s, warm median {doc['warm_median_s']:.3f} s "
      f"(min {min(warm):.3f}, max {max(warm):.3f}), rescan median {doc['rescan_median_s']:.2f} s "
      f"(min {min(rescan):.2f}, max {max(rescan):.2f}); verdicts: {', '.join(doc['verdicts'])}")
print(os.path.join(out, "gate-latency.json"))

results_md = os.environ.get("BENCH_RESULTS")
if results_md:
    def shown(path):
        return os.path.relpath(path, root) if path.startswith(root + os.sep) else path

    cold_note = f"no verdict yet: the whole image is scanned, empty cache (engine scans {doc['cold_engine_scans']})"
    rescan_note = (f"--max-age 0: rescanned at gate priority; engine scans {max(doc['rescan_engine_scans'])}, "
                   f"files not read {min(doc['rescan_files_not_read'])}")

    def row(name, values, note):
        return (f"| {name} | {statistics.median(values):.3f} s | {min(values):.3f} s | {max(values):.3f} s "
                f"| {len(values)} | {note} |")
    text = f"""## Gate latency with a warm cache: `gate-latency.sh`

`coldscan gate IMAGE` through a real `coldscan serve` on loopback (one host, one datastore whose root is the
image's folder, `threads = 0`), on `{os.path.basename(image)}` ({doc['image_bytes'] / 2**30:.2f} GiB file),
ClamAV databases `{shown(sigs)}`. Wall time of the client
(`date +%s.%N` around it: client start, API round trips, polling), verdict {', '.join(doc['verdicts'])}.

| gate | median | min | max | runs | what happens |
|---|---:|---:|---:|---:|---|
{row("cold", [doc["cold_s"]], cold_note)}
{row("warm", warm, "answered from the fresh verdict (default --max-age 24h): nothing scanned")}
{row("rescan", rescan, rescan_note)}

Peak RSS of the service over all of these gates (its scans run inside it; VmHWM before it stopped):
{f"{doc['service_peak_rss_mib']} MiB" if doc['service_peak_rss_mib'] is not None else 'not measured'}.

{datetime.date.today().isoformat()}, revision {revision}, {os.cpu_count()} cores; reproduce with
`IMAGE={shown(image)} SIGS={shown(sigs)} REPEATS={len(warm)} ./bench/gate-latency.sh`.
"""
    sys.path.insert(0, os.path.join(root, "bench"))
    import results_md as rm
    rm.replace_section(results_md, "gate-latency", text)
    print(f"gate-latency: section \"gate-latency\" of {results_md} updated")
PY
