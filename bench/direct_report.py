#!/usr/bin/env python3
"""The direct-path benchmark's table (direct-bench.sh runs this).

  direct_report.py BENCH_DIR RESULTS_MD
      Reads BENCH_DIR/direct/run (each arm's .time "wall-seconds peak-RSS-KiB", coldscan's .json reports,
      the engines-only JSON line, clamd's load time and peak RSS) and BENCH_DIR/direct/images, prints the
      table and the ratios, and writes the "direct-bench" section of RESULTS_MD.
"""

import json
import os
import subprocess
import sys

from results_md import replace_section


def read(path, default=None):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return default


def manifest(path):
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        return [(d, int(s), p) for d, s, p in (line.rstrip("\n").split("\t", 2) for line in f)]


def main(bench_dir, results_md):
    run = os.path.join(bench_dir, "direct", "run")
    images = os.path.join(bench_dir, "direct", "images")
    info = json.load(open(os.path.join(images, "images.json")))
    template = manifest(os.path.join(images, "template.manifest"))
    clone = manifest(os.path.join(images, "clone.manifest"))
    template_digests = {d for d, _, _ in template}
    changed_bytes = sum(s for d, s, _ in clone if d not in template_digests)
    total_bytes = sum(s for _, s, _ in template)

    def timing(arm):
        text = read(os.path.join(run, arm + ".time"))
        if not text:
            return None
        wall, rss = text.split()[-2:]
        return float(wall), int(rss)

    def report(arm):
        path = os.path.join(run, arm + ".json")
        return json.load(open(path)) if os.path.exists(path) else None

    rows = []
    arms = {}
    engines = json.loads(read(os.path.join(run, "engines.out")).splitlines()[-1])
    engine_size = timing("engine-size")
    wall, rss = timing("engines")
    arms["engines"] = {"scan": engines["seconds"], "mbps": engines["mb_per_s"], "rss": rss, "wall": wall}
    clamd_wall, _ = timing("clamd")
    clamd_rss = int(read(os.path.join(run, "clamd.rss-kb"), "0"))
    clamd_load = float(read(os.path.join(run, "clamd.load-seconds"), "0"))
    arms["clamd"] = {"scan": clamd_wall, "mbps": total_bytes / 1e6 / clamd_wall, "rss": clamd_rss,
                     "wall": clamd_wall + clamd_load}
    for arm in ("direct", "guestfs", "cold", "clone"):
        r = report(arm)
        t = timing(arm)
        if r is None or t is None:
            continue
        timings = r["timings"]  # the part of the total spent waiting for the signatures (the load may overlap)
        scan = timings["total_seconds"] - timings.get("signature_wait_seconds", timings["signature_load_seconds"])
        arms[arm] = {"scan": scan, "mbps": r["counts"]["bytes"] / 1e6 / scan if scan > 0 else 0, "rss": t[1],
                     "wall": t[0], "report": r}

    labels = {
        "engines": "ClamAV alone, files in memory (coldscan-engines-only)",
        "clamd": "clamd + clamdscan --multiscan --fdpass, files in a folder",
        "direct": "coldscan --backend direct, no cache",
        "guestfs": "coldscan --backend guestfs, no cache (appliance, TCG)",
        "cold": "coldscan direct, template, empty cache",
        "clone": "coldscan direct, linked clone after the template, same cache",
    }
    head = ["arm", "wall s", "scan s", "MB/s", "peak RSS MiB"]
    for name, a in arms.items():
        rows.append([labels[name], f"{a['wall']:.1f}", f"{a['scan']:.1f}", f"{a['mbps']:.0f}",
                     f"{a['rss'] / 1024:.0f}"])

    def ratio(x, y):
        return x / y if y > 0 else float("inf")

    d, c = arms["direct"], arms["clamd"]
    lines = [
        ("coldscan direct vs clamdscan --multiscan (scan times, signatures loaded)",
         f"{ratio(c['scan'], d['scan']):.2f}x faster", ">= 1.2x"),
        ("coldscan direct throughput as a share of the engines alone",
         f"{100 * d['mbps'] / arms['engines']['mbps']:.0f}% ({d['mbps']:.0f} of {arms['engines']['mbps']:.0f} MB/s)",
         ">= 95%"),
    ]
    if "guestfs" in arms:
        lines.append(("direct vs the appliance path (total)", f"{ratio(arms['guestfs']['wall'], d['wall']):.1f}x", "(printed)"))
    if "cold" in arms and "clone" in arms:
        lines.append(("clone (~{:.1f}% of the data changed) vs template cold, total".format(100 * changed_bytes / total_bytes),
                      f"{ratio(arms['cold']['wall'], arms['clone']['wall']):.1f}x", ">= 20x"))
        lines.append(("the same without waiting for signatures",
                      f"{ratio(arms['cold']['scan'], arms['clone']['scan']):.1f}x", ""))
    budget = engine_size[1] + 1.5 * 1024 * 1024
    lines.append(("peak RSS of coldscan direct vs engine size + 1.5 GiB",
                  f"{d['rss'] / 1024:.0f} MiB (engine {engine_size[1] / 1024:.0f} MiB, budget {budget / 1024:.0f} MiB)",
                  "below the budget"))

    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    for r in [head] + rows:
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths))))
    print()
    for name, value, target in lines:
        print(f"{name}: {value}  {('target ' + target) if target else ''}")

    clone_cache = arms.get("clone", {}).get("report", {}).get("cache", {})
    direct_report = d["report"]
    revision = read(os.path.join(run, "revision"), "?")
    version = subprocess.run([os.path.join(run, "coldscan"), "--version"], capture_output=True, text=True).stdout.strip()
    commands = "\n".join(read(os.path.join(run, arm + ".command"), "") for arm in
                         ("engines", "clamd", "direct", "guestfs", "cold", "clone") if os.path.exists(os.path.join(run, arm + ".command")))
    t = info["template"]
    text = f"""## Direct path (issue 4)

Generated by `bench/direct-bench.sh`, run started {direct_report.get('started_at', '?')}; {version} (source
{revision}); {os.cpu_count()} CPUs; ClamAV {direct_report['signatures']['clamav']['engine_version']} with
{direct_report['signatures']['clamav']['signature_count']} signatures (generated load set + test signatures).

Inputs: `template.qcow2`, GPT + ext4, {t['files']} files, {t['bytes'] / 2**20:.0f} MiB of this host's binaries
and libraries (`bench/make-template.sh`, the same files kept in a folder for the peers); `clone.qcow2`, a
linked clone with {changed_bytes / 2**20:.1f} MiB of new content ({100 * changed_bytes / total_bytes:.1f}% of
the data: files changed in place and added, one EICAR).

| {' | '.join(head)} |
|{'|'.join('---' for _ in head)}|
""" + "\n".join("| " + " | ".join(r) + " |" for r in rows) + """

"scan s" leaves out waiting for the signatures (coldscan loads them while it opens the image; clamd's load is not
in its scan either:
""" + f"{clamd_load:.1f}" + """ s before clamdscan started). Every arm runs ClamAV only, with the same databases and
coldscan's default limits (clamd: MaxFileSize 256M, MaxScanSize 1024M, MaxRecursion 17, MaxFiles 10000,
MaxScanTime 120 s); coldscan also reads the image, parses the filesystem and hashes every file.

| comparison | measured | issue target |
|---|---|---|
""" + "\n".join(f"| {n} | {v} | {tg} |" for n, v, tg in lines) + f"""

The clone run reused {clone_cache.get('files_reused_by_blocks', '?')} files
({clone_cache.get('bytes_reused_by_blocks', 0) / 2**20:.0f} MiB) from the template's blocks and ran the engines
on {clone_cache.get('engine_scans', '?')}.

Reproduce: `./bench/direct-bench.sh` (inputs and runs in `build/bench/direct/`). The runs:
```sh
{commands}
```
"""
    replace_section(results_md, "direct-bench", text)
    print(f"\ndirect_report: wrote {results_md}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
