#!/usr/bin/env python3
"""The LVM/XFS benchmark's checks and tables (lvm-xfs-bench.sh runs this).

  lvm_xfs_report.py RUN_DIR RESULTS_MD
      Reads every ARM.R run (.time "wall-s peak-RSS-KiB user-s sys-s", .rc, .json report, .jsonl inventory) and
      changes.tsv (the clone's rewritten files), checks the results, prints the tables, the ratios from the
      medians against the issue's targets (PASS/MISS), and writes the "lvm-xfs-bench" section of RESULTS_MD.
      Exit 1 when a check fails: an arm did not complete, a direct arm read other contents than ext4-gpt (the
      LVM disks' /etc/fstab excepted), the appliance other contents than xfs-lvm, or the clone other contents
      than the template with its changes. A missed target is printed, never an exit status.
"""

import glob
import json
import os
import statistics
import sys

from results_md import replace_section

K_ARMS = [
    ("ext4-gpt", "ext4 on GPT, direct"),
    ("ext4-lvm", "ext4 on LVM, direct"),
    ("xfs-lvm", "XFS on LVM, direct"),
    ("xfs-appliance", "XFS on LVM, appliance (`--backend guestfs`)"),
    ("xfs-lvm-test-sigs", "XFS on LVM, direct, test signatures"),
    ("xfs-appliance-test-sigs", "XFS on LVM, appliance, test signatures"),
    ("cold", "XFS on LVM, direct, template, empty cache"),
    ("clone", "linked clone after the template, same cache"),
    ("clone-4k", "the same changes, overlay with 4 KiB clusters (diagnostic)"),
]
K_MIB = 1 << 20
K_OK_STATUS = ("completed", "completed_with_warnings")


def load_run(run, arm, r):
    base = os.path.join(run, f"{arm}.{r}")
    result = {"r": r, "name": f"{arm}.{r}"}
    result["wall"] = result["rss"] = result["cpu"] = None
    try:
        fields = open(base + ".time").read().splitlines()[-1].split()  # after any "Command exited ..." line
        result["wall"], result["rss"] = float(fields[0]), int(fields[1])
        if len(fields) >= 4:
            result["cpu"] = float(fields[2]) + float(fields[3])
    except (OSError, ValueError, IndexError):
        pass
    try:
        result["rc"] = int(open(base + ".rc").read())
    except (OSError, ValueError):
        result["rc"] = None
    try:
        result["report"] = json.load(open(base + ".json"))
    except (OSError, ValueError):
        result["report"] = None
    result["inventory"] = base + ".jsonl"
    result["command"] = open(base + ".command").read().strip() if os.path.exists(base + ".command") else ""
    result["load"] = open(base + ".load").read().strip() if os.path.exists(base + ".load") else "?"
    return result


def contents(run_result):
    """{path in the guest's tree: sha256} from the inventory; /boot's own filesystem gets its /boot prefix."""
    report = run_result["report"]
    prefix = {}
    for target in report["targets"]:
        for fs in target.get("filesystems", []):
            prefix[fs["device"]] = "/boot" if fs.get("label") == "realboot" else ""
    found = {}
    with open(run_result["inventory"], encoding="utf-8") as f:
        for line in f:
            entry = json.loads(line)
            path = prefix.get(entry["device"], "") + entry["path"]
            found[path] = entry.get("sha256")
    return found


def differences(a, b):
    return sorted(p for p in set(a) | set(b) if a.get(p) != b.get(p))


def median_run(runs):
    """The run with the median wall time (the lower middle one of an even count)."""
    ordered = sorted(runs, key=lambda x: x["wall"])
    return ordered[(len(ordered) - 1) // 2]


def main(run, results_md):
    runs = {}
    for arm, _ in K_ARMS:
        names = sorted(glob.glob(os.path.join(run, f"{arm}.*.time")),
                       key=lambda p: int(p.rsplit(".", 2)[-2]))
        runs[arm] = [load_run(run, arm, int(p.rsplit(".", 2)[-2])) for p in names]
    changes = [line.rstrip("\n").split("\t") for line in open(os.path.join(run, "changes.tsv"))]
    revision = open(os.path.join(run, "revision")).read().strip()

    problems = []
    for arm, _ in K_ARMS:
        for x in runs[arm]:
            rep = x["report"]
            if x["wall"] is None or rep is None or x["rc"] is None or x["rc"] >= 2:
                problems.append(f"{x['name']}: did not complete (exit {x['rc']})")
            elif rep["status"] not in K_OK_STATUS or any(t["status"] not in K_OK_STATUS for t in rep["targets"]):
                problems.append(f"{x['name']}: status {rep['status']}")
    ok = {arm: [x for x in runs[arm] if x["wall"] is not None and x["report"] is not None] for arm, _ in K_ARMS}

    # Contents: the first complete run of each arm against its reference.
    checks = []
    first = {arm: ok[arm][0] for arm, _ in K_ARMS if ok[arm]}
    got = {arm: contents(x) for arm, x in first.items()}
    if "ext4-gpt" in got:
        for arm in ("ext4-lvm", "xfs-lvm"):
            if arm in got:
                diff = differences(got["ext4-gpt"], got[arm])
                if diff != ["/etc/fstab"]:
                    problems.append(f"{arm}: contents differ from ext4-gpt's at {diff[:5]} ({len(diff)} paths)")
                checks.append(f"{arm} read the same {len(got[arm])} names and contents as ext4-gpt (/etc/fstab "
                              f"names the LVM root): {'yes' if diff == ['/etc/fstab'] else 'NO'}")
    for arm in ("xfs-appliance", "xfs-lvm-test-sigs", "xfs-appliance-test-sigs"):
        if arm in got and "xfs-lvm" in got:
            diff = differences(got["xfs-lvm"], got[arm])
            if diff:
                problems.append(f"{arm}: contents differ from xfs-lvm's at {diff[:5]} ({len(diff)} paths)")
            checks.append(f"{arm} read the same names and contents as xfs-lvm: {'yes' if not diff else 'NO'}")
    if "cold" in got:
        expected = dict(got["cold"])
        for _, _, old, new, path in changes:
            if expected.get(path) != old:
                problems.append(f"cold: {path} is not the tree's content")
            expected[path] = new
        for arm in ("clone", "clone-4k"):
            if arm in got:
                diff = differences(expected, got[arm])
                if diff:
                    problems.append(f"{arm}: contents differ from the template + changes at {diff[:5]} "
                                    f"({len(diff)} paths)")
                checks.append(f"{arm} read back its {len(changes)} rewritten files and the template's other "
                              f"contents: {'yes' if not diff else 'NO'}")
    # Every repeat of an arm reports the same counts.
    for arm, _ in K_ARMS:
        counts = {(x["report"]["counts"]["files"], x["report"]["counts"]["bytes"]) for x in ok[arm]}
        if len(counts) > 1:
            problems.append(f"{arm}: repeats disagree on files/bytes: {sorted(counts)}")

    # --- the arms -----------------------------------------------------------------------------------------
    med = {}
    rows = ["| arm | runs | wall s, median (range) | MB/s | CPU s (user+sys), median (range) | peak RSS MiB, median | "
            "files | GiB | load avg at start |", "|---|---|---|---|---|---|---|---|---|"]
    for arm, title in K_ARMS:
        xs = ok[arm]
        if not xs:
            rows.append(f"| {title} | 0 | {'failed' if runs[arm] else 'not run'} | | | | | |")
            continue
        walls = [x["wall"] for x in xs]
        cpus = [x["cpu"] for x in xs if x["cpu"] is not None]
        med[arm] = {"wall": statistics.median(walls), "rss": statistics.median(x["rss"] for x in xs),
                    "cpu": statistics.median(cpus) if len(cpus) == len(xs) else None, "run": median_run(xs)}
        counts = xs[0]["report"]["counts"]
        size = counts["bytes"]
        cpu_text = f"{med[arm]['cpu']:.1f} ({min(cpus):.1f}-{max(cpus):.1f})" if med[arm]["cpu"] is not None else "?"
        rows.append(f"| {title} | {len(xs)} | {med[arm]['wall']:.1f} ({min(walls):.1f}-{max(walls):.1f}) | "
                    f"{size / med[arm]['wall'] / 1e6:.0f} | {cpu_text} | {med[arm]['rss'] / 1024:.0f} | "
                    f"{counts['files']} | {size / 2**30:.2f} | {' '.join(x['load'] for x in xs)} |")

    # --- the filesystems of each arm's median run ---------------------------------------------------------------
    fs_rows = ["| arm (median run) | device | fs | reader | files | MiB | open s | scan s | target: probe / launch / "
               "inspect / scan s |", "|---|---|---|---|---|---|---|---|---|"]
    for arm, title in K_ARMS:
        if arm not in med:
            continue
        x = med[arm]["run"]
        for target in x["report"]["targets"]:
            t = target.get("timings", {})
            ttext = " / ".join(f"{t.get(k, 0):.1f}" for k in ("probe_seconds", "launch_seconds", "inspect_seconds",
                                                               "scan_seconds"))
            scanned = [fs for fs in target.get("filesystems", []) if fs.get("status") == "scanned"]
            for i, fs in enumerate(scanned):
                ft = fs.get("timings", {})
                extra = ", ".join(f"{k} {v:.1f}" for k, v in ft.items() if k not in ("open_seconds", "scan_seconds"))
                fs_rows.append(
                    f"| {x['name'] if i == 0 else ''} | {fs['device']} | {fs.get('type', '')} | {fs.get('reader', '')}"
                    f" | {fs.get('files', '')} | {fs.get('bytes', 0) / K_MIB:.0f} | {ft.get('open_seconds', 0):.1f} | "
                    f"{ft.get('scan_seconds', 0):.1f}{' (' + extra + ')' if extra else ''} | "
                    f"{ttext if i == 0 else ''} |")

    # --- the targets ------------------------------------------------------------------------------------------
    targets = ["| comparison | measured | target | |", "|---|---|---|---|"]

    def verdict(good):
        return "PASS" if good else "MISS"

    def ratio(a, b, what="wall"):
        if a in med and b in med and med[a][what] is not None and med[b][what] is not None:
            return med[a][what] / med[b][what]
        return None

    def cpu_note(a, b, digits=2):
        value = ratio(a, b, "cpu")
        return f" (CPU {value:.{digits}f}x)" if value is not None else ""

    for arm, title in (("ext4-lvm", "ext4 on LVM / ext4 on GPT, wall"), ("xfs-lvm", "XFS on LVM / ext4 on GPT, wall")):
        value = ratio(arm, "ext4-gpt")
        if value is not None:
            targets.append(f"| {title} | {value:.2f}x{cpu_note(arm, 'ext4-gpt')} | <= 1.15x | "
                           f"{verdict(value <= 1.15)} |")
    # Where the LVM disks' time goes: their /boot is a filesystem of its own, scanned apart from the root LV.
    def fs_scan(arm, pick):
        fss = [fs for t in med[arm]["run"]["report"]["targets"] for fs in t.get("filesystems", [])
               if fs.get("status") == "scanned" and pick(fs)]
        return sum(fs.get("timings", {}).get("scan_seconds", 0) for fs in fss) if fss else None

    if "ext4-gpt" in med:
        whole = fs_scan("ext4-gpt", lambda fs: True)
        for arm, title in (("ext4-lvm", "ext4"), ("xfs-lvm", "XFS")):
            if arm not in med:
                continue
            root_lv = fs_scan(arm, lambda fs: fs.get("label") == "realroot")
            boot = fs_scan(arm, lambda fs: fs.get("label") == "realboot")
            if root_lv and boot is not None and whole:
                targets.append(f"| {title} root LV alone / ext4 on GPT whole disk, scan s (diagnostic; /boot apart: "
                               f"{boot:.1f} s) | {root_lv / whole:.2f}x ({root_lv:.1f} / {whole:.1f} s) | | |")
    # The target is for the reading path: with the test signatures (its reference conditions) the
    # engines are not the bound; with the load set both paths wait for them on the same cores (diagnostic).
    for appliance, direct, title, target in (
            ("xfs-appliance-test-sigs", "xfs-lvm-test-sigs", "test signatures, wall", 5),
            ("xfs-appliance", "xfs-lvm", "load signatures, wall (diagnostic: engine-bound)", None)):
        value = ratio(appliance, direct)
        if value is None:
            continue
        n = len(ok[appliance])
        judged = f">= {target}x | {verdict(value >= target)}" if target else "|"
        targets.append(f"| appliance / direct, XFS on LVM, {title}{'' if n >= 3 else f' (appliance: {n} run)'} | "
                       f"{value:.1f}x{cpu_note(appliance, direct, 1)} | {judged} |")
    for arm, title in (("ext4-lvm", "ext4 on LVM"), ("xfs-lvm", "XFS on LVM")):
        if arm in med and "ext4-gpt" in med:
            delta = (med[arm]["rss"] - med["ext4-gpt"]["rss"]) * 1024
            targets.append(f"| peak RSS, {title} - ext4 on GPT | {delta / K_MIB:+.0f} MiB ({med[arm]['rss'] / 1024:.0f}"
                           f" vs {med['ext4-gpt']['rss'] / 1024:.0f}) | <= 300 MB | {verdict(delta <= 300e6)} |")
    value = ratio("cold", "clone")
    if value is not None:
        targets.append(f"| template cold / linked clone, wall | {value:.1f}x{cpu_note('cold', 'clone', 1)} | >= 20x | "
                       f"{verdict(value >= 20)} |")
        cold_total = statistics.median(x["report"]["timings"]["total_seconds"] for x in ok["cold"])
        clone_total = statistics.median(x["report"]["timings"]["total_seconds"] for x in ok["clone"])
        targets.append(f"| the same, the reports' total_seconds ({cold_total:.1f} / {clone_total:.2f} s) | "
                       f"{cold_total / clone_total:.1f}x | | |")
    value = ratio("cold", "clone-4k")
    if value is not None:
        targets.append(f"| template cold / the clone with 4 KiB clusters, wall (diagnostic) | "
                       f"{value:.1f}x{cpu_note('cold', 'clone-4k', 1)} | | |")

    # --- the clone --------------------------------------------------------------------------------------------
    clone_text = []
    for arm in ("clone", "clone-4k"):
        if arm not in med:
            continue
        x = med[arm]["run"]
        c, counts = x["report"]["cache"], x["report"]["counts"]
        changed_bytes = sum(int(size) for _, size, _, _, _ in changes)
        # files_not_read: every file whose verdict came without reading it, by its blocks or its identity.
        reused, not_read = c.get("files_reused_by_blocks", 0), c.get("files_not_read", 0)
        read_bytes = counts["bytes"] - c.get("bytes_not_read", 0)
        clone_text += [
            f"The {'clone' if arm == 'clone' else 'clone with 4 KiB clusters'} ({x['name']}): {len(changes)} files "
            f"rewritten in the guest's XFS, {changed_bytes / 1e6:.1f} MB = "
            f"{100 * changed_bytes / counts['bytes']:.2f}% of the data (qcow2 overlay {os.path.getsize(x['report']['targets'][0]['path']) / K_MIB:.0f} MiB). Of "
            f"its {counts['files']} files, {counts['files'] - not_read} were read "
            f"({counts['files'] - not_read - len(changes)} beyond the rewritten ones; {read_bytes / K_MIB:.0f} MiB, "
            f"{100 * read_bytes / counts['bytes']:.1f}% of the bytes) and {not_read} not: {reused} "
            f"({c.get('bytes_reused_by_blocks', 0) / K_MIB:.0f} MiB) reused from the template's blocks, "
            f"{not_read - reused} by their identity; the engines scanned {c.get('engine_scans', 0)} (block lookups: "
            f"{c.get('block_hits', 0)} hits, {c.get('block_misses', 0)} misses). Signatures loaded in "
            f"{x['report']['timings']['signature_load_seconds']:.1f} s, waited for "
            f"{x['report']['timings']['signature_wait_seconds']:.1f} s.",
            "",
        ]

    n_app = len(ok["xfs-appliance"])
    text = "\n".join([
        "## LVM2 and XFS on the direct path: the real server in three layouts (lvm-xfs-bench.sh)",
        "",
        f"Revision {revision}, {os.cpu_count()} cores, KVM unusable (the appliance under TCG); the Debian 12 server "
        "of make-real-os.sh as ext4 on GPT, ext4 on LVM and XFS on LVM (/boot ext4 + VG realvg: root LV, swap LV; "
        "make-real-os-lvm.sh). ClamAV only, the load signature set, the same limits, `--threads` = cores, "
        f"`--no-cache` unless named; {len(ok['ext4-gpt'])} interleaved repeats, the appliance {n_app}"
        f"{'' if n_app >= len(ok['ext4-gpt']) else ' (TCG: a run takes minutes)'}; ratios from the medians. "
        "Peak RSS: the largest single process; CPU: user + system time of the whole process tree (steadier than "
        "wall when the machine is shared; in parentheses beside the wall ratios).",
        "",
        *rows,
        "",
        *targets,
        "",
        *clone_text,
        "Per filesystem scanned (open: the volume and the listing; scan: reading and scanning after it; the LVM "
        "disks' PV and swap LV are named and skipped):",
        "",
        *fs_rows,
        "",
        "Checks: " + "; ".join(checks) + (". PROBLEMS: " + "; ".join(problems) if problems else "."),
        "",
        "Reproduce with `COLDSCAN=build/tools/coldscan ./bench/lvm-xfs-bench.sh`. The runs (repeat 1):",
        "```sh",
        *[runs[arm][0]["command"] for arm, _ in K_ARMS if runs[arm]],
        "```",
    ])
    print(text)
    replace_section(results_md, "lvm-xfs-bench", text)
    if problems:
        print("\nlvm_xfs_report: checks failed:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(*sys.argv[1:3]))
