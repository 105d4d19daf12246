#!/usr/bin/env bash
# lvm-layouts.sh COLDSCAN FIXTURES WORKDIR
#
# The volume layouts VMs really have (tests/fixtures/make-lvm-layouts.sh, in FIXTURES/lvm-layouts/), scanned by
# the direct path (--backend direct), by the appliance (--backend guestfs) and, where the direct path hands
# volumes over, by both (--backend auto); every run --no-cache with the test signatures. Per filesystem device,
# the runs must agree on the set of (path, size, sha256) of the inventory, on the detections (device, path,
# signature) and on the status; and the ground truth that does not come from coldscan must hold: the files of
# the archives the fixture put there (*.manifest), the appliance's own sha256sum of the XFS edge cases, and the
# planted EICAR files (expected-eicar.tsv), each detected and nothing else.
#   ubuntu-lvm, striped    read by the direct path alone (LVM2 linear, striped, three segments), equal to the
#                          appliance
#   rhel-lvm, xfs-edge     XFS (on LVM; bare, with a 50,000-entry folder, fragmented, sparse, preallocated and
#                          reflinked files): read by the direct path alone, equal to the appliance
#   thin, snapshot         the thin volume and the old-style snapshot: failed under --backend direct with a
#                          reason (named as libguestfs names them: /dev/thinvg/thindata, /dev/snapvg/snap);
#                          --backend auto reads them through the appliance, equal to --backend guestfs (the
#                          same status and exit, nothing left failed); the snapshot's origin is read directly
#   spanning-disk1/2       a VG over two disks, each scanned alone: the LV is failed under --backend direct with
#                          a reason; auto (disk 1) hands it to the appliance, which must not crash; never clean.
#                          Both disks as one VM (--one-vm, when this coldscan has it): the LV read whole, by the
#                          direct path alone, equal to the appliance
#   luks                   a LUKS2 partition and LUKS2 on an LV: failed, type crypto_LUKS, "encrypted", nothing
#                          read, under --backend direct; through the appliance and auto: never clean, said to be
#                          encrypted
# Prints the per-device statuses of every run and a table of wall times (direct vs appliance per image).
# Appliance runs: 11 launches (23 to 46 s each under TCG on 2 cores, 80 s when busy): 373 s for the whole test.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/script-start.sh
source "$here/script-start.sh"
cd "$work"
layouts=$(readlink -f "$fixtures/lvm-layouts")
for needed in ubuntu-lvm striped spanning-disk1 spanning-disk2 thin luks snapshot rhel-lvm xfs-edge; do
    [[ -f $layouts/$needed.qcow2 ]] || {
        echo "FAIL: $layouts/$needed.qcow2 is missing (the e2e.lvm-layouts.fixtures test builds it)" >&2
        exit 1
    }
done
sigs=(--clamav-db "$fixtures/sigs/clamav" --yara-rules "$fixtures/sigs/yara")

scan() { # IMAGE BACKEND [TARGET...]: IMAGE.BACKEND.{json,jsonl,out,err,exit,seconds}; TARGET: IMAGE.qcow2
    local image=$1 backend=$2 name="$1.$2" start
    shift 2
    local targets=("$@")
    ((${#targets[@]})) || targets=("$layouts/$image.qcow2")
    local status _
    for _ in 1 2 3; do
        start=$EPOCHREALTIME
        set +e
        "$coldscan" scan --backend "$backend" --no-cache "${sigs[@]}" --no-progress --report "$name.json" \
            --inventory "$name.jsonl" "${targets[@]}" </dev/null >"$name.out" 2>"$name.err"
        status=$?
        set -e
        # 126/127: the executable could not be started (e.g. a build replacing it right now): try again.
        ((status == 126 || status == 127)) || break
        sleep 10
    done
    echo "$status" >"$name.exit"
    awk -v s="$start" -v e="$EPOCHREALTIME" 'BEGIN { printf "%.1f\n", e - s }' >"$name.seconds"
    echo "--- $image --backend $backend: exit $(cat "$name.exit"), $(cat "$name.seconds") s"
}

for image in ubuntu-lvm striped rhel-lvm xfs-edge thin snapshot spanning-disk1 spanning-disk2 luks; do
    scan "$image" direct
done
for image in ubuntu-lvm striped rhel-lvm xfs-edge thin snapshot luks; do
    scan "$image" guestfs
done
for image in thin snapshot spanning-disk1 luks; do
    scan "$image" auto
done
# Both disks of the spanning VG as one VM (--one-vm, where this coldscan has it): the LV is read whole.
if "$coldscan" scan --help 2>/dev/null | grep -q -- --one-vm; then
    for backend in direct guestfs; do
        scan spanning "$backend" --one-vm "$layouts/spanning-disk1.qcow2" "$layouts/spanning-disk2.qcow2"
    done
else
    echo "--- spanning --one-vm: not checked, this coldscan has no --one-vm"
fi

python3 - "$layouts" <<'PY'
import json, os, sys
layouts = sys.argv[1]
failures = []

def check(ok, what):
    if not ok:
        failures.append(what)
    return ok

def load(image, backend):
    name = f"{image}.{backend}"
    run = {"exit": int(open(name + ".exit").read()), "seconds": float(open(name + ".seconds").read()),
           "report": None, "files": {}, "detections": {}, "fs": {}, "err": open(name + ".err").read()}
    if not os.path.exists(name + ".json"):
        return run
    run["report"] = json.load(open(name + ".json"))
    for t in run["report"]["targets"]:
        for fs in t["filesystems"]:
            run["fs"][fs["device"]] = fs
    for line in open(name + ".jsonl"):
        e = json.loads(line)
        run["files"].setdefault(e["device"], {})[e["path"]] = e
    for d in run["report"]["detections"]:
        run["detections"].setdefault(d["device"], set()).add((d["path"], d["signature"]))
    return run

runs = {}
all_images = ["ubuntu-lvm", "striped", "rhel-lvm", "xfs-edge", "thin", "snapshot", "spanning-disk1",
              "spanning-disk2", "spanning", "luks"]
for image in all_images:
    for backend in ["direct", "guestfs", "auto"]:
        if os.path.exists(f"{image}.{backend}.exit"):
            runs[(image, backend)] = load(image, backend)
# A run without a report is a failure here and is left out of every check below (they skip missing runs).
seconds = {key: run["seconds"] for key, run in runs.items()}
for (image, backend), run in list(runs.items()):
    if run["report"] is None or run["exit"] not in (0, 1, 2):
        failures.append(f"{image} --backend {backend}: exit {run['exit']}, "
                        f"{'a' if run['report'] else 'no'} report: {run['err'][-800:]}")
        del runs[(image, backend)]

def get(image, backend):
    return runs.get((image, backend), {"exit": None, "report": {"status": None, "detections": [], "targets": [],
                                                                 "errors": [], "counts": {}},
                                       "files": {}, "detections": {}, "fs": {}, "err": "", "missing": True})

def manifest(name, prefix=""):
    out = {}
    for line in open(os.path.join(layouts, name + ".manifest")):
        path, size, sha = line.rstrip("\n").split("\t")
        out[prefix + path] = (int(size), sha)
    return out

tree, boot, many = manifest("tree"), manifest("boot"), manifest("many")
eicar = open(os.path.join(layouts, ".eicar"), "rb").read()
import hashlib
eicar_entry = (len(eicar), hashlib.sha256(eicar).hexdigest())
expected_eicar = {}
for line in open(os.path.join(layouts, "expected-eicar.tsv")):
    if line.startswith("#"):
        continue
    image, device, path = line.rstrip("\n").split("\t")
    expected_eicar.setdefault((image.removesuffix(".qcow2"), device), set()).add(path)
edge_sha = {}
for line in open(os.path.join(layouts, "xfs-edge.sha256")):
    sha, path = line.rstrip("\n").split("  ", 1)
    edge_sha[path] = sha

def triples(run, device):
    return {(p, e["size"], e["sha256"]) for p, e in run["files"].get(device, {}).items()}

def where(image, backend, device=""):
    return f"{image} --backend {backend}" + (f" {device}" if device else "")

# --- every run ----------------------------------------------------------------------------------------------
for (image, backend), run in runs.items():
    check("Segmentation fault" not in run["err"] and "Aborted" not in run["err"],
          f"{where(image, backend)}: crashed: {run['err'][-800:]}")
    # A file is in the inventory of a scanned filesystem only; and a CLEAN file was read whole.
    for device, files in run["files"].items():
        fs = run["fs"].get(device)
        check(fs is not None and fs["status"] == "scanned",
              f"{where(image, backend, device)}: {len(files)} inventory lines, but the filesystem is "
              f"{fs and fs['status']}")
    for device, fs in run["fs"].items():
        if fs["status"] != "scanned":
            check(bool(fs.get("reason")), f"{where(image, backend, device)}: {fs['status']} without a reason")
    # The detections are exactly the planted EICAR files of the filesystems read.
    for device, fs in run["fs"].items():
        if fs["status"] != "scanned":
            continue
        key = (image.split("-disk")[0], device)
        want = expected_eicar.get(key, set())
        got = {p for p, _ in run["detections"].get(device, set())}
        check(got == want, f"{where(image, backend, device)}: detections {sorted(got)}, want {sorted(want)}")
    for device in run["detections"]:
        check(run["fs"].get(device, {}).get("status") == "scanned",
              f"{where(image, backend, device)}: a detection on a filesystem that is not scanned")

# --- direct vs appliance, device by device -------------------------------------------------------------------
def compare(image, a, b, devices=None):
    ra, rb = runs.get((image, a)), runs.get((image, b))
    if not ra or not rb or not ra["report"] or not rb["report"]:
        return
    scanned_a = {d for d, fs in ra["fs"].items() if fs["status"] == "scanned"}
    scanned_b = {d for d, fs in rb["fs"].items() if fs["status"] == "scanned"}
    if devices is None:
        check(scanned_a == scanned_b, f"{image}: scanned filesystems differ: --backend {a} {sorted(scanned_a)}, "
                                      f"--backend {b} {sorted(scanned_b)}")
        devices = scanned_a | scanned_b
    for device in sorted(devices):
        fa, fb = ra["fs"].get(device), rb["fs"].get(device)
        if not check(fa is not None and fb is not None,
                     f"{image} {device}: --backend {a} {'lists' if fa else 'does not list'} it, --backend {b} "
                     f"{'lists' if fb else 'does not list'} it"):
            continue
        check(fa["status"] == fb["status"], f"{image} {device}: status {fa['status']} (--backend {a}, "
              f"{fa.get('reason', '')}) vs {fb['status']} (--backend {b}, {fb.get('reason', '')})")
        check(fa["type"] == fb["type"], f"{image} {device}: type {fa['type']} (--backend {a}) vs {fb['type']}")
        ta, tb = triples(ra, device), triples(rb, device)
        if not check(ta == tb, f"{image} {device}: (path, size, sha256) differ: {len(ta)} vs {len(tb)} files; "
                               f"only --backend {a}: {sorted(ta - tb)[:5]}; only --backend {b}: {sorted(tb - ta)[:5]}"):
            pass
        da, db = ra["detections"].get(device, set()), rb["detections"].get(device, set())
        check(da == db, f"{image} {device}: detections {sorted(da)} (--backend {a}) vs {sorted(db)} (--backend {b})")
        oa = {p: e["outcome"] for p, e in ra["files"].get(device, {}).items()}
        ob = {p: e["outcome"] for p, e in rb["files"].get(device, {}).items()}
        diff = {p: (oa.get(p), ob.get(p)) for p in set(oa) | set(ob) if oa.get(p) != ob.get(p)}
        check(not diff, f"{image} {device}: outcomes differ: {dict(list(diff.items())[:5])}")

def expect_fs(image, backend, device, status, reader=None, fstype=None):
    run = runs.get((image, backend))
    fs = run and run["fs"].get(device)
    if not check(fs is not None, f"{where(image, backend, device)}: not in the report "
                                 f"(devices: {sorted(run['fs']) if run else None})"):
        return None
    check(fs["status"] == status, f"{where(image, backend, device)}: status {fs['status']} "
                                  f"({fs.get('reason', '')}), want {status}")
    if reader:
        check(fs.get("reader") == reader, f"{where(image, backend, device)}: reader {fs.get('reader')}, want {reader}")
    if fstype:
        check(fs["type"] == fstype, f"{where(image, backend, device)}: type {fs['type']}, want {fstype}")
    return fs

def expect_files(image, backend, device, want):
    run = runs.get((image, backend))
    got = {p: (e["size"], e["sha256"]) for p, e in run["files"].get(device, {}).items()} if run else {}
    missing = sorted(set(want) - set(got))
    wrong = sorted(p for p in set(want) & set(got) if want[p] != got[p])
    extra = sorted(set(got) - set(want))
    check(not missing and not wrong and not extra,
          f"{where(image, backend, device)}: against the fixture's manifest: {len(missing)} missing "
          f"{missing[:3]}, {len(wrong)} with other size/sha256 {wrong[:3]}, {len(extra)} extra {extra[:3]}")

def with_eicar(files, *paths):
    out = dict(files)
    for p in paths:
        out[p] = eicar_entry
    return out

# ubuntu-lvm, striped: the direct path alone, equal to the appliance.
for backend in ["direct", "guestfs"]:
    reader = "direct" if backend == "direct" else "appliance"
    expect_fs("ubuntu-lvm", backend, "/dev/sda1", "scanned", reader, "ext4")
    expect_fs("ubuntu-lvm", backend, "/dev/ubuntu-vg/ubuntu-lv", "scanned", reader, "ext4")
    expect_files("ubuntu-lvm", backend, "/dev/sda1", with_eicar(boot, "/eicar.com"))
    expect_files("ubuntu-lvm", backend, "/dev/ubuntu-vg/ubuntu-lv", with_eicar(tree, "/srv/eicar.com"))
    for lv in ["/dev/stripevg/data", "/dev/stripevg/multi"]:
        expect_fs("striped", backend, lv, "scanned", reader, "ext4")
        expect_files("striped", backend, lv, with_eicar(tree, "/srv/eicar.com"))
expect_fs("ubuntu-lvm", "direct", "/dev/sda2", "skipped", fstype="LVM2_member")
compare("ubuntu-lvm", "direct", "guestfs")
compare("striped", "direct", "guestfs")

# rhel-lvm, xfs-edge: XFS, read by the direct path alone (once its XFS reader is in), equal to the appliance.
for backend in ["direct", "guestfs"]:
    reader = "direct" if backend == "direct" else "appliance"
    expect_fs("rhel-lvm", backend, "/dev/sda1", "scanned", reader, "ext4")
    expect_fs("rhel-lvm", backend, "/dev/rhel/root", "scanned", reader, "xfs")
    expect_fs("rhel-lvm", backend, "/dev/rhel/swap", "skipped", fstype="swap")
    expect_files("rhel-lvm", backend, "/dev/sda1", with_eicar(boot, "/eicar.com"))
    expect_files("rhel-lvm", backend, "/dev/rhel/root", with_eicar(tree, "/srv/eicar.com"))
    expect_fs("xfs-edge", backend, "/dev/sda1", "scanned", reader, "xfs")
    run = get("xfs-edge", backend)
    if run.get("missing"):
        continue
    files = run["files"].get("/dev/sda1", {})
    for path, sha in edge_sha.items():
        e = files.get(path)
        check(e is not None and e["sha256"] == sha and e["outcome"] == "CLEAN",
              f"{where('xfs-edge', backend)} {path}: {e}, want sha256 {sha} (the appliance's sha256sum)")
    names = [p for p in files if p.startswith("/many/")]
    check(len(names) == 50000, f"{where('xfs-edge', backend)}: /many holds {len(names)} names, want 50000")
    wrong = [p for p, (size, sha) in many.items() if (files.get(p, {}).get("size"), files.get(p, {}).get("sha256")) != (size, sha)]
    check(not wrong, f"{where('xfs-edge', backend)}: {len(wrong)} of many.tar's files differ, e.g. {wrong[:3]}")
    check(not any(p.startswith("/edge/link-to-eicar") for p in files), f"{where('xfs-edge', backend)}: the symlink is inventoried")
    counts = run["report"]["counts"]
    check(counts["hardlinks"] == 45001, f"{where('xfs-edge', backend)}: {counts['hardlinks']} hard links, want 45001")
compare("rhel-lvm", "direct", "guestfs")
compare("xfs-edge", "direct", "guestfs")

# thin, snapshot: not read directly (failed, a reason); auto reads them through the appliance, equal to guestfs.
fs = expect_fs("thin", "direct", "/dev/thinvg/thindata", "failed")
if fs:
    check("thin" in fs.get("reason", ""), f"thin --backend direct: the reason does not say thin: {fs.get('reason')}")
fs = expect_fs("snapshot", "direct", "/dev/snapvg/snap", "failed")
if fs:
    check("snapshot" in fs.get("reason", ""), f"snapshot --backend direct: the reason does not say snapshot: {fs.get('reason')}")
expect_fs("snapshot", "direct", "/dev/snapvg/origin", "scanned", "direct", "ext4")
for image in ["thin", "snapshot"]:
    run = get(image, "direct")
    check(run["exit"] == 2 or run["report"]["detections"],
          f"{image} --backend direct: exit {run['exit']} with a volume not read")
    check(run["report"]["status"] != "completed",
          f"{image} --backend direct: status completed with a volume not read")
for backend in ["guestfs", "auto"]:
    expect_fs("thin", backend, "/dev/thinvg/thindata", "scanned", "appliance", "ext4")
    expect_files("thin", backend, "/dev/thinvg/thindata", with_eicar(tree, "/srv/eicar.com"))
    expect_fs("snapshot", backend, "/dev/snapvg/snap", "scanned", "appliance", "ext4")
    expect_fs("snapshot", backend, "/dev/snapvg/origin", "scanned", "direct" if backend == "auto" else "appliance", "ext4")
    snap = get("snapshot", backend)["files"]
    origin_files, snap_files = snap.get("/dev/snapvg/origin", {}), snap.get("/dev/snapvg/snap", {})
    check("/srv/new.txt" in origin_files and "/srv/new.txt" not in snap_files,
          f"snapshot --backend {backend}: /srv/new.txt (made after the snapshot) in origin "
          f"{'/srv/new.txt' in origin_files}, in snap {'/srv/new.txt' in snap_files}")
    check(origin_files.get("/srv/changed.txt", {}).get("sha256") != snap_files.get("/srv/changed.txt", {}).get("sha256"),
          f"snapshot --backend {backend}: /srv/changed.txt is the same in origin and snapshot")
for image in ["thin", "snapshot"]:
    auto, guestfs = get(image, "auto"), get(image, "guestfs")
    if auto.get("missing") or guestfs.get("missing"):
        continue
    check(auto["report"]["status"] == guestfs["report"]["status"] and auto["exit"] == guestfs["exit"],
          f"{image}: --backend auto gives {auto['report']['status']} (exit {auto['exit']}), --backend guestfs "
          f"{guestfs['report']['status']} (exit {guestfs['exit']})")
    failed = {d: fs.get("reason") for d, fs in auto["fs"].items() if fs["status"] == "failed"}
    check(not failed, f"{image} --backend auto: failed after the hand-over to the appliance: {failed}")
compare("thin", "auto", "guestfs")
compare("snapshot", "auto", "guestfs")
compare("snapshot", "direct", "guestfs", {"/dev/snapvg/origin"})

# spanning: each disk alone is a VG with a missing PV: never clean, a reason; the appliance does not crash.
for image in ["spanning-disk1", "spanning-disk2"]:
    fs = expect_fs(image, "direct", "/dev/spanvg/data", "failed")
    run = get(image, "direct")
    check(run["exit"] == 2 and not run["files"], f"{image} --backend direct: exit {run['exit']}, "
                                                 f"{sum(len(f) for f in run['files'].values())} files")
for (image, backend), run in runs.items():
    if image not in ("spanning-disk1", "spanning-disk2") or backend == "direct":
        continue
    lv_files = run["files"].get("/dev/spanvg/data", {})
    check(run["exit"] == 2 and not lv_files, f"{image} --backend {backend}: exit {run['exit']}, {len(lv_files)} files of the LV")
    fs = run["fs"].get("/dev/spanvg/data")
    check(fs is None or fs["status"] != "scanned", f"{image} --backend {backend}: the LV is {fs and fs['status']}")

# spanning as one VM (--one-vm): the LV over both disks read whole, by the direct path alone.
if ("spanning", "direct") in seconds:
    for backend in ["direct", "guestfs"]:
        expect_fs("spanning", backend, "/dev/spanvg/data", "scanned", "direct" if backend == "direct" else "appliance", "ext4")
        expect_files("spanning", backend, "/dev/spanvg/data", with_eicar(tree, "/srv/eicar.com"))
    compare("spanning", "direct", "guestfs")

# luks: encrypted, never read, never clean.
for device in ["/dev/sda1", "/dev/luksvg/secret"]:
    fs = expect_fs("luks", "direct", device, "failed", fstype="crypto_LUKS")
    if fs:
        check("encrypted" in fs.get("reason", "").lower(), f"luks --backend direct {device}: reason {fs.get('reason')}")
for backend in ["direct", "guestfs", "auto"]:
    run = get("luks", backend)
    if run.get("missing"):
        continue
    check(run["exit"] == 2 and not run["files"] and run["report"]["status"] != "completed",
          f"luks --backend {backend}: exit {run['exit']}, status {run['report']['status']}, "
          f"{sum(len(f) for f in run['files'].values())} files")
    said = json.dumps(run["report"]["targets"]) + json.dumps(run["report"]["errors"])
    check("crypto_LUKS" in said or "encrypted" in said.lower(),
          f"luks --backend {backend}: the report never says the disk is encrypted: "
          f"filesystems {[(d, fs['type'], fs['status']) for d, fs in run['fs'].items()]}, errors {run['report']['errors']}")

# --- what each run said, and the timings -------------------------------------------------------------------------
print("\nper device: status (reader, files) per run")
for (image, backend), run in sorted(runs.items()):
    if not run["report"]:
        continue
    print(f"  {image} --backend {backend}: exit {run['exit']}, {run['report']['status']}")
    for device, fs in run["fs"].items():
        detail = f"{fs.get('files', 0)} files" if fs["status"] == "scanned" else fs.get("reason", "")
        print(f"    {device:32} {fs['type']:12} {fs['status']:8} {fs.get('reader', ''):9} {detail}")
    for e in run["report"]["errors"]:
        if e["outcome"] in ("NO_FILESYSTEM", "TARGET_FAILED"):
            print(f"    {e['outcome']}: {e['reason']}")

print("\nwall time (s)        direct  guestfs     auto")
for image in all_images:
    cell = lambda b: f"{seconds[(image, b)]:8.1f}" if (image, b) in seconds else "       -"
    print(f"  {image:18} {cell('direct')} {cell('guestfs')} {cell('auto')}")

if failures:
    print(f"\nFAIL: {len(failures)} checks failed:\n  " + "\n  ".join(failures), file=sys.stderr)
    sys.exit(1)
print("\nok: every layout as expected")
PY
