#!/usr/bin/env python3
"""Builds the file trees behind the verdict-cache benchmark's disk images (make-template.sh runs this).

  bench_inputs.py template-tree TREE MANIFEST BUDGET_MIB MAX_FILE_MIB
      Copies real files from this host (/usr/bin, /usr/sbin, /usr/libexec, /usr/lib; regular, non-empty, at
      most MAX_FILE_MIB) into TREE at their own paths until BUDGET_MIB is reached. The selection is
      deterministic on a given host: candidates are taken in the order of SHA-256 of their path, which
      mixes every kind of file (ELF executables and libraries, kernel modules, Python, data) the way a
      system's own mix is. Candidates that did not fit are listed in MANIFEST.unused, for the clone.
  bench_inputs.py clone-tree TEMPLATE_MANIFEST TREE CHANGES CLONE_MANIFEST
      Writes the clone's changes into TREE: CHANGED files of the template, same path and size, 64 bytes
      in the middle replaced (an updated binary), and ADDED host files the template does not hold, at
      their own paths (an installed package); CHANGES is "CHANGED ADDED", e.g. "20 20". CLONE_MANIFEST is
      the template's manifest with the changes applied.
  bench_inputs.py images-json OUTDIR
      Writes OUTDIR/images.json: files, bytes and distinct contents of template.manifest and
      clone.manifest, the images' virtual and file sizes and build times; prints a summary.

A manifest is one line per file in the image: "sha256<TAB>size<TAB>/path". make-template.sh appends the
planted samples and the clone's extra files itself.
"""

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys

K_ROOTS = ("/usr/bin", "/usr/sbin", "/usr/libexec", "/usr/lib")
K_SEED = b"coldscan-bench-template-1"


def order_key(path):
    return hashlib.sha256(K_SEED + path.encode("utf-8", "surrogateescape")).digest()


def candidates(max_bytes):
    """Regular, non-empty, readable files under K_ROOTS, at most max_bytes, in selection order."""
    found = []
    for root in K_ROOTS:
        for directory, subdirs, files in os.walk(root, followlinks=False):
            subdirs.sort()
            for name in files:
                path = os.path.join(directory, name)
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode) and 0 < st.st_size <= max_bytes and os.access(path, os.R_OK):
                    found.append((path, st.st_size, st.st_mode))
    found.sort(key=lambda c: order_key(c[0]))
    return found


def copy_with_digest(source, destination, mode):
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    with open(source, "rb") as src, open(destination, "wb") as dst:
        while chunk := src.read(1 << 20):
            digest.update(chunk)
            dst.write(chunk)
            size += len(chunk)
    os.chmod(destination, 0o755 if mode & 0o111 else 0o644)
    return digest.hexdigest(), size


def template_tree(tree, manifest, budget_mib, max_file_mib):
    budget = budget_mib << 20
    total = 0
    selected = []
    unused = []
    for path, size, mode in candidates(max_file_mib << 20):
        if total + size <= budget:
            selected.append((path, mode))
            total += size
        else:
            unused.append(path)
    with open(manifest, "w", encoding="utf-8", errors="surrogateescape") as out:
        for path, mode in selected:
            try:
                digest, size = copy_with_digest(path, tree + path, mode)
            except OSError as e:  # vanished or unreadable since the walk: leave it out
                print(f"bench_inputs: skipping {path}: {e}", file=sys.stderr)
                continue
            out.write(f"{digest}\t{size}\t{path}\n")
    with open(manifest + ".unused", "w", encoding="utf-8", errors="surrogateescape") as out:
        out.writelines(f"{path}\n" for path in unused)


def read_manifest(path):
    entries = []
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            digest, size, file_path = line.rstrip("\n").split("\t", 2)
            entries.append((digest, int(size), file_path))
    return entries


def clone_tree(template_manifest, tree, changed_count, added_count, clone_manifest):
    """Writes the changes into tree and the clone's manifest (the template's, changes applied)."""
    def in_range(size):
        return 4096 <= size <= (8 << 20)

    template = read_manifest(template_manifest)
    by_path = {path: (digest, size) for digest, size, path in template}
    changed = 0
    for digest, size, path in sorted(template, key=lambda e: order_key("changed:" + e[2])):
        if changed == changed_count:
            break
        if not (path.startswith("/usr/") and in_range(size)):
            continue
        try:
            with open(path, "rb") as f:
                data = bytearray(f.read())
            mode = os.stat(path).st_mode
        except OSError:
            continue
        if hashlib.sha256(data).hexdigest() != digest:  # changed on the host since: not the template's bytes
            continue
        middle = size // 2
        data[middle:middle + 64] = hashlib.shake_256(K_SEED + b"changed:" + path.encode()).digest(64)
        destination = tree + path
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        with open(destination, "wb") as f:
            f.write(data)
        os.chmod(destination, 0o755 if mode & 0o111 else 0o644)
        by_path[path] = (hashlib.sha256(data).hexdigest(), len(data))
        changed += 1

    with open(template_manifest + ".unused", encoding="utf-8", errors="surrogateescape") as f:
        unused = [line.rstrip("\n") for line in f]
    added = 0
    for path in sorted(unused, key=lambda p: order_key("added:" + p)):
        if added == added_count:
            break
        try:
            if path in by_path or not in_range(os.lstat(path).st_size):
                continue
            by_path[path] = copy_with_digest(path, tree + path, os.stat(path).st_mode)
        except OSError:
            continue
        added += 1

    with open(clone_manifest, "w", encoding="utf-8", errors="surrogateescape") as out:
        out.writelines(f"{digest}\t{size}\t{path}\n" for path, (digest, size) in by_path.items())
    print(f"bench_inputs: clone changes: {changed} changed files, {added} added files")


def summarize(manifest):
    entries = read_manifest(manifest)
    return {"files": len(entries), "bytes": sum(e[1] for e in entries),
            "distinct_contents": len({e[0] for e in entries})}


def images_json(out_dir):
    images = {}
    for name in ("template", "clone"):
        info = json.loads(subprocess.run(
            ["qemu-img", "info", "--output=json", os.path.join(out_dir, name + ".qcow2")],
            check=True, capture_output=True, text=True).stdout)
        image = summarize(os.path.join(out_dir, name + ".manifest"))
        with open(os.path.join(out_dir, f".{name}.seconds"), encoding="ascii") as f:
            build_seconds = float(f.read())
        image.update({"virtual_size": info["virtual-size"], "file_size": info["actual-size"],
                      "build_seconds": build_seconds})
        images[name] = image
        print(f"make-template: {name}.qcow2: {image['files']} files, {image['bytes'] / 2**20:.0f} MiB, "
              f"{image['distinct_contents']} distinct contents; qcow2 file {image['file_size'] / 2**20:.0f} MiB, "
              f"virtual {image['virtual_size'] / 2**20:.0f} MiB; built in {build_seconds:.0f} s")
    with open(os.path.join(out_dir, "images.json.tmp"), "w", encoding="ascii") as f:
        json.dump(images, f, indent=2)
    os.replace(os.path.join(out_dir, "images.json.tmp"), os.path.join(out_dir, "images.json"))


def main(argv):
    if len(argv) == 6 and argv[1] == "template-tree":
        template_tree(argv[2], argv[3], int(argv[4]), int(argv[5]))
    elif len(argv) == 6 and argv[1] == "clone-tree":
        changed, added = (int(n) for n in argv[4].split())
        clone_tree(argv[2], argv[3], changed, added, argv[5])
    elif len(argv) == 3 and argv[1] == "images-json":
        images_json(argv[2])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
