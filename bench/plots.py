#!/usr/bin/env python3
"""PNG charts of the benchmark results, drawn by gnuplot (Debian's gnuplot-nox; bench/install-plot-deps.sh
installs it on demand). Standard library only: each chart is one self-contained gnuplot script with its data
inline, piped to gnuplot.

usage:
  plots.py storm CSV OUT.png    concurrent scans over time, both arms (coldscan-storm-sim --csv)
  plots.py bars JSON OUT.png    throughput per arm with min-max error bars, from a JSON list of
                                {"arm", "median", "min", "max", "unit"} (one unit for all)
  plots.py fleet JSON OUT.png   total cost vs N clones, from {"n": [...], "coldscan_s": [...], "full_s": [...]};
                                every other "NAME_s" list (clamscan_s, clamd_s, ...) is a line too, and
                                "NAME_min_s" with "NAME_max_s", when present, its min-max error bars
options (before or after the arguments):
  --title TEXT     the chart's title instead of the default
  --script FILE    also keep the gnuplot script (data included) in FILE
Exit status 0; 1 on bad input; 2 when gnuplot is missing and cannot be installed or fails."""

import csv
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
K_ARM_LABELS = {"scheduler": "scheduler's caps", "no-scheduler": "no scheduler (all at once)"}
K_ARM_COLORS = {"scheduler": "#1f77b4", "no-scheduler": "#d62728"}
K_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


class InputError(Exception):
    pass


def quoted(text):
    """A gnuplot double-quoted string (the terminal is noenhanced, so only backslash and quote matter)."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def datablock(name, rows):
    lines = [f"${name} << EOD"]
    for row in rows:
        lines.append(" ".join(quoted(v) if isinstance(v, str) else repr(float(v)) for v in row))
    lines.append("EOD")
    return "\n".join(lines)


def gnuplot_terminal():
    """pngcairo when this gnuplot has it, else png; installs gnuplot-nox when there is no gnuplot."""
    if shutil.which("gnuplot") is None:
        installer = os.path.join(HERE, "install-plot-deps.sh")
        if subprocess.run([installer], stdout=subprocess.DEVNULL).returncode != 0 or not shutil.which("gnuplot"):
            raise RuntimeError("gnuplot is missing and bench/install-plot-deps.sh could not install it")
    probe = subprocess.run(["gnuplot", "-e", "set terminal"], stdin=subprocess.DEVNULL, capture_output=True,
                           text=True)
    names = (probe.stdout + probe.stderr).split()
    if "pngcairo" in names:
        return "pngcairo"
    if "png" in names:
        return "png"
    raise RuntimeError("this gnuplot has neither the pngcairo nor the png terminal")


def preamble(terminal, out, title, width=1000, height=600):
    font = 'font "Sans,11"' if terminal == "pngcairo" else "medium"
    return "\n".join([
        f"set terminal {terminal} noenhanced size {width},{height} {font}",
        f"set output {quoted(out)}",
        f"set title {quoted(title)}",
        "set grid ytics lc rgb '#dddddd'",
        "set border 3",
        "set tics nomirror",
        "set key top right box opaque",
    ])


def time_unit(seconds):
    if seconds > 3 * 3600:
        return 3600.0, "hours"
    if seconds > 300:
        return 60.0, "minutes"
    return 1.0, "seconds"


def storm_script(path, out, title, terminal):
    series = {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        need = {"time_s", "arm", "max_running_per_host", "max_running_per_datastore", "total_running"}
        if not reader.fieldnames or not need <= set(reader.fieldnames):
            raise InputError(f"{path}: want the columns {', '.join(sorted(need))}")
        for row in reader:
            series.setdefault(row["arm"], []).append(
                (float(row["time_s"]), int(row["max_running_per_host"]), int(row["max_running_per_datastore"])))
    if not series:
        raise InputError(f"{path}: no rows")
    end = max(t for rows in series.values() for t, _, _ in rows)
    scale, unit = time_unit(end)
    blocks, plots = [], []
    for index, (arm, rows) in enumerate(sorted(series.items(), key=lambda kv: kv[0] != "scheduler")):
        rows = sorted(rows, key=lambda r: r[0])
        color = K_ARM_COLORS.get(arm, K_COLORS[index % len(K_COLORS)])
        label = K_ARM_LABELS.get(arm, arm)
        for column, what, dash in ((2, "busiest datastore", 1), (1, "busiest host", 2)):
            name = f"arm{index}_{column}"
            blocks.append(datablock(name, changes([(row[0] / scale, row[column]) for row in rows])))
            plots.append(f"${name} using 1:2 with steps lw 2.5 lc rgb '{color}' dt {dash} "
                         f"title {quoted(label + ': ' + what)}")
    peak = max(max(h, d) for rows in series.values() for _, h, d in rows)
    return "\n".join([
        preamble(terminal, out, title or "Scan storm: concurrent scans on the busiest host and datastore"),
        *blocks,
        "set key top right box opaque",
        f"set xlabel {quoted('simulated time since the templates were due (' + unit + ')')}",
        "set ylabel 'concurrent scans'",
        f"set yrange [0:{peak * 1.45 + 1:.1f}]",  # room for the key above the lines
        f"set xrange [0:{end / scale * 1.02:.6g}]",
        "plot " + ", \\\n     ".join(plots),
    ])


def changes(points):
    """A step series without the points that repeat the value before them (they draw nothing, and they
    restart a dashed line's pattern), keeping the last point so the line runs to the end."""
    kept = []
    for i, (x, y) in enumerate(points):
        if not kept or y != kept[-1][1] or i == len(points) - 1:
            kept.append((x, y))
    return kept


def bars_script(path, out, title, terminal):
    with open(path, encoding="utf-8") as f:
        items = json.load(f)
    if not isinstance(items, list) or not items:
        raise InputError(f"{path}: want a non-empty JSON list of {{arm, median, min, max, unit}}")
    units = set()
    rows = []
    for item in items:
        try:
            rows.append((str(item["arm"]), float(item["median"]), float(item["min"]), float(item["max"])))
            units.add(str(item["unit"]))
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"{path}: an entry without a usable arm, median, min, max or unit: {item!r}") from e
    if len(units) != 1:
        raise InputError(f"{path}: the arms use different units ({', '.join(sorted(units))})")
    unit = units.pop()
    top = max(r[3] for r in rows)
    # x = 0, 1, ...; each bar its own colour, its median printed above its error bar.
    # Columns: x, median, min, max, arm, the median as printed above the bar.
    data = [(i, median, low, high, name, f"{median:.0f}" if median >= 100 else f"{median:.3g}")
            for i, (name, median, low, high) in enumerate(rows)]
    width = max(800, 150 * len(rows) + 200)
    return "\n".join([
        preamble(terminal, out, title or "Throughput per arm (median, bars: min to max)", width, 600),
        datablock("bars", data),
        "set style fill solid 0.85 border -1",
        "set boxwidth 0.6",
        "set key off",
        f"set ylabel {quoted('throughput (' + unit + ')')}",
        f"set yrange [0:{top * 1.15:.6g}]",
        f"set xrange [-0.6:{len(rows) - 0.4}]",
        "set xtics rotate by -20",
        "plot $bars using 1:2:($1 + 1):xtic(5) with boxes lc variable notitle, \\",
        "     $bars using 1:3:(0):($4 - $3) with vectors heads size screen 0.008,90 lc rgb 'black' lw 1.5 \\",
        "         notitle, \\",
        "     $bars using 1:4:6 with labels offset 0,0.8 notitle",
    ])


K_FLEET_SERIES = {  # key prefix -> legend, colour; other "<name>_s" lists are drawn too, under their name
    "coldscan": ("coldscan (template + N clones, one cache)", "#1f77b4"),
    "full": ("N+1 full scans", "#d62728"),
    "clamscan": ("N+1 x clamscan -r (one thread)", "#ff7f0e"),
    "clamd": ("N+1 x clamdscan --multiscan", "#2ca02c"),
}


def fleet_script(path, out, title, terminal):
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    if not isinstance(doc, dict) or "n" not in doc or "coldscan_s" not in doc:
        raise InputError(f'{path}: want {{"n": [...], "coldscan_s": [...], "full_s": [...]}}')
    try:
        n = [float(v) for v in doc["n"]]
        series = {}
        for key, values in doc.items():
            if key.endswith("_s") and not key.endswith(("_min_s", "_max_s")):
                series[key[:-2]] = [float(v) for v in values]
    except (TypeError, ValueError) as e:
        raise InputError(f"{path}: n and every *_s entry must be lists of numbers") from e
    if not n or any(len(v) != len(n) for v in series.values()):
        raise InputError(f"{path}: n and every *_s list must have one length")
    # coldscan first, then the known peers, then the rest by name.
    order = list(K_FLEET_SERIES) + sorted(k for k in series if k not in K_FLEET_SERIES)
    names = [k for k in order if k in series]
    top = 0.0
    spread = {}
    for name in names:
        low, high = doc.get(f"{name}_min_s"), doc.get(f"{name}_max_s")
        if low is not None and high is not None:
            try:
                low, high = [float(v) for v in low], [float(v) for v in high]
            except (TypeError, ValueError) as e:
                raise InputError(f"{path}: {name}_min_s and {name}_max_s must be lists of numbers") from e
            if len(low) != len(n) or len(high) != len(n):
                raise InputError(f"{path}: {name}_min_s and {name}_max_s must have one value per n")
            spread[name] = (low, high)
            top = max(top, *high)
        top = max(top, *series[name])
    scale, unit = time_unit(top)
    blocks, plots = [], []
    for index, name in enumerate(names):
        values = series[name]
        label, color = K_FLEET_SERIES.get(name, (name, K_COLORS[index % len(K_COLORS)]))
        low, high = spread.get(name, (values, values))
        rows = [(x, v / scale, lo / scale, hi / scale) for x, v, lo, hi in zip(n, values, low, high)]
        block = f"series{index}"
        blocks.append(datablock(block, rows))
        if name in spread:  # under the line's points
            plots.append(f"${block} using 1:3:(0):($4 - $3) with vectors heads size screen 0.008,90 "
                         f"lc rgb '{color}' lw 1.5 notitle")
        plots.append(f"${block} using 1:2 with linespoints lw 2.5 pt 7 ps 1.3 lc rgb '{color}' "
                     f"title {quoted(label)}")
    xtics = ", ".join(f"{x:g}" for x in n)
    return "\n".join([
        preamble(terminal, out, title or "Clone fleet: total scan cost of a template and N linked clones"),
        *blocks,
        "set key top left reverse Left box opaque",
        "set xlabel 'linked clones N'",
        f"set ylabel {quoted('total wall time (' + unit + ')')}",
        f"set xtics ({xtics})",
        f"set xrange [0:{max(n) * 1.05 + 0.5:.6g}]",
        f"set yrange [0:{top / scale * 1.1:.6g}]",
        "plot " + ", \\\n     ".join(plots),
    ])


K_CHARTS = {"storm": storm_script, "bars": bars_script, "fleet": fleet_script}


def main(argv):
    args, title, script_file = [], None, None
    i = 0
    while i < len(argv):
        if argv[i] in ("--title", "--script"):
            if i + 1 >= len(argv):
                print(__doc__, file=sys.stderr)
                return 1
            if argv[i] == "--title":
                title = argv[i + 1]
            else:
                script_file = argv[i + 1]
            i += 2
        elif argv[i] in ("-h", "--help"):
            print(__doc__)
            return 0
        else:
            args.append(argv[i])
            i += 1
    if len(args) != 3 or args[0] not in K_CHARTS:
        print(__doc__, file=sys.stderr)
        return 1
    chart, source, out = args
    try:
        terminal = gnuplot_terminal()
        script = K_CHARTS[chart](source, os.path.abspath(out), title, terminal) + "\n"
    except (InputError, OSError, json.JSONDecodeError, ValueError) as e:
        print(f"plots.py: {e}", file=sys.stderr)
        return 1
    except RuntimeError as e:
        print(f"plots.py: {e}", file=sys.stderr)
        return 2
    if script_file:
        with open(script_file, "w", encoding="utf-8") as f:
            f.write(script)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    result = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    if result.returncode != 0 or not os.path.exists(out):
        print(f"plots.py: gnuplot failed on the {chart} chart:\n{result.stderr}", file=sys.stderr)
        return 2
    if result.stderr.strip():
        print(result.stderr.strip(), file=sys.stderr)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
