#!/usr/bin/env python3
"""The linked clone's changes of the LVM/XFS benchmark (lvm-xfs-bench.sh runs this).

  lvm_xfs_inputs.py clone-changes TREE PERCENT OUTDIR
      Picks files of the real server's XFS root (TREE without /boot) whose sizes sum to PERCENT % of all
      the tree's file bytes (the data of the disk), and writes their new contents to OUTDIR/NNNN: each is
      the tree's file, same size, with 64 bytes in the middle replaced (an updated binary or library, as
      bench_inputs.py changes the template's clone). OUTDIR/changes.tsv has one line per file:
      "NNNN<TAB>size<TAB>old sha256<TAB>new sha256<TAB>/path". The pick is deterministic: candidates in the
      order of SHA-256 of their path; regular files of 4 KiB..2 MiB with one link whose path a guestfish
      argument carries as is. Prints a one-line summary.
"""

import hashlib
import os
import re
import stat
import sys

K_SEED = b"coldscan-bench-lvm-xfs-clone-1"
K_MIN, K_MAX = 4096, 2 << 20
K_SAFE = re.compile(r"^/[A-Za-z0-9._+/-]+$")


def all_files(tree):
    """(path inside the tree, size) of every regular file, with st_nlink; the walk does not follow links."""
    for directory, subdirs, files in os.walk(tree, followlinks=False):
        subdirs.sort()
        for name in sorted(files):
            full = os.path.join(directory, name)
            st = os.lstat(full)
            if stat.S_ISREG(st.st_mode):
                yield "/" + os.path.relpath(full, tree), st.st_size, st.st_nlink


def clone_changes(tree, percent, outdir):
    files = list(all_files(tree))
    total = sum(size for _, size, _ in files)
    target = total * float(percent) / 100
    candidates = [(path, size) for path, size, links in files
                  if not path.startswith("/boot/") and links == 1 and K_MIN <= size <= K_MAX
                  and K_SAFE.match(path)]
    candidates.sort(key=lambda c: hashlib.sha256(K_SEED + c[0].encode()).digest())
    os.makedirs(outdir, exist_ok=True)
    picked, picked_bytes = [], 0
    for path, size in candidates:
        if picked_bytes >= target * 0.99:
            break
        if picked_bytes + size > target * 1.01:
            continue
        with open(tree + path, "rb") as f:
            data = bytearray(f.read())
        old = hashlib.sha256(data).hexdigest()
        middle = size // 2
        data[middle:middle + 64] = hashlib.shake_256(K_SEED + path.encode()).digest(64)
        name = f"{len(picked) + 1:04d}"
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(data)
        picked.append((name, size, old, hashlib.sha256(data).hexdigest(), path))
        picked_bytes += size
    with open(os.path.join(outdir, "changes.tsv"), "w", encoding="utf-8") as f:
        for row in picked:
            f.write("\t".join(map(str, row)) + "\n")
    print(f"lvm_xfs_inputs: {len(picked)} files, {picked_bytes} bytes changed = "
          f"{100 * picked_bytes / total:.2f}% of the tree's {total} bytes ({len(files)} files)")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "clone-changes":
        clone_changes(*sys.argv[2:5])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
