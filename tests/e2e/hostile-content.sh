#!/usr/bin/env bash
# hostile-content.sh COLDSCAN FIXTURES WORKDIR
#
# Hostile guest content, end to end through the coldscan executable; every input is built here (python3
# zipfile, mkfs.ext4 -d), the EICAR string is the only sample.
#
# 1. Limits (a host folder, then the same run again on its cache): a zip bomb of one 64 MiB member of zeros
#    and a nested one (16 x 64 distinct members of 1 MiB), an archive nested 25 deep (past the default recursion limit
#    17), a zip of 10050 members (past max-files), files over --max-filesize with EICAR after and before the
#    limit, and a YARA rule with a catastrophic regex over 8 MiB (--yara-timeout 1). Each is LIMIT_EXCEEDED
#    with the limit in its reason, never CLEAN; EICAR beside a limit hit is INFECTED. The second run gives
#    the same outcomes, scanning only the file that timed out (time limits are never cached; size, count
#    and depth limits are).
# 2. Escaping: files holding EICAR whose names carry newlines, tabs, ANSI/OSC sequences, C1 controls, DEL,
#    invalid UTF-8, quotes, backslashes and a 250-byte name. stdout and stderr (with --debug) carry no raw
#    control byte and are valid UTF-8; each FOUND line names the file as printable() escapes it; the JSON
#    report and inventory are strict JSON and give back the exact bytes (the name, or its "_hex" twin).
# 3. The same, as an ext4 disk read with --backend direct (no appliance), with a hostile /etc/os-release and
#    /etc/hostname: inspection data is escaped in the summary and round-trips in the JSON report; the limit
#    files have the folder run's outcomes, and a second run on the cache scans nothing and agrees.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/script-start.sh
source "$here/script-start.sh"
cd "$work"
export PATH=$PATH:/usr/sbin:/sbin
sigs=(--clamav-db "$fixtures/sigs/clamav" --yara-rules "$fixtures/sigs/yara")

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# --- inputs -------------------------------------------------------------------------------------------------
python3 - <<'PY'
import io, os, zipfile

EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
WHEN = (2024, 3, 1, 12, 0, 0)

def info(name):
    zi = zipfile.ZipInfo(name, WHEN)
    zi.compress_type = zipfile.ZIP_DEFLATED
    return zi

def zip_bytes(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for name, data in members:
            z.writestr(info(name), data)
    return buf.getvalue()

def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)

def flat_bomb(path, mib, extra=()):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for name, data in extra:
            z.writestr(info(name), data)
        # No zip64 local header: libclamav 1.4.6 skips a deflated member behind one without a word.
        with z.open(info("zeros.bin"), "w") as f:
            chunk = bytes(1 << 20)
            for _ in range(mib):
                f.write(chunk)

limits = "limits"
os.makedirs(limits, exist_ok=True)
# One member of 64 MiB of zeros (over --max-filesize 32M), a few KiB on disk.
flat_bomb(f"{limits}/bomb-flat.zip", 64)
flat_bomb(f"{limits}/bomb-flat-with-eicar.zip", 64, [("eicar.com", EICAR)])
# Nested: 16 zips of 64 members of 1 MiB of zeros each (1 GiB unpacked). Every member differs (a tag at its
# end): libclamav scans identical members once, so a bomb of identical copies (42.zip) is really scanned
# whole and rightly clean.
inner = [zip_bytes([(f"z{i:02}-{k:02}.bin", bytes(1 << 20) + b"%02d-%02d" % (i, k)) for k in range(64)])
         for i in range(16)]
write(f"{limits}/bomb-nested.zip", zip_bytes([(f"inner{i:02}.zip", inner[i]) for i in range(16)]))
# 25 levels of zip in zip around EICAR (deflated at every level: EICAR never appears as plain bytes).
deep = zip_bytes([("eicar.com", EICAR)])
for depth in range(24):
    deep = zip_bytes([(f"level{depth:02}.zip", deep)])
write(f"{limits}/deep.zip", deep)
write(f"{limits}/deep-with-shallow-eicar.zip", zip_bytes([("eicar.com", EICAR), ("deep.zip", deep)]))
write(f"{limits}/many-members.zip", zip_bytes([(f"m{i:05}.txt", b"x") for i in range(10050)]))
write(f"{limits}/big-eicar-after.bin", bytes(40 << 20) + EICAR)
write(f"{limits}/big-eicar-before.bin", EICAR + bytes(40 << 20))
write(f"{limits}/catastrophic.txt", b"a" * (8 << 20))
write(f"{limits}/eicar.com", EICAR)
write(f"{limits}/clean.txt", b"nothing to see here\n")

# Guest file names meant to break outputs; every one of them holds EICAR.
NAMES = [
    b"new\nline.com",
    b"tab\there.com",
    b"\x1b[2J\x1b[31mred.com",
    b"bell\x07back\x08del\x7f.com",
    b"c1 \xc2\x9b\xc2\x85 controls.com",
    b"caf\xe9 latin1.com",
    b"bad utf8 \xff\xfe \xc3.com",
    b'quote " and \\ backslash.com',
    b"cr\rforged: OK.com",
    b"L" * 246 + b".com",
    b"dir \x1b]0;title\x07/inner\x1b[K.com",
    b"j\xc3\xb6rg/\xc3\x9cberweisung.com",
]
for name in NAMES:
    write(os.fsencode("names/") + name, EICAR)
write(b"names/clean \x1b[0m.txt", b"harmless\n")
with open("names.list", "wb") as f:
    f.write(b"\0".join(NAMES))

# The disk image's tree: the hostile names, the limit files, and hostile inspection data.
os.makedirs("img/etc", exist_ok=True)
os.system("cp -a names img/names")
for name in ["bomb-flat.zip", "deep.zip", "deep-with-shallow-eicar.zip", "many-members.zip",
             "big-eicar-after.bin", "big-eicar-before.bin", "eicar.com", "clean.txt"]:
    os.system(f"cp -a {limits}/{name} img/{name}")
write("img/etc/os-release",
      b'NAME="Evil\x1b[2JOS"\n'
      b"ID=evil\x1b]0;pwned\x07\n"
      b'PRETTY_NAME="Evil \x1b[31mLinux\xc2\x9b caf\xe9 \\ back"\n'
      b'VERSION_ID="1\x1b[K2"\n')
write("img/etc/hostname", b"host\x1b[2J\x07name\xff\n")
PY

cat >slow.yar <<'EOF'
// Nested quantifiers: libyara tries every 'a' as a start, up to 4 KiB ahead each.
rule Coldscan_Test_Catastrophic
{
    strings:
        $re = /(a+|b+)+c/
    condition:
        $re and filesize == 0 // never true; the strings are still searched, which is what times out
}
EOF

# run NAME [coldscan args...]: runs coldscan, keeps NAME.{out,err,exit}.
run() {
    local name=$1
    shift
    set +e
    "$coldscan" "$@" >"$name.out" 2>"$name.err"
    echo $? >"$name.exit"
    set -e
}

# --- 1. limits on a host folder, twice on one cache -----------------------------------------------------------
limit_args=(scan --cache "$work/limits.cache" --clamav-db "$fixtures/sigs/clamav" --yara-rules slow.yar
    --max-filesize 32M --max-scansize 64M --yara-timeout 1 --no-progress "$work/limits")
run limits-cold "${limit_args[@]}" --report limits-cold.json --inventory limits-cold.jsonl
run limits-warm "${limit_args[@]}" --report limits-warm.json --inventory limits-warm.jsonl

# --- 2. hostile names on a host folder ---------------------------------------------------------------------
run names --debug scan --no-cache "${sigs[@]}" --no-progress --report names.json --inventory names.jsonl "$work/names"

# --- 3. the same as an ext4 disk, direct backend, twice on one cache ------------------------------------------
"$here/../fixtures/make-ext4-image.sh" --label hostile --disk-mib 192 img hostile.qcow2 >/dev/null
image_args=(scan --cache "$work/image.cache" --backend direct "${sigs[@]}" --max-filesize 32M --max-scansize 64M
    --no-progress "$work/hostile.qcow2")
run image-cold "${image_args[@]}" --report image-cold.json --inventory image-cold.jsonl
run image-warm "${image_args[@]}" --report image-warm.json --inventory image-warm.jsonl

python3 - "$work" <<'PY'
import json, sys

work = sys.argv[1]
failures = []
def check(ok, what):
    if not ok:
        failures.append(what)

def utf8_length(b, i):
    c = b[i]
    n = 1 if c < 0x80 else 2 if 0xC2 <= c <= 0xDF else 3 if 0xE0 <= c <= 0xEF else 4 if 0xF0 <= c <= 0xF4 else 0
    if n == 0 or i + n > len(b):
        return 0
    try:
        b[i:i + n].decode("utf-8")
    except UnicodeDecodeError:
        return 0
    return n

def printable(b):
    """coldscan's printable() (common/text.cpp): controls, backslash, C1 and invalid bytes as \\xNN."""
    out, i = [], 0
    while i < len(b):
        c, n = b[i], utf8_length(b, i)
        if n == 0 or c < 0x20 or c == 0x7F or c == 0x5C:
            out.append("\\x%02X" % c)
            i += 1
        elif n == 2 and c == 0xC2 and b[i + 1] < 0xA0:
            out.append("\\x%02X\\x%02X" % (c, b[i + 1]))
            i += 2
        else:
            out.append(b[i:i + n].decode("utf-8"))
            i += n
    return "".join(out)

def terminal_safe(name, data):
    """No raw control byte (but newline), no DEL, no C1 control, valid UTF-8."""
    bad = sorted({c for c in data if (c < 0x20 and c != 0x0A) or c == 0x7F})
    check(not bad, f"{name}: raw control bytes {bad}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        check(False, f"{name}: not valid UTF-8 ({e})")
        return
    c1 = [hex(ord(ch)) for ch in text if 0x80 <= ord(ch) <= 0x9F]
    check(not c1, f"{name}: raw C1 controls {c1}")

def raw(obj, key):
    """The exact bytes of a guest string in the JSON outputs: "<key>_hex" when present, else UTF-8."""
    if key + "_hex" in obj:
        return bytes.fromhex(obj[key + "_hex"])
    return obj[key].encode("utf-8")

def load(name):
    with open(f"{work}/{name}", "rb") as f:
        return json.loads(f.read().decode("utf-8"))  # strict: raw control characters are invalid JSON

def inventory(name):
    with open(f"{work}/{name}", "rb") as f:
        return {raw(l, "path"): l for l in (json.loads(line.decode("utf-8")) for line in f)}

def exit_of(name):
    return int(open(f"{work}/{name}.exit").read())

def out_of(name):
    return open(f"{work}/{name}.out", "rb").read()

EICAR_SIG = "Coldscan.Test.Eicar.UNOFFICIAL"

# --- 1. limits ---
expected = {
    b"/bomb-flat.zip": ("LIMIT_EXCEEDED", "MaxFileSize"),
    b"/bomb-flat-with-eicar.zip": ("INFECTED", None),
    b"/bomb-nested.zip": ("LIMIT_EXCEEDED", "MaxScanSize"),
    b"/deep.zip": ("LIMIT_EXCEEDED", "MaxRecursion"),
    b"/deep-with-shallow-eicar.zip": ("INFECTED", None),
    b"/many-members.zip": ("LIMIT_EXCEEDED", "MaxFiles"),
    b"/big-eicar-after.bin": ("LIMIT_EXCEEDED", "MaxFileSize"),
    b"/big-eicar-before.bin": ("INFECTED", None),
    b"/catastrophic.txt": ("LIMIT_EXCEEDED", "YARA: scan timed out"),
    b"/eicar.com": ("INFECTED", None),
    b"/clean.txt": ("CLEAN", None),
}
for run in ("limits-cold", "limits-warm"):
    check(exit_of(run) == 1, f"{run}: exit status {exit_of(run)}, expected 1")
    lines = inventory(f"{run}.jsonl")
    report = load(f"{run}.json")
    check(set(lines) == set(expected), f"{run}: files {sorted(lines)}")
    for path, (outcome, reason) in expected.items():
        line = lines.get(path, {})
        check(line.get("outcome") == outcome, f"{run}: {path} is {line.get('outcome')} ({line.get('reason')}), "
                                              f"expected {outcome}")
        if reason is not None:
            check(reason in line.get("reason", ""), f"{run}: {path}: reason {line.get('reason')!r} lacks {reason!r}")
            shown = printable(f"{work}/limits".encode() + path) + ": "
            check(any(l.startswith(shown) and l.endswith(" LIMIT_EXCEEDED")
                      for l in out_of(run).decode().splitlines()), f"{run}: no LIMIT_EXCEEDED line for {path}")
        if outcome == "INFECTED":
            check(line.get("signatures") == [EICAR_SIG], f"{run}: {path} signatures {line.get('signatures')}")
    counts = report["counts"]
    check((counts["limit_exceeded"], counts["infected"], counts["clean"]) == (6, 4, 1),
          f"{run}: counts {counts}")
    detected = sorted(raw(d, "path") for d in report["detections"])
    check(detected == sorted(p for p, (o, _) in expected.items() if o == "INFECTED"),
          f"{run}: detections {detected}")
cold = load("limits-cold.json")["cache"]
warm = load("limits-warm.json")["cache"]
check(cold["engine_scans"] == len(expected), f"limits-cold: {cold['engine_scans']} engine scans")
# Only the timed-out file is scanned again: a time limit is never cached, size/count/depth limits are.
check(warm["engine_scans"] == 1, f"limits-warm: {warm['engine_scans']} engine scans, expected 1 (catastrophic.txt)")
check(warm["files_not_scanned"] == len(expected) - 1, f"limits-warm: files_not_scanned {warm['files_not_scanned']}")

# --- 2. hostile names ---
names = open(f"{work}/names.list", "rb").read().split(b"\0")
names_root = f"{work}/names".encode()
check(exit_of("names") == 1, f"names: exit status {exit_of('names')}, expected 1")
out, err = out_of("names"), open(f"{work}/names.err", "rb").read()
terminal_safe("names stdout", out)
terminal_safe("names stderr", err)
check(len(err) > 0, "names: --debug logged nothing on stderr")
found = [l for l in out.decode("utf-8", "replace").splitlines() if l.endswith(" FOUND")]
check(len(found) == len(names), f"names: {len(found)} FOUND lines for {len(names)} infected files")
for name in names:
    line = printable(names_root + b"/" + name) + ": " + EICAR_SIG + " FOUND"
    check(line in found, f"names: missing stdout line {line!r}")
report = load("names.json")
check(sorted(raw(d, "path") for d in report["detections"]) == sorted(b"/" + n for n in names),
      "names: report detections do not give back the exact names")
for d in report["detections"]:
    path = raw(d, "path")
    try:
        path.decode("utf-8")
        check("path_hex" not in d, f"names: path_hex for valid UTF-8 {path!r}")
    except UnicodeDecodeError:
        check("path_hex" in d, f"names: no path_hex for invalid UTF-8 {path!r}")
lines = inventory("names.jsonl")
check(set(lines) == {b"/" + n for n in names} | {b"/clean \x1b[0m.txt"}, f"names: inventory {sorted(lines)}")
check(lines.get(b"/clean \x1b[0m.txt", {}).get("outcome") == "CLEAN", "names: the clean file is not CLEAN")

# --- 3. the disk image ---
for run in ("image-cold", "image-warm"):
    check(exit_of(run) == 1, f"{run}: exit status {exit_of(run)}, expected 1")
    out = out_of(run)
    terminal_safe(f"{run} stdout", out)
    terminal_safe(f"{run} stderr", open(f"{work}/{run}.err", "rb").read())
    report = load(f"{run}.json")
    lines = inventory(f"{run}.jsonl")
    for name in names:
        path = b"/names/" + name
        check(lines.get(path, {}).get("outcome") == "INFECTED", f"{run}: {path} is {lines.get(path)}")
        tail = ":" + printable(path) + ": " + EICAR_SIG + " FOUND"
        check(any(l.endswith(tail) for l in out.decode().splitlines()), f"{run}: no stdout line ending {tail!r}")
    for path in (b"/bomb-flat.zip", b"/deep.zip", b"/deep-with-shallow-eicar.zip", b"/many-members.zip",
                 b"/big-eicar-after.bin", b"/big-eicar-before.bin", b"/eicar.com", b"/clean.txt"):
        outcome, reason = expected[path]
        line = lines.get(path, {})
        check(line.get("outcome") == outcome, f"{run}: {path} is {line.get('outcome')}, expected {outcome}")
        if reason is not None:
            check(reason in line.get("reason", ""), f"{run}: {path}: reason {line.get('reason')!r}")
    systems = report["targets"][0]["inspection"]
    check(len(systems) == 1, f"{run}: inspection {systems}")
    if systems:
        os_ = systems[0]
        want = {"distro": b"evil\x1b]0;pwned\x07", "product_name": b"Evil \x1b[31mLinux\xc2\x9b caf\xe9 \\ back",
                "version": b"1\x1b[K2", "hostname": b"host\x1b[2J\x07name\xff"}
        for key, value in want.items():
            check(raw(os_, key) == value, f"{run}: inspection {key} {raw(os_, key)!r}, expected {value!r}")
        shown = ", " + printable(want["distro"]) + " " + printable(want["version"]) + ' "' + \
                printable(want["hostname"]) + '"'
        check(shown in out.decode(), f"{run}: summary lacks the escaped inspection {shown!r}")
cold = load("image-cold.json")["cache"]
warm = load("image-warm.json")["cache"]
check(cold["engine_scans"] > 0, "image-cold: no engine scan")
check(warm["engine_scans"] == 0, f"image-warm: {warm['engine_scans']} engine scans, expected 0 (all cached)")

if failures:
    print("FAIL:\n  " + "\n  ".join(failures), file=sys.stderr)
    sys.exit(1)
print(f"ok: limits ({len(expected)} files, twice), {len(names)} hostile names (folder and ext4 image), inspection")
PY
