#!/usr/bin/env python3
"""The verdict-cache benchmark's bookkeeping (cache-bench.sh runs this).

  bench_report.py new-signature TEMPLATE_MANIFEST OUT.ndb
      Writes one ClamAV body signature, Bench.New.Signature, made of 32 bytes from the middle of a host
      file that is in the template (chosen deterministically, its bytes checked against the manifest), and
      prints that file's path in the image.
  bench_report.py summarize BENCH_DIR COLDSCAN RESULTS_MD [BACKEND]
      Reads BENCH_DIR/run/<arm>.json (reports) and BENCH_DIR/images/images.json, prints the table, the
      ratios and the checks, and writes RESULTS_MD. Exit status 1 when a check failed.
"""


from results_md import replace_section as results_md_section
import hashlib
import json
import os
import platform
import subprocess
import sys

K_NEW_SIGNATURE = "Bench.New.Signature"
K_ARMS = [
    ("a-cold", "a cold: template, empty cache"),
    ("b-warm", "b warm: template again, same cache"),
    ("c-clone", "c clone after template, same cache"),
    ("d-new-signature", "d template, one signature added, same cache"),
    ("e-clone-nocache", "e clone, --no-cache (control)"),
]
K_PLANTED_TEMPLATE = {"/srv/www/uploads/eicar.com", "/home/admin/Downloads/clam.exe",
                      "/home/admin/Downloads/invoice.zip"}
K_PLANTED_CLONE = K_PLANTED_TEMPLATE | {"/var/tmp/.cache/update.com"}


def read_manifest(path):
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        return [(digest, int(size), file_path)
                for digest, size, file_path in (line.rstrip("\n").split("\t", 2) for line in f)]


def new_signature(manifest, out):
    for digest, size, path in sorted(read_manifest(manifest), key=lambda e: e[0]):
        if not (path.startswith("/usr/") and 65536 <= size <= (4 << 20)):
            continue
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            continue
        if hashlib.sha256(data).hexdigest() != digest:
            continue
        pattern = data[size // 2:size // 2 + 32]
        if len(set(pattern)) < 16:  # padding or tables: could be in many files
            continue
        with open(out, "w", encoding="ascii") as f:
            f.write(f"{K_NEW_SIGNATURE}:0:*:{pattern.hex()}\n")
        print(path)
        return 0
    print("bench_report: no file in the template to cut a signature from", file=sys.stderr)
    return 1


class Arm:
    def __init__(self, run_dir, name, label):
        self.name = name
        self.label = label
        with open(os.path.join(run_dir, name + ".json"), encoding="utf-8") as f:
            self.report = json.load(f)
        with open(os.path.join(run_dir, name + ".status"), encoding="ascii") as f:
            status, wall = f.read().split()
        with open(os.path.join(run_dir, name + ".command"), encoding="utf-8") as f:
            self.command = f.read().strip()
        with open(os.path.join(run_dir, name + ".load"), encoding="ascii") as f:
            self.load_average = f.read().strip()
        self.exit_status = int(status)
        self.wall = float(wall)
        r = self.report
        self.total = r["timings"]["total_seconds"]
        self.load = r["timings"]["signature_load_seconds"]
        # The part of the total spent waiting for the signatures (the load may overlap opening the image).
        self.wait = r["timings"].get("signature_wait_seconds", self.load)
        target = r["targets"][0]
        self.launch = target["timings"].get("launch_seconds", 0.0)
        self.inspect = target["timings"].get("inspect_seconds", 0.0)
        self.open = sum(fs.get("timings", {}).get("open_seconds", 0.0) for fs in target["filesystems"])
        self.probe = target["timings"].get("probe_seconds", 0.0)
        self.target_scan = target["timings"].get("scan_seconds", 0.0)
        self.accel = target.get("accel", "?")
        self.files = r["counts"]["files"]
        self.bytes = r["counts"]["bytes"]
        self.infected = r["counts"]["infected"]
        cache = r.get("cache") or {}
        self.cache = cache
        self.cache_enabled = bool(cache.get("enabled"))
        self.files_read = self.files - cache.get("files_not_read", 0)
        self.bytes_read = self.bytes - cache.get("bytes_not_read", 0)
        self.files_scanned = self.files - cache.get("files_not_scanned", 0)
        self.bytes_scanned = self.bytes - cache.get("bytes_not_scanned", 0)
        self.detections = {(d["path"], d["signature"]) for d in r.get("detections", [])}
        self.detected_paths = {d["path"] for d in r.get("detections", [])}

    @property
    def scan_only(self):
        return self.total - self.wait


def ratio(a, b):
    return a / b if b > 0 else float("inf")


def mib(n):
    return f"{n / 2**20:.0f}"


def command_output(args):
    try:
        return subprocess.run(args, capture_output=True, text=True, check=False).stdout.strip().splitlines()[0]
    except (OSError, IndexError):
        return "?"


def machine():
    meminfo = {}
    with open("/proc/meminfo", encoding="ascii") as f:
        for line in f:
            key, value = line.split(":", 1)
            meminfo[key] = value.strip()
    cpu = "?"
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "ram": f"{int(meminfo['MemTotal'].split()[0]) / 2**20:.1f} GiB",
        "kernel": platform.release(),
        "os": command_output(["sh", "-c", ". /etc/os-release && echo \"$PRETTY_NAME\""]),
        "qemu": command_output(["qemu-system-x86_64", "--version"]),
        "libguestfs": command_output(["guestfish", "--version"]),
        "python": platform.python_version(),
    }


def summarize(bench_dir, coldscan, results_md, backend):
    run_dir = os.path.join(bench_dir, "run")
    arms = {name: Arm(run_dir, name, label) for name, label in K_ARMS}
    a, b, c, d, e = (arms[name] for name, _ in K_ARMS)
    with open(os.path.join(bench_dir, "images", "images.json"), encoding="ascii") as f:
        images = json.load(f)
    template_manifest = read_manifest(os.path.join(bench_dir, "images", "template.manifest"))
    clone_manifest = read_manifest(os.path.join(bench_dir, "images", "clone.manifest"))
    template_contents = {digest for digest, _, _ in template_manifest}
    clone_new_contents = {digest for digest, _, _ in clone_manifest} - template_contents
    with open(os.path.join(run_dir, "new-signature.path"), encoding="utf-8") as f:
        new_signature_path = f.read().strip()
    with open(os.path.join(bench_dir, "sigs", ".params"), encoding="ascii") as f:
        signature_params = f.read().strip()

    # --- the table ---------------------------------------------------------------------------------------
    header = ["arm", "total s", "scan s", "launch s", "files", "files read", "files scanned", "MiB read",
              "MiB scanned", "infected", "exit", "load avg"]
    rows = [[arm.label, f"{arm.total:.1f}", f"{arm.scan_only:.1f}", f"{arm.launch:.1f}", str(arm.files),
             str(arm.files_read), str(arm.files_scanned), mib(arm.bytes_read), mib(arm.bytes_scanned),
             str(arm.infected), str(arm.exit_status), arm.load_average] for arm in arms.values()]
    cache_fields = ["identity_hits", "identity_misses", "verdict_hits", "verdict_misses", "same_content_waits",
                    "engine_scans", "verdicts_written", "files_not_read", "files_not_scanned"]
    cache_rows = [[arm.label] + [str(arm.cache.get(field, "-")) if arm.cache_enabled else "-"
                                 for field in cache_fields] for arm in arms.values()]
    ratios = [
        ("cold / warm (unchanged re-scan)", ratio(a.total, b.total), ratio(a.scan_only, b.scan_only), ">= 20x"),
        ("cold template / clone after template", ratio(a.total, c.total), ratio(a.scan_only, c.scan_only),
         ">= 5x"),
        ("cold / new signature", ratio(a.total, d.total), ratio(a.scan_only, d.scan_only), "(cost of a new signature)"),
        ("clone --no-cache / clone cached", ratio(e.total, c.total), ratio(e.scan_only, c.scan_only), "(control)"),
    ]

    # --- checks ------------------------------------------------------------------------------------------
    checks = []

    def check(ok, text):
        checks.append((ok, text))

    # A file whose content was being scanned by another worker missed the cache and then waited for that
    # scan: it counts in verdict_misses and in same_content_waits, never in engine_scans.
    distinct = images["template"]["distinct_contents"]
    check(d.cache.get("engine_scans") == distinct and
          d.cache.get("verdict_misses", 0) - d.cache.get("same_content_waits", 0) == distinct,
          f"d rescanned every distinct content exactly once: engine_scans {d.cache.get('engine_scans')}, "
          f"verdict_misses {d.cache.get('verdict_misses')} - same_content_waits "
          f"{d.cache.get('same_content_waits')}, distinct contents in the template {distinct}")
    check(d.files_scanned == images["template"]["distinct_contents"],
          f"d: files scanned by the engines {d.files_scanned} == distinct contents "
          f"{images['template']['distinct_contents']} (identical content scanned once)")
    check(any(path == new_signature_path and signature.startswith(K_NEW_SIGNATURE)
              for path, signature in d.detections),
          f"d: the new signature found {new_signature_path}")
    check(b.files_scanned == 0, f"b: unchanged re-scan ran the engines on {b.files_scanned} files (expected 0)")
    check(b.detections == a.detections, "b: the same detections as a")
    check(c.files_scanned == len(clone_new_contents),
          f"c: files scanned by the engines {c.files_scanned} == contents of the clone not in the template "
          f"{len(clone_new_contents)}")
    check(c.detections == e.detections, "c: the same detections as e (the clone without cache)")
    for arm in (a, b, d):
        check(K_PLANTED_TEMPLATE <= arm.detected_paths, f"{arm.name}: every planted sample detected")
    for arm in (c, e):
        check(K_PLANTED_CLONE <= arm.detected_paths, f"{arm.name}: every planted sample detected")
    check(all(arm.files == images["template"]["files"] for arm in (a, b, d)) and
          all(arm.files == images["clone"]["files"] for arm in (c, e)),
          f"file counts: template {images['template']['files']}, clone {images['clone']['files']}")

    # --- terminal ----------------------------------------------------------------------------------------
    def print_table(head, body):
        widths = [max(len(row[i]) for row in [head] + body) for i in range(len(head))]
        for row in [head] + body:
            print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in
                            enumerate(zip(row, widths))))

    print_table(header, rows)
    print()
    print_table(["cache counters"] + cache_fields, cache_rows)
    print()
    for text, total_ratio, scan_ratio, target in ratios:
        print(f"{text}: {total_ratio:.1f}x (total), {scan_ratio:.1f}x (without waiting for signatures)  target {target}")
    print()
    for ok, text in checks:
        print(f"{'OK  ' if ok else 'FAIL'} {text}")

    # --- RESULTS.md --------------------------------------------------------------------------------------
    m = machine()
    version = command_output([coldscan, "--version"])
    with open(os.path.join(run_dir, "revision"), encoding="utf-8") as f:
        version += f" (source {f.read().strip()})"
    engines = a.report["signatures"]
    clamav_version = (engines.get("clamav") or {}).get("engine_version", "?")
    yara_version = (engines.get("yara") or {}).get("engine_version", "?")
    clamav_count = (engines.get("clamav") or {}).get("signature_count", "?")
    now = a.report.get("started_at", "?")  # when the run was made, not when this table was written
    t, cl = images["template"], images["clone"]
    floor = b.wait + b.launch + b.probe + b.inspect + b.open

    def md_table(head, body):
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        return "\n".join(lines)

    through = "through the libguestfs appliance" if backend == "guestfs" else "on the direct path"
    text = f"""## Verdict cache (issue 3), {through} (`--backend {backend}`)

Generated by `bench/cache-bench.sh` on {now}. Ratios are measured against peers in the same run; they are
not thresholds anywhere.

### Machine
- {m['cpus']} CPUs ({m['cpu']}), {m['ram']} RAM, kernel {m['kernel']}, {m['os']}
- {version}, ClamAV {clamav_version}, YARA {yara_version}; {m['qemu']}; {m['libguestfs']}
- appliance acceleration: {f'`{a.accel}`' if a.accel else 'none (no appliance launched)'} (requested `--accel` as in the commands below)

### Inputs
- `template.qcow2`: GPT + ext4, {t['files']} files, {mib(t['bytes'])} MiB of real files from this host's
  /usr (deterministic selection), {t['distinct_contents']} distinct contents, planted EICAR, clam.exe and
  clam.zip; qcow2 file {mib(t['file_size'])} MiB, virtual {mib(t['virtual_size'])} MiB
  (`bench/make-template.sh`).
- `clone.qcow2`: qcow2 overlay on the template ({mib(cl['file_size'])} MiB), 20 files changed, 20 added, one
  EICAR dropped: {cl['files']} files, {len(clone_new_contents)} contents not in the template.
- Signatures: {clamav_count} ClamAV signatures ({signature_params}; `bench/make-load-signatures.sh`:
  generated MD5 `.hdb`, SHA-256 `.hsb` and `.ndb` body signatures in an unsigned `.cud` container, as
  freshclam installs its databases, plus the project's test signatures) and 2 YARA rules. Signature load:
  {a.load:.1f} s, while the image is opened and the cache asked.

### Results
{md_table(header, rows)}

"scan s" is the total without the time spent waiting for the signatures. "files read" are files whose bytes came out of the
image; "files scanned" are files the engines ran on (the others got their verdict from the cache or from
an identical content scanned in the same run). "load avg" is the machine's 1-minute load average when the
arm started (anything above ~0 is other work competing for the {m['cpus']} CPUs).

{md_table(["cache counters"] + [f"`{field}`" for field in cache_fields], cache_rows)}

| ratio | total | without waiting for signatures | issue target |
|---|---|---|---|
""" + "\n".join(f"| {name} | {tr:.1f}x | {sr:.1f}x | {target} |" for name, tr, sr, target in ratios) + """

### Checks
""" + "\n".join(f"- {'OK' if ok else '**FAILED**'}: {text}" for ok, text in checks) + f"""

### The appliance bound
Every scan of an image launches a libguestfs appliance; on this machine KVM cannot be used and the
appliance runs under TCG (software emulation). The warm re-scan read no file and ran the engines on none,
yet still spent {b.launch:.1f} s launching the appliance, {b.inspect:.1f} s on OS inspection and the
filesystem list, {b.open:.1f} s mounting and listing every file's identity (one `lstatnslist` call per
folder, about 1 ms each under TCG), {b.probe:.1f} s probing the image and {b.wait:.1f} s waiting for the
signatures: {floor:.1f} s that no verdict cache can save. Through this path the cold/warm ratio cannot
exceed about {ratio(a.total, floor):.1f}x here, however good the cache is.

The clone after the template is bound the same way and more: its top layer makes it a new image, so level
1 (file identity, keyed on the image's layers) misses and every file is read again through the appliance,
while level 2 lets the engines skip all but the {len(clone_new_contents)} new contents. After one new
signature (d) every file is read again too (level 1 gives each file's digest, level 2 has no verdict of
the new set), and each distinct content goes through the engines once.

The cold scan moves the template's {mib(t['bytes'])} MiB through the appliance in {a.target_scan:.1f} s
({t['bytes'] / 2**20 / a.target_scan if a.target_scan else 0:.1f} MiB/s). The direct path (issue 4) removes
the launch, inspection and listing costs, and block-level incremental scanning (issue 4) skips reading a
clone's unchanged blocks: that is where the issue's targets must be met. The ratios above are reported as
measured.

### Reproduce
```sh
./bench/cache-bench.sh     # builds coldscan and the inputs into build/bench, runs a-e, rewrites this file
```
The five runs, as executed (inputs in `build/bench/`):
```sh
""" + "\n".join(arm.command.replace(bench_dir + "/run/coldscan", "coldscan")
            .replace(bench_dir + "/", "build/bench/")
            for arm in arms.values()) + """
```
"""
    if backend != "guestfs":  # the appliance's bound does not apply
        text = text.split("### The appliance bound")[0] + "### Reproduce" + text.split("### Reproduce", 1)[1]
    results_md_section(results_md, "cache-bench-" + backend, text)
    print(f"\nbench_report: wrote {results_md}")
    return 0 if all(ok for ok, _ in checks) else 1


def main(argv):
    if len(argv) == 4 and argv[1] == "new-signature":
        return new_signature(argv[2], argv[3])
    if len(argv) in (5, 6) and argv[1] == "summarize":
        return summarize(argv[2], argv[3], argv[4], argv[5] if len(argv) == 6 else "guestfs")
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
