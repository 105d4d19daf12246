#!/usr/bin/env python3
"""Writes the seed corpora of tests/fuzz/corpus/<target>/ (small valid inputs and edge cases). The files are
checked in; run this again only to change them. Regression seeds (crash-*, found by fuzzing) are not made
here and are never deleted by it."""
import io
import os
import re
import shutil
import struct
import subprocess
import tarfile
import tempfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def put(target, name, data):
    folder = os.path.join(HERE, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


# -- service_config: the shipped example, the smallest accepted file, and near misses.
MINIMAL = """[service]
state_dir = "/var/lib/coldscan"

[[host]]
name = "esx1"

[[datastore]]
name = "ds1"
roots = ["/vmfs/ds1"]
hosts = ["esx1"]
"""
with open(os.path.join(ROOT, "scheduler/dist/coldscan.toml.example")) as f:
    put("service_config", "example.toml", f.read())
put("service_config", "minimal.toml", MINIMAL)
put("service_config", "full.toml", MINIMAL + """images = ["*.qcow2", "templates/*.vmdk"]

[api]
listen = "[::1]:8731"
auth_token = "0123456789abcdef0123"
max_request_bytes = "1M"
requests_per_second = 5
request_burst = 10

[limits]
max_file_size = "100M"
max_scan_time = "2m"

[[nightly_window]]
time = "22:00-06:00"
days = ["mon-fri", "sun"]
""")
put("service_config", "open_api.toml", MINIMAL + '\n[api]\nlisten = "0.0.0.0:8731"\n')
put("service_config", "unknown_key.toml", MINIMAL.replace("name = \"esx1\"", "nmae = \"esx1\""))
put("service_config", "probe.toml", MINIMAL.replace('name = "esx1"\n', 'name = "esx1"\nload_probe = "http://127.0.0.1:9/load"\nmax_concurrent_scans = 2\n'))
put("service_config", "listen_unix.txt", "unix:/run/coldscan/api.sock")
put("service_config", "listen_v6.txt", "[::ffff:127.0.0.1]:65535")
put("service_config", "bad_toml.toml", "[service\nstate_dir = ")

# -- api_request: the first byte picks the parser ('0' scan body, '1' job, '2' job list, '3' names).
JOB = ('{"id":"0123456789abcdefghijklmnop","target":"/vmfs/ds1/vm1.qcow2","snapshot":"","priority":"gate",'
       '"status":"succeeded","attempts":1,"last_error":"","submitted_at":"2026-11-23T10:00:00Z",'
       '"updated_at":"2026-11-23T10:05:00Z","host":"esx1","datastore":"ds1","requested_by":"ops",'
       '"signature_set":"abc","progress":{"phase":"scan","files_done":3,"bytes_done":4096,"seconds":1.5},'
       '"verdict":{"status":"completed","exit_status":0,"files":3,"detections":0,"not_fully_scanned":0,'
       '"signature_set":"abc"}}')
put("api_request", "scan_body", '0{"targets":["/vmfs/ds1/vm1.qcow2","libvirt:web01"],"priority":"on-demand",'
    '"snapshot":"nightly","host":"esx1","requested_by":"ops","max_age_seconds":3600}')
put("api_request", "scan_body_minimal", '0{"targets":["a"]}')
put("api_request", "scan_body_bad_key", '0{"targets":["a"],"priorty":"gate"}')
put("api_request", "scan_body_nul", '0{"targets":["a\\u0000b"]}')
put("api_request", "scan_body_unicode", '0{"targets":["/vmfs/\\u00e9\\ud83d\\ude00"],"priority":"on_demand"}')
put("api_request", "job_body", "1" + JOB)
put("api_request", "jobs_body", '2{"jobs":[' + JOB + ',{"id":"x","status":"queued"}]}')
put("api_request", "error_body", '3{"error":"not found"}')
put("api_request", "iso8601", "32026-02-28T23:59:59Z")
put("api_request", "iso8601_bad", "32026-02-30T00:00:00Z")
put("api_request", "priority", "3on-demand")
put("api_request", "status", "3dead_letter")

# -- request_guard: flags (1 = token), token, max body, rate, burst, clients; then requests.
token = b"0123456789abcdef"
put("request_guard", "token", bytes([1, len(token)]) + token + b"\x04\x00\x02\x02\x02" +
    b"\x30\x00\x10\x01" + b"\x10\x05Bearer\x00\x10\x01" + b"\x00\x00\x10\x01" + b"\x31\x40\x00\x00")
put("request_guard", "no_token", b"\x00\x01\x00\x01\x01\x01" + b"\x00\x00\x10\x00" * 6 + b"\x01\x00\x10\xff")

# -- report_paths: length-prefixed target, device, path, reason, signature; outcome, kind, engine.
def strings(*values):
    out = b""
    for v in values:
        v = v.encode() if isinstance(v, str) else v
        out += bytes([len(v)]) + v
    return out

put("report_paths", "plain", strings("vm1.qcow2", "/dev/sda1", "/etc/passwd", "", "Eicar-Test-Signature") + b"\x01\x00\x00")
put("report_paths", "invalid_utf8", strings("vm\xff.qcow2".encode("latin-1"), "/dev/sda1", b"/tmp/\xc3\x28\xff\xfe", b"bad\x00reason", "Rule") + b"\x03\x00\x01")
put("report_paths", "controls", strings("t", "d", "/a\nFORGED: Eicar FOUND\r\x1b[2J", "\x85\u0085", "x") + b"\x02\x01\x01")
put("report_paths", "directory", strings("/srv/share/", "", "/sub/\\x41", "too big", "") + b"\x04\x01\x00")

# -- nbd_extents: start, length (u64 big-endian), then replies of n pairs (u32 length, u8 value).
def reply(*pairs):
    return bytes([len(pairs)]) + b"".join(struct.pack(">IB", length, value) for length, value in pairs)

queries = b"".join(bytes([1]) + struct.pack(">QQ", o, n) for o, n in [(0, 4096), (4096, 1), (100, 10000)])
put("nbd_extents", "depth", struct.pack(">QQ", 0, 65536) + reply((4096, 1), (8192, 2), (4096, 2), (16384, 0)) +
    reply((32768, 1)) + queries)
put("nbd_extents", "overshoot", struct.pack(">QQ", 1 << 20, 1000) + reply((4096, 3)) + queries)
put("nbd_extents", "empty_range", struct.pack(">QQ", 0, 100) + reply((50, 2), (50, 3)) + bytes([0]) +
    bytes([1]) + struct.pack(">QQ", 40, 0) + bytes([1]) + struct.pack(">QQ", 100, 0))
put("nbd_extents", "zero_lengths", struct.pack(">QQ", 0, 100) + reply((0, 1), (50, 2), (0, 3), (50, 4)) +
    bytes([0]) + struct.pack(">QQ", (1 << 64) - 10, 100) + queries)

# -- partition_table: tiny MBR and GPT disks. Byte 0 bit 0 asks the target to fix GPT checksums.
def mbr_entry(boot, ptype, start, sectors):
    return struct.pack("<B3sB3sII", boot, b"\0\0\0", ptype, b"\0\0\0", start, sectors)

def mbr(entries, size):
    disk = bytearray(size)
    table = b"".join(entries) + b"\0" * (64 - 16 * len(entries))
    disk[446:510] = table
    disk[510:512] = b"\x55\xaa"
    return disk

put("partition_table", "mbr_primary", bytes(mbr([mbr_entry(0x80, 0x83, 1, 8), mbr_entry(0, 0x07, 9, 7)], 8192)))
disk = mbr([mbr_entry(0, 0x83, 1, 2), mbr_entry(0, 0x05, 4, 12)], 8192)
# EBR chain: at LBA 4 a logical at +1 (2 sectors) and the next EBR at +4; at LBA 8 one more logical.
ebr1 = mbr([mbr_entry(0, 0x83, 1, 2), mbr_entry(0, 0x05, 4, 4)], 512)
ebr2 = mbr([mbr_entry(0, 0x82, 1, 2)], 512)
disk[4 * 512:5 * 512] = ebr1
disk[8 * 512:9 * 512] = ebr2
put("partition_table", "mbr_logical", bytes(disk))
loop = bytearray(disk)
loop[8 * 512:9 * 512] = mbr([mbr_entry(0, 0x83, 1, 2), mbr_entry(0, 0x05, 0, 4)], 512)
loop[8 * 512 + 446 + 16 + 8:8 * 512 + 446 + 16 + 12] = struct.pack("<I", 4)  # next EBR: back to the first
put("partition_table", "mbr_loop", bytes(loop))

def gpt(ss, sectors, entries):
    size = ss * sectors
    disk = bytearray(size)
    disk[0:512] = mbr([mbr_entry(0, 0xEE, 1, sectors - 1)], 512)
    array = b""
    for i, (first, last) in enumerate(entries):
        array += struct.pack("<16s16sQQQ72s", bytes(range(1, 17)), bytes([i + 1]) * 16, first, last, 0, b"")
    array += b"\0" * (4 * 128 - len(array))

    def header(lba, backup, entries_lba):
        h = struct.pack("<8sIIIIQQQQ16sQIII", b"EFI PART", 0x10000, 92, 0, 0, lba, backup, 3, sectors - 3,
                        b"\x11" * 16, entries_lba, 4, 128, zlib.crc32(array))
        return h[:16] + struct.pack("<I", zlib.crc32(h)) + h[20:]

    disk[ss:ss + 92] = header(1, sectors - 1, 2)
    disk[2 * ss:2 * ss + len(array)] = array
    disk[(sectors - 2) * ss:(sectors - 2) * ss + len(array)] = array
    disk[(sectors - 1) * ss:(sectors - 1) * ss + 92] = header(sectors - 1, 1, sectors - 2)
    return disk

put("partition_table", "gpt_512", bytes(gpt(512, 24, [(3, 10), (11, 20)])))
damaged = gpt(512, 24, [(3, 10), (11, 20)])
damaged[512 + 40] ^= 0xFF  # the primary header's checksum no longer matches: the backup is used
put("partition_table", "gpt_backup", bytes(damaged))
put("partition_table", "gpt_4096", bytes(gpt(4096, 8, [(3, 4)])))
fix = gpt(512, 24, [(3, 10), (11, 40)])  # runs past the end; checksums fixed by the target (byte 0 bit 0)
fix[0] |= 1
fix[512 + 16:512 + 20] = b"\0\0\0\0"
put("partition_table", "gpt_fixup", bytes(fix))
put("partition_table", "protective_only", bytes(mbr([mbr_entry(0, 0xEE, 1, 15)], 8192)))

# -- vmdk_descriptor: text descriptors and a sparse header pointing at one.
DESC = """# Disk DescriptorFile
version=1
CID=fffffffe
parentCID=ffffffff
createType="monolithicFlat"

# Extent description
RW 2048 FLAT "disk-flat.vmdk" 0
RW 4096 SPARSE "disk-s001.vmdk"
RDONLY 10 ZERO
"""
put("vmdk_descriptor", "flat.vmdk", DESC)
put("vmdk_descriptor", "odd_spacing.vmdk", "  \n# c\nversion=2\nRW\t+12   VMFS \"a b\"\nRWRWRWRWRW123 FLAT\n\"x\"\n")
put("vmdk_descriptor", "long_name.vmdk", 'version=1\nRW 1 FLAT "' + "n" * 600 + '"\n')
sparse = bytearray(512 * 2)
sparse[0:4] = b"KDMV"
struct.pack_into("<Q", sparse, 12, 0)   # capacity 0: a descriptor follows
struct.pack_into("<Q", sparse, 28, 1)   # at sector 1
sparse[512:512 + len(DESC)] = DESC.encode()
put("vmdk_descriptor", "sparse_embedded.vmdk", bytes(sparse))
put("vmdk_descriptor", "cowd.vmdk", b"COWD" + b"\0" * 60)

# -- tar_reader: GNU and pax archives as the appliance writes them, and a truncated one.
def archive(fmt, members):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()

def member(name, data=b"", kind=tarfile.REGTYPE, link=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.linkname = link
    info.mtime = 1700000000
    return info, data if kind == tarfile.REGTYPE else None

members = [member("./", kind=tarfile.DIRTYPE), member("./etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
           member("./" + "d" * 120 + "/long-name", b"x" * 700), member("./link", kind=tarfile.SYMTYPE, link="etc/passwd"),
           member("./hard", kind=tarfile.LNKTYPE, link="./etc/passwd"), member("./empty")]
gnu = archive(tarfile.GNU_FORMAT, members)
put("tar_reader", "gnu.tar", gnu)
put("tar_reader", "pax.tar", archive(tarfile.PAX_FORMAT, members + [member("./caf\u00e9-" + "p" * 150, b"pax")]))
put("tar_reader", "ustar.tar", archive(tarfile.USTAR_FORMAT, members[:2]))
put("tar_reader", "truncated.tar", gnu[:1000])

# -- fs_names: UTF-16LE names and padded labels.
put("fs_names", "ascii", "Documents".encode("utf-16-le"))
put("fs_names", "bmp_and_pair", "caf\u00e9 \u4e2d\U0001F600".encode("utf-16-le"))
put("fs_names", "lone_surrogates", b"\x00\xd8A\x00\x00\xdc\x00\xd8")
put("fs_names", "odd_length", "abc".encode("utf-16-le") + b"\x41")
put("fs_names", "fat_label", b"MYDISK     ")
put("fs_names", "ext_label", b"root\0\0\0\0\0\0\0\0\0\0\0\0")
put("fs_names", "controls", b"a\x1b[31m\\b\xc2\x85\xff")

# -- lvm_volumes: text metadata of a volume group whose one PV has the UUID of 32 'A's (the target wraps it
# in a valid PV). A real lvm-written group (Debian's LVM 2.03.16), striped, multi-segment, thin, snapshot.
PV_ID = "AAAAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAAAA"
def vg(lvs, extent_size=8):
    return ('realvg {\nid = "nRwkXV-UpHN-Mlx0-4So9-hRur-mwDb-PvItPP"\nseqno = 3\nformat = "lvm2"\n'
            'status = ["RESIZEABLE", "READ", "WRITE"]\nflags = []\nextent_size = %d\nmax_lv = 0\nmax_pv = 0\n'
            'metadata_copies = 0\n\nphysical_volumes {\n\npv0 {\nid = "%s"\ndevice = "/dev/sdb2"\n\n'
            'status = ["ALLOCATABLE"]\nflags = []\ndev_size = 8192\npe_start = 2048\npe_count = 700\n}\n}\n\n'
            'logical_volumes {\n%s}\n\n}\n# Generated by LVM2 version 2.03.16(2) (2022-05-18)\n\n'
            'contents = "Text Format Volume Group"\nversion = 1\n\ndescription = "Write from lvcreate."\n\n'
            'creation_host = "(none)"\t# Linux (none) 6.1.0-57-amd64\ncreation_time = 1796568128\n'
            % (extent_size, PV_ID, lvs))
def lv(name, segments, status='"READ", "WRITE", "VISIBLE"'):
    return '\n%s {\nid = "5ujLsG-GTOe-AjWg-g05O-Edaw-fjTo-nHTptg"\nstatus = [%s]\nflags = []\n' \
           'creation_time = 1796568127\ncreation_host = "(none)"\nsegment_count = %d\n%s}\n' % (
               name, status, segments.count("segment"), segments)
def seg(i, start, count, body):
    return '\nsegment%d {\nstart_extent = %d\nextent_count = %d\n\n%s}\n' % (i, start, count, body)
def stripes(*pairs, size=None):
    text = 'type = "striped"\nstripe_count = %d\n' % len(pairs)
    if size:
        text += 'stripe_size = %d\n' % size
    return text + '\nstripes = [\n' + ',\n'.join('"%s", %d' % p for p in pairs) + '\n]\n'
put("lvm_volumes", "real_two_lvs", vg(lv("root", seg(1, 0, 448, stripes(("pv0", 0)))) +
                                       lv("swap", seg(1, 0, 32, stripes(("pv0", 448))))))
put("lvm_volumes", "two_segments", vg(lv("data", seg(1, 0, 10, stripes(("pv0", 20))) + seg(2, 10, 5, stripes(("pv0", 0))))))
put("lvm_volumes", "striped", vg(lv("data", seg(1, 0, 12, stripes(("pv0", 0), ("pv0", 100), ("pv0", 200), size=2)))))
put("lvm_volumes", "thin", vg(lv("pool", seg(1, 0, 8, 'type = "thin-pool"\nmetadata = "pool_tmeta"\npool = "pool_tdata"\n'
                                              'transaction_id = 1\nchunk_size = 128\n')) +
                              lv("thinvol", seg(1, 0, 4, 'type = "thin"\nthin_pool = "pool"\ntransaction_id = 0\ndevice_id = 1\n'))))
put("lvm_volumes", "snapshot", vg(lv("origin", seg(1, 0, 4, stripes(("pv0", 0)))) + lv("snap", seg(1, 0, 4, stripes(("pv0", 4)))) +
                                  lv("snapshot0", seg(1, 0, 4, 'type = "snapshot"\nchunk_size = 8\norigin = "origin"\ncow_store = "snap"\n'),
                                     status='"READ"')))
put("lvm_volumes", "not_metadata", "contents = [1, 2, [3]]\n# only a comment")

# -- xfs_filesystem: mkfs.xfs images (proto files: nothing mounted) edited with xfs_db, as records of a u32
# offset, a u16 length and the bytes of each run of non-zero bytes, the log's left out (the target writes them
# over 16 MiB of zeros). Needs xfsprogs (mkfs.xfs >= 5.19 makes filesystems under 300 MB only for fstests:
# TEST_DIR says so); without it these seeds are left as they are.


def xfs_records(image):
    with open(image, "rb") as f:
        data = f.read()
    blocksize, = struct.unpack_from(">I", data, 4)
    logstart, = struct.unpack_from(">Q", data, 48)
    agblocks, = struct.unpack_from(">I", data, 84)
    logblocks, = struct.unpack_from(">I", data, 96)
    agblklog = data[124]
    log_at = ((logstart >> agblklog) * agblocks + (logstart & ((1 << agblklog) - 1))) * blocksize
    out = bytearray()
    for sector in range(0, len(data), 512):
        chunk = data[sector:sector + 512]
        if log_at <= sector < log_at + logblocks * blocksize or not any(chunk):
            continue
        for m in re.finditer(rb"[^\x00]+(?:\x00{1,11}[^\x00]+)*", chunk):
            out += struct.pack(">IH", sector + m.start(), m.end() - m.start()) + m.group()
    return bytes(out)


def xfs_db(image, *commands, write=False):
    args = ["xfs_db", "-x" if write else "-r"]
    for c in commands:
        args += ["-c", c]
    return subprocess.run(args + [image], check=True, capture_output=True, text=True).stdout


def xfs_field(image, *commands):
    out = xfs_db(image, *commands)
    return int(out[out.index("=") + 1:].split()[0], 0)


def xfs_image(folder, name, options, entries):
    """entries: (name, "d", [entries]) | (name, "l", target) | (name, "f", bytes), in a 16 MiB image."""
    proto = ["seed", "0 0", "d--755 0 0"]
    def add(items):
        for item in items:
            if item[1] == "d":
                proto.append(item[0] + " d--755 0 0")
                add(item[2])
                proto.append("$")
            elif item[1] == "l":
                proto.append(item[0] + " l--777 0 0 " + item[2])
            else:
                path = os.path.join(folder, "src-%d" % len(proto))
                with open(path, "wb") as f:
                    f.write(item[2])
                proto.append(item[0] + " ---644 0 0 " + path)
    add(entries)
    with open(os.path.join(folder, "proto"), "w") as f:
        f.write("\n".join(proto + ["$"]) + "\n")
    image = os.path.join(folder, name + ".img")
    with open(image, "wb") as f:
        f.truncate(16 << 20)
    env = dict(os.environ, TEST_DIR="1", TEST_DEV="1", QA_CHECK_FS="1")
    subprocess.run(["mkfs.xfs", "-f", "-q", "-m", "uuid=11111111-2222-3333-4444-555555555555", "-p",
                    os.path.join(folder, "proto")] + options + [image], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return image


def xfs_btree_file(image, path):
    """The extents-format file at path made btree-format: a level-1 root in the inode pointing at one leaf
    ("BMA3") with its extent records, in the filesystem's last block. CRCs are left stale."""
    ino = xfs_field(image, "path " + path, "print v3.inumber")
    at = int(xfs_db(image, "convert inode %d byte" % ino).split("(")[1].split(")")[0])
    with open(image, "r+b") as f:
        data = bytearray(f.read())
        blocksize, = struct.unpack_from(">I", data, 4)
        dblocks, = struct.unpack_from(">Q", data, 8)
        inodesize, = struct.unpack_from(">H", data, 104)
        nrext64 = struct.unpack_from(">Q", data, at + 120)[0] & 0x10
        nextents = struct.unpack_from(">Q" if nrext64 else ">I", data, at + (24 if nrext64 else 76))[0]
        leaf = dblocks - 1  # one AG: the fs block number is the AG block
        leaf_at = leaf * blocksize
        assert not any(data[leaf_at:leaf_at + blocksize])
        data[leaf_at:leaf_at + 72] = (b"BMA3" + struct.pack(">HH", 0, nextents) + b"\xff" * 16 +
                                      struct.pack(">QQ", leaf_at // 512, 0) + data[32:48] +
                                      struct.pack(">QII", ino, 0, 0))
        data[leaf_at + 72:leaf_at + 72 + 16 * nextents] = data[at + 176:at + 176 + 16 * nextents]
        fork = inodesize - 176
        root = struct.pack(">HHQ", 1, 1, 0) + b"\0" * (8 * ((fork - 4) // 16 - 1)) + struct.pack(">Q", leaf)
        data[at + 176:at + 176 + fork] = root + b"\0" * (fork - len(root))
        data[at + 5] = 3  # XFS_DINODE_FMT_BTREE
        struct.pack_into(">Q", data, at + 64, struct.unpack_from(">Q", data, at + 64)[0] + 1)
        f.seek(0)
        f.write(data)


def xfs_tree():
    return [("etc", "d", [("os-release", "f", b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n')]),
            ("bin", "d", [("tool", "f", bytes(range(256)) * 12)]),
            ("empty", "f", b""), ("link", "l", "etc/os-release"),
            ("dir20", "d", [("entry-%02d" % i, "f", b"%d\n" % i) for i in range(20)]),  # short-form
            ("dir200", "d", [("e%03d" % i, "f", b"%d\n" % i) for i in range(200)])]  # leaf form


if shutil.which("mkfs.xfs") and shutil.which("xfs_db"):
    with tempfile.TemporaryDirectory() as folder:
        for name, options in [("v5_4k", []), ("v5_1k_nrext64", ["-b", "size=1024", "-i", "nrext64=1"]),
                              ("v4_512", ["-m", "crc=0", "-n", "ftype=0", "-i", "size=256", "-b", "size=512"])]:
            put("xfs_filesystem", name, xfs_records(xfs_image(folder, name, options, xfs_tree())))
        # A hard link, a hole and an unwritten extent, a btree-format file.
        image = xfs_image(folder, "edited", ["-b", "size=1024"], xfs_tree() + [
            ("frag", "f", bytes(range(256)) * 16), ("btree", "f", bytes(range(255, -1, -1)) * 20)])
        one = xfs_field(image, "path /dir20/entry-00", "print v3.inumber")
        start = xfs_field(image, "path /frag", "print u3.bmx[0].startblock")
        xfs_db(image, "path /dir20", "write u3.sfdir3.list[1].inumber.i4 %d" % one, "path /dir20/entry-00",
               "write core.nlinkv2 2", "path /frag", "write core.nextents 2", "write u3.bmx[0].blockcount 1",
               "write u3.bmx[1].startoff 2", "write u3.bmx[1].startblock %d" % (start + 2),
               "write u3.bmx[1].blockcount 2", "write u3.bmx[1].extentflag 1", write=True)
        xfs_btree_file(image, "/btree")
        put("xfs_filesystem", "v5_edited", xfs_records(image))
else:
    print("make_seeds.py: no mkfs.xfs/xfs_db: the xfs_filesystem seeds are left as they are")

# -- ovf_descriptor: OVF envelopes as ovftool and VirtualBox write them, and near misses.
def ovf(refs, disks, items):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" '
            'xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" '
            'xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData">\n'
            '<References>%s</References>\n<DiskSection><Info>disks</Info>%s</DiskSection>\n'
            '<VirtualSystem ovf:id="vm"><VirtualHardwareSection>%s</VirtualHardwareSection></VirtualSystem>\n'
            '</Envelope>\n' % (refs, disks, items))
VMDK_URL = "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"
REFS = '<File ovf:href="vm-disk1.vmdk" ovf:id="file1" ovf:size="4096"/><File ovf:href="vm-disk2.vmdk" ovf:id="file2"/>'
DISKS = ('<Disk ovf:capacity="16" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="%s"/>'
         '<Disk ovf:capacity="16" ovf:diskId="vmdisk2" ovf:fileRef="file2" ovf:format="%s"/>' % (VMDK_URL, VMDK_URL))
ITEM = '<Item><rasd:HostResource>%s</rasd:HostResource><rasd:ResourceType>17</rasd:ResourceType></Item>'
put("ovf_descriptor", "ovftool.ovf", ovf(REFS, DISKS, ITEM % "ovf:/disk/vmdisk2" + ITEM % "ovf:/disk/vmdisk1"))
put("ovf_descriptor", "virtualbox.ovf", ovf(REFS, DISKS, ITEM % "/disk/vmdisk1"))
put("ovf_descriptor", "compressed.ovf", ovf(REFS.replace('ovf:size="4096"', 'ovf:compression="gzip"'), DISKS, ""))
put("ovf_descriptor", "doctype.ovf", '<?xml version="1.0"?><!DOCTYPE Envelope [<!ENTITY x "y">]><Envelope>&x;</Envelope>')

# -- signature_catalogue: ClamAV containers as sigtool writes them (.cvd gzip-compressed, .cld plain; the tar
# ends with its last member), a plain database, and near misses.
def clamav_container(members, gzip):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    body = out.getvalue()
    if gzip:
        compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
        body = compressor.compress(body) + compressor.flush()
    header = b"ClamAV-VDB:06 Dec 2026 10-00 +0000:27000:4:90:x:x:seeds:1796551200"
    return header.ljust(512, b" ") + body
CLAMAV_MEMBERS = [("COPYING", b"licence\n"), ("daily.info", b"ClamAV-VDB:x\ndaily.hdb:40:x\n"),
                  ("daily.hdb", b"44d88612fea8a8f36de82e1278abb02f:68:Eicar\n# comment\r\n\n"),
                  ("daily.ndb", b"Body:0:*:414243\n"), ("daily.ldb", b"Logical;Engine:51-255,Target:0;0;41\n"),
                  ("daily.ign2", b"Body\n"), ("daily.cfg", b"DOCUMENT:0x0:0:0\n"), ("daily.yar", b"rule a { condition: true }\n")]
put("signature_catalogue", "daily.cvd", clamav_container(CLAMAV_MEMBERS, True))
put("signature_catalogue", "daily.cld", clamav_container(CLAMAV_MEMBERS, False))
put("signature_catalogue", "main.hdb", "44d88612fea8a8f36de82e1278abb02f:68:Eicar\n")
put("signature_catalogue", "nested.cld", clamav_container([("inner.cvd", clamav_container(CLAMAV_MEMBERS[:3], True))], False))
