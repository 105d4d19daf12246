#!/usr/bin/env python3
"""The tables, ratios and checks of run-all.sh (which runs this).

  full_report.py BENCH_DIR RESULTS_MD PLOTS_DIR
      Reads BENCH_DIR/full/run (per arm and repeat ARM.R: .time "wall-seconds peak-RSS-KiB", .status,
      .command, .load, coldscan's .json reports, the peers' output, clamd's .rss-kb and .load-seconds) and
      the inputs' manifests, prints one table per comparison with its ratios and checks, writes those
      sections of RESULTS_MD (results_md.py keeps them apart), BENCH_DIR/full/bars.json (throughput per
      full-scan arm of the template) and BENCH_DIR/full/fleet.json (fleet cost against N), and draws both
      with bench/plots.py into PLOTS_DIR when that script is there.

Every ratio is computed from the medians of arms measured in the same run; the min-max beside it pairs the
slowest and the fastest repeats. Exit status 1 when a check failed: a result is wrong (a missed sample,
different detections across arms, a cache that ran the engines on what it should not), never because an
arm is slow.
"""

import json
import os
import re
import statistics
import subprocess
import sys

from bench_report import K_NEW_SIGNATURE, K_PLANTED_TEMPLATE, command_output, machine, read_manifest
from full_inputs import K_FLEET_SAMPLE_PATH, K_NTFS_STREAM
from results_md import replace_section

# Alerts for what was not scanned (a limit, or encryption): coldscan lists these as LIMIT_EXCEEDED.
K_NOT_SCANNED_ALERTS = ("Heuristics.Limits.Exceeded", "Heuristics.Encrypted.")


def read(path, default=None):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return default


class Sample:
    """One run of one arm (ARM.R files in the run folder)."""

    def __init__(self, run, name):
        self.name = name
        last = read(os.path.join(run, name + ".time")).splitlines()[-1].split()
        self.wall = float(last[0])
        self.rss_kib = int(read(os.path.join(run, name + ".rss-kb"), "") or last[1])  # clamd: the daemon's
        self.status = int(read(os.path.join(run, name + ".status"), "-1"))
        self.load = float(read(os.path.join(run, name + ".load"), "0"))
        self.command = read(os.path.join(run, name + ".command"), "")
        self.load_seconds = float(read(os.path.join(run, name + ".load-seconds"), "0"))
        self.out = read(os.path.join(run, name + ".out"), "")
        path = os.path.join(run, name + ".json")
        self.report = json.load(open(path, encoding="utf-8")) if os.path.exists(path) else None
        self.cache = (self.report or {}).get("cache") or {}

    def detections(self, tree=None):
        """{(path, signature)}: coldscan's report, or a peer's FOUND lines with TREE cut off the paths."""
        if self.report is not None:
            return {(d["path"], d["signature"]) for d in self.report.get("detections", [])}
        found = set()
        for line in self.out.splitlines():
            if not line.endswith(" FOUND"):
                continue
            path, _, signature = line[:-len(" FOUND")].rpartition(": ")
            if signature.startswith(K_NOT_SCANNED_ALERTS):  # LIMIT_EXCEEDED in coldscan, not detections
                continue
            if tree:  # the tree's own folder name marks where the image's path starts (moved folders too)
                marker = "/" + os.path.basename(tree.rstrip("/")) + "/"
                at = path.find(marker)
                path = path[at + len(marker) - 1:] if at >= 0 else path
            found.add((path, signature))
        return found

    def detected_paths(self, tree=None):
        return {path for path, _ in self.detections(tree)}

    @property
    def engine_scans(self):
        return self.cache.get("engine_scans") if self.cache.get("enabled") else None

    @property
    def files(self):
        return (self.report or {}).get("counts", {}).get("files")


class Arm:
    """The repeats of one arm."""

    def __init__(self, samples, base, repeats, label):
        self.base = base
        self.label = label
        self.samples = [samples[f"{base}.{r}"] for r in range(1, repeats + 1) if f"{base}.{r}" in samples]

    def __bool__(self):
        return bool(self.samples)

    @property
    def walls(self):
        return [s.wall for s in self.samples]

    @property
    def median(self):
        return statistics.median(self.walls)

    @property
    def low(self):
        return min(self.walls)

    @property
    def high(self):
        return max(self.walls)

    @property
    def rss_mib(self):
        return max(s.rss_kib for s in self.samples) / 1024

    def spread(self):
        return f"{self.low:.1f}–{self.high:.1f}"


def faster(ours, peer):
    """'3.1x faster (2.9–3.3x)' for wall times (lists of floats), from medians; the range pairs extremes."""
    m = statistics.median(peer) / statistics.median(ours)
    lo, hi = min(peer) / max(ours), max(peer) / min(ours)
    if m >= 1:
        return f"{m:.1f}x faster ({lo:.1f}–{hi:.1f}x)"
    return f"{1 / m:.1f}x slower ({1 / hi:.1f}–{1 / lo:.1f}x)"


def md_table(head, rows):
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def print_table(head, rows):
    widths = [max(len(row[i]) for row in [head] + rows) for i in range(len(head))]
    for row in [head] + rows:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))


def manifest_info(path):
    entries = read_manifest(path)
    return {"files": len(entries), "bytes": sum(e[1] for e in entries), "digests": {e[0] for e in entries},
            "paths": {e[2] for e in entries}}


class Context:
    def __init__(self, bench_dir, results_md, plots_dir):
        self.bench_dir = bench_dir
        self.full = os.path.join(bench_dir, "full")
        self.run = os.path.join(self.full, "run")
        self.images = os.path.join(self.full, "images")
        self.ntfs = os.path.join(self.full, "ntfs")
        self.results_md = results_md
        self.plots_dir = plots_dir
        self.settings = dict(line.split("=", 1) for line in read(os.path.join(self.run, "settings"), "").splitlines()
                             if "=" in line)
        self.repeats = int(self.settings.get("BENCH_REPEATS", "3"))
        self.checks = []  # (section, ok, text)
        self.template = manifest_info(os.path.join(self.images, "template.manifest"))
        self.template_tree = os.path.join(self.images, "template-tree")
        self.ntfs_tree = os.path.join(self.ntfs, "ntfs-tree")
        self.coldscan = os.path.join(self.run, "coldscan")
        names = sorted(f[:-len(".time")] for f in os.listdir(self.run) if f.endswith(".time"))
        self.samples = {name: Sample(self.run, name) for name in names}
        self.template_pairs = None  # the detections of the first full-disk direct scan of the template

    def arm(self, base, label):
        return Arm(self.samples, base, self.repeats, label)

    def check(self, section, ok, text):
        self.checks.append((section, bool(ok), text))

    def section_checks(self, section):
        return [(ok, text) for s, ok, text in self.checks if s == section]

    # --- the text every section carries -------------------------------------------------------------------
    def preamble(self):
        if hasattr(self, "_preamble"):
            return self._preamble
        m = machine()
        any_report = next((s.report for s in self.samples.values() if s.report), {}) or {}
        clamav = ((any_report.get("signatures") or {}).get("clamav") or {})
        yara = command_output(["yara", "--version"])
        loads = [s.load for s in self.samples.values()]
        self._preamble = (
            f"Run by `bench/run-all.sh`, started {read(os.path.join(self.run, 'started_at'), '?')}; "
            f"{self.repeats} repeat{'s' if self.repeats != 1 else ''} of every arm, interleaved (median, and min–max).\n"
            f"Machine: {m['cpus']} CPUs ({m['cpu']}), {m['ram']} RAM, kernel {m['kernel']}, {m['os']}.\n"
            f"Versions: {command_output([self.coldscan, '--version'])} (source "
            f"`{read(os.path.join(self.run, 'revision'), '?')}`), ClamAV {clamav.get('engine_version', '?')} "
            f"({clamav.get('signature_count', '?')} signatures: the generated load set of "
            f"`bench/make-load-signatures.sh` and the test samples' signatures), YARA {yara} (not used by these "
            f"arms), {m['qemu']}, {m['libguestfs']}.\n"
            f"Load average when the arms started: {min(loads, default=0):.2f}–{max(loads, default=0):.2f}.")
        return self._preamble

    def reproduce(self, samples):
        settings = " ".join(f"{k}={v}" for k, v in self.settings.items())
        commands = []
        for s in samples:
            commands.append(s.command.replace(self.run + "/coldscan", "coldscan").replace(self.bench_dir, "$B"))
        if any(s.command.startswith("clamdscan") for s in samples):  # the daemon's settings are part of the arm
            conf = read(os.path.join(self.run, "clamd.conf"), "").replace(self.bench_dir, "$B")
            commands += ["# clamd -c $B/full/run/clamd.conf, started afresh for each clamdscan arm:"]
            commands += ["#   " + line for line in conf.splitlines()]
        return (f"Reproduce: `{settings} ./bench/run-all.sh` (`COLDSCAN_BENCH_DIR` = `$B`, here "
                f"`{self.bench_dir}`). The arms, as run (first repeat):\n```sh\n" + "\n".join(commands) + "\n```")

    def write_section(self, name, title, body, samples):
        checks = self.section_checks(name)
        text = f"## {title}\n\n{self.preamble()}\n\n{body.strip()}\n"
        if checks:
            text += "\n" + checks_markdown(checks) + "\n"
        text += "\n" + self.reproduce(samples) + "\n"
        replace_section(self.results_md, name, text)

    def plot(self, kind, data_path, name):
        """Draws DATA_PATH with bench/plots.py; returns a Markdown image line or a note."""
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plots.py")
        if not os.path.exists(script):
            print(f"full_report: bench/plots.py is not there: no {name}")
            return f"(No plot: `bench/plots.py` was not there; the data is in `{os.path.relpath(data_path, self.bench_dir)}`.)"
        os.makedirs(self.plots_dir, exist_ok=True)
        out = os.path.join(self.plots_dir, name)
        done = subprocess.run([sys.executable, script, kind, data_path, out], capture_output=True, text=True)
        if done.returncode != 0:
            print(f"full_report: plots.py {kind} failed: {done.stderr.strip()[-500:]}")
            return f"(No plot: `bench/plots.py {kind}` failed.)"
        print(f"full_report: wrote {out}")
        relative = os.path.relpath(out, os.path.dirname(os.path.abspath(self.results_md)))
        return f"![{name}]({relative})"


def status_checks(ctx, section, arms):
    for arm in arms:
        for s in arm.samples:
            if s.report is not None:
                ok = s.report.get("status") in ("completed", "completed_with_warnings", "completed_with_issues") and all(
                    t.get("status") != "failed" for t in s.report.get("targets", []))
                ctx.check(section, ok, f"{s.name}: coldscan completed (status {s.report.get('status')}, "
                                       f"exit {s.status})")
            else:
                ctx.check(section, s.status in (0, 1), f"{s.name}: exit status {s.status} (0 or 1 expected)")


def same_detections(ctx, section, arms, expected, text, tree=None, any_signature=()):
    """Checks each run of ARMS against EXPECTED: (path, signature) pairs for coldscan's runs (the same engine
    and options give the same pairs), paths for the peers (TREE: their folder). Paths in ANY_SIGNATURE must be
    detected, by whatever signature (a sample the reference run did not hold)."""
    for arm in arms:
        for s in arm.samples:
            if tree is None:
                got = {d for d in s.detections() if d[0] not in any_signature}
                missing_free = set(any_signature) - s.detected_paths()
            else:
                got, missing_free = s.detected_paths(tree), set()
            ok = got == expected and not missing_free
            ctx.check(section, ok, f"{s.name}: {text}" + ("" if ok else
                      f" (missing {sorted(expected - got) + sorted(missing_free)}, extra {sorted(got - expected)})"))


# --- full-disk scans ----------------------------------------------------------------------------------------
def full_disk(ctx, kind):
    """kind: 'tpl' (the ext4 template) or 'ntfs'. Returns the arms, or None when they did not run."""
    section = "full-template" if kind == "tpl" else "full-ntfs"
    tree = ctx.template_tree if kind == "tpl" else ctx.ntfs_tree
    arms = [ctx.arm(f"{kind}-direct", "coldscan --backend direct, no cache (reads the image)"),
            ctx.arm(f"{kind}-guestfs", "coldscan --backend guestfs, no cache (libguestfs appliance)"),
            ctx.arm(f"{kind}-clamscan", "clamscan -r, one thread (files in a host folder)"),
            ctx.arm(f"{kind}-clamd", "clamd + clamdscan --multiscan --fdpass (files in a host folder)")]
    direct, guestfs, clamscan, clamd = arms
    if not direct:
        return None
    arms = [a for a in arms if a]
    if kind == "tpl":
        info = ctx.template
        planted = set(K_PLANTED_TEMPLATE)
        title = "Full-disk scan: the template (ext4), coldscan vs in-guest ClamAV"
    else:
        info = manifest_info(os.path.join(ctx.ntfs, "ntfs.manifest"))
        planted = set(read(os.path.join(ctx.ntfs, "ntfs.planted"), "").splitlines())
        title = "Full-disk scan: the Windows-like NTFS disk, coldscan vs in-guest ClamAV"
    mb = info["bytes"] / 1e6

    # --- checks ---
    status_checks(ctx, section, arms)
    pairs = direct.samples[0].detections()
    if kind == "tpl":
        ctx.template_pairs = pairs  # every other arm on the template must agree
    reference = direct.samples[0].detected_paths()
    ctx.check(section, planted <= reference,
              f"coldscan direct found every planted sample ({len(planted)}): missing {sorted(planted - reference)}"
              if not planted <= reference else f"coldscan direct found every planted sample ({len(planted)})")
    same_detections(ctx, section, [direct], pairs, "the same detections as the first direct run")
    streams = {p for p in reference if ":" in p.rsplit("/", 1)[-1]}  # NTFS alternate data streams
    if kind == "ntfs":
        ctx.check(section, K_NTFS_STREAM in reference, f"coldscan direct found EICAR in the stream {K_NTFS_STREAM}")
    without_streams = reference - streams
    # The appliance (ntfs-3g) lists no stream, and a Linux folder holds none: the others see one fewer.
    same_detections(ctx, section, [guestfs], {d for d in pairs if d[0] not in streams}, "the same detections as direct" +
                    (" except the alternate data stream" if streams else ""))
    same_detections(ctx, section, [clamscan, clamd], without_streams,
                    "the peer flagged the same files as coldscan direct" +
                    (" except the alternate data stream" if streams else ""), tree=tree)
    signature_count = ((direct.samples[0].report.get("signatures") or {}).get("clamav") or {}).get("signature_count")
    for s in clamscan.samples:
        match = re.search(r"^Known viruses: (\d+)", s.out, re.M)
        known = int(match.group(1)) if match else None
        ctx.check(section, known == signature_count,
                  f"{s.name}: clamscan loaded {known} signatures, coldscan {signature_count}")
    for s in direct.samples:
        expected_files = info["files"] + len(streams)
        ctx.check(section, s.files == expected_files,
                  f"{s.name}: {s.files} files scanned, {expected_files} in the image"
                  + (" (streams included)" if streams else ""))

    # --- table ---
    head = ["arm", "wall s (median)", "min–max s", "MB/s", "peak RSS MiB", "files flagged"]
    rows = [[a.label, f"{a.median:.1f}", a.spread(), f"{mb / a.median:.0f}", f"{a.rss_mib:.0f}",
             str(len(a.samples[0].detected_paths(tree)))] for a in arms]
    ratios = []
    for ours in (direct, guestfs):
        for peer in (clamscan, clamd):
            if ours and peer:
                ratios.append(f"{ours.label.split(',')[0]} vs {peer.label.split(',')[0].split(' (')[0]}: "
                              f"{faster(ours.walls, peer.walls)}")
    if guestfs:
        ratios.append(f"coldscan --backend direct vs --backend guestfs: {faster(direct.walls, guestfs.walls)}")
    clamd_load = statistics.median(s.load_seconds for s in clamd.samples) if clamd else 0

    print(f"== {title}\n   {info['files']} files, {info['bytes'] / 2**20:.0f} MiB")
    print_table(head, rows)
    for r in ratios:
        print("   " + r)
    print()

    bars = [{"arm": a.label.split(" (")[0], "median": round(mb / a.median, 1), "min": round(mb / a.high, 1),
             "max": round(mb / a.low, 1), "unit": "MB/s"} for a in arms]
    plot_line = ""
    if kind == "tpl":
        path = os.path.join(ctx.full, "bars.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(bars, f, indent=2)
        plot_line = ctx.plot("bars", path, "throughput.png")

    if kind == "tpl":
        images = json.load(open(os.path.join(ctx.images, "images.json"), encoding="utf-8"))["template"]
        inputs = (f"Input: `template.qcow2` (`bench/make-template.sh`), GPT + ext4, {info['files']} files, "
                  f"{info['bytes'] / 2**20:.0f} MiB of this host's binaries, libraries and data, "
                  f"{len(info['digests'])} distinct contents, planted EICAR, clam.exe and clam.zip; qcow2 file "
                  f"{images['file_size'] / 2**20:.0f} MiB. The peers scan `template-tree/`, the very same files.")
        reads = ("coldscan reads the qcow2 image: `--backend direct` through qemu-nbd and its own ext4 reader, "
                 "`--backend guestfs` through the libguestfs appliance")
    else:
        inputs = (f"Input: `ntfs.qcow2` (`bench/make-ntfs.sh`), GPT + NTFS, {info['files']} files, "
                  f"{info['bytes'] / 2**20:.0f} MiB in a Windows-shaped tree (Windows/System32 with .exe, .dll and "
                  f"drivers/*.sys, WinSxS, Program Files, ProgramData, Users); a Debian host has no benign PE "
                  f"corpus, so the contents are this host's ELF files and data under Windows names. Planted: "
                  f"clam.exe, clam.zip and clam-upx.exe under Users, EICAR in the startup folder, and EICAR in the "
                  f"alternate data stream `{K_NTFS_STREAM}`. The peers scan `ntfs-tree/`, the same files; a Linux "
                  f"folder has no streams, and the appliance's ntfs-3g lists none, so those arms flag one file fewer.")
        reads = ("coldscan reads the qcow2 image: `--backend direct` through qemu-nbd and its own NTFS reader "
                 "(streams included), `--backend guestfs` through the appliance's ntfs-3g")
    body = f"""{inputs}

{md_table(head, rows)}

Ratios (wall times, medians; in brackets the slowest against the fastest repeats):
""" + "\n".join(f"- {r}" for r in ratios) + f"""

{plot_line}

The same in every arm: ClamAV {((direct.samples[0].report.get('signatures') or {}).get('clamav') or {}).get('engine_version', '?')}
(libclamav for all), the same database folder, ClamAV only (no YARA), coldscan's default limits (max file size
256 MiB, scan size 1 GiB, recursion 17, 10,000 files per archive, 120 s per file), all matches reported
(`--allmatch`), files over a limit and encrypted archive members or PDFs flagged (`--alert-exceeds-max`,
`--alert-encrypted`; coldscan lists them as LIMIT_EXCEEDED, not as detections); the page cache holds every input before the first arm. What differs:
- {reads}; it parses the filesystem and hashes every file (SHA-256) for its report. clamscan and clamd read
  the files from a folder on the host through the host's kernel.
- Threads: coldscan uses all {os.cpu_count()} cores; clamscan one thread (as an in-guest agent runs);
  clamd `MaxThreads {os.cpu_count()}` with `--multiscan`.
- Signature load: inside the wall time of coldscan (overlapping the image's opening) and of clamscan; clamd
  loads once when it starts ({clamd_load:.1f} s here, not in its time: a resident daemon).
- coldscan runs with `--no-cache`; clamd's in-memory cache is on, empty in this first run after its start.
- Peak RSS: coldscan's and clamscan's process (the guestfs arm: the largest of coldscan and its appliance);
  clamd: the daemon's VmHWM after the run.
"""
    ctx.write_section(section, title, body, [a.samples[0] for a in arms])
    return {"direct": direct, "guestfs": guestfs, "clamscan": clamscan, "clamd": clamd}


# --- unchanged re-scan and signature update ---------------------------------------------------------------
def rescan(ctx, full):
    cold = ctx.arm("rescan-cold", "coldscan, empty cache (fills it)")
    warm = ctx.arm("rescan-warm", "coldscan, the same cache again (unchanged template)")
    sigupdate = ctx.arm("sigupdate", "coldscan, the same cache, one signature added")
    clamd_cold = full["clamd"] if full else None
    clamd_warm = ctx.arm("tpl-clamd-warm", "clamd: clamdscan again on the same daemon (its in-memory cache)")
    if not cold:
        return
    new_path = read(os.path.join(ctx.run, "new-signature.path"), "?")
    distinct = len(ctx.template["digests"])
    reference = cold.samples[0].detections()

    section = "rescan"
    status_checks(ctx, section, [cold, warm])
    ctx.check(section, K_PLANTED_TEMPLATE <= {p for p, _ in reference}, "the cold scan found every planted sample")
    same_detections(ctx, section, [cold, warm], reference, "the same detections as the cold scan")
    if ctx.template_pairs is not None:
        ctx.check(section, reference == ctx.template_pairs, "the cold scan: the same detections as the full-disk arms")
    for s in warm.samples:
        ctx.check(section, s.engine_scans == 0 and s.cache.get("files_not_scanned") == s.files,
                  f"{s.name}: the unchanged re-scan ran the engines on {s.engine_scans} contents "
                  f"(files not scanned {s.cache.get('files_not_scanned')} of {s.files})")
    for s in cold.samples:
        ctx.check(section, s.engine_scans == distinct,
                  f"{s.name}: the cold scan ran the engines once per distinct content ({s.engine_scans} of {distinct})")

    head = ["arm", "wall s (median)", "min–max s", "engines ran on", "files read", "peak RSS MiB"]

    def row(a):
        s = a.samples[0]
        scans = str(s.engine_scans) if s.engine_scans is not None else "all"
        read_files = str(s.files - s.cache.get("files_not_read", 0)) if s.report else "all"
        return [a.label, f"{a.median:.1f}", a.spread(), scans, read_files, f"{a.rss_mib:.0f}"]

    arms = [cold, warm] + ([clamd_cold] if clamd_cold else []) + ([clamd_warm] if clamd_warm else [])
    rows = [row(a) for a in arms]
    ratios = [f"coldscan warm vs cold: {faster(warm.walls, cold.walls)}"]
    if clamd_cold and clamd_warm:
        ratios.append(f"clamd warm (second clamdscan) vs its first run: {faster(clamd_warm.walls, clamd_cold.walls)}")
        ratios.append(f"coldscan warm vs clamd warm: {faster(warm.walls, clamd_warm.walls)}")
    if full and full["clamscan"]:
        ratios.append(f"coldscan warm vs clamscan -r (which has no cache): {faster(warm.walls, full['clamscan'].walls)}")
    print("== Unchanged re-scan of the template")
    print_table(head, rows)
    for r in ratios:
        print("   " + r)
    print()
    body = f"""The template (see the full-disk section), scanned by coldscan `--backend direct` on an empty verdict cache,
then again on that cache, unchanged; clamd's answer to the same question is its in-memory cache of clean
files' MD5s: a second clamdscan on the daemon that ran the first (it still reads and hashes every file).

{md_table(head, rows)}

Ratios (medians; in brackets the slowest against the fastest repeats):
""" + "\n".join(f"- {r}" for r in ratios) + """

The warm coldscan run trusts each file's identity (inode, size, times, in the cache keyed by the image's
layers) and reads no file; `--verify-content` would read and hash every file instead. "engines ran on" comes
from the report's cache counters (distinct contents the engines scanned).
"""
    ctx.write_section(section, "Unchanged re-scan: coldscan warm vs cold, and clamd's in-memory cache", body,
                      [a.samples[0] for a in arms])

    # --- signature update ---
    section = "signature-update"
    if not sigupdate:
        return
    status_checks(ctx, section, [sigupdate])
    for s in sigupdate.samples:
        found = any(p == new_path and sig.startswith(K_NEW_SIGNATURE) for p, sig in s.detections())
        ctx.check(section, found, f"{s.name}: the new signature found {new_path}")
        # The 32 bytes may also be in other files (copies of the same data): those are found too, by it alone.
        extra = s.detections() - reference
        ctx.check(section, reference <= s.detections() and all(sig.startswith(K_NEW_SIGNATURE) for _, sig in extra),
                  f"{s.name}: the cold scan's detections, plus {len(extra)} by the new signature only")
        ctx.check(section, s.engine_scans == distinct,
                  f"{s.name}: every distinct content rescanned once under the new set ({s.engine_scans} of {distinct})")
    new_hits = len({p for p, sig in sigupdate.samples[0].detections() if sig.startswith(K_NEW_SIGNATURE)})
    nocache = full["direct"] if full else None
    arms = [cold, warm, sigupdate] + ([nocache] if nocache else [])
    rows = [row(a) for a in arms]
    ratios = [f"after one new signature vs the cold scan: {faster(sigupdate.walls, cold.walls)}",
              f"after one new signature vs the warm re-scan: {faster(sigupdate.walls, warm.walls)}"]
    if nocache:
        ratios.append(f"after one new signature vs `--no-cache`: {faster(sigupdate.walls, nocache.walls)}")
    print("== Signature update: the template again after one new signature")
    print_table(head, rows)
    for r in ratios:
        print("   " + r)
    print()
    body = f"""The cache of the re-scan arms (cold, then warm), then the template again with the load set plus one new
body signature (`Bench.New.Signature`, 32 bytes cut from `{new_path}`, a file of the template). The
signature set's fingerprint is in every verdict's key, so no verdict holds: every distinct content
({distinct}) goes through the engines once, and every file is read and hashed again. The new signature
flagged {new_hits} file(s): its own and any copy of the same bytes. A cheaper update would scan the contents
already clean under the old set with only the added signatures; that holds only when the new set adds and
removes nothing else (no allow-list or dropped signature changes an old verdict), and is not built.

{md_table(head, rows)}

Ratios (medians; in brackets the slowest against the fastest repeats):
""" + "\n".join(f"- {r}" for r in ratios) + "\n"
    ctx.write_section(section, "Signature update: re-scan after one new signature", body,
                      [a.samples[0] for a in arms])


# --- clone fleet --------------------------------------------------------------------------------------------
def fleet(ctx, full):
    sizes = [int(n) for n in ctx.settings.get("BENCH_FLEET", '"1 5 10"').strip('"').split()]
    runs = {}
    for n in sizes:
        arms = [ctx.arm(f"fleet{n}-{k:02d}", "template" if k == 0 else f"fleet-{k:02d}") for k in range(n + 1)]
        if not arms[0]:
            return
        runs[n] = arms
    section = "fleet"
    template_digests = ctx.template["digests"]
    clones = {k: manifest_info(os.path.join(ctx.images, f"fleet-{k:02d}.manifest")) for k in range(1, max(sizes) + 1)}
    changes = {}
    for k in clones:
        counts = {}
        for line in read(os.path.join(ctx.images, f"fleet-{k:02d}.changes"), "").splitlines():
            kind = line.split("\t", 1)[0]
            counts[kind] = counts.get(kind, 0) + 1
        changes[k] = counts

    # Contents the engines must see in clone k: not in the template, nor in an earlier clone.
    expected_new = {}
    seen = set(template_digests)
    for k in sorted(clones):
        expected_new[k] = clones[k]["digests"] - seen
        seen |= clones[k]["digests"]
    for n, arms in runs.items():
        status_checks(ctx, section, arms)
        # The template's detections: every planted sample, and the same in every fleet run.
        reference = arms[0].samples[0].detections()
        ctx.check(section, K_PLANTED_TEMPLATE <= {p for p, _ in reference},
                  f"fleet{n}: the template scan found every planted sample")
        same_detections(ctx, section, [arms[0]], reference, "the same detections as the first template scan")
        if ctx.template_pairs is not None:
            ctx.check(section, reference == ctx.template_pairs,
                      f"fleet{n}: the template scan has the same detections as the full-disk arms")
        for k in range(1, n + 1):
            expected = {d for d in reference if d[0] in clones[k]["paths"]}
            sample = (K_FLEET_SAMPLE_PATH,) if changes[k].get("sample") else ()
            same_detections(ctx, section, [arms[k]], expected,
                            "the template's detections" + (" and the dropped clam-upx.exe" if sample else ""),
                            any_signature=sample)
            for s in arms[k].samples:
                ctx.check(section, s.engine_scans == len(expected_new[k]),
                          f"{s.name}: the engines ran on {s.engine_scans} contents, the clone's new ones: "
                          f"{len(expected_new[k])}")
                ctx.check(section, s.files == clones[k]["files"],
                          f"{s.name}: {s.files} files, {clones[k]['files']} in the clone")

    def totals(arms):
        per_repeat = {}
        for arm in arms:
            for s in arm.samples:
                repeat = s.name.rsplit(".", 1)[1]
                per_repeat[repeat] = per_repeat.get(repeat, 0.0) + s.wall
        return list(per_repeat.values())

    nocache = full["direct"] if full else None
    clamscan = full["clamscan"] if full else None
    clamd = full["clamd"] if full else None
    head = ["N clones", "coldscan: template + N clones, one cache (median s)", "min–max s"]
    if nocache:
        head += ["(N+1) × coldscan --no-cache s", "ratio"]
    if clamscan:
        head += ["(N+1) × clamscan -r s", "ratio"]
    if clamd:
        head += ["(N+1) × clamd s", "ratio"]
    rows = []
    data = {"n": [], "coldscan_s": [], "coldscan_min_s": [], "coldscan_max_s": [], "full_s": [], "full_min_s": [],
            "full_max_s": []}
    if clamscan:
        data["clamscan_s"] = []
    if clamd:
        data["clamd_s"] = []
    ratios = []
    for n, arms in runs.items():
        t = totals(arms)
        m = statistics.median(t)
        row = [str(n), f"{m:.1f}", f"{min(t):.1f}–{max(t):.1f}"]
        data["n"].append(n)
        data["coldscan_s"].append(round(m, 2))
        data["coldscan_min_s"].append(round(min(t), 2))
        data["coldscan_max_s"].append(round(max(t), 2))
        for key, peer in (("full_s", nocache), ("clamscan_s", clamscan), ("clamd_s", clamd)):
            if peer:
                cost = (n + 1) * peer.median
                row += [f"{cost:.1f}", f"{cost / m:.1f}x"]
                data[key].append(round(cost, 2))
        if nocache:
            data["full_min_s"].append(round((n + 1) * nocache.low, 2))
            data["full_max_s"].append(round((n + 1) * nocache.high, 2))
            ratios.append(f"N = {n}: template + {n} clone{'s' if n != 1 else ''} on one cache vs {n + 1} full "
                          f"scans (`--no-cache`): "
                          f"{faster(t, [(n + 1) * w for w in nocache.walls])}")
        rows.append(row)
    if not nocache:
        for key in ("full_s", "full_min_s", "full_max_s"):
            del data[key]
    path = os.path.join(ctx.full, "fleet.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
    plot_line = ctx.plot("fleet", path, "fleet.png")

    largest = max(runs)
    clone_head = ["scan", "changed / added / deleted files", "new contents", "engines ran on", "files read",
                  "wall s (median)", "min–max s", "peak RSS MiB"]
    clone_rows = []
    for k, arm in enumerate(runs[largest]):
        s = arm.samples[0]
        c = changes.get(k, {})
        clone_rows.append([
            arm.label + (" (+ clam-upx.exe)" if c.get("sample") else ""),
            "—" if k == 0 else f"{c.get('changed', 0)} / {c.get('added', 0)} / {c.get('deleted', 0)}",
            str(len(ctx.template["digests"]) if k == 0 else len(expected_new[k])),
            str(s.engine_scans), str(s.files - s.cache.get("files_not_read", 0)),
            f"{arm.median:.1f}", arm.spread(), f"{arm.rss_mib:.0f}"])
    print("== Clone fleet: the template and N linked clones on one cache")
    print_table(head, rows)
    for r in ratios:
        print("   " + r)
    print()
    print_table(clone_head, clone_rows)
    print()
    sample_clones = [k for k in changes if changes[k].get("sample")]
    sample_text = (f"clone {sample_clones[0]} also gets clam-upx.exe (a UPX-packed clam.exe, found only after "
                   f"unpacking) dropped at `{K_FLEET_SAMPLE_PATH}`." if sample_clones else "no clone gets a sample.")
    fleet_changes = ctx.settings.get("BENCH_FLEET_CHANGES", '"200 100 10"').strip('"').split()
    body = f"""Linked clones of the template (`bench/make-fleet.sh`: qcow2 overlays whose backing file is `template.qcow2`), each
after its own package update: {fleet_changes[0]} files of the template rewritten in place (new bytes, same
size), {fleet_changes[1]} files added (host files the template does not hold), {fleet_changes[2]} deleted;
{sample_text} No two clones share a change, so no clone's new content is in another's: the
conservative case (clones that install the same update share those contents, and the cache scans them once).

For each N: an empty cache, the template, then clones 1..N, each a separate `coldscan scan --backend direct
--cache` process (signature load included every time), against N+1 full scans as each arm of the full-disk
section costs (medians of the same run).

{md_table(head, rows)}

Ratios (medians; in brackets the slowest against the fastest repeats):
""" + "\n".join(f"- {r}" for r in ratios) + f"""

{plot_line}

Each scan of the N = {largest} run:

{md_table(clone_head, clone_rows)}

"new contents" are the clone's distinct contents neither in the template nor in an earlier clone; the
engines must run on those and nothing else. "files read" are the files whose bytes coldscan read from the
image: a file whose blocks all still come from the template's layer keeps its verdict without a read; the
others are read and hashed, which is why there are more of them than changed files (unchanged files whose
blocks the clone's layer holds too), and the engines skip every content the cache already knows.
"""
    ctx.write_section(section, "Clone fleet: the template plus N clones vs N+1 full scans", body,
                      [a.samples[0] for a in runs[largest]][:3])


def checks_markdown(checks):
    """Failed checks in the open; passed ones counted, their list folded (a fleet run has hundreds)."""
    failed = [t for ok, t in checks if not ok]
    passed = [t for ok, t in checks if ok]
    text = f"Checks: {len(passed)} of {len(checks)} hold.\n"
    text += "".join(f"- **FAILED**: {t}\n" for t in failed)
    if passed:
        text += ("\n<details><summary>The checks that hold</summary>\n\n"
                 + "".join(f"- OK: {t}\n" for t in passed) + "\n</details>\n")
    return text.rstrip("\n")


def main(bench_dir, results_md, plots_dir):
    ctx = Context(os.path.abspath(bench_dir), os.path.abspath(results_md), os.path.abspath(plots_dir))
    if not os.path.isdir(ctx.run):
        print(f"full_report: {ctx.run} does not exist (run bench/run-all.sh)", file=sys.stderr)
        return 2
    template = full_disk(ctx, "tpl")
    full_disk(ctx, "ntfs")
    rescan(ctx, template)
    fleet(ctx, template)

    failed = [(s, t) for s, ok, t in ctx.checks if not ok]
    print(f"Checks: {len(ctx.checks) - len(failed)} of {len(ctx.checks)} hold")
    for section, text in failed:
        print(f"FAIL [{section}] {text}")
    print(f"full_report: wrote {ctx.results_md}")
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(*sys.argv[1:]))
