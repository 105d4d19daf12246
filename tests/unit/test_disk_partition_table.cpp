// Partition tables written by sfdisk (the reference) into sparse files, plus damaged and hostile ones.
#include "coldscan/common/subprocess.hpp"
#include "coldscan/common/temp_dir.hpp"
#include "coldscan/disk/partition_table.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>
#include <fcntl.h>
#include <filesystem>
#include <string>
#include <unistd.h>
#include <vector>

using namespace coldscan;
using namespace coldscan::disk;
using coldscan::test::FileDevice;

namespace {

void run(const std::string& shell) {
    test::run_shell(shell);
}

// A sparse disk of mib MiB partitioned by an sfdisk script.
std::filesystem::path make_disk(const TempDir& dir, unsigned mib, const std::string& script) {
    const auto path = dir.path() / "disk.img";
    run("truncate -s " + std::to_string(mib) + "M " + path.string() + " && printf '" + script +
        "' | sfdisk -q --no-reread --no-tell-kernel " + path.string());
    return path;
}

void overwrite(const std::filesystem::path& path, std::uint64_t offset, const std::string& bytes) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    REQUIRE(::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset)) ==
            static_cast<ssize_t>(bytes.size()));
    ::close(fd);
}

} // namespace

TEST_CASE("read_partition_table") {
    auto dir = TempDir::create("coldscan-parttest");
    REQUIRE(dir);
    constexpr std::uint64_t mib = 1 << 20;

    SECTION("GPT: numbers, offsets, sizes and type GUIDs as written") {
        const auto disk = make_disk(*dir, 64,
                                    "label: gpt\\n"
                                    "start=2048, size=20480, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\\n"
                                    "start=22528, size=40960, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\\n");
        FileDevice device(disk);
        auto table = read_partition_table(device);
        REQUIRE(table);
        CHECK(table->kind == TableKind::gpt);
        CHECK(table->warnings.empty());
        REQUIRE(table->partitions.size() == 2);
        CHECK(table->partitions[0].number == 1);
        CHECK(table->partitions[0].offset == 1 * mib);
        CHECK(table->partitions[0].size == 10 * mib);
        CHECK(table->partitions[0].type == "0fc63daf-8483-4772-8e79-3d69d8477de4");
        CHECK(table->partitions[1].number == 2);
        CHECK(table->partitions[1].offset == 11 * mib);
        CHECK(table->partitions[1].size == 20 * mib);
        CHECK(table->partitions[1].type == "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7");

        SECTION("a damaged primary GPT is read from the backup, with a warning") {
            overwrite(disk, 512 + 24, "garbage!"); // inside the primary header: its checksum fails
            FileDevice damaged(disk);
            auto backup = read_partition_table(damaged);
            REQUIRE(backup);
            CHECK(backup->kind == TableKind::gpt);
            CHECK(backup->partitions.size() == 2);
            CHECK(backup->warnings.size() == 1);
        }
        SECTION("both GPT copies damaged behind a protective MBR: corrupt, not an empty disk") {
            overwrite(disk, 512 + 24, "garbage!");
            overwrite(disk, 64 * mib - 512 + 24, "garbage!");
            FileDevice damaged(disk);
            auto none = read_partition_table(damaged);
            REQUIRE_FALSE(none);
            CHECK(none.error().code == Errc::corrupt);
        }
    }

    SECTION("MBR: primaries 1-4, the extended container, logicals from 5") {
        const auto disk = make_disk(*dir, 64,
                                    "label: dos\\n"
                                    "start=2048, size=8192, type=83\\n"
                                    "start=10240, size=40960, type=5\\n"
                                    "start=12288, size=8192, type=7\\n"
                                    "start=22528, size=8192, type=c\\n");
        FileDevice device(disk);
        auto table = read_partition_table(device);
        REQUIRE(table);
        CHECK(table->kind == TableKind::mbr);
        REQUIRE(table->partitions.size() == 4);
        CHECK(table->partitions[0].number == 1);
        CHECK(table->partitions[0].type == "0x83");
        CHECK(table->partitions[0].offset == 1 * mib);
        CHECK(table->partitions[1].number == 2);
        CHECK(table->partitions[1].extended);
        CHECK(table->partitions[2].number == 5);
        CHECK(table->partitions[2].type == "0x07");
        CHECK(table->partitions[2].offset == 6 * mib);
        CHECK(table->partitions[2].size == 4 * mib);
        CHECK(table->partitions[3].number == 6);
        CHECK(table->partitions[3].type == "0x0c");
        CHECK(table->partitions[3].offset == 11 * mib);

        SECTION("a loop in the logical chain stops with a warning") {
            // sfdisk put the second logical record at LBA 20480; make its "next" entry point at itself
            // (relative to the extended partition at LBA 10240: 10240 = 0x2800, little endian).
            const std::uint64_t second_ebr = 20480ULL * 512;
            std::string next(16, '\0');
            next[4] = 0x05;
            next[9] = 0x28;
            next[12] = 0x01;
            overwrite(disk, second_ebr + 446 + 16, next);
            FileDevice looped(disk);
            auto table2 = read_partition_table(looped);
            REQUIRE(table2);
            CHECK(table2->partitions.size() == 4);
            REQUIRE_FALSE(table2->warnings.empty());
            CHECK(table2->warnings.back().find("loops") != std::string::npos);
        }
        SECTION("a second extended entry numbers its logicals on from the first's, never reusing 5") {
            // MBR slot 3 becomes another extended entry over the same container (LBA 10240, 40960 sectors).
            std::string entry(16, '\0');
            entry[4] = 0x05;
            entry[9] = 0x28;
            entry[13] = static_cast<char>(0xA0);
            overwrite(disk, 446 + 32, entry);
            FileDevice two_extended(disk);
            auto table2 = read_partition_table(two_extended);
            REQUIRE(table2);
            std::vector<unsigned> numbers;
            for (const auto& p : table2->partitions) {
                numbers.push_back(p.number);
            }
            CHECK(numbers == std::vector<unsigned>{1, 2, 3, 5, 6, 7, 8});
            CHECK(table2->partitions[5].offset == table2->partitions[3].offset);
        }
    }

    SECTION("a filesystem on the whole disk (its boot sector ends in 55 AA too) is no table") {
        const auto disk = dir->path() / "fat.img";
        run("truncate -s 16M " + disk.string() + " && mkfs.vfat -n WHOLE " + disk.string() + " >/dev/null");
        FileDevice device(disk);
        auto table = read_partition_table(device);
        REQUIRE(table);
        CHECK(table->kind == TableKind::none);
        CHECK(table->partitions.empty());
    }

    SECTION("a blank disk is no table") {
        const auto disk = dir->path() / "blank.img";
        run("truncate -s 4M " + disk.string());
        FileDevice device(disk);
        auto table = read_partition_table(device);
        REQUIRE(table);
        CHECK(table->kind == TableKind::none);
    }

    SECTION("a truncated image keeps its partitions, clipped, with a warning") {
        const auto disk = make_disk(*dir, 64, "label: dos\\nstart=2048, size=120000, type=83\\n");
        run("truncate -s 32M " + disk.string());
        FileDevice device(disk);
        auto table = read_partition_table(device);
        REQUIRE(table);
        REQUIRE(table->partitions.size() == 1);
        CHECK(table->partitions[0].size == 31 * mib);
        CHECK(table->warnings.size() == 1);
    }
}
