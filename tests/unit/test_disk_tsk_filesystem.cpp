// The direct filesystem reader on real ext4, FAT and NTFS images made in user space (mkfs.ext4 -d, mtools,
// mkntfs + ntfscp): the listed files and every byte read back must equal what was put in.
#include "../../disk-access/src/tsk_filesystem.hpp"
#include "coldscan/common/temp_dir.hpp"
#include "test_filesystem_support.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>
#include <map>
#include <thread>

using namespace coldscan;
using namespace coldscan::disk;
using coldscan::disk::detail::FsFile;
using coldscan::disk::detail::TskFilesystem;
using coldscan::test::by_path;
using coldscan::test::FileDevice;
using coldscan::test::pattern;
using coldscan::test::read_whole;
using coldscan::test::run_shell;

namespace {

std::vector<std::string> paths_of(const std::map<std::string, FsFile>& files) {
    std::vector<std::string> paths;
    for (const auto& [path, file] : files) {
        paths.push_back(path);
    }
    return paths;
}

std::shared_ptr<FileDevice> device_of(const std::filesystem::path& image) {
    return std::make_shared<FileDevice>(image);
}

} // namespace

TEST_CASE("TskFilesystem on ext4") {
    auto dir = TempDir::create("coldscan-tsktest");
    REQUIRE(dir);
    const auto tree = dir->path() / "tree";
    const std::string big = pattern(5 << 20, 1); // several extents' worth
    const std::string small = "hello ext4\n";
    test::write_file(tree / "small.txt", small);
    test::write_file(tree / "big.bin", big);
    test::write_file(tree / "a/b/c/nested.txt", pattern(70000, 2));
    test::write_file(tree / "empty", "");
    run_shell(
        "cd " + tree.string() + " && ln small.txt hardlink.txt && ln -s small.txt symlink.txt && " +
        "truncate -s 3M sparse.bin && printf 'middle' | dd of=sparse.bin bs=1 seek=1500000 conv=notrunc " +
        "status=none");
    const auto image = dir->path() / "ext4.img";
    run_shell("truncate -s 32M " + image.string() +
              " && mkfs.ext4 -q -F -L rootfs -U 11111111-2222-3333-4444-555555555555 -d " + tree.string() +
              " " + image.string());

    auto fs = TskFilesystem::open(device_of(image), 0, std::filesystem::file_size(image));
    REQUIRE(fs);
    CHECK((*fs)->type() == "ext4");
    CHECK((*fs)->uuid() == "11111111-2222-3333-4444-555555555555");
    CHECK((*fs)->label() == "rootfs");
    auto listed = (*fs)->list();
    REQUIRE(listed);
    auto files = by_path(std::move(*listed));
    // Regular files only (no symlink, no folders); lost+found is a folder.
    const std::vector<std::string> paths = paths_of(files);
    CHECK(paths == std::vector<std::string>{"/a/b/c/nested.txt", "/big.bin", "/empty", "/hardlink.txt",
                                            "/small.txt", "/sparse.bin"});
    CHECK(files["/hardlink.txt"].inode == files["/small.txt"].inode);
    CHECK(files["/small.txt"].links == 2);
    CHECK(files["/big.bin"].size == big.size());
    CHECK(files["/big.bin"].stamp.mtime_ns != 0);

    SECTION("every byte as written, in any chunking") {
        CHECK(read_whole(**fs, files["/big.bin"], 1 << 20) == big);
        CHECK(read_whole(**fs, files["/big.bin"], 77777) == big); // chunks across run boundaries
        CHECK(read_whole(**fs, files["/small.txt"], 4096) == small);
        CHECK(read_whole(**fs, files["/a/b/c/nested.txt"], 4096) == pattern(70000, 2));
        CHECK(files["/empty"].size == 0);
        const std::string sparse = read_whole(**fs, files["/sparse.bin"], 1 << 20);
        REQUIRE(sparse.size() == 3U << 20);
        CHECK(sparse.substr(1500000, 6) == "middle");
        CHECK(sparse.find_first_not_of('\0') == 1500000);
    }
    SECTION("reads from two threads at once") {
        std::string first;
        std::string second;
        std::thread a([&] { first = read_whole(**fs, files["/big.bin"], 65536); });
        std::thread b([&] { second = read_whole(**fs, files["/big.bin"], 100000); });
        a.join();
        b.join();
        CHECK(first == big);
        CHECK(second == big);
    }
    SECTION("a read past the end gives nothing") {
        std::byte buffer[16];
        auto n = (*fs)->read(files["/small.txt"], small.size(), buffer);
        REQUIRE(n);
        CHECK(*n == 0);
    }
}

TEST_CASE("TskFilesystem on FAT") {
    auto dir = TempDir::create("coldscan-tsktest");
    REQUIRE(dir);
    const auto image = dir->path() / "fat.img";
    test::write_file(dir->path() / "doc.bin", pattern(300000, 3));
    test::write_file(dir->path() / "note.txt", "fat note\n");
    run_shell("truncate -s 16M " + image.string() + " && mkfs.vfat -i 1234ABCD -n FATVOL " + image.string() +
              " >/dev/null && mmd -i " + image.string() + " ::/Docs && mcopy -i " + image.string() + " " +
              (dir->path() / "doc.bin").string() + " ::/Docs/doc.bin && mcopy -i " + image.string() + " " +
              (dir->path() / "note.txt").string() + " ::/note.txt");
    auto fs = TskFilesystem::open(device_of(image), 0, std::filesystem::file_size(image));
    REQUIRE(fs);
    CHECK((*fs)->type() == "vfat");
    CHECK((*fs)->uuid() == "1234-ABCD");
    CHECK((*fs)->label() == "FATVOL");
    auto listed = (*fs)->list();
    REQUIRE(listed);
    auto files = by_path(std::move(*listed));
    REQUIRE(files.size() == 2); // TSK's virtual $MBR, $FAT1, $FAT2 are left out
    REQUIRE(files.contains("/Docs/doc.bin"));
    CHECK(read_whole(**fs, files["/Docs/doc.bin"], 65536) == pattern(300000, 3));
    CHECK(read_whole(**fs, files["/note.txt"], 65536) == "fat note\n");
}

TEST_CASE("TskFilesystem on NTFS") {
    auto dir = TempDir::create("coldscan-tsktest");
    REQUIRE(dir);
    const auto image = dir->path() / "ntfs.img";
    test::write_file(dir->path() / "big.bin", pattern(400000, 4));
    test::write_file(dir->path() / "small.txt", "tiny\n"); // small enough to stay resident in its MFT record
    test::write_file(dir->path() / "hidden.txt", "X5O hidden in a stream\n");
    const std::string img = image.string();
    run_shell("truncate -s 16M " + img + " && mkntfs -F -Q -q -L WINVOL " + img + " 2>/dev/null && cd " +
              dir->path().string() + " && ntfscp -q " + img + " big.bin big.bin && ntfscp -q " + img +
              " small.txt small.txt && ntfscp -q -N Zone.Identifier " + img + " hidden.txt small.txt");
    auto fs = TskFilesystem::open(device_of(image), 0, std::filesystem::file_size(image));
    REQUIRE(fs);
    CHECK((*fs)->type() == "ntfs");
    CHECK((*fs)->uuid().size() == 16);
    CHECK((*fs)->label() == "WINVOL");
    auto listed = (*fs)->list();
    REQUIRE(listed);
    auto files = by_path(std::move(*listed));
    const std::vector<std::string> paths = paths_of(files);
    // No $MFT, $Extend/... : the volume's metadata files stay hidden, as ntfs-3g hides them.
    CHECK(paths == std::vector<std::string>{"/big.bin", "/small.txt", "/small.txt:Zone.Identifier"});
    CHECK(files["/small.txt:Zone.Identifier"].inode == files["/small.txt"].inode);
    CHECK(read_whole(**fs, files["/big.bin"], 65536) == pattern(400000, 4));
    CHECK(read_whole(**fs, files["/small.txt"], 65536) == "tiny\n");
    CHECK(read_whole(**fs, files["/small.txt:Zone.Identifier"], 7) == "X5O hidden in a stream\n");
}

TEST_CASE("TskFilesystem refusals") {
    auto dir = TempDir::create("coldscan-tsktest");
    REQUIRE(dir);
    const auto image = dir->path() / "blank.img";
    run_shell("truncate -s 4M " + image.string());
    auto fs = TskFilesystem::open(device_of(image), 0, 4 << 20);
    REQUIRE_FALSE(fs);
    CHECK(fs.error().code == Errc::unsupported);
    auto outside = TskFilesystem::open(device_of(image), 2 << 20, 4 << 20);
    REQUIRE_FALSE(outside);
    CHECK(outside.error().code == Errc::invalid_argument);
}
