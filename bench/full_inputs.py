#!/usr/bin/env python3
"""Builds the file trees behind run-all.sh's clone fleet and Windows-like NTFS image (make-fleet.sh and
make-ntfs.sh run this; the template itself comes from make-template.sh and bench_inputs.py).

  full_inputs.py fleet-trees IMAGES_DIR WORK COUNT "CHANGED ADDED DELETED" SAMPLE_CLONE
      For clones 1..COUNT of IMAGES_DIR/template.qcow2, writes what a package update leaves behind:
        WORK/fleet-NN/        the files to write into clone NN: CHANGED files of the template rewritten in
                              place (same path and size, 64 bytes at three places replaced: a new build of
                              the same binary) and ADDED host files the template does not hold, at their
                              own paths (a new package's files)
        WORK/fleet-NN.deleted DELETED paths of the template to remove (a package dropped)
        IMAGES_DIR/fleet-NN.manifest  the template's manifest with the changes applied
        IMAGES_DIR/fleet-NN.changes   one line per change: "changed|added|deleted|sample<TAB>/path"
      Clone SAMPLE_CLONE (0: none) also gets a dropped malware sample: clamav-testfiles' clam-upx.exe (a
      UPX-packed clam.exe, new content that only matches after unpacking) at K_FLEET_SAMPLE_PATH.
      Clones never share a change: every clone takes the next files in a fixed order, so clone k is the same
      whatever COUNT is, and no new content of one clone is in another (the conservative case for a verdict
      cache; clones that install the same update would share those contents). Original bytes come from
      IMAGES_DIR/template-tree when it is there, else from the host (checked against the manifest).
  full_inputs.py ntfs-tree TREE MANIFEST PLANTED BUDGET_MIB
      Writes a Windows-like tree of about BUDGET_MIB MiB into TREE: Windows/System32 (*.exe, *.dll),
      Windows/System32/drivers (*.sys), Windows/WinSxS, Program Files, ProgramData and Users/<name>/
      {Documents,Downloads,AppData}. A Debian host has no corpus of benign PE files, so the contents are this
      host's files under Windows names (ELF executables as .exe, shared libraries as .dll, kernel modules as
      .sys, Python and data under Program Files, package docs as documents), chosen deterministically as
      bench_inputs.py does. Planted: clam.exe, clam.zip and clam-upx.exe from clamav-testfiles under user
      folders, EICAR in the startup folder. MANIFEST: "sha256<TAB>size<TAB>/path" per file; PLANTED: the
      paths that must be detected, including the alternate data stream make-ntfs.sh adds
      (K_NTFS_STREAM, EICAR, which only a reader of NTFS streams can see).
"""

import hashlib
import os
import shutil
import sys

from bench_inputs import candidates, copy_with_digest, order_key, read_manifest

K_SEED = b"coldscan-bench-fleet-1"
K_FLEET_SAMPLE_PATH = "/var/tmp/.cache/update-agent"
K_NTFS_STREAM = "/Windows/System32/drivers/etc/hosts:payload"
K_EICAR = (b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*")
K_TESTFILES = os.environ.get("CLAMAV_TESTFILES", "/usr/share/clamav-testfiles")


def in_range(size):
    return 4096 <= size <= (8 << 20)


def write_manifest(path, entries):
    with open(path + ".tmp", "w", encoding="utf-8", errors="surrogateescape") as out:
        out.writelines(f"{digest}\t{size}\t{file_path}\n" for file_path, (digest, size) in entries.items())
    os.replace(path + ".tmp", path)


# --- the clone fleet --------------------------------------------------------------------------------------
def fleet_trees(images_dir, work, count, changed_count, added_count, deleted_count, sample_clone):
    template = read_manifest(os.path.join(images_dir, "template.manifest"))
    tree_root = os.path.join(images_dir, "template-tree")
    have_tree = os.path.isdir(tree_root)
    with open(os.path.join(images_dir, "template.manifest.unused"), encoding="utf-8",
              errors="surrogateescape") as f:
        unused = [line.rstrip("\n") for line in f]
    template_paths = {path for _, _, path in template}

    # One order per kind of change; every clone takes the next entries, so no two clones touch a file alike.
    change_pool = sorted((e for e in template if e[2].startswith("/usr/") and in_range(e[1])),
                         key=lambda e: order_key("fleet-changed:" + e[2]))
    delete_pool = sorted((e for e in template if e[2].startswith("/usr/")),
                         key=lambda e: order_key("fleet-deleted:" + e[2]))
    add_pool = sorted((p for p in unused if p not in template_paths), key=lambda p: order_key("fleet-added:" + p))
    used = set()
    change_at = delete_at = add_at = 0

    for index in range(1, count + 1):
        name = f"fleet-{index:02d}"
        tree = os.path.join(work, name)
        shutil.rmtree(tree, ignore_errors=True)
        os.makedirs(tree)
        entries = {path: (digest, size) for digest, size, path in template}
        changes = []

        changed = 0
        while changed < changed_count and change_at < len(change_pool):
            digest, size, path = change_pool[change_at]
            change_at += 1
            if path in used:
                continue
            source = tree_root + path if have_tree else path
            try:
                with open(source, "rb") as f:
                    data = bytearray(f.read())
                mode = os.stat(source).st_mode
            except OSError:
                continue
            if hashlib.sha256(data).hexdigest() != digest:  # the host's copy changed since: not the template's
                continue
            noise = hashlib.shake_256(K_SEED + f"{index}:".encode() + path.encode()).digest(192)
            for part, at in enumerate((size // 4, size // 2, 3 * size // 4)):
                data[at:at + 64] = noise[64 * part:64 * (part + 1)]
            destination = tree + path
            os.makedirs(os.path.dirname(destination), exist_ok=True)
            with open(destination, "wb") as f:
                f.write(data)
            os.chmod(destination, 0o755 if mode & 0o111 else 0o644)
            entries[path] = (hashlib.sha256(data).hexdigest(), len(data))
            changes.append(("changed", path))
            used.add(path)
            changed += 1

        deleted = []
        while len(deleted) < deleted_count and delete_at < len(delete_pool):
            path = delete_pool[delete_at][2]
            delete_at += 1
            if path in used:
                continue
            del entries[path]
            deleted.append(path)
            changes.append(("deleted", path))
            used.add(path)

        added = 0
        while added < added_count and add_at < len(add_pool):
            path = add_pool[add_at]
            add_at += 1
            try:
                if not in_range(os.lstat(path).st_size):
                    continue
                entries[path] = copy_with_digest(path, tree + path, os.stat(path).st_mode)
            except OSError:
                continue
            changes.append(("added", path))
            added += 1

        if index == sample_clone:
            destination = tree + K_FLEET_SAMPLE_PATH
            os.makedirs(os.path.dirname(destination), exist_ok=True)
            entries[K_FLEET_SAMPLE_PATH] = copy_with_digest(os.path.join(K_TESTFILES, "clam-upx.exe"),
                                                            destination, 0o755)
            changes.append(("sample", K_FLEET_SAMPLE_PATH))

        if changed < changed_count or added < added_count or len(deleted) < deleted_count:
            print(f"full_inputs: {name}: only {changed} changed, {added} added, {len(deleted)} deleted files "
                  f"available (asked {changed_count} {added_count} {deleted_count})", file=sys.stderr)
            return 1
        with open(os.path.join(work, name + ".deleted"), "w", encoding="utf-8", errors="surrogateescape") as f:
            f.writelines(f"{path}\n" for path in deleted)
        write_manifest(os.path.join(images_dir, name + ".manifest"), entries)
        with open(os.path.join(images_dir, name + ".changes"), "w", encoding="utf-8",
                  errors="surrogateescape") as f:
            f.writelines(f"{kind}\t{path}\n" for kind, path in changes)
    print(f"full_inputs: {count} clones, each {changed_count} files changed, {added_count} added, "
          f"{deleted_count} deleted; clam-upx.exe dropped in clone {sample_clone}")
    return 0


# --- the Windows-like NTFS tree ---------------------------------------------------------------------------
K_USERS = ("alice", "bob", "Public")
K_PLANTED = (
    ("clam.exe", "/Users/alice/Downloads/invoice_0423.exe"),
    ("clam.zip", "/Users/alice/Downloads/scan_0042.zip"),
    ("clam-upx.exe", "/Users/bob/AppData/Local/Temp/svch0st.exe"),
)
K_EICAR_PATH = "/ProgramData/Microsoft/Windows/Start Menu/Programs/StartUp/update.com"
# Shares of the budget: (kind, share). Whatever a kind leaves unused falls to "program".
K_SHARES = (("exe", 0.15), ("dll", 0.30), ("sys", 0.05), ("winsxs", 0.15), ("docs", 0.05), ("program", 0.30))
K_HOSTS = """# Copyright (c) 1993-2009 Microsoft Corp.
#
# This is a sample HOSTS file used by Microsoft TCP/IP for Windows.
#
# localhost name resolution is handled within DNS itself.
#\t127.0.0.1       localhost
#\t::1             localhost
"""


def is_elf(path):
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def kind_of(path):
    name = os.path.basename(path)
    if ".ko" in name:
        return "sys"
    if ".so" in name and is_elf(path):
        return "dll"
    if path.startswith(("/usr/bin/", "/usr/sbin/", "/usr/libexec/")) and is_elf(path):
        return "exe"
    return "program"


def windows_name(path, kind, taken, index):
    base = os.path.basename(path)
    if kind == "dll":
        stem = base.split(".so")[0]
        stem = stem[3:] if stem.startswith("lib") and len(stem) > 3 else stem
        name = f"{stem}.dll"
    elif kind == "exe":
        name = f"{base}.exe"
    elif kind == "sys":
        name = f"{base.split('.ko')[0]}.sys"
    else:
        name = base
    if kind in ("exe", "dll", "sys"):
        folder = {"exe": "/Windows/System32", "dll": "/Windows/System32", "sys": "/Windows/System32/drivers"}[kind]
    elif kind == "winsxs":
        stem = base.split(".so")[0]
        digest = hashlib.sha256(K_SEED + path.encode("utf-8", "surrogateescape")).hexdigest()[:16]
        folder = f"/Windows/WinSxS/amd64_microsoft-windows-{stem.lower()}_31bf3856ad364e35_10.0.19041.{index % 4000}_none_{digest}"
        name = f"{stem}.dll"
    else:  # "program": keep the package's own layout under Program Files
        rest = path.split("/", 3)[3] if path.count("/") >= 3 else base  # /usr/lib/<rest>
        top, _, inner = rest.partition("/")
        folder = os.path.dirname(f"/Program Files/{top.capitalize()}/{inner or top}")
        name = os.path.basename(inner or top)
    candidate = f"{folder}/{name}"
    number = 2
    while candidate.lower() in taken:  # Windows names are case-insensitive
        stem, dot, extension = name.rpartition(".")
        candidate = f"{folder}/{stem or name}-{number}{dot}{extension if stem else ''}"
        number += 1
    taken.add(candidate.lower())
    return candidate


def put(tree, entries, path, data, mode=0o644):
    destination = tree + path
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    with open(destination, "wb") as f:
        f.write(data)
    os.chmod(destination, mode)
    entries[path] = (hashlib.sha256(data).hexdigest(), len(data))


def ntfs_tree(tree, manifest, planted_out, budget_mib):
    budget = budget_mib << 20
    shutil.rmtree(tree, ignore_errors=True)
    os.makedirs(tree)
    entries = {}
    taken = set()

    # Planted samples and a few small Windows files.
    for source, path in K_PLANTED:
        with open(os.path.join(K_TESTFILES, source), "rb") as f:
            put(tree, entries, path, f.read())
        taken.add(path.lower())
    put(tree, entries, K_EICAR_PATH, K_EICAR)
    put(tree, entries, "/Windows/System32/drivers/etc/hosts", K_HOSTS.encode())
    for user in K_USERS:
        put(tree, entries, f"/Users/{user}/Desktop/desktop.ini",
            b"[.ShellClassInfo]\r\nLocalizedResourceName=@%SystemRoot%\\system32\\shell32.dll,-21769\r\n")
    used = sum(size for _, size in entries.values())

    # Host files by kind, in a fixed order.
    pools = {kind: [] for kind, _ in K_SHARES}
    for path, size, mode in candidates(32 << 20):
        kind = kind_of(path)
        if kind == "dll" and order_key("winsxs:" + path)[0] < 96:  # about a third of the libraries
            kind = "winsxs"
        pools[kind].append((path, size, mode))
    docs = []
    for directory, subdirs, files in os.walk("/usr/share/doc"):
        subdirs.sort()
        for name in files:
            path = os.path.join(directory, name)
            if os.path.isfile(path) and not os.path.islink(path) and 0 < os.path.getsize(path) <= (1 << 20):
                docs.append((path, os.path.getsize(path), 0o644))
    pools["docs"] = sorted(docs, key=lambda c: order_key(c[0]))

    remaining = budget - used
    shares = dict(K_SHARES)
    index = 0
    for kind, _ in K_SHARES:
        allowance = remaining * shares[kind] if kind != "program" else budget - used
        spent = 0
        for path, size, mode in pools[kind]:
            if spent + size > allowance or used + size > budget:
                continue
            if kind == "docs":
                user = K_USERS[index % 2]
                package = os.path.basename(os.path.dirname(path))
                base = os.path.basename(path)
                target = f"/Users/{user}/Documents/{package}-{base}{'' if '.' in base else '.txt'}"
                if target.lower() in taken:
                    continue
                taken.add(target.lower())
            else:
                target = windows_name(path, kind, taken, index)
            try:
                entries[target] = copy_with_digest(path, tree + target, mode)
            except OSError:
                continue
            spent += entries[target][1]
            used += entries[target][1]
            index += 1

    write_manifest(manifest, dict(sorted(entries.items())))
    with open(planted_out, "w", encoding="utf-8") as f:
        f.writelines(f"{path}\n" for path in sorted([p for _, p in K_PLANTED] + [K_EICAR_PATH, K_NTFS_STREAM]))
    print(f"full_inputs: NTFS tree: {len(entries)} files, {used / 2**20:.0f} MiB")
    return 0


def main(argv):
    if len(argv) == 7 and argv[1] == "fleet-trees":
        changed, added, deleted = (int(n) for n in argv[5].split())
        return fleet_trees(argv[2], argv[3], int(argv[4]), changed, added, deleted, int(argv[6]))
    if len(argv) == 6 and argv[1] == "ntfs-tree":
        return ntfs_tree(argv[2], argv[3], argv[4], int(argv[5]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
