"""Signature updates for sig-update-bench.sh, generated from SHAKE-256 of a seed (the same on every host),
on top of the load set of make-load-signatures.sh:

    python3 sig_update_inputs.py KIND LOAD_CLAMAV_DIR LOAD_PLAIN_DIR OUT_CLAMAV_DIR OUT_YARA_DIR

KIND:
  daily      a realistic daily update: 1,000 hash lines (.hdb MD5 and .hsb SHA-256, sizes log-uniform
             1 KiB - 8 MiB as malware samples are), 50 body and logical lines whose targets follow what
             ClamAV's daily names (MIX below: mostly Windows PE, then documents, PDF and ELF), 2 YARA rule
             files, and 300 lines of the load set's .ndb removed (its container rebuilt by sigtool from the
             plain files, LOAD_PLAIN_DIR)
  generic    the daily update, with 3 of its 50 pattern lines for any file type (target 0, text, HTML):
             such a line can match in every layer, so every content is scanned for the added lines
  hash-only  1,000 hash lines alone
OUT_CLAMAV_DIR receives a copy of the load set's container (rebuilt for daily and generic) plus the update's
plain files; OUT_YARA_DIR receives the update's rule files (the caller copies the base rules first).
No generated pattern is plausible in a real binary (the same rule as the load set's), so the update finds
nothing and every verdict can stand: the figures measure what it costs to prove that."""

import math
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shake_stream  # noqa: E402

SEED = b"coldscan-sig-update-1"
# Target types of the 50 pattern lines of a daily update (libclamav's numbers: 1 PE, 2 OLE2, 6 ELF, 10 PDF).
MIX = [1] * 38 + [2] * 6 + [10] * 3 + [6] * 3
GENERIC = [0, 7, 3]  # generic, ASCII text, HTML


def Stream(domain):
    return shake_stream.Stream(SEED, domain)


PRINTABLE = set(range(0x20, 0x7f)) | {0x09, 0x0a, 0x0d}


def pattern(stream):
    while True:
        candidate = stream.take(16 + stream.take(1)[0] % 25)
        head = candidate[:3]
        plausible = any(b in (0, 0xff) for b in head) or all(b in PRINTABLE for b in head) or \
            sum(b in PRINTABLE | {0, 0xff} for b in candidate) * 2 > len(candidate)
        if not plausible:
            return candidate.hex()


def write(path, lines):
    with open(path, "w", encoding="ascii") as f:
        f.writelines(lines)


def hash_lines(out):
    stream = Stream("hash")
    size = lambda: int(math.exp(math.log(1024) + stream.uniform() * (math.log(8 << 20) - math.log(1024))))
    write(os.path.join(out, "daily-update.hdb"),
          (f"{stream.take(16).hex()}:{size()}:Bench.Update.Md5-{i:04d}\n" for i in range(900)))
    write(os.path.join(out, "daily-update.hsb"),
          (f"{stream.take(32).hex()}:{size()}:Bench.Update.Sha256-{i:04d}\n" for i in range(100)))


def pattern_lines(out, targets):
    stream = Stream("pattern")
    body, logical = [], []
    for i, target in enumerate(targets):
        if i % 2 == 0:
            body.append(f"Bench.Update.Body-{i:02d}:{target}:*:{pattern(stream)}\n")
        else:
            logical.append(f"Bench.Update.Logical-{i:02d};Engine:51-255,Target:{target};0&1;"
                           f"{pattern(stream)};{pattern(stream)}\n")
    write(os.path.join(out, "daily-update.ndb"), body)
    write(os.path.join(out, "daily-update.ldb"), logical)


def yara_rules(out):
    stream = Stream("yara")
    for i in range(2):
        hexes = " ".join(pattern(stream)[j:j + 2] for j in range(0, 32, 2))
        write(os.path.join(out, f"update-{i}.yar"),
              [f"rule bench_update_{i} {{ strings: $a = {{ {hexes} }} $b = \"{stream.take(12).hex()}\" "
               f"condition: $a or $b }}\n"])


def rebuild_without(plain_dir, out_path, removed):
    """The load set's container built again by sigtool (it lists each member's digest in the container),
    without `removed` lines of its .ndb, spread evenly."""
    work = out_path + ".work"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(plain_dir, work)
    ndb = os.path.join(work, "bench-load.ndb")
    lines = open(ndb, "rb").read().split(b"\n")
    stride = len(lines) // removed
    kept = [line for i, line in enumerate(lines) if i % stride or i // stride >= removed]
    open(ndb, "wb").write(b"\n".join(kept))
    for stale in ("bench-load.cud", "bench-load.info", "build.log"):
        if os.path.exists(os.path.join(work, stale)):
            os.remove(os.path.join(work, stale))
    subprocess.run(["sigtool", "--build=bench-load.cud", "--unsigned"], cwd=work, input=b"coldscan-bench\n",
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.replace(os.path.join(work, "bench-load.cud"), out_path)
    shutil.rmtree(work)


def main():
    kind, load_dir, plain_dir, out_clamav, out_yara = sys.argv[1:]
    os.makedirs(out_clamav, exist_ok=True)
    os.makedirs(out_yara, exist_ok=True)
    for name in os.listdir(load_dir):
        source = os.path.join(load_dir, name)
        if kind != "hash-only" and name.endswith(".cud"):
            rebuild_without(plain_dir, os.path.join(out_clamav, name), 300)
        else:
            shutil.copy(source, os.path.join(out_clamav, name))
    hash_lines(out_clamav)
    if kind == "hash-only":
        return
    pattern_lines(out_clamav, MIX[:len(MIX) - len(GENERIC)] + GENERIC if kind == "generic" else MIX)
    yara_rules(out_yara)


if __name__ == "__main__":
    main()
