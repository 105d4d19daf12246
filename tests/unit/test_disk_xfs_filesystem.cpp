// The XFS reader on real images made in user space (mkfs.xfs -p protofile: no mount, no loop device), edited
// with xfs_db -x where a layout cannot be asked of mkfs (hard links, holes and unwritten extents, a
// btree-format file, damage): the listed files and every byte read back must equal what was put in.
#include "../../disk-access/src/sandboxed_filesystem.hpp"
#include "../../disk-access/src/xfs_filesystem.hpp"
#include "coldscan/common/temp_dir.hpp"
#include "test_filesystem_support.hpp"
#include "test_support.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

using namespace coldscan;
using namespace coldscan::disk;
using coldscan::disk::detail::FsFile;
using coldscan::disk::detail::XfsFilesystem;
using coldscan::test::by_path;
using coldscan::test::FileDevice;
using coldscan::test::pattern;
using coldscan::test::read_whole;
using coldscan::test::run_shell;
namespace fs = std::filesystem;

namespace {

// xfsprogs >= 5.19 refuses filesystems under 300 MB outside of fstests; these variables say "fstests".
const std::string k_mkfs = "TEST_DIR=1 TEST_DEV=1 QA_CHECK_FS=1 mkfs.xfs -f -q ";

std::string shell_output(const std::string& command) {
    auto result = run_bounded({"sh", "-c", "PATH=$PATH:/usr/sbin:/sbin; " + command}, ProcessLimits{});
    REQUIRE(result);
    INFO(command << "\n" << result->err);
    REQUIRE(result->exit_code == 0);
    return result->out;
}

std::string quoted(const std::string& text) {
    return "'" + text + "'";
}

// xfs_db with the commands, read-only or in expert (write) mode; its output.
std::string xfs_db(const fs::path& image, const std::vector<std::string>& commands, bool write = false) {
    std::string line = std::string("xfs_db ") + (write ? "-x" : "-r");
    for (const auto& c : commands) {
        line += " -c " + quoted(c);
    }
    return shell_output(line + " " + image.string());
}

// The number xfs_db prints for one field ("core.size = 100000").
std::uint64_t field_value(const std::string& printed) {
    return std::stoull(printed.substr(printed.find('=') + 1));
}

// The inode number xfs_db lists for name in folder.
std::uint64_t inode_of(const fs::path& image, const std::string& folder, const std::string& name) {
    std::istringstream lines(xfs_db(image, {"ls " + folder}));
    for (std::string line; std::getline(lines, line);) {
        std::istringstream words(line);
        std::string offset, ino, type, hash, length, entry;
        words >> offset >> ino >> type >> hash >> length;
        std::getline(words >> std::ws, entry);
        if (entry == name + " (good)") {
            return std::stoull(ino);
        }
    }
    FAIL("xfs_db does not list " << folder << "/" << name);
    return 0;
}

// The byte offset of an inode, as xfs_db computes it ("0x10600 (67072)").
std::uint64_t inode_byte(const fs::path& image, std::uint64_t ino) {
    const std::string out = xfs_db(image, {"convert inode " + std::to_string(ino) + " byte"});
    return std::stoull(out.substr(out.find('(') + 1));
}

void write_bytes(const fs::path& image, std::uint64_t at, const std::string& bytes) {
    std::fstream file(image, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(at));
    file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(file.good());
}

std::string big_endian(std::uint64_t value, std::size_t width) {
    std::string bytes(width, '\0');
    for (std::size_t i = 0; i < width; ++i) {
        bytes[width - 1 - i] = static_cast<char>((value >> (8 * i)) & 0xFFU);
    }
    return bytes;
}

// A host folder turned into mkfs.xfs proto lines (names hold no space or colon); extra lines go in the root.
void proto_lines(const fs::path& folder, std::string& out) {
    std::vector<fs::path> children;
    for (const auto& entry : fs::directory_iterator(folder)) {
        children.push_back(entry.path());
    }
    std::sort(children.begin(), children.end());
    for (const auto& child : children) {
        const std::string name = child.filename().string();
        if (fs::is_directory(child)) {
            out += name + " d--755 0 0\n";
            proto_lines(child, out);
            out += "$\n";
        } else {
            out += name + " ---644 0 0 " + child.string() + "\n";
        }
    }
}

void make_xfs(const fs::path& tree, const fs::path& image, const std::string& size,
              const std::string& options, const std::string& extra_root_lines = "") {
    std::string proto = "coldscan\n0 0\nd--755 0 0\n";
    proto_lines(tree, proto);
    proto += extra_root_lines + "$\n";
    test::write_file(image.string() + ".proto", proto);
    run_shell("rm -f " + image.string() + " && truncate -s " + size + " " + image.string() + " && " + k_mkfs +
              options + " -p " + image.string() + ".proto " + image.string());
}

std::unique_ptr<XfsFilesystem> open_image(const fs::path& image) {
    auto device = std::make_shared<FileDevice>(image);
    auto xfs = XfsFilesystem::open(device, 0, device->size());
    INFO((xfs ? "" : xfs.error().message));
    REQUIRE(xfs);
    return std::move(*xfs);
}

// Every regular file of a host tree by its path inside, with its bytes.
std::map<std::string, std::string> host_files(const fs::path& tree) {
    std::map<std::string, std::string> files;
    for (const auto& entry : fs::recursive_directory_iterator(tree)) {
        if (entry.is_regular_file()) {
            files.emplace("/" + fs::relative(entry.path(), tree).string(), test::read_text(entry.path()));
        }
    }
    return files;
}

// The tree most tests use: many small files, big ones, nested and UTF-8 folders, an empty file, a 3,000-entry
// folder (node form), and, in the root, a symbolic link, a fifo and a character device (never listed).
struct Fixture {
    TempDir dir;
    fs::path tree;
    std::map<std::string, std::string> files;
};

const std::string k_special_root_lines = "link l--777 0 0 big.bin\npipe p--644 0 0\nnull c--666 0 0 1 3\n";

Fixture& tree_fixture() {
    static std::optional<Fixture> fixture;
    if (!fixture) {
        auto dir = TempDir::create("coldscan-xfstest");
        REQUIRE(dir);
        const fs::path tree = dir->path() / "tree";
        for (unsigned i = 0; i < 200; ++i) {
            test::write_file(tree / "small" / ("file_" + std::to_string(i) + ".txt"),
                             "small file " + std::to_string(i) + "\n" + pattern(i * 37 % 5000, i));
        }
        test::write_file(tree / "big.bin", pattern((3U << 20) + 1, 1));
        test::write_file(tree / "medium.bin", pattern(1536U << 10, 2));
        test::write_file(tree / "empty", "");
        test::write_file(tree / "a/b/c/d/deep.txt", "deep\n");
        test::write_file(tree / "caf\xc3\xa9" / "\xe6\x97\xa5\xe6\x9c\xac.txt", "utf-8 names\n");
        for (unsigned i = 0; i < 3000; ++i) {
            test::write_file(tree / "many" / ("entry_" + std::to_string(i)),
                             "many " + std::to_string(i) + "\n");
        }
        // Edited by the damage tests (a short-form folder): hard link, renames, extents, times, damage.
        for (const char* name : {"one.txt", "two.txt", "x_y.txt", "time.txt", "old.txt", "rt.bin", "far.bin",
                                 "gone.txt", "loop/inner.txt"}) {
            test::write_file(tree / "edits" / name, std::string("edit me: ") + name + "\n");
        }
        test::write_file(tree / "edits/frag.bin", pattern(100000, 3));
        fixture.emplace(Fixture{std::move(*dir), tree, host_files(tree)});
    }
    return *fixture;
}

std::int64_t now_seconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

struct Image {
    fs::path path;
    std::int64_t made_after = 0; // its timestamps lie in [made_after, made_before]
    std::int64_t made_before = 0;
};

// The tree as a v5 image (xfsprogs 6.1 defaults: CRC, ftype, bigtime, reflink) or a v4 one without ftype and
// with 256-byte inodes (a root too big for its inode: a block folder).
const Image& tree_image(bool v4) {
    static std::optional<Image> images[2];
    auto& image = images[v4 ? 1 : 0];
    if (!image) {
        Fixture& fixture = tree_fixture();
        Image made{fixture.dir.path() / (v4 ? "v4.img" : "v5.img"), now_seconds() - 1, 0};
        make_xfs(fixture.tree, made.path, "64m",
                 v4 ? "-m crc=0 -n ftype=0 -i size=256 -L oldroot"
                    : "-L realroot -m uuid=0becb1f9-135a-4686-8f54-7e5912b34baa",
                 k_special_root_lines);
        made.made_before = now_seconds() + 1;
        image = made;
    }
    return *image;
}

// A copy of an image to edit.
fs::path copy_of(const fs::path& image, const std::string& name) {
    const fs::path copy = image.parent_path() / name;
    run_shell("cp --sparse=always " + image.string() + " " + copy.string());
    return copy;
}

void check_tree(XfsFilesystem& xfs, const Image& image, const std::map<std::string, std::string>& expected) {
    auto listed = xfs.list();
    REQUIRE(listed);
    auto files = by_path(std::move(*listed));
    std::vector<std::string> paths;
    for (const auto& [path, file] : files) {
        paths.push_back(path);
    }
    std::vector<std::string> expected_paths;
    for (const auto& [path, bytes] : expected) {
        expected_paths.push_back(path);
    }
    CHECK(paths == expected_paths); // regular files only: no link, pipe, null, folders
    const std::uint64_t fs_size = fs::file_size(image.path);
    for (const auto& [path, bytes] : expected) {
        const FsFile& file = files.at(path);
        INFO(path);
        REQUIRE_FALSE(file.problem);
        CHECK(file.size == bytes.size());
        CHECK(file.links == 1);
        CHECK(file.mtime >= image.made_after);
        CHECK(file.mtime <= image.made_before);
        CHECK(file.stamp.inode == file.inode);
        CHECK(file.stamp.mtime_ns / 1'000'000'000 == file.mtime);
        CHECK(detail::well_formed(file, fs_size));
        CHECK(read_whole(xfs, file, 1 << 20) == bytes);
    }
}

} // namespace

TEST_CASE("XfsFilesystem::open", "[xfs]") {
    const Image& image = tree_image(false);
    auto device = std::make_shared<FileDevice>(image.path);

    SECTION("identity as blkid shows it") {
        auto xfs = XfsFilesystem::open(device, 0, device->size());
        REQUIRE(xfs);
        CHECK((*xfs)->type() == "xfs");
        CHECK((*xfs)->uuid() == "0becb1f9-135a-4686-8f54-7e5912b34baa");
        CHECK((*xfs)->label() == "realroot");
        const std::string blkid = shell_output("blkid -p -o value -s UUID " + image.path.string());
        CHECK(blkid == (*xfs)->uuid() + "\n");
    }
    SECTION("open_filesystem_reader picks it") {
        auto reader = detail::open_filesystem_reader(device, 0, device->size());
        REQUIRE(reader);
        CHECK((*reader)->type() == "xfs");
    }
    SECTION("a window outside the disk") {
        auto outside = XfsFilesystem::open(device, 1 << 20, device->size());
        REQUIRE_FALSE(outside);
        CHECK(outside.error().code == Errc::invalid_argument);
    }
    SECTION("no XFS there") {
        auto blank = XfsFilesystem::open(device, 4096, 1 << 20);
        REQUIRE_FALSE(blank);
        CHECK(blank.error().code == Errc::unsupported);
    }
    SECTION("a truncated image") {
        const fs::path cut = copy_of(image.path, "cut.img");
        fs::resize_file(cut, fs::file_size(cut) / 2);
        auto short_device = std::make_shared<FileDevice>(cut);
        auto xfs = XfsFilesystem::open(short_device, 0, short_device->size());
        REQUIRE_FALSE(xfs);
        CHECK(xfs.error().code == Errc::corrupt);
        CHECK(xfs.error().message.find("truncated") != std::string::npos);
    }
}

TEST_CASE("XfsFilesystem::open refuses a bad superblock", "[xfs]") {
    const Image& image = tree_image(false);
    struct Damage {
        const char* what;
        std::uint64_t at;
        std::string bytes;
        Errc code;
    };
    const std::vector<Damage> damages{
        {"block size 3000", 4, big_endian(3000, 4), Errc::corrupt},
        {"block count past the AGs", 8, big_endian(1ULL << 40, 8), Errc::corrupt},
        {"root inode outside", 56, big_endian(1ULL << 62, 8), Errc::corrupt},
        {"no allocation group", 88, big_endian(0, 4), Errc::corrupt},
        {"AG size log off", 124, big_endian(30, 1), Errc::corrupt},
        {"inode size 100", 104, big_endian(100, 2), Errc::corrupt},
        {"inodes per block off", 106, big_endian(3, 2), Errc::corrupt},
        {"directory blocks of 1 MiB", 192, big_endian(8, 1), Errc::corrupt},
        {"version 3", 100, big_endian(0xB4A3, 2), Errc::unsupported},
        {"an unknown incompatible feature", 216, big_endian(0x800B, 4), Errc::unsupported},
        {"root inode not an inode", 56, big_endian(1, 8), Errc::corrupt},
    };
    for (const auto& damage : damages) {
        INFO(damage.what);
        const fs::path bad = copy_of(image.path, "bad.img");
        write_bytes(bad, damage.at, damage.bytes);
        auto device = std::make_shared<FileDevice>(bad);
        auto xfs = XfsFilesystem::open(device, 0, device->size());
        REQUIRE_FALSE(xfs);
        CHECK(xfs.error().code == damage.code);
        CHECK_FALSE(xfs.error().message.empty());
    }
}

TEST_CASE("XfsFilesystem::list on v5", "[xfs]") {
    const Image& image = tree_image(false);
    auto xfs = open_image(image.path);
    check_tree(*xfs, image, tree_fixture().files);

    SECTION("reads in any chunking, from two threads at once") {
        auto files = by_path(*xfs->list());
        const FsFile& big = files.at("/big.bin");
        const std::string& expected = tree_fixture().files.at("/big.bin");
        CHECK(read_whole(*xfs, big, 77777) == expected);
        std::string first;
        std::string second;
        std::thread a([&] { first = read_whole(*xfs, big, 65536); });
        std::thread b([&] { second = read_whole(*xfs, big, 100000); });
        a.join();
        b.join();
        CHECK(first == expected);
        CHECK(second == expected);
        std::byte buffer[16];
        auto n = xfs->read(big, big.size, buffer);
        REQUIRE(n);
        CHECK(*n == 0);
    }
    SECTION("read_small_file and is_folder follow paths") {
        CHECK(xfs->read_small_file("/a/b/c/d/deep.txt", 100) == "deep\n");
        CHECK(xfs->read_small_file("/a/b/../b/c/./d/deep.txt", 3) == "dee");
        CHECK(xfs->read_small_file("/many/entry_2999", 100) == "many 2999\n");
        CHECK(xfs->read_small_file("/caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac.txt", 100) == "utf-8 names\n");
        CHECK(xfs->read_small_file("/empty", 100) == "");
        CHECK_FALSE(xfs->read_small_file("/link", 100)); // a symbolic link is not followed
        CHECK_FALSE(xfs->read_small_file("/many/entry_3000", 100));
        CHECK_FALSE(xfs->read_small_file("/a/b", 100));
        CHECK(xfs->is_folder("/"));
        CHECK(xfs->is_folder("/a/b/c"));
        CHECK(xfs->is_folder("/many"));
        CHECK_FALSE(xfs->is_folder("/big.bin"));
        CHECK_FALSE(xfs->is_folder("/nothing"));
    }
}

TEST_CASE("XfsFilesystem::list on v4 without file types", "[xfs]") {
    const Image& image = tree_image(true);
    auto xfs = open_image(image.path);
    CHECK(xfs->label() == "oldroot");
    check_tree(*xfs, image, tree_fixture().files);
    CHECK(xfs->read_small_file("/small/file_7.txt", 13) == "small file 7\n");
}

namespace {

// The index of name in a short-form folder's entry list, as xfs_db prints it.
std::size_t sf_index(const fs::path& image, const std::string& folder, const std::string& name) {
    std::istringstream lines(xfs_db(image, {"path " + folder, "print u3.sfdir3.list"}));
    for (std::string line; std::getline(lines, line);) {
        const auto suffix = "].name = \"" + name + "\"";
        if (line.ends_with(suffix)) {
            return std::stoul(line.substr(line.find('[') + 1));
        }
    }
    FAIL("no entry " << name << " in " << folder);
    return 0;
}

std::string big_time(std::int64_t seconds, std::uint32_t nanos) {
    const auto raw = static_cast<std::uint64_t>(seconds + (std::int64_t{1} << 31)) * 1'000'000'000U + nanos;
    return big_endian(raw, 8);
}

} // namespace

TEST_CASE("XfsFilesystem::list on edited and damaged files", "[xfs]") {
    const Image& original = tree_image(false);
    const fs::path image = copy_of(original.path, "edited.img");
    const auto ino = [&](const std::string& name) { return inode_of(image, "/edits", name); };
    const std::string one = std::to_string(ino("one.txt"));
    const std::string loop = std::to_string(inode_of(image, "/edits", "loop"));
    // frag.bin (25 blocks) becomes blocks 0-9 as they were, a hole, 5 unwritten blocks, a hole, then its old
    // blocks 15-19 at file blocks 20-24.
    const std::string frag = std::to_string(ino("frag.bin"));
    const std::uint64_t frag_start =
        field_value(xfs_db(image, {"inode " + frag, "print u3.bmx[0].startblock"}));
    xfs_db(image,
           {"path /edits",
            "write u3.sfdir3.list[" + std::to_string(sf_index(image, "/edits", "two.txt")) + "].inumber.i4 " +
                one,
            "write u3.sfdir3.list[" + std::to_string(sf_index(image, "/edits", "x_y.txt")) +
                "].name \"x y.txt\"",
            "inode " + one,
            "write core.nlinkv2 2",
            "inode " + frag,
            "write core.nextents 3",
            "write u3.bmx[0].blockcount 10",
            "write u3.bmx[1].startoff 12",
            "write u3.bmx[1].startblock " + std::to_string(frag_start + 10),
            "write u3.bmx[1].blockcount 5",
            "write u3.bmx[1].extentflag 1",
            "write u3.bmx[2].startoff 20",
            "write u3.bmx[2].startblock " + std::to_string(frag_start + 15),
            "write u3.bmx[2].blockcount 5",
            "inode " + std::to_string(ino("rt.bin")),
            "write core.realtime 1",
            "inode " + std::to_string(ino("far.bin")),
            "write u3.bmx[0].startblock 999999999",
            "path /edits/loop",
            "write u3.sfdir3.list[0].inumber.i4 " + loop},
           true);
    // Timestamps past 2038 and before 1970 (bigtime: u64 nanoseconds since 1901-12-13T20:45:52Z).
    write_bytes(image, inode_byte(image, ino("time.txt")) + 40, big_time(4102444800, 123456789));
    write_bytes(image, inode_byte(image, ino("old.txt")) + 40, big_time(-100, 0));
    write_bytes(image, inode_byte(image, ino("gone.txt")), std::string(2, '\0')); // no inode magic

    auto xfs = open_image(image);
    auto listed = xfs->list();
    REQUIRE(listed);
    auto files = by_path(std::move(*listed));
    std::vector<std::string> problems;
    for (const auto& [path, file] : files) {
        if (file.problem) {
            problems.push_back(path);
        }
    }
    CHECK(problems == std::vector<std::string>{"/edits/far.bin", "/edits/gone.txt", "/edits/loop/inner.txt",
                                               "/edits/rt.bin"});
    CHECK(files.at("/edits/rt.bin").problem->code == Errc::unsupported);
    CHECK(files.at("/edits/far.bin").problem->code == Errc::corrupt);
    CHECK(files.at("/edits/gone.txt").problem->code == Errc::corrupt);
    CHECK(files.at("/edits/loop/inner.txt").problem->code == Errc::corrupt);
    std::byte buffer[8];
    CHECK_FALSE(xfs->read(files.at("/edits/far.bin"), 0, buffer));

    SECTION("a hard link: two paths, one inode") {
        CHECK(files.at("/edits/two.txt").inode == files.at("/edits/one.txt").inode);
        CHECK(files.at("/edits/one.txt").links == 2);
        CHECK(read_whole(*xfs, files.at("/edits/two.txt"), 4096) == "edit me: one.txt\n");
    }
    SECTION("a name with a space") {
        REQUIRE(files.contains("/edits/x y.txt"));
        CHECK_FALSE(files.contains("/edits/x_y.txt"));
        CHECK(read_whole(*xfs, files.at("/edits/x y.txt"), 4096) == "edit me: x_y.txt\n");
    }
    SECTION("holes and unwritten extents read as zeros") {
        const FsFile& file = files.at("/edits/frag.bin");
        const std::string original_bytes = pattern(100000, 3);
        const std::string expected =
            original_bytes.substr(0, 40960) + std::string(40960, '\0') + original_bytes.substr(61440, 18080);
        CHECK(read_whole(*xfs, file, 5000) == expected);
        REQUIRE(file.runs.size() == 3);
        CHECK(file.runs[1].sparse);
        CHECK(file.runs[1].length == 40960);
        CHECK(file.runs[2].length == 18080);
    }
    SECTION("timestamps past 2038 and before 1970") {
        CHECK(files.at("/edits/time.txt").mtime == 4102444800);
        CHECK(files.at("/edits/time.txt").stamp.mtime_ns == 4102444800123456789);
        CHECK(files.at("/edits/old.txt").mtime == -100);
    }
    SECTION("the rest of the tree is whole") {
        for (const auto& [path, bytes] : tree_fixture().files) {
            if (!path.starts_with("/edits/")) {
                INFO(path);
                CHECK(read_whole(*xfs, files.at(path), 1 << 20) == bytes);
            }
        }
    }
}

TEST_CASE("XfsFilesystem::list on a damaged folder block", "[xfs]") {
    const Image& original = tree_image(false);
    const fs::path image = copy_of(original.path, "damaged.img");
    // The second block of /many (a node-form folder): its magic gone.
    std::istringstream lines(xfs_db(image, {"path /many", "bmap"}));
    std::uint64_t second_block = 0;
    for (std::string line; std::getline(lines, line);) {
        std::uint64_t offset = 0, start = 0, count = 0;
        REQUIRE(std::sscanf(line.c_str(), "data offset %lu startblock %lu (%*u/%*u) count %lu", &offset,
                            &start, &count) == 3);
        if (offset <= 1 && 1 < offset + count) {
            second_block = start + 1 - offset;
        }
    }
    REQUIRE(second_block != 0);
    const std::string byte = xfs_db(image, {"convert fsblock " + std::to_string(second_block) + " byte"});
    write_bytes(image, std::stoull(byte.substr(byte.find('(') + 1)), std::string(4, '\0'));

    auto xfs = open_image(image);
    auto listed = xfs->list();
    REQUIRE(listed);
    auto files = by_path(std::move(*listed));
    REQUIRE(files.contains("/many"));
    CHECK(files.at("/many").problem->code == Errc::corrupt);
    const auto in_many =
        std::ranges::count_if(files, [](const auto& f) { return f.first.starts_with("/many/"); });
    CHECK(in_many > 2000); // the other blocks' entries
    CHECK(in_many < 3000);
    CHECK(files.contains("/big.bin"));
}

TEST_CASE("XfsFilesystem::list on a btree folder of 50000 entries", "[xfs]") {
    auto dir = TempDir::create("coldscan-xfstest");
    REQUIRE(dir);
    const fs::path tree = dir->path() / "tree";
    std::map<std::string, std::string> expected;
    for (unsigned i = 0; i < 50000; ++i) {
        const std::string name = "entry_" + std::to_string(i) + "_with_a_longer_name";
        expected.emplace("/big/" + name, "entry " + std::to_string(i) + "\n");
    }
    for (const auto& [path, bytes] : expected) {
        test::write_file(tree.string() + path, bytes);
    }
    // 1 KiB blocks, 4 KiB folder blocks (several fs blocks each), 64-bit extent counters.
    Image image{dir->path() / "big.img", now_seconds() - 1, 0};
    make_xfs(tree, image.path, "512m", "-b size=1024 -i nrext64=1");
    image.made_before = now_seconds() + 1;
    const std::uint64_t big = inode_of(image.path, "/", "big");
    REQUIRE(xfs_db(image.path, {"inode " + std::to_string(big), "print core.format"}) ==
            "core.format = 3 (btree)\n");

    {
        auto xfs = open_image(image.path);
        check_tree(*xfs, image, expected);
        CHECK(xfs->read_small_file("/big/entry_49999_with_a_longer_name", 100) == "entry 49999\n");
    }
    SECTION("the folder's btree as a regular file's") {
        // The folder made a regular file: its bytes are its blocks below 32 GiB, where xfs_db's bmap puts
        // them.
        const fs::path flipped = copy_of(image.path, "flipped.img");
        xfs_db(flipped, {"inode " + std::to_string(big), "write core.mode 0100644"}, true);
        const std::uint64_t ag_blocks = field_value(xfs_db(flipped, {"sb 0", "print agblocks"}));
        const std::uint64_t size =
            field_value(xfs_db(flipped, {"inode " + std::to_string(big), "print core.size"}));
        FileDevice disk(flipped);
        std::string bytes(size, '\0');
        std::istringstream lines(xfs_db(flipped, {"inode " + std::to_string(big), "bmap"}));
        std::size_t extents = 0;
        for (std::string line; std::getline(lines, line);) {
            // "data offset 0 startblock 16411 (1/27) count 1 flag 0"
            std::uint64_t offset = 0, ag = 0, ag_block = 0, count = 0;
            REQUIRE(std::sscanf(line.c_str(), "data offset %lu startblock %*u (%lu/%lu) count %lu", &offset,
                                &ag, &ag_block, &count) == 4);
            for (std::uint64_t i = 0; i < count && (offset + i) * 1024 < size; ++i) {
                const std::uint64_t at = (ag * ag_blocks + ag_block + i) * 1024;
                const std::uint64_t length = std::min<std::uint64_t>(1024, size - (offset + i) * 1024);
                REQUIRE(disk.read(
                    at, std::as_writable_bytes(std::span(bytes)).subspan((offset + i) * 1024, length)));
            }
            ++extents;
        }
        CHECK(extents > 100);
        auto xfs = open_image(flipped);
        auto listed = xfs->list();
        REQUIRE(listed);
        auto files = by_path(std::move(*listed));
        REQUIRE(files.size() == 1);
        const FsFile& file = files.at("/big");
        REQUIRE_FALSE(file.problem);
        CHECK(file.size == size);
        CHECK(read_whole(*xfs, file, 1 << 20) == bytes);
    }
}

TEST_CASE("XfsFilesystem::list on the smallest and largest blocks", "[xfs]") {
    auto dir = TempDir::create("coldscan-xfstest");
    REQUIRE(dir);
    const fs::path tree = dir->path() / "tree";
    test::write_file(tree / "x.bin", pattern(300000, 5));
    test::write_file(tree / "empty", "");
    for (unsigned i = 0; i < 40; ++i) {
        test::write_file(tree / "dir" / ("f" + std::to_string(i)), pattern(i * 100, i));
    }
    const auto expected = host_files(tree);
    for (const char* options : {"-m crc=0 -b size=512", "-b size=65536"}) {
        INFO(options);
        Image image{dir->path() / "blocks.img", now_seconds() - 1, 0};
        make_xfs(tree, image.path, "512m", options);
        image.made_before = now_seconds() + 1;
        auto xfs = open_image(image.path);
        check_tree(*xfs, image, expected);
    }
}

TEST_CASE("XfsFilesystem in the filesystem worker", "[xfs]") {
    // The confined worker opens the image through open_filesystem_reader and sends back the same records.
    const Image& image = tree_image(false);
    const auto size = fs::file_size(image.path);
    auto device = std::make_shared<FileDevice>(image.path);
    auto sandboxed =
        detail::SandboxedFilesystem::open(detail::WorkerDisk{"", "", image.path.string()}, device, 0, size);
    REQUIRE(sandboxed);
    CHECK((*sandboxed)->type() == "xfs");
    CHECK((*sandboxed)->uuid() == "0becb1f9-135a-4686-8f54-7e5912b34baa");
    CHECK((*sandboxed)->label() == "realroot");
    auto listed = (*sandboxed)->list();
    REQUIRE(listed);
    auto local = open_image(image.path)->list();
    REQUIRE(local);
    REQUIRE(listed->size() == local->size());
    for (std::size_t i = 0; i < listed->size(); ++i) {
        const FsFile& a = (*listed)[i];
        const FsFile& b = (*local)[i];
        INFO(a.path);
        CHECK(a.path == b.path);
        CHECK(a.size == b.size);
        CHECK(a.inode == b.inode);
        CHECK(a.stamp.mtime_ns == b.stamp.mtime_ns);
        CHECK(a.runs.size() == b.runs.size());
    }
    const auto files = by_path(std::move(*listed));
    CHECK(read_whole(**sandboxed, files.at("/big.bin"), 1 << 20) == tree_fixture().files.at("/big.bin"));
    CHECK((*sandboxed)->read_small_file("/a/b/c/d/deep.txt", 100) == "deep\n");
    CHECK((*sandboxed)->is_folder("/many"));
}
