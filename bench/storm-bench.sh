#!/usr/bin/env bash
# storm-bench.sh: the scan storm (issue 6), simulated. coldscan-storm-sim (bench/storm-sim/) runs the real
# scheduler core in simulated time on a fleet of 10 hosts and 3 shared datastores with 100 templates due at
# once and 5 gate requests mid-run, with the scheduler's caps and without them (every job at once). Takes a
# second; no image is read and nothing is scanned.
#
# Writes ${COLDSCAN_BENCH_DIR:-build/bench}/storm/{storm.csv,storm.json,summary.txt}, the chart storm.png in
# BENCH_PLOTS (bench/plots.py, gnuplot installed on demand), prints a markdown table and puts it in the
# "storm" section of BENCH_RESULTS (bench/results_md.py keeps the other sections as they are).
#
# Environment: STORM_SIM (the tool; default build/bench/coldscan-storm-sim, built when missing),
# COLDSCAN_BENCH_DIR, BENCH_RESULTS (default bench/RESULTS.md; set but empty: print only), BENCH_PLOTS
# (default plots/ next to BENCH_RESULTS, else bench/plots). Arguments are passed to coldscan-storm-sim
# (--hosts, --templates, --seed, ...).
# Exit status: 0; 1 when the simulation found a broken invariant; 2 when a step failed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)

sim=${STORM_SIM:-$root/build/bench/coldscan-storm-sim}
if [[ ! -x $sim ]]; then
    if [[ -z ${STORM_SIM:-} && -f $root/build/build.ninja ]]; then
        cmake --build "$root/build" --target coldscan-storm-sim
    fi
    [[ -x $sim ]] || {
        echo "storm-bench: no coldscan-storm-sim at $sim (build the coldscan-storm-sim target)" >&2
        exit 2
    }
fi
bench_dir=${COLDSCAN_BENCH_DIR:-build/bench}
storm=$bench_dir/storm
mkdir -p "$storm"
results_md=${BENCH_RESULTS-$root/bench/RESULTS.md}
if [[ -n $results_md ]]; then
    plots_dir=${BENCH_PLOTS:-$(dirname "$results_md")/plots}
else
    plots_dir=${BENCH_PLOTS:-$root/bench/plots}
fi
plot=$plots_dir/storm.png

set +e
"$sim" --csv "$storm/storm.csv" --json "$storm/storm.json" "$@" >"$storm/summary.txt"
status=$?
set -e
cat "$storm/summary.txt"
if ((status >= 2)); then
    echo "storm-bench: coldscan-storm-sim failed (exit $status)" >&2
    exit 2
fi

python3 "$root/bench/plots.py" storm "$storm/storm.csv" "$plot" >/dev/null || {
    echo "storm-bench: the chart failed" >&2
    exit 2
}
echo "storm-bench: chart $plot"

revision=$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)
command_line="./bench/storm-bench.sh${*:+ $*}"
python3 - "$storm/storm.json" "$results_md" "$plot" "$root" "$revision" "$command_line" <<'PY'
import datetime, json, os, sys, textwrap
summary_path, results_md, plot, root, revision, command_line = sys.argv[1:7]
doc = json.load(open(summary_path, encoding="utf-8"))
o = doc["options"]
names = {"scheduler": "with the scheduler", "no-scheduler": "no scheduler (storm)"}
rows = ["| arm | makespan | peak scans / host | peak scans / datastore | mean slowdown | max slowdown "
        "| gate wait max | gate verdict max (median) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|"]
for arm in doc["arms"]:
    rows.append(f"| {names.get(arm['arm'], arm['arm'])} | {arm['makespan_s'] / 60:.1f} min "
                f"| {arm['peak_per_host']} | {arm['peak_per_datastore']} | {arm['mean_slowdown']:.2f}x "
                f"| {arm['max_slowdown']:.2f}x "
                f"| {arm['gate_wait_max_s']:.1f} s | {arm['gate_turnaround_max_s']:.0f} s "
                f"({arm['gate_turnaround_median_s']:.0f} s) |")
arms = {a["arm"]: a for a in doc["arms"]}
ratio = ""
if "scheduler" in arms and "no-scheduler" in arms:
    s, n = arms["scheduler"], arms["no-scheduler"]
    gate_ratio = n["gate_turnaround_max_s"] / max(s["gate_turnaround_max_s"], 1e-9)
    ratio = (f"Without the scheduler the busiest host runs {n['peak_per_host']} scans at once instead of "
             f"{s['peak_per_host']}, the busiest datastore {n['peak_per_datastore']} instead of "
             f"{s['peak_per_datastore']}; each scan takes {n['mean_slowdown'] / s['mean_slowdown']:.1f}x as long "
             f"on average, and a gate request waits up to {gate_ratio:.1f}x "
             f"as long for its verdict. Makespan, no scheduler / scheduler: "
             f"{n['makespan_s'] / s['makespan_s']:.2f}.")
md_dir = os.path.dirname(os.path.abspath(results_md or os.path.join(root, "bench", "RESULTS.md")))
plot_rel = os.path.relpath(plot, md_dir)
about = (f"{o['templates']} templates ({doc['template_bytes'] / 2**30:.0f} GiB, {o['min_gib']:g}-{o['max_gib']:g} GiB "
         f"each) due at the same instant on {o['hosts']} hosts sharing {o['datastores']} datastores, and {o['gates']} "
         f"gate requests arriving mid-run, run through the real scheduler core (`Scheduler::step`) in simulated time "
         f"by `coldscan-storm-sim` (bench/storm-sim/). Caps in the scheduler arm: {o['host_slots']} scans per host, "
         f"{o['datastore_slots']} per datastore; the other arm starts every job when it is due. Scan speed, "
         f"recomputed at every event in both arms: min({o['engine_mb_per_s']:g} MB/s per scan, "
         f"{o['host_read_mb_per_s']:g} MB/s host read cap / scans on the host, {o['datastore_read_mb_per_s']:g} MB/s "
         f"datastore read cap / scans on the datastore). This processor sharing has no thrashing penalty, so piling "
         f"scans on costs no aggregate throughput here and the makespans stay close; what a storm costs shows in "
         f"the per-scan slowdown (running time over the same scan alone) and in the gate verdict (arrival to "
         f"finish: how long a power-on waits). Gate wait: arrival to start. Seed {o['seed']}.")
reproduce = (f"{datetime.date.today().isoformat()}, revision {revision}; reproduce with `{command_line}` "
             f"(deterministic: the same options give the same figures on any machine).")
text = "\n\n".join([
    "## Scan storm (simulated): `storm-bench.sh`",
    textwrap.fill(about, 110),
    "\n".join(rows),
    textwrap.fill(ratio, 110),
    f"![concurrent scans over time]({plot_rel})",
    textwrap.fill(reproduce, 110),
]) + "\n"
print(text)
if results_md:
    sys.path.insert(0, os.path.join(root, "bench"))
    import results_md as rm
    rm.replace_section(results_md, "storm", text)
    print(f"storm-bench: section \"storm\" of {results_md} updated", file=sys.stderr)
PY
exit "$status"
