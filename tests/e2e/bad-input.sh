#!/usr/bin/env bash
# bad-input.sh COLDSCAN FIXTURES WORKDIR
#
# Bad input everywhere gets one clear line naming the problem, exit status 2, no crash (no abort, no
# sanitizer report, no signal) and loses nothing (a report file from an earlier run is left as it was):
#   - `coldscan scan` options: unknown options, bad and negative numbers, zero limits, sizes that overflow,
#     missing targets and files, folders where files are expected; `coldscan retro-hunt` without a cache or
#     with a missing database;
#   - signature files: a corrupt .hdb and .ndb line, a YARA rule with a syntax error, an empty database
#     folder, a database folder holding an unreadable file, a dangling link or a folder named like a database;
#   - `coldscan serve --config` (with --check, and once without): TOML syntax errors, unknown keys, wrong
#     types, bad values, a missing file, a folder;
#   - API bodies on a running service: malformed JSON, wrong types, huge and negative numbers, NUL bytes,
#     invalid UTF-8, deep nesting; every one a 400 with a JSON error, and the service still healthy.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/script-start.sh
source "$here/script-start.sh"
cd "$work"

failures=0
fail_case() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# EICAR from two halves, so that this file is not itself a test virus.
eicar='X5O!P%@AP[4\PZX54(P^)7CC)7}$'
eicar+='EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
mkdir -p tree
printf '%s' "$eicar" >tree/eicar.com
printf 'clean\n' >tree/clean.txt
echo '{"previous": "report"}' >previous.json
sigs=(--clamav-db "$fixtures/sigs/clamav" --yara-rules "$fixtures/sigs/yara")

# no_crash NAME EXIT: the run ended by itself, without a sanitizer or an abort message.
no_crash() {
    local name=$1 status=$2
    if ((status >= 128)); then
        fail_case "$name: killed by signal $((status - 128))"
    fi
    if grep -a -q -E 'AddressSanitizer|UndefinedBehaviorSanitizer|runtime error:|terminate called|Aborted|Segmentation' \
        "$name.err" "$name.out"; then
        fail_case "$name: crash report: $(grep -a -m1 -E 'Sanitizer|runtime error|terminate|Aborted|Segmentation' "$name.err" "$name.out")"
    fi
}

# expect_bad NAME PATTERN coldscan-args...: exit status 2, exactly one error line on stderr, matching the
# extended regular expression PATTERN (case-insensitive); the earlier report is untouched (unless
# report_written=1: a run that failed a target still writes its report). coldscan runs under ${runner[@]}.
runner=()
report_written=0
expect_bad() {
    local name=$1 pattern=$2
    shift 2
    cp previous.json "$name.report.json"
    set +e
    timeout 120 "${runner[@]}" "$coldscan" "$@" >"$name.out" 2>"$name.err"
    local status=$?
    set -e
    no_crash "$name" "$status"
    if ((status != 2)); then
        fail_case "$name: exit status $status, expected 2; stderr: $(head -c 400 "$name.err")"
    fi
    local errors
    errors=$(grep -a -c -E '^coldscan: (error|critical)' "$name.err" || true)
    if ((errors != 1)); then
        fail_case "$name: $errors error lines on stderr, expected 1: $(head -c 600 "$name.err")"
    elif ! grep -a -E '^coldscan: (error|critical)' "$name.err" | grep -a -q -i -E -- "$pattern"; then
        fail_case "$name: the error does not name the problem (/$pattern/): $(cat "$name.err")"
    fi
    if ((!report_written)) && ! cmp -s previous.json "$name.report.json"; then
        fail_case "$name: the earlier report was overwritten"
    fi
    echo "ok: $name: $(grep -a -m1 -E '^coldscan: (error|critical)' "$name.err" | cut -c1-160)"
}

scan_bad() { # NAME PATTERN scan-args...: `coldscan scan` with --report NAME.report.json
    local name=$1 pattern=$2
    shift 2
    expect_bad "$name" "$pattern" scan --no-cache --no-progress --report "$work/$name.report.json" "$@"
}

# --- command line -------------------------------------------------------------------------------------------
scan_bad unknown-option 'no-such-option' "${sigs[@]}" --no-such-option tree
scan_bad threads-word 'threads' "${sigs[@]}" --threads lots tree
scan_bad threads-zero 'threads' "${sigs[@]}" --threads 0 tree
scan_bad threads-negative 'threads' "${sigs[@]}" --threads -4 tree
scan_bad recursion-negative 'max-recursion' "${sigs[@]}" --max-recursion -1 tree
scan_bad recursion-zero 'max-recursion' "${sigs[@]}" --max-recursion 0 tree
scan_bad files-zero 'max-files' "${sigs[@]}" --max-files 0 tree
scan_bad files-huge 'max-files' "${sigs[@]}" --max-files 99999999999999999999 tree
scan_bad filesize-negative 'max-filesize' "${sigs[@]}" --max-filesize -5M tree
scan_bad filesize-unit 'max-filesize' "${sigs[@]}" --max-filesize 12Q tree
scan_bad filesize-overflow 'max-filesize' "${sigs[@]}" --max-filesize 99999999999T tree
scan_bad scansize-zero 'max-scansize' "${sigs[@]}" --max-scansize 0 tree
scan_bad bytes-in-flight-empty 'bytes-in-flight' "${sigs[@]}" --bytes-in-flight '' tree
scan_bad scantime-negative 'max-scantime' "${sigs[@]}" --max-scantime -10 tree
scan_bad yara-timeout-zero 'yara-timeout' "${sigs[@]}" --yara-timeout 0 tree
scan_bad yara-timeout-word 'yara-timeout' "${sigs[@]}" --yara-timeout soon tree
scan_bad backend-unknown 'backend' "${sigs[@]}" --backend fast tree
scan_bad format-unknown 'format' "${sigs[@]}" --format iso tree
scan_bad no-target 'TARGET' "${sigs[@]}"
report_written=1 # the report records the failed target
scan_bad missing-target 'does-not-exist' "${sigs[@]}" "$work/does-not-exist.qcow2"
report_written=0
expect_bad report-is-folder 'report.*folder' scan --no-cache "${sigs[@]}" tree --report "$work/tree"
expect_bad report-folder-missing 'no-such-folder' scan --no-cache "${sigs[@]}" tree --report "$work/no-such-folder/r.json"
scan_bad inventory-is-folder 'inventory.*folder' "${sigs[@]}" --inventory "$work/tree" tree
scan_bad spill-dir-is-file 'spill-dir' "${sigs[@]}" --spill-dir "$work/previous.json" tree
scan_bad allow-root-missing 'allow-root' "${sigs[@]}" --allow-root "$work/nowhere" tree
scan_bad cache-and-no-cache 'cache' "${sigs[@]}" --cache "$work/c" tree
expect_bad no-subcommand 'subcommand' --threads 2
# retro-hunt: a folder that holds no cache, and signatures that do not exist (the cache stays untouched).
expect_bad retro-hunt-no-cache 'no coldscan cache' retro-hunt --cache "$work/tree" "${sigs[@]}"
"$coldscan" scan --cache "$work/hunt-cache" --no-progress --no-summary "${sigs[@]}" tree >/dev/null 2>&1 || true
expect_bad retro-hunt-missing-db 'does not exist' retro-hunt --cache "$work/hunt-cache" --clamav-db "$work/nowhere"

# --- signature files ----------------------------------------------------------------------------------------
mkdir -p db/hdb db/ndb db/empty db/unreadable db/dangling db/folder yara-bad
printf '%s:68:Coldscan.Test.Hash\nnot-a-hash:zz:Coldscan.Broken.Hash\n' "$(printf '%s' "$eicar" | md5sum | cut -d' ' -f1)" \
    >db/hdb/broken.hdb
printf 'Coldscan.Test.Eicar:0:*:%s\nColdscan.Broken:0:*:(((\n' "$(printf '%s' "$eicar" | xxd -p | tr -d '\n')" \
    >db/ndb/broken.ndb
cp "$fixtures/sigs/clamav/"* db/unreadable/
printf 'Coldscan.Secret:0:*:636f6c647363616e\n' >db/unreadable/secret.ndb
chmod 000 db/unreadable/secret.ndb
chmod -R a+rX db/unreadable/coldscan-test.* 2>/dev/null || true
cp "$fixtures/sigs/clamav/"* db/dangling/
ln -s "$work/no-such-database.ndb" db/dangling/gone.ndb
cp "$fixtures/sigs/clamav/"* db/folder/
mkdir -p db/folder/daily.ndb
cat >yara-bad/syntax.yar <<'EOF'
rule Coldscan_Syntax_Error
{
    strings:
        $a = "coldscan"
    condition:
        $a and and
}
EOF
scan_bad db-corrupt-hdb 'broken\.hdb' --clamav-db db/hdb tree
scan_bad db-corrupt-ndb 'broken\.ndb' --clamav-db db/ndb tree
scan_bad db-empty-folder 'db/empty' --clamav-db db/empty tree
scan_bad db-dangling-link 'gone\.ndb' --clamav-db db/dangling tree
scan_bad db-folder-as-file 'daily\.ndb' --clamav-db db/folder tree
scan_bad yara-syntax 'syntax\.yar' --clamav-db "$fixtures/sigs/clamav" --yara-rules yara-bad tree
scan_bad yara-missing 'no-such-rules' --clamav-db "$fixtures/sigs/clamav" --yara-rules "$work/no-such-rules" tree
# An unreadable database file (root reads anything, so the scan runs as nobody).
if [[ $(id -u) -eq 0 ]] && command -v setpriv >/dev/null; then
    chmod -R a+rwX "$work"
    chmod 000 db/unreadable/secret.ndb
    runner=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
    scan_bad db-unreadable-file 'secret\.ndb' --clamav-db db/unreadable tree
    runner=()
elif [[ $(id -u) -ne 0 ]]; then
    scan_bad db-unreadable-file 'secret\.ndb' --clamav-db db/unreadable tree
fi

# --- service configuration ----------------------------------------------------------------------------------
mkdir -p state store-root
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
config() { # FILE: a valid configuration, with the lines given on stdin appended
    {
        cat <<EOF
[service]
state_dir = "$work/state"

[api]
listen = "127.0.0.1:$port"

[signatures]
clamav_db = "$fixtures/sigs/clamav"
yara_rules = ["$fixtures/sigs/yara"]

[[host]]
name = "h1"
max_concurrent_scans = 1

[[datastore]]
name = "d1"
roots = ["$work/store-root"]
hosts = ["h1"]
EOF
        cat
    } >"$1"
}
config_bad() { # NAME PATTERN: config NAME.toml from stdin (appended to a valid one), checked with --check
    local name=$1 pattern=$2
    config "$name.toml"
    expect_bad "$name" "$pattern" serve --config "$work/$name.toml" --check
}
config ok.toml </dev/null
set +e
"$coldscan" serve --config "$work/ok.toml" --check >config-ok.out 2>config-ok.err
status=$?
set -e
((status == 0)) || fail_case "a valid config is refused ($status): $(cat config-ok.err)"

printf '[service\nthreads = 2\n' | config_bad config-syntax 'config-syntax\.toml:[0-9]+'
printf '[[host]]\nname = "h2"\nname = "h3"\n' | config_bad config-duplicate 'name'
printf '[extra]\nbogus = 1\n' | config_bad config-unknown-table 'extra'
printf '[[host]]\nname = "h2"\nmax_concurrent_scans = 1\ncolour = "red"\n' | config_bad config-unknown-key 'colour'
printf '[[host]]\nname = "h2"\nmax_concurrent_scans = "many"\n' | config_bad config-wrong-type 'max_concurrent_scans'
printf '[[host]]\nname = "h2"\nmax_concurrent_scans = -3\n' | config_bad config-negative 'max_concurrent_scans'
printf '[[host]]\nname = "h2"\nmax_concurrent_scans = 99999999999999999999\n' | config_bad config-huge 'config-huge\.toml'
printf '[[host]]\nname = "h2"\nmax_concurrent_scans = 1\nmax_read_per_second = "fast"\n' |
    config_bad config-bad-size 'max_read_per_second'
mkdir -p store-root-2
printf '[[datastore]]\nname = "d2"\nroots = ["%s/store-root-2"]\nhosts = ["nobody"]\n' "$work" |
    config_bad config-unknown-host 'nobody'
printf '[[host]]\nname = "h1"\nmax_concurrent_scans = 1\n' | config_bad config-duplicate-host 'h1'
printf '[[host]]\nname = "h\\u001b[2J\\u0007x"\nmax_concurrent_scans = 1\n' | config_bad config-escape 'not a name'
grep -a -q $'\x1b' config-escape.err && fail_case "config-escape: a raw escape byte reached stderr"
# Two problems: one line each, each naming its own.
config config-two.toml <<<$'[[host]]\nname = "h2"\nmax_concurrent_scans = 0\nshade = 1'
set +e
"$coldscan" serve --config "$work/config-two.toml" --check >config-two.out 2>config-two.err
status=$?
set -e
no_crash config-two "$status"
if ((status != 2)) || [[ $(grep -c '^coldscan: error: .*config-two.toml:[0-9]*: ' config-two.err) -ne 2 ]] ||
    ! grep -q 'max_concurrent_scans' config-two.err || ! grep -q 'shade' config-two.err; then
    fail_case "config-two: want exit 2 and two error lines: $status $(cat config-two.err)"
fi
expect_bad config-missing 'no-such\.toml' serve --config "$work/no-such.toml" --check
expect_bad config-folder 'state' serve --config "$work/state" --check
# Without --check the service refuses to start the same way.
printf '[[host]]\nname = "h2"\nmax_concurrent_scans = 1\nbogus = true\n' | config config-no-check.toml
expect_bad config-no-check 'bogus' serve --config "$work/config-no-check.toml"

# --- API bodies ---------------------------------------------------------------------------------------------
config serve.toml </dev/null
"$coldscan" serve --config "$work/serve.toml" >serve.log 2>&1 &
serve_pid=$!
trap 'kill -TERM $serve_pid 2>/dev/null || true' EXIT
server="http://127.0.0.1:$port"
for _ in $(seq 1 600); do
    curl -fsS "$server/v1/healthz" >/dev/null 2>&1 && break
    kill -0 "$serve_pid" 2>/dev/null || { cat serve.log >&2; echo "FAIL: coldscan serve exited" >&2; exit 1; }
    sleep 0.1
done

api_bad() { # NAME EXPECTED_STATUS BODY-FILE
    local name=$1 want=$2 body=$3 status
    status=$(curl -sS -o "$name.answer" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
        --data-binary "@$body" "$server/v1/scans") || status="curl-failed"
    if [[ $status != "$want" ]]; then
        fail_case "api $name: status $status, expected $want: $(head -c 300 "$name.answer" 2>/dev/null)"
    elif ! python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["error"]; assert e and "\n" not in e' \
        "$name.answer" 2>/dev/null; then
        fail_case "api $name: the answer has no one-line JSON error: $(head -c 300 "$name.answer")"
    else
        echo "ok: api $name: $status $(head -c 160 "$name.answer")"
    fi
}
body() { # NAME: the body from stdin into NAME.body
    cat >"$1.body"
}
printf '' | body empty && api_bad empty 400 empty.body
printf '{"targets": ["%s/store-root/x.qcow2"' "$work" | body truncated && api_bad truncated 400 truncated.body
printf '[1, 2, 3]' | body array && api_bad array 400 array.body
printf 'null' | body null && api_bad null 400 null.body
printf '{"targets": [123]}' | body target-number && api_bad target-number 400 target-number.body
printf '{"targets": null}' | body targets-null && api_bad targets-null 400 targets-null.body
printf '{"targets": [{"path": "/x"}]}' | body target-object && api_bad target-object 400 target-object.body
printf '{"targets": ["/x\\u0000y"]}' | body target-nul && api_bad target-nul 400 target-nul.body
printf '{"targets": ["/x\xff\xfe"]}' | body invalid-utf8 && api_bad invalid-utf8 400 invalid-utf8.body
printf '{"targets": ["/x"], "priority": 7}' | body priority-number && api_bad priority-number 400 priority-number.body
for value in -1 1.5 1e400 18446744073709551616 99999999999999999999999999 '"60"' true; do
    name="max-age-$(printf '%s' "$value" | tr -c 'a-zA-Z0-9.-' '_')"
    printf '{"targets": ["/x"], "max_age_seconds": %s}' "$value" | body "$name" && api_bad "$name" 400 "$name.body"
done
printf '{"targets": ["/x"], "snapshot": ["s1"]}' | body snapshot-array && api_bad snapshot-array 400 snapshot-array.body
printf '{"targets": ["/x"], "extra": 1}' | body unknown-key && api_bad unknown-key 400 unknown-key.body
python3 -c 'print("[" * 30000 + "]" * 30000, end="")' | body deep-array && api_bad deep-array 400 deep-array.body
python3 -c 'print("{\"targets\": " + "[" * 30000 + "]" * 30000 + "}", end="")' | body deep-targets &&
    api_bad deep-targets 400 deep-targets.body
printf '{"targets": ["\\u001b[2J\\u001b]0;x\\u0007/etc/passwd"]}' | body target-escapes
status=$(curl -sS -o target-escapes.answer -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    --data-binary @target-escapes.body "$server/v1/scans") || true
[[ $status == 4?? ]] || fail_case "api target-escapes: status $status, expected a refusal"
curl -fsS "$server/v1/healthz" >/dev/null || fail_case "the service does not answer after the bad bodies"

# Guest strings through the service: the infected ext4 fixture (its names include invalid UTF-8) under a
# file name with terminal controls, scanned by the service: the client's lines, the service log and
# alerts.jsonl carry no raw control byte, and the alert gives back the exact bytes of every path.
export COLDSCAN_SERVER=$server
hostile_image=$work/store-root/$'evil\e[2J\a'.qcow2
cp "$fixtures/images/ext4-gpt.qcow2" "$hostile_image"
set +e
"$coldscan" submit --wait "$hostile_image" >submit.out 2>submit.err
status=$?
"$coldscan" status >status.out 2>status.err
set -e
((status == 1)) || fail_case "submit --wait of the infected image: exit status $status: $(head -c 300 submit.err)"
python3 - "$work" "$hostile_image" <<'PY2' || fail_case "guest strings through the service (above)"
import json, sys
work, target = sys.argv[1], sys.argv[2]
problems = []
for name in ("submit.out", "submit.err", "status.out", "status.err", "serve.log"):
    data = open(f"{work}/{name}", "rb").read()
    bad = sorted({c for c in data if (c < 0x20 and c != 0x0A) or c == 0x7F})
    if bad:
        problems.append(f"{name}: raw control bytes {bad}")
alerts = [json.loads(line.decode("utf-8")) for line in open(f"{work}/state/alerts.jsonl", "rb")]
if len(alerts) != 1 or alerts[0]["target"] != target:
    problems.append(f"alerts: {[a.get('target') for a in alerts]}, expected one for {target!r}")
else:
    paths = {bytes.fromhex(d["path_hex"]) if "path_hex" in d else d["path"].encode() for d in alerts[0]["detections"]}
    if b"/srv/legacy/caf\xe9 eicar.com" not in paths:
        problems.append(f"alerts: the invalid UTF-8 path does not round-trip: {sorted(paths)}")
if problems:
    print("FAIL: " + "; ".join(problems), file=sys.stderr)
    sys.exit(1)
print(f"ok: service: {len(alerts[0]['detections'])} detections in one alert, exact paths, no control bytes")
PY2
kill -TERM "$serve_pid"
wait "$serve_pid" || fail_case "coldscan serve exited with $? after SIGTERM"
trap - EXIT
grep -a -q -E 'Sanitizer|runtime error:|terminate called' serve.log && fail_case "serve.log: $(grep -a -m1 -E 'Sanitizer|runtime error|terminate' serve.log)"
grep -a -q $'\x1b' serve.log && fail_case "serve.log: a raw escape byte from a request reached the log"

if ((failures > 0)); then
    echo "FAIL: $failures case(s)" >&2
    exit 1
fi
echo "ok: every bad input refused with one clear line"
