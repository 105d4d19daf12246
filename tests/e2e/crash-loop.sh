#!/usr/bin/env bash
# crash-loop.sh COLDSCAN FIXTURES WORKDIR
#
# Crash safety of the scan service (issue 7): a real `coldscan serve` is killed with SIGKILL at a random
# moment of its scans, round after round, restarted, and given more work; a record kept on the test side says
# what must hold at the end:
#   - every job the API acknowledged (HTTP 2xx with an id) reaches `succeeded`, with a report, and no crash
#     counts as a failed attempt;
#   - every report gives each file what a plain `coldscan scan` of the same image gives it: the same counts,
#     detections and not-fully-scanned files, so nothing is CLEAN that was not scanned whole;
#   - alerts.jsonl holds valid JSON lines only, exactly one alert per scan that found something (a
#     resubmission of the same image is the same job and alerts no more), none for clean images;
#   - nothing is left behind: no half-written report, no temporary folder of a killed service.
# The images are small ext4 disks read by the direct path (no appliance); the host's read cap makes each scan
# last a few seconds, so that kills land inside scans. Each image variant has its own files (new contents
# for the engines), and copies of a variant are new jobs whose verdicts come from the cache.
#
# Environment: CRASH_LOOP_SEED (default: random, printed), CRASH_LOOP_ROUNDS (default 20).
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

seed=${CRASH_LOOP_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
rounds=${CRASH_LOOP_ROUNDS:-20}
echo "crash-loop: seed $seed, $rounds rounds (repeat with CRASH_LOOP_SEED=$seed CRASH_LOOP_ROUNDS=$rounds)"
started=$(date +%s)

note "images"
# variant NAME TREE SALT: TREE without its 48 MiB dump, plus 120 files of bytes of its own (SALT), as ext4.
variant() {
    local name=$1 tree=$2 salt=$3
    mkdir -p "trees/$name"
    cp -a "$tree/." "trees/$name/"
    rm -f "trees/$name/var/backups/db-dump.sql"
    python3 - "trees/$name/srv/data" "$salt" <<'PY'
import os, random, sys
folder, salt = sys.argv[1], int(sys.argv[2])
os.makedirs(folder, exist_ok=True)
rng = random.Random(salt)
for i in range(120):
    with open(os.path.join(folder, f"part-{i:03}.bin"), "wb") as out:
        out.write(rng.randbytes(rng.randint(1, 24) * 1024))
PY
    "$here/../fixtures/make-ext4-image.sh" --label "$name" --disk-mib 32 "trees/$name" "images/$name.qcow2" \
        >/dev/null
}
mkdir -p images ds reference tmp
variant infected-a "$fixtures/trees/dormant" 1
variant infected-b "$fixtures/trees/dormant" 2
variant clean-a "$fixtures/trees/clean" 3
variant clean-b "$fixtures/trees/clean" 4
rm -rf trees

note "reference scans (no cache, no service)"
# bash (1.2 MB) is above the 1 MiB file size limit: LIMIT_EXCEEDED in every variant, never clean (a warning
# under the default limit policy: the clean variants exit 0 and are completed_with_warnings).
for image in images/*.qcow2; do
    name=$(basename "$image" .qcow2)
    set +e
    "$coldscan" scan --backend direct --no-cache --no-progress --no-summary --quiet-issues \
        --clamav-db "$fixtures/sigs/clamav" --yara-rules "$fixtures/sigs/yara" --max-filesize 1M \
        --report "reference/$name.json" "$image" >"reference/$name.out" 2>&1
    status=$?
    set -e
    case $name in
    infected-*) [[ $status == 1 ]] || fail "reference scan of $name: exit $status, expected 1" ;;
    clean-*)
        [[ $status == 0 ]] || fail "reference scan of $name: exit $status, expected 0 (bash: a LIMIT_EXCEEDED warning)"
        grep -q '"status": "completed_with_warnings"' "reference/$name.json" ||
            fail "reference scan of $name: not completed_with_warnings"
        ;;
    esac
done

port=$(free_port)
server="http://127.0.0.1:$port"
# One host, two scans at once, 3 MiB/s between them: a scan of one image (about 6 MiB) takes seconds.
cat >config.toml <<EOF
[service]
state_dir = "$work/state"
threads = 2
max_attempts = 3
shutdown_grace = 30

[api]
listen = "127.0.0.1:$port"

[signatures]
clamav_db = "$fixtures/sigs/clamav"
yara_rules = ["$fixtures/sigs/yara"]

[limits]
max_file_size = "1M"

[[host]]
name = "h1"
max_concurrent_scans = 2
max_read_per_second = "3M"

[[datastore]]
name = "ds"
roots = ["$work/ds"]
hosts = ["h1"]
EOF

note "crash loop"
# The service's temporary folders (qemu-nbd sockets, libclamav scratch) go here, so that what killed
# services leave behind can be counted.
TMPDIR=$work/tmp python3 "$here/crash_loop.py" --coldscan "$coldscan" --config config.toml --work "$work" \
    --server "$server" --seed "$seed" --rounds "$rounds" || fail "crash loop (seed $seed)"
echo "crash-loop: all checks passed (seed $seed, $rounds rounds, $(($(date +%s) - started)) s)"
