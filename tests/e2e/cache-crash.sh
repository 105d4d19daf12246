#!/usr/bin/env bash
# cache-crash.sh COLDSCAN FIXTURES WORKDIR
#
# The verdict cache under kill -9 and damage, on the dormant tree as a directory (no appliance: fast).
#   1. A reference scan without a cache.
#   2. Rounds: a scan killed with SIGKILL at a different moment each time, then a complete re-scan on the same
#      cache. Every re-scan must give each file exactly the reference's outcome and signatures: nothing the
#      killed run left half-done may come back as clean.
#   3. Every table file of a filled cache damaged in its middle: the next scan warns about the cache, reports
#      the problem, and still gives the reference's results.
set -euo pipefail

# shellcheck source=tests/e2e/script-start.sh
source "$(dirname "${BASH_SOURCE[0]}")/script-start.sh"
tree=$fixtures/dirscan/dormant-vm
sigs=(--clamav-db "$fixtures/sigs/clamav" --yara-rules "$fixtures/sigs/yara")

# path outcome signatures..., one line per file, sorted: what a user sees per file.
verdicts() {
    python3 -c '
import json, sys
lines = []
for raw in open(sys.argv[1]):
    r = json.loads(raw)
    lines.append(" ".join([r.get("path_hex", r["path"]), r["outcome"]] + sorted(r.get("signatures", []))))
print("\n".join(sorted(lines)))' "$1"
}

scan() { # scan NAME CACHE-ARGS... : exit status in $status
    local name=$1
    shift
    set +e
    "$coldscan" scan "${sigs[@]}" "$@" --threads 1 --no-progress --no-summary --quiet-issues \
        --report "$work/$name.json" --inventory "$work/$name.jsonl" "$tree" >"$work/$name.out" 2>"$work/$name.err"
    status=$?
    set -e
}

scan reference --no-cache
[[ $status -eq 1 ]] || { echo "reference scan: exit $status, expected 1"; cat "$work/reference.err"; exit 1; }
verdicts "$work/reference.jsonl" >"$work/reference.verdicts"
echo "reference: $(wc -l <"$work/reference.verdicts") files"

for delay in 0.05 0.15 0.3 0.5 0.8; do
    cache=$work/cache-$delay
    set +e
    "$coldscan" scan "${sigs[@]}" --cache "$cache" --threads 1 --no-progress --no-summary --quiet-issues \
        "$tree" >/dev/null 2>&1 &
    pid=$!
    sleep "$delay"
    kill -9 "$pid" 2>/dev/null
    wait "$pid"
    killed_status=$?
    set -e
    scan "rescan-$delay" --cache "$cache"
    if [[ $status -ne 1 ]]; then
        echo "re-scan after kill at ${delay}s: exit $status, expected 1"
        cat "$work/rescan-$delay.err"
        exit 1
    fi
    verdicts "$work/rescan-$delay.jsonl" >"$work/rescan-$delay.verdicts"
    if ! diff -u "$work/reference.verdicts" "$work/rescan-$delay.verdicts"; then
        echo "re-scan after kill at ${delay}s differs from the reference"
        exit 1
    fi
    written=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cache"]["engine_scans"])' \
        "$work/rescan-$delay.json")
    echo "kill -9 at ${delay}s (exit $killed_status), re-scan: same verdicts, $written files scanned again"
done

# A filled cache, then damage in the middle of every table file.
cache=$work/cache-damaged
scan filled --cache "$cache"
tables=("$cache"/*.sst)
[[ -e ${tables[0]} ]] || { echo "the filled cache has no table files"; ls -la "$cache"; exit 1; }
for table in "${tables[@]}"; do
    size=$(stat -c %s "$table")
    head -c $((size / 2)) /dev/urandom | dd of="$table" bs=1 seek=$((size / 4)) conv=notrunc status=none
done
scan damaged --cache "$cache"
if [[ $status -ne 1 ]]; then
    echo "scan on the damaged cache: exit $status, expected 1"
    cat "$work/damaged.err"
    exit 1
fi
verdicts "$work/damaged.jsonl" >"$work/damaged.verdicts"
diff -u "$work/reference.verdicts" "$work/damaged.verdicts" || { echo "damaged cache changed verdicts"; exit 1; }
grep -q "cache" "$work/damaged.err" || { echo "no warning about the damaged cache"; cat "$work/damaged.err"; exit 1; }
problem=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cache"]["problem"])' "$work/damaged.json")
[[ -n $problem ]] || { echo "the report does not name the cache problem"; exit 1; }
echo "damaged cache: same verdicts; warned: $(head -n 1 "$work/damaged.err")"
