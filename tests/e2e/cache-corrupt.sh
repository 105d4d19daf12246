#!/usr/bin/env bash
# cache-corrupt.sh COLDSCAN FIXTURES WORKDIR
#
# A damaged store never gives a clean verdict (issue 7). One store is filled by a real `coldscan serve`
# (two scans of a small infected ext4 image, a clean stop, one more scan, then kill -9: table files of every
# key space and a write-ahead log with records), then copies of it are damaged four ways:
#   sst       flipped bytes in the verdict table files
#   wal       the write-ahead log cut inside a record
#   manifest  the MANIFEST cut to half
#   current   CURRENT emptied
# `coldscan scan --cache COPY` on each: the scan completes with exit 1 and exactly the outcomes of a scan
# without a cache (EICAR and the rest still INFECTED), a warning on stderr, and the report's cache.problem
# says what coldscan did: misses for the rest of the run (sst; the next run sets the store aside), the log
# replayed up to the damage (wal), the store set aside and a new one started (manifest, current).
# `coldscan serve` on each: the damaged WAL and the damaged verdicts are warned about and the service runs;
# a new scan gives the plain scan's outcomes (a damaged verdict is a miss, never clean) and the service
# stays up; a cut MANIFEST or an empty CURRENT make it refuse to start (the store holds the job queue) and
# leave the store as it was.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/script-start.sh
source "$here/script-start.sh"
# shellcheck source=tests/e2e/service-lib.sh
source "$here/service-lib.sh"
fixtures=$(cd "$fixtures" && pwd)
coldscan=$(realpath "$coldscan")
work=$(cd "$work" && pwd)
cd "$work"
sigs=(--clamav-db "$fixtures/sigs/clamav" --yara-rules "$fixtures/sigs/yara")

note "an infected image and a scan without a cache"
mkdir -p tree ds
cp -a "$fixtures/trees/dormant/." tree/
rm -f tree/var/backups/db-dump.sql
"$here/../fixtures/make-ext4-image.sh" --label corrupt --disk-mib 32 tree image.qcow2 >/dev/null
rm -rf tree

# verdicts REPORT: "path outcome signatures" per file that is not CLEAN, then the counts.
verdicts() {
    python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
out = {}
for d in r["detections"]:
    out.setdefault(d.get("path_hex", d["path"]), ["INFECTED", []])[1].append(d["signature"])
for e in r["errors"]:
    out.setdefault(e.get("path_hex", e.get("path", "")), [e["outcome"], []])
for path in sorted(out):
    print(path, out[path][0], *sorted(out[path][1]))
print("counts", json.dumps(r["counts"], sort_keys=True))
PY
}
scan() { # NAME CACHE-OPTIONS...: exit status in $status
    local name=$1
    shift
    set +e
    "$coldscan" scan "${sigs[@]}" --backend direct "$@" --no-progress --no-summary --quiet-issues \
        --report "$name.json" image.qcow2 >"$name.out" 2>"$name.err"
    status=$?
    set -e
}
scan reference-scan --no-cache
[[ $status == 1 ]] || fail "reference scan: exit $status, expected 1"
verdicts reference-scan.json >reference.verdicts
grep -q "eicar test.com INFECTED" reference.verdicts || fail "the reference scan does not find EICAR"

note "a store filled by the service, then kill -9"
port=$(free_port)
server="http://127.0.0.1:$port"
cat >config.toml <<EOF
[service]
state_dir = "$work/state"
threads = 2

[api]
listen = "127.0.0.1:$port"

[signatures]
clamav_db = "$fixtures/sigs/clamav"
yara_rules = ["$fixtures/sigs/yara"]

[[host]]
name = "h1"

[[datastore]]
name = "ds"
roots = ["$work/ds"]
hosts = ["h1"]
EOF
scan_in_service() { # a new copy of the image (a new job); prints the job id once it succeeded
    local copy answer id
    copy=$(mktemp --suffix=.qcow2 -p "$work/ds" copy-XXXXXX)
    cp image.qcow2 "$copy"
    answer=$(api POST /v1/scans "{\"targets\": [\"$copy\"]}")
    [[ "$(tail -1 <<<"$answer")" == 202 ]] || fail "submit: $answer"
    id=$(json_field "$(head -n -1 <<<"$answer")" 'j["jobs"][0]["id"]')
    wait_for "$id" 'j["status"] == "succeeded"' 300
    echo "$id"
}
start_service config.toml
scan_in_service >/dev/null
stop_service # flushed: table files
start_service config.toml
scan_in_service >/dev/null
kill -9 "$serve_pid"
wait "$serve_pid" 2>/dev/null || true
ls state/store/*.sst >/dev/null || fail "the store has no table files"
wal=$(ls -S state/store/*.log | head -1) # the newest log has the records; an older one may be empty
[[ $(stat -c %s "$wal") -gt 1000 ]] || fail "the write-ahead log is empty after kill -9: $(ls -la state/store)"
verdict_tables=$(grep -l content_verdict state/store/*.sst) || fail "no table file holds verdicts"

damage() { # KIND FOLDER
    local kind=$1 folder=$2 file size
    case $kind in
    sst)
        for file in $(grep -l content_verdict "$folder"/*.sst); do
            size=$(stat -c %s "$file")
            python3 - "$file" <<'PY'
import sys
path = sys.argv[1]
data = bytearray(open(path, "rb").read())
for i in range(len(data) // 8, len(data) // 2, 61):  # data blocks come first in a table file
    data[i] ^= 0xFF
open(path, "wb").write(data)
PY
        done
        ;;
    wal)
        file=$(ls -S "$folder"/*.log | head -1)
        truncate -s $(($(stat -c %s "$file") / 2 + 101)) "$file"
        ;;
    manifest)
        file=$(ls "$folder"/MANIFEST-*)
        truncate -s $(($(stat -c %s "$file") / 2)) "$file"
        ;;
    current) truncate -s 0 "$folder/CURRENT" ;;
    esac
}
rm -f state/store/LOCK
cp -a state/store pristine-store

note "coldscan scan --cache on a damaged store"
for kind in sst wal manifest current; do
    rm -rf "cache-$kind"
    cp -a pristine-store "cache-$kind"
    damage "$kind" "cache-$kind"
    scan "scan-$kind" --cache "$work/cache-$kind"
    [[ $status == 1 ]] || fail "$kind: exit $status, expected 1: $(cat "scan-$kind.err")"
    verdicts "scan-$kind.json" >"scan-$kind.verdicts"
    diff -u reference.verdicts "scan-$kind.verdicts" || fail "$kind: the outcomes differ from a scan without a cache"
    problem=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cache"]["problem"])' "scan-$kind.json")
    grep -q "warning: cache" "scan-$kind.err" || fail "$kind: no warning about the cache: $(cat "scan-$kind.err")"
    case $kind in
    sst) expected="the rest of this run does not use the cache" ;;
    wal) expected="write-ahead log of $work/cache-$kind was damaged" ;;
    *) expected="and a new cache started" ;;
    esac
    [[ $problem == *"$expected"* ]] || fail "$kind: cache.problem is '$problem', expected it to say '$expected'"
    echo "$kind: same outcomes; cache.problem: $problem"
done
# The store a read found damaged is set aside by the next run, which starts a new one.
scan scan-sst-again --cache "$work/cache-sst"
[[ $status == 1 ]] || fail "sst, the run after: exit $status"
verdicts scan-sst-again.json | diff -u reference.verdicts - || fail "sst, the run after: outcomes differ"
ls -d "$work"/cache-sst.damaged-* >/dev/null || fail "sst: the damaged store was not set aside"
grep -q "moved to" scan-sst-again.err || fail "sst, the run after: no warning: $(cat scan-sst-again.err)"

note "coldscan serve on a damaged store"
for kind in sst wal; do
    rm -rf state/store
    cp -a pristine-store state/store
    damage "$kind" state/store
    : >serve.log
    start_service config.toml
    id=$(scan_in_service)
    curl -fsS "$server/v1/scans/$id/report" >"serve-$kind.json"
    verdicts "serve-$kind.json" | diff -u reference.verdicts - || fail "serve, $kind: outcomes differ"
    case $kind in
    sst) grep -q "warning: cache: .*Corruption" serve.log || fail "serve, sst: no warning about the damage" ;;
    wal) grep -q "error: service store: .*write-ahead log" serve.log || fail "serve, wal: no error logged" ;;
    esac
    # Still up, and the next scan is as good.
    id=$(scan_in_service)
    curl -fsS "$server/v1/scans/$id/report" >"serve-$kind-next.json"
    verdicts "serve-$kind-next.json" | diff -u reference.verdicts - || fail "serve, $kind: the next scan differs"
    kill -0 "$serve_pid" || fail "serve, $kind: the service died"
    stop_service
    echo "serve, $kind: warned, same outcomes, still running"
done
for kind in manifest current; do
    rm -rf state/store
    cp -a pristine-store state/store
    damage "$kind" state/store
    before=$(cd state/store && ls | sort | tr '\n' ' ')
    set +e
    "$coldscan" serve --config config.toml >"serve-$kind.log" 2>&1
    status=$?
    set -e
    [[ $status != 0 ]] || fail "serve, $kind: started on a damaged store"
    grep -q "the service store .* cannot be opened: .*Corruption" "serve-$kind.log" ||
        fail "serve, $kind: no clear error: $(cat "serve-$kind.log")"
    after=$(cd state/store && ls | sort | tr '\n' ' ')
    [[ "$before" == "$after" ]] || fail "serve, $kind: the store's files changed: $before -> $after"
    echo "serve, $kind: refused to start, store left as it was"
done
echo "cache-corrupt: all checks passed"
