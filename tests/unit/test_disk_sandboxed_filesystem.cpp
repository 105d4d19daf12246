// The filesystem worker: the same ext4 and NTFS images read in process and through a confined worker must
// give the same listing, the same bytes and the same inspection answers; a worker that dies fails cleanly.
#include "../../disk-access/src/filesystem_wire.hpp"
#include "../../disk-access/src/sandboxed_filesystem.hpp"
#include "../../disk-access/src/tsk_filesystem.hpp"
#include "coldscan/common/temp_dir.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>
#include <csignal>
#include <cstdlib>
#include <map>

using namespace coldscan;
using namespace coldscan::disk;
using coldscan::disk::detail::DataRun;
using coldscan::disk::detail::FilesystemReader;
using coldscan::disk::detail::FsFile;
using coldscan::disk::detail::SandboxedFilesystem;
using coldscan::disk::detail::TskFilesystem;
using coldscan::test::FileDevice;
using coldscan::test::pattern;
using coldscan::test::run_shell;

namespace {

std::string read_whole(FilesystemReader& fs, const FsFile& file) {
    std::string bytes(file.size, '\0');
    std::uint64_t offset = 0;
    while (offset < file.size) {
        auto span = std::span(reinterpret_cast<std::byte*>(bytes.data()) + offset,
                              std::min<std::uint64_t>(65536, file.size - offset));
        auto n = fs.read(file, offset, span);
        REQUIRE(n);
        REQUIRE(*n > 0);
        offset += *n;
    }
    return bytes;
}

// path -> (size, inode, mtime_ns, bytes)
std::map<std::string, std::tuple<std::uint64_t, std::uint64_t, std::int64_t, std::string>>
contents(FilesystemReader& fs) {
    auto listed = fs.list();
    REQUIRE(listed);
    std::map<std::string, std::tuple<std::uint64_t, std::uint64_t, std::int64_t, std::string>> out;
    for (const auto& file : *listed) {
        REQUIRE_FALSE(file.problem);
        out[file.path] = {file.size, file.inode, file.stamp.mtime_ns, read_whole(fs, file)};
    }
    return out;
}

void same_as_in_process(const std::filesystem::path& image) {
    const auto size = std::filesystem::file_size(image);
    auto device = std::make_shared<FileDevice>(image);
    auto local = TskFilesystem::open(device, 0, size);
    REQUIRE(local);
    auto sandboxed = SandboxedFilesystem::open(detail::WorkerDisk{"", "", image.string()}, device, 0, size);
    REQUIRE(sandboxed);
    CHECK((*sandboxed)->type() == (*local)->type());
    CHECK((*sandboxed)->uuid() == (*local)->uuid());
    CHECK((*sandboxed)->label() == (*local)->label());
    const auto expected = contents(**local);
    CHECK(expected.size() >= 3);
    CHECK(contents(**sandboxed) == expected);
}

} // namespace

TEST_CASE("SandboxedFilesystem reads as TskFilesystem does") {
    auto dir = TempDir::create("coldscan-fsworker");
    REQUIRE(dir);
    const auto tree = dir->path() / "tree";

    SECTION("ext4: files, nesting, a sparse file, inspection files") {
        test::write_file(tree / "etc/os-release", "ID=debian\nVERSION_ID=12\n");
        test::write_file(tree / "big.bin", pattern(3 << 20, 1));
        test::write_file(tree / "a/b/nested.txt", pattern(70000, 2));
        test::write_file(tree / "empty", "");
        run_shell("cd " + tree.string() +
                  " && truncate -s 2M sparse.bin && printf 'middle' | dd of=sparse.bin bs=1 seek=1500000 "
                  "conv=notrunc status=none");
        const auto image = dir->path() / "ext4.img";
        run_shell("truncate -s 32M " + image.string() + " && mkfs.ext4 -q -F -L rootfs -d " + tree.string() +
                  " " + image.string());
        same_as_in_process(image);

        auto device = std::make_shared<FileDevice>(image);
        auto fs = SandboxedFilesystem::open(detail::WorkerDisk{"", "", image.string()}, device, 0,
                                            std::filesystem::file_size(image));
        REQUIRE(fs);
        CHECK((*fs)->read_small_file("/etc/os-release", 4096) ==
              std::optional<std::string>("ID=debian\nVERSION_ID=12\n"));
        CHECK((*fs)->read_small_file("/etc/missing", 4096) == std::nullopt);
        CHECK((*fs)->is_folder("/a/b"));
        CHECK_FALSE((*fs)->is_folder("/big.bin"));
    }
    SECTION("NTFS: a resident file and an alternate data stream") {
        test::write_file(dir->path() / "big.bin", pattern(400000, 4));
        test::write_file(dir->path() / "small.txt", "tiny\n");
        test::write_file(dir->path() / "hidden.txt", "hidden in a stream\n");
        const auto image = dir->path() / "ntfs.img";
        const std::string img = image.string();
        run_shell("truncate -s 16M " + img + " && mkntfs -F -Q -q -L WINVOL " + img + " 2>/dev/null && cd " +
                  dir->path().string() + " && ntfscp -q " + img + " big.bin big.bin && ntfscp -q " + img +
                  " small.txt small.txt && ntfscp -q -N Zone.Identifier " + img + " hidden.txt small.txt");
        same_as_in_process(image);
    }
}

TEST_CASE("SandboxedFilesystem failures") {
    auto dir = TempDir::create("coldscan-fsworker");
    REQUIRE(dir);

    SECTION("no filesystem there is unsupported, as in process") {
        const auto image = dir->path() / "blank.img";
        run_shell("truncate -s 4M " + image.string());
        auto fs = SandboxedFilesystem::open(detail::WorkerDisk{"", "", image.string()},
                                            std::make_shared<FileDevice>(image), 0, 4 << 20);
        REQUIRE_FALSE(fs);
        CHECK(fs.error().code == Errc::unsupported);
    }
    SECTION("a worker that dies fails the listing with io, and later calls too") {
        const auto tree = dir->path() / "tree";
        test::write_file(tree / "file.txt", "x\n");
        const auto image = dir->path() / "ext4.img";
        run_shell("truncate -s 8M " + image.string() + " && mkfs.ext4 -q -F -d " + tree.string() + " " +
                  image.string());
        auto fs = SandboxedFilesystem::open(detail::WorkerDisk{"", "", image.string()},
                                            std::make_shared<FileDevice>(image), 0,
                                            std::filesystem::file_size(image));
        REQUIRE(fs);
        REQUIRE(::kill((*fs)->worker_pid(), SIGSEGV) == 0);
        auto listed = (*fs)->list();
        REQUIRE_FALSE(listed);
        CHECK(listed.error().code == Errc::io);
        CHECK(listed.error().message.find("filesystem worker") != std::string::npos);
        CHECK_FALSE((*fs)->is_folder("/"));
    }
    SECTION("a worker that hangs while listing is stopped after answer_within, and the listing fails") {
        const auto tree = dir->path() / "tree";
        test::write_file(tree / "file.txt", "x\n");
        const auto image = dir->path() / "ext4.img";
        run_shell("truncate -s 8M " + image.string() + " && mkfs.ext4 -q -F -L hangfs -d " + tree.string() +
                  " " + image.string());
        ::setenv("COLDSCAN_TEST_FS_WORKER_HANG_LABEL", "hangfs", 1); // the worker inherits it
        detail::WorkerLimits limits;
        limits.answer_within = std::chrono::seconds(2);
        auto fs = SandboxedFilesystem::open(detail::WorkerDisk{"", "", image.string()},
                                            std::make_shared<FileDevice>(image), 0,
                                            std::filesystem::file_size(image), nullptr, limits);
        ::unsetenv("COLDSCAN_TEST_FS_WORKER_HANG_LABEL");
        REQUIRE(fs);
        const pid_t pid = (*fs)->worker_pid();
        auto listed = (*fs)->list();
        REQUIRE_FALSE(listed);
        CHECK(listed.error().code == Errc::io);
        CHECK(listed.error().message.find("stopped answering") != std::string::npos);
        fs->reset(); // reaps it
        CHECK(::kill(pid, 0) != 0);
    }
}

namespace {

// Records what a listing charged to the read budget.
class RecordingThrottle final : public ReadThrottle {
public:
    void acquire(std::uint64_t bytes) override {
        ++calls;
        total += bytes;
    }
    int calls = 0;
    std::uint64_t total = 0;
};

} // namespace

TEST_CASE("SandboxedFilesystem charges a walk's reads to the read budget as it goes") {
    auto dir = TempDir::create("coldscan-fsworker");
    REQUIRE(dir);
    const auto tree = dir->path() / "tree";
    for (int d = 0; d < 20; ++d) {
        for (int f = 0; f < 50; ++f) {
            test::write_file(tree / ("d" + std::to_string(d)) / ("f" + std::to_string(f)), "x");
        }
    }
    const auto image = dir->path() / "ext4.img";
    run_shell("truncate -s 64M " + image.string() + " && mkfs.ext4 -q -F -d " + tree.string() + " " +
              image.string());
    const auto size = std::filesystem::file_size(image);
    auto device = std::make_shared<FileDevice>(image);

    auto charged_with = [&](std::uint64_t report_bytes) {
        detail::WorkerLimits limits;
        limits.report_bytes = report_bytes;
        auto throttle = std::make_shared<RecordingThrottle>();
        auto fs = SandboxedFilesystem::open(detail::WorkerDisk{"", "", image.string()}, device, 0, size,
                                            throttle, limits);
        REQUIRE(fs);
        auto listed = (*fs)->list();
        REQUIRE(listed);
        CHECK(listed->size() == 1000); // files; folders are not listed
        return std::pair{throttle->calls, throttle->total};
    };
    // Reports every 4 KiB: many charges along the walk, adding up to what one charge at the end would be.
    const auto [calls_paced, total_paced] = charged_with(4096);
    const auto [calls_once, total_once] = charged_with(1ULL << 40);
    CHECK(calls_paced > 10);
    CHECK(calls_once <= 2);          // (one more if the walk took over a second)
    CHECK(total_paced > 1000 * 128); // at least the 1000 files' inodes
    CHECK(total_paced == total_once);
}

TEST_CASE("well_formed") {
    FsFile file;
    file.size = 10000;
    file.runs = {DataRun{0, 4096, 8192, false}, DataRun{8192, 0, 4096, true}};
    CHECK(detail::well_formed(file, 1 << 20));
    SECTION("a run past the filesystem's end") {
        CHECK_FALSE(detail::well_formed(file, 8192));
    }
    SECTION("runs that do not start at 0 or leave a gap") {
        file.runs[0].file_offset = 4096;
        CHECK_FALSE(detail::well_formed(file, 1 << 20));
    }
    SECTION("runs shorter than the file") {
        file.size = 20000;
        CHECK_FALSE(detail::well_formed(file, 1 << 20));
    }
    SECTION("resident data shorter than the file") {
        file.runs.clear();
        file.resident.resize(100);
        CHECK_FALSE(detail::well_formed(file, 1 << 20));
        file.size = 100;
        CHECK(detail::well_formed(file, 1 << 20));
    }
}

TEST_CASE("read_disk_layout_in_worker answers as read_disk_layout does") {
    auto dir = TempDir::create("coldscan-fsworker");
    REQUIRE(dir);
    const auto image = dir->path() / "disk.img";
    auto both = [&]() {
        FileDevice device(image);
        auto local = detail::read_disk_layout({&device});
        auto remote = detail::read_disk_layout_in_worker({detail::WorkerDisk{"", "", image.string()}},
                                                         {std::filesystem::file_size(image)});
        return std::pair{std::move(local), std::move(remote)};
    };

    SECTION("GPT, MBR with logical partitions, and no table at all: the same table") {
        for (const char* script :
             {"label: gpt\\nstart=2048, size=20480\\nstart=22528, size=40960\\n",
              "label: dos\\nstart=2048, size=8192, type=83\\nstart=10240, size=40960, "
              "type=5\\nstart=12288, size=8192, type=7\\nstart=22528, size=8192, type=c\\n",
              ""}) {
            INFO(script);
            run_shell("rm -f " + image.string() + " && truncate -s 64M " + image.string() +
                      (*script != '\0' ? std::string(" && printf '") + script +
                                             "' | sfdisk -q --no-reread --no-tell-kernel " + image.string()
                                       : std::string()));
            auto [local, remote] = both();
            REQUIRE(remote);
            REQUIRE(local.tables.size() == 1);
            REQUIRE(remote->tables.size() == 1);
            REQUIRE(local.tables[0]);
            REQUIRE(remote->tables[0]);
            CHECK(detail::table_to_wire(*remote->tables[0]) == detail::table_to_wire(*local.tables[0]));
            CHECK(detail::volumes_to_wire(remote->volumes) == detail::volumes_to_wire(local.volumes));
            CHECK(remote->tables[0]->partitions.size() == (*script == '\0'    ? 0U
                                                           : script[7] == 'g' ? 2U
                                                                              : 4U));
        }
    }
    SECTION("a table that cannot be used is the same error") {
        run_shell("truncate -s 64M " + image.string() +
                  " && printf 'label: gpt\\nstart=2048, size=20480\\n' | " +
                  "sfdisk -q --no-reread --no-tell-kernel " + image.string() +
                  " && dd if=/dev/zero of=" + image.string() +
                  " bs=512 seek=1 count=1 conv=notrunc status=none && dd if=/dev/zero of=" + image.string() +
                  " bs=512 seek=131071 count=1 conv=notrunc status=none");
        auto [local, remote] = both();
        REQUIRE(remote);
        REQUIRE_FALSE(local.tables.at(0));
        REQUIRE_FALSE(remote->tables.at(0));
        CHECK(remote->tables[0].error().code == local.tables[0].error().code);
        CHECK(remote->tables[0].error().message == local.tables[0].error().message);
    }
    SECTION("a worker that crashes reading the table is an io error naming it") {
        run_shell("truncate -s 64M " + image.string());
        ::setenv("COLDSCAN_TEST_FS_WORKER_CRASH_LABEL", ":partition-table", 1);
        auto [local, remote] = both();
        ::unsetenv("COLDSCAN_TEST_FS_WORKER_CRASH_LABEL");
        REQUIRE(local.tables.at(0));
        REQUIRE_FALSE(remote);
        CHECK(remote.error().code == Errc::io);
        CHECK(remote.error().message.find("partition table worker") != std::string::npos);
    }
}

TEST_CASE("table_from_wire refuses tables no disk of that size can have") {
    const std::uint64_t disk = 64 << 20;
    auto table = [](const std::string& partitions, const std::string& kind = "gpt") {
        return R"({"kind":")" + kind + R"(","sector_size":512,"partitions":[)" + partitions +
               R"(],"warnings":[]})";
    };
    CHECK(detail::table_from_wire(table(R"([1,1048576,1048576,"t",false])"), disk));
    CHECK_FALSE(detail::table_from_wire(table(R"([1,1048576,0,"t",false])"), disk));        // empty
    CHECK_FALSE(detail::table_from_wire(table(R"([1,67108864,512,"t",false])"), disk));     // past the end
    CHECK_FALSE(detail::table_from_wire(table(R"([1,1048576,67108864,"t",false])"), disk)); // runs past it
    CHECK_FALSE(detail::table_from_wire(table(R"([2,1048576,512,"t",false],[2,2097152,512,"t",false])"),
                                        disk));                                       // a number twice
    CHECK_FALSE(detail::table_from_wire(table(R"([1,1048576,512,"t",true])"), disk)); // extended in a GPT
    CHECK_FALSE(detail::table_from_wire(table(R"([1,1048576,512,"t",false])", "none"), disk));
    CHECK_FALSE(detail::table_from_wire(table(R"([1,1048576,512,"t",false])", "apm"), disk));
    CHECK_FALSE(
        detail::table_from_wire(R"({"kind":"gpt","sector_size":1024,"partitions":[],"warnings":[]})", disk));
}
