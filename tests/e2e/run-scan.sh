#!/usr/bin/env bash
# run-scan.sh NAME EXPECTED_EXIT -- COMMAND [ARGS...]
#
# Runs one coldscan scan for the e2e tests and keeps everything it produced in $COLDSCAN_E2E_RESULTS:
#   NAME.cmd      the command line          NAME.exit     its exit status
#   NAME.stdout   standard output           NAME.stderr   standard error
#   NAME.report.json / NAME.inventory.jsonl (written by coldscan when the command passes --report/--inventory)
# Passes when the exit status equals EXPECTED_EXIT. The Catch2 checks (coldscan_e2e_tests) read these files,
# so every image is scanned, and its appliance launched, only once.
set -uo pipefail

if [[ $# -lt 4 || $3 != "--" ]]; then
    echo "usage: $0 NAME EXPECTED_EXIT -- COMMAND [ARGS...]" >&2
    exit 2
fi
name=$1
expected=$2
shift 3
results=${COLDSCAN_E2E_RESULTS:?COLDSCAN_E2E_RESULTS must name the results directory}
mkdir -p "$results"
base="$results/$name"
rm -f "$base".{cmd,exit,stdout,stderr,report.json,inventory.jsonl}
# A run that starts from an empty verdict cache (the others reuse an earlier run's on purpose).
if [[ -n ${COLDSCAN_E2E_FRESH_CACHE:-} ]]; then
    rm -rf "$COLDSCAN_E2E_FRESH_CACHE"
fi

printf '%q ' "$@" >"$base.cmd"
echo >>"$base.cmd"

# The scan gets no stdin (as in CI) and a generous time limit below CTest's, so a hang still leaves a record.
start=$(date +%s)
timeout --kill-after=20 "${COLDSCAN_E2E_SCAN_TIMEOUT:-540}" "$@" </dev/null >"$base.stdout" 2>"$base.stderr"
status=$?
echo "$status" >"$base.exit"
seconds=$(($(date +%s) - start))

if [[ $status -eq $expected ]]; then
    echo "e2e scan $name: exit $status as expected (${seconds} s)"
    exit 0
fi
echo "e2e scan $name: exit $status, expected $expected (${seconds} s)"
[[ $status -eq 124 ]] && echo "  (timed out)"
echo "--- command"
cat "$base.cmd"
echo "--- stdout (first 40 lines)"
head -n 40 "$base.stdout"
echo "--- stderr (last 60 lines)"
tail -n 60 "$base.stderr"
if [[ -f $base.report.json ]]; then
    echo "--- report (first 120 lines)"
    head -n 120 "$base.report.json"
fi
exit 1
