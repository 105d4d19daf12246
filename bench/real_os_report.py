#!/usr/bin/env python3
"""The real-OS benchmark's table (real-os-bench.sh runs this).

  real_os_report.py RUN_DIR TREE RESULTS_MD
      Reads each arm's .time ("wall-seconds peak-RSS-KiB"), coldscan's .json/.jsonl and the peers' FOUND
      lines, prints the table, the ratios and the files each arm does not call clean, and writes the
      "real-os-bench" section of RESULTS_MD.
"""

import json
import os
import sys

from results_md import replace_section


def timing(run, arm):
    try:
        wall, rss = open(os.path.join(run, arm + ".time")).read().split()[-2:]
        return float(wall), int(rss)
    except (OSError, ValueError):
        return None


def flagged_by_peer(run, arm, tree):
    flagged = set()
    for line in open(os.path.join(run, arm + ".out"), errors="surrogateescape"):
        line = line.rstrip("\n")
        if line.endswith(" FOUND"):
            path = line[: -len(" FOUND")].rpartition(": ")[0]
            flagged.add("/" + path[len(tree):].lstrip("/"))
    return flagged


def not_clean_by_coldscan(run, arm):
    return {l["path"] for l in map(json.loads, open(os.path.join(run, arm + ".jsonl")))
            if l["outcome"] != "CLEAN" and l.get("hardlink_of") is None}


def main(run, tree, results_md):
    arms = ["direct", "folder", "clamscan", "clamd"]
    times = {arm: timing(run, arm) for arm in arms}
    clamd_rss = open(os.path.join(run, "clamd.rss-kb")).read().strip() if os.path.exists(
        os.path.join(run, "clamd.rss-kb")) else "?"
    direct = json.load(open(os.path.join(run, "direct.json")))
    files, size = direct["counts"]["files"], direct["counts"]["bytes"]
    sets = {"direct": not_clean_by_coldscan(run, "direct"), "folder": not_clean_by_coldscan(run, "folder"),
            "clamscan": flagged_by_peer(run, "clamscan", tree), "clamd": flagged_by_peer(run, "clamd", tree)}
    rows = ["| arm | wall s | MB/s | peak RSS MiB | files not clean / flagged |", "|---|---|---|---|---|"]
    for arm in arms:
        if times[arm] is None:
            rows.append(f"| {arm} | failed | | | |")
            continue
        wall, rss = times[arm]
        rss_text = f"{rss / 1024:.0f}" + (f" (clamd {int(clamd_rss) / 1024:.0f})" if arm == "clamd" and
                                          clamd_rss.isdigit() else "")
        rows.append(f"| {arm} | {wall:.1f} | {size / wall / 1e6:.0f} | {rss_text} | {len(sets[arm])} |")
    ratios = []
    for peer in ("clamscan", "clamd"):
        if times["direct"] and times[peer]:
            ratio = times[peer][0] / times["direct"][0]
            ratios.append(f"direct vs {peer}: {ratio:.2f}x " + ("faster" if ratio >= 1 else f"the speed ({peer} faster)"))
    agree = sets["direct"] == sets["clamscan"]
    text = "\n".join([
        "## Real OS: a Debian 12 server, coldscan vs clamscan and clamd (real-os-bench.sh)",
        "",
        f"Revision {open(os.path.join(run, 'revision')).read().strip()}, {os.cpu_count()} cores; "
        f"{files} files, {size / 2**30:.2f} GiB; ClamAV only, the load signature set, the same limits.",
        "",
        *rows,
        "",
        "; ".join(ratios) + ".",
        "",
        f"Files not called clean: coldscan {sorted(sets['direct'])}; clamscan {sorted(sets['clamscan'])}"
        f" ({'the same' if agree else 'DIFFERENT'}).",
        "",
        "Reproduce with `COLDSCAN=build/tools/coldscan ./bench/real-os-bench.sh`.",
    ])
    print(text)
    replace_section(results_md, "real-os-bench", text)


if __name__ == "__main__":
    main(*sys.argv[1:4])
