// TarReader on streams made by GNU tar at test time and on hand-made hostile headers.
#include "../../disk-access/src/tar_reader.hpp"
#include "coldscan/common/subprocess.hpp"
#include "coldscan/common/temp_dir.hpp"
#include "coldscan/common/unique_fd.hpp"
#include "test_support.hpp"

#include <array>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <map>
#include <string>
#include <vector>

using coldscan::Errc;
using coldscan::TempDir;
using coldscan::UniqueFd;
using coldscan::disk::detail::normalise_tar_path;
using coldscan::disk::detail::TarMember;
using coldscan::disk::detail::TarMemberType;
using coldscan::disk::detail::TarReader;

using coldscan::test::read_text;
using coldscan::test::write_file;

namespace {

namespace fs = std::filesystem;

void make_tar(const fs::path& tree, const fs::path& archive, const std::string& format = "gnu") {
    auto result = coldscan::run_bounded(
        {"tar", "--format=" + format, "-C", tree.string(), "-cf", archive.string(), "."}, {});
    REQUIRE(result.has_value());
    INFO(result->err);
    REQUIRE(result->exit_code == 0);
}

UniqueFd open_read(const fs::path& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    REQUIRE(fd.valid());
    return fd;
}

std::string read_member(TarReader& reader) {
    std::string data;
    std::array<std::byte, 4096> buffer{};
    for (;;) {
        auto n = reader.read(buffer);
        REQUIRE(n.has_value());
        if (*n == 0) {
            return data;
        }
        data.append(reinterpret_cast<const char*>(buffer.data()), *n);
    }
}

struct Member {
    TarMemberType type;
    std::uint64_t size;
    std::string link_target;
    std::string data;
};

// Every member of an archive, by path; regular members' data is read.
std::map<std::string, Member> read_all(const fs::path& archive) {
    UniqueFd fd = open_read(archive);
    TarReader reader(fd.get());
    std::map<std::string, Member> members;
    for (;;) {
        auto member = reader.next();
        REQUIRE(member.has_value());
        if (!*member) {
            break;
        }
        Member m{(*member)->type, (*member)->size, (*member)->link_target, {}};
        if (m.type == TarMemberType::regular) {
            m.data = read_member(reader);
        }
        members.emplace((*member)->path, std::move(m));
    }
    REQUIRE(reader.drain(1 << 20).has_value());
    return members;
}

// A 512-byte ustar header with a valid checksum; size_field replaces the octal size when given.
std::string make_header(const std::string& name, char typeflag, std::uint64_t size,
                        const std::string& size_field = {}) {
    std::string block(512, '\0');
    std::memcpy(block.data(), name.data(), std::min<std::size_t>(name.size(), 100));
    std::snprintf(block.data() + 100, 8, "%07o", 0644);
    std::snprintf(block.data() + 108, 8, "%07o", 0);
    std::snprintf(block.data() + 116, 8, "%07o", 0);
    if (size_field.empty()) {
        std::snprintf(block.data() + 124, 12, "%011llo", static_cast<unsigned long long>(size));
    } else {
        std::memcpy(block.data() + 124, size_field.data(), 12);
    }
    std::snprintf(block.data() + 136, 12, "%011o", 0);
    block[156] = typeflag;
    std::memcpy(block.data() + 257,
                "ustar\0"
                "00",
                8);
    std::memset(block.data() + 148, ' ', 8);
    unsigned sum = 0;
    for (const char c : block) {
        sum += static_cast<unsigned char>(c);
    }
    std::snprintf(block.data() + 148, 8, "%06o", sum);
    return block;
}

std::string padded(std::string data) {
    data.resize((data.size() + 511) / 512 * 512, '\0');
    return data;
}

fs::path write_stream(const TempDir& dir, const std::string& bytes) {
    const fs::path path = dir.path() / "stream.tar";
    write_file(path, bytes);
    return path;
}

} // namespace

TEST_CASE("normalise_tar_path") {
    CHECK(normalise_tar_path("./etc/passwd") == "/etc/passwd");
    CHECK(normalise_tar_path("etc/passwd") == "/etc/passwd");
    CHECK(normalise_tar_path("./") == "/");
    CHECK(normalise_tar_path(".") == "/");
    CHECK(normalise_tar_path("./var/log/") == "/var/log");
    CHECK(normalise_tar_path("/abs/x") == "/abs/x");
    CHECK(normalise_tar_path("./a b/\xff\n") == "/a b/\xff\n");
}

TEST_CASE("TarReader::next") {
    auto dir = TempDir::create("coldscan-test-tar");
    REQUIRE(dir.has_value());
    const fs::path tree = dir->path() / "tree";
    const std::string long_dir(120, 'd');
    const std::string long_name = long_dir + "/" + std::string(150, 'f') + ".txt";
    write_file(tree / "hello.txt", "hello\n");
    write_file(tree / long_name, "long name content");
    write_file(tree / "with space" / "ünïcödé €.bin", "unicode");
    write_file(tree / "empty", "");
    write_file(tree / "odd\x01name\xff", "odd");
    fs::create_hard_link(tree / "hello.txt", tree / "zz-hardlink.txt");
    fs::create_symlink("hello.txt", tree / "link-to-hello");
    fs::create_directories(tree / "empty-dir");

    for (const std::string format : {"gnu", "posix"}) {
        SECTION("members of a " + format + " archive") {
            const fs::path archive = dir->path() / (format + ".tar");
            make_tar(tree, archive, format);
            const auto members = read_all(archive);

            // GNU tar stores whichever of the two hard-linked names it meets first; the other links to it.
            REQUIRE(members.count("/hello.txt") == 1);
            REQUIRE(members.count("/zz-hardlink.txt") == 1);
            const bool hello_first = members.at("/hello.txt").type == TarMemberType::regular;
            const std::string stored = hello_first ? "/hello.txt" : "/zz-hardlink.txt";
            const std::string linked = hello_first ? "/zz-hardlink.txt" : "/hello.txt";
            CHECK(members.at(stored).type == TarMemberType::regular);
            CHECK(members.at(stored).data == "hello\n");
            CHECK(members.at(stored).size == 6);
            CHECK(members.at(linked).type == TarMemberType::hard_link);
            CHECK(members.at(linked).link_target == stored);

            REQUIRE(members.count("/" + long_name) == 1);
            CHECK(members.at("/" + long_name).data == "long name content");
            CHECK(members.count("/" + long_dir) == 1);

            REQUIRE(members.count("/with space/ünïcödé €.bin") == 1);
            CHECK(members.at("/with space/ünïcödé €.bin").data == "unicode");

            REQUIRE(members.count("/odd\x01name\xff") == 1);
            CHECK(members.at("/odd\x01name\xff").data == "odd");

            REQUIRE(members.count("/empty") == 1);
            CHECK(members.at("/empty").size == 0);
            CHECK(members.at("/empty").data.empty());

            REQUIRE(members.count("/link-to-hello") == 1);
            CHECK(members.at("/link-to-hello").type == TarMemberType::symlink);
            CHECK(members.at("/link-to-hello").link_target == "hello.txt");

            CHECK(members.at("/empty-dir").type == TarMemberType::directory);
            CHECK(members.at("/").type == TarMemberType::directory);
        }
    }

    SECTION("a POSIX ustar archive splits long paths into prefix and name") {
        const fs::path small = dir->path() / "small";
        const std::string nested = std::string(60, 'p') + "/" + std::string(60, 'q') + "/short.txt"; // > 100
        write_file(small / nested, "prefixed");
        const fs::path archive = dir->path() / "ustar.tar";
        make_tar(small, archive, "ustar");
        const auto members = read_all(archive);
        REQUIRE(members.count("/" + nested) == 1);
        CHECK(members.at("/" + nested).data == "prefixed");
    }

    SECTION("unread data is skipped") {
        write_file(tree / "big.bin", std::string(100000, 'x') + "tail");
        const fs::path archive = dir->path() / "skip.tar";
        make_tar(tree, archive);
        UniqueFd fd = open_read(archive);
        TarReader reader(fd.get());
        std::vector<std::string> paths;
        for (;;) {
            auto member = reader.next(); // never reads data
            REQUIRE(member.has_value());
            if (!*member) {
                break;
            }
            paths.push_back((*member)->path);
        }
        CHECK(std::find(paths.begin(), paths.end(), "/big.bin") != paths.end());
        CHECK(std::find(paths.begin(), paths.end(), "/hello.txt") != paths.end());
        CHECK(std::find(paths.begin(), paths.end(), "/" + long_name) != paths.end());
    }

    SECTION("a stream cut inside a file's data fails the read and the reader") {
        write_file(tree / "big.bin", std::string(100000, 'x'));
        const fs::path archive = dir->path() / "cut.tar";
        make_tar(tree, archive);
        // Find big.bin's data offset by reading the archive, then cut the stream in the middle of it.
        const std::string bytes = read_text(archive);
        const auto header = bytes.find("./big.bin");
        REQUIRE(header != std::string::npos);
        fs::resize_file(archive, header + 512 + 50000);
        UniqueFd fd = open_read(archive);
        TarReader reader(fd.get());
        bool failed = false;
        for (;;) {
            auto member = reader.next();
            if (!member) {
                CHECK(member.error().code == Errc::io);
                break;
            }
            REQUIRE(*member);
            if ((*member)->path != "/big.bin") {
                continue;
            }
            std::array<std::byte, 8192> buffer{};
            std::uint64_t got = 0;
            for (;;) {
                auto n = reader.read(buffer);
                if (!n) {
                    failed = true;
                    CHECK(n.error().code == Errc::io);
                    CHECK(n.error().message.find("/big.bin") != std::string::npos);
                    break;
                }
                REQUIRE(*n > 0);
                got += *n;
            }
            CHECK(got == 50000);
        }
        CHECK(failed);
        auto after = reader.next();
        REQUIRE_FALSE(after.has_value());
        CHECK(after.error().code == Errc::io);
    }

    SECTION("a stream without an end-of-archive marker is an error") {
        const fs::path path = write_stream(*dir, make_header("./a.txt", '0', 3) + padded("abc"));
        UniqueFd fd = open_read(path);
        TarReader reader(fd.get());
        auto first = reader.next();
        REQUIRE(first.has_value());
        REQUIRE(*first);
        auto second = reader.next();
        REQUIRE_FALSE(second.has_value());
        CHECK(second.error().message.find("end-of-archive") != std::string::npos);
    }

    SECTION("garbage is an error, not an empty archive") {
        std::string garbage(4096, '\0');
        for (std::size_t i = 0; i < garbage.size(); ++i) {
            garbage[i] = static_cast<char>((i * 7919 + 13) & 0xFF);
        }
        const fs::path path = write_stream(*dir, garbage);
        UniqueFd fd = open_read(path);
        TarReader reader(fd.get());
        auto member = reader.next();
        REQUIRE_FALSE(member.has_value());
        CHECK(member.error().code == Errc::io);
        CHECK(member.error().message.find("checksum") != std::string::npos);
    }

    SECTION("an empty stream is an error") {
        const fs::path path = write_stream(*dir, "");
        UniqueFd fd = open_read(path);
        TarReader reader(fd.get());
        auto member = reader.next();
        REQUIRE_FALSE(member.has_value());
        CHECK(member.error().code == Errc::io);
    }
}

TEST_CASE("TarReader::next on hand-made headers") {
    auto dir = TempDir::create("coldscan-test-tar");
    REQUIRE(dir.has_value());
    const std::string end(1024, '\0');

    SECTION("base-256 size") {
        std::string field(12, '\0');
        field[0] = static_cast<char>(0x80);
        field[11] = 5;
        const fs::path path =
            write_stream(*dir, make_header("./b256", '0', 0, field) + padded("12345") + end);
        UniqueFd fd = open_read(path);
        TarReader reader(fd.get());
        auto member = reader.next();
        REQUIRE(member.has_value());
        REQUIRE(*member);
        CHECK((*member)->size == 5);
        CHECK(read_member(reader) == "12345");
        auto last = reader.next();
        REQUIRE(last.has_value());
        CHECK_FALSE(*last);
    }

    SECTION("negative or oversized base-256 sizes are refused") {
        std::string negative(12, static_cast<char>(0xFF));
        std::string huge(12, '\0');
        huge[0] = static_cast<char>(0x80);
        huge[2] = 1; // 2^72
        for (const auto& field : {negative, huge}) {
            const fs::path path = write_stream(*dir, make_header("./x", '0', 0, field) + end);
            UniqueFd fd = open_read(path);
            TarReader reader(fd.get());
            auto member = reader.next();
            REQUIRE_FALSE(member.has_value());
            CHECK(member.error().message.find("bad size") != std::string::npos);
        }
    }

    SECTION("a corrupted checksum is refused") {
        std::string header = make_header("./x", '0', 0);
        header[0] = 'y';
        const fs::path path = write_stream(*dir, header + end);
        UniqueFd fd = open_read(path);
        TarReader reader(fd.get());
        auto member = reader.next();
        REQUIRE_FALSE(member.has_value());
        CHECK(member.error().message.find("checksum") != std::string::npos);
    }

    SECTION("an oversized GNU long name record is refused") {
        const fs::path path =
            write_stream(*dir, make_header("././@LongLink", 'L', 64ULL << 20) + std::string(4096, 'a'));
        UniqueFd fd = open_read(path);
        TarReader reader(fd.get());
        auto member = reader.next();
        REQUIRE_FALSE(member.has_value());
        CHECK(member.error().message.find("too large") != std::string::npos);
    }

    SECTION("pax attributes override the header") {
        const std::string records = "30 path=./from/pax/header.txt\n" // 30 bytes
                                    "10 size=4\n"
                                    "20 mtime=1700000000\n";
        REQUIRE(records.size() == 60);
        const fs::path path =
            write_stream(*dir, make_header("./PaxHeaders/x", 'x', records.size()) + padded(records) +
                                   make_header("./short", '0', 0) + padded("data") + end);
        UniqueFd fd = open_read(path);
        TarReader reader(fd.get());
        auto member = reader.next();
        REQUIRE(member.has_value());
        REQUIRE(*member);
        CHECK((*member)->path == "/from/pax/header.txt");
        CHECK((*member)->size == 4);
        CHECK((*member)->mtime == 1700000000);
        CHECK(read_member(reader) == "data");
    }

    SECTION("malformed pax records are refused") {
        const std::string records = "99 path=x\n";
        const fs::path path = write_stream(*dir, make_header("./PaxHeaders/x", 'x', records.size()) +
                                                     padded(records) + make_header("./x", '0', 0) + end);
        UniqueFd fd = open_read(path);
        TarReader reader(fd.get());
        auto member = reader.next();
        REQUIRE_FALSE(member.has_value());
        CHECK(member.error().message.find("pax") != std::string::npos);
    }

    SECTION("GNU sparse members are reported as unsupported") {
        const fs::path path = write_stream(*dir, make_header("./sparse", 'S', 3) + padded("abc") + end);
        UniqueFd fd = open_read(path);
        TarReader reader(fd.get());
        auto member = reader.next();
        REQUIRE(member.has_value());
        REQUIRE(*member);
        CHECK((*member)->type == TarMemberType::unsupported);
        CHECK((*member)->unsupported_reason.find("sparse") != std::string::npos);
        auto last = reader.next();
        REQUIRE(last.has_value());
        CHECK_FALSE(*last);
    }

    SECTION("drain refuses an endless trailer") {
        const fs::path path = write_stream(*dir, end + std::string(8192, 'z'));
        UniqueFd fd = open_read(path);
        TarReader reader(fd.get());
        auto member = reader.next();
        REQUIRE(member.has_value());
        CHECK_FALSE(*member);
        CHECK_FALSE(reader.drain(4096).has_value());
    }
}

TEST_CASE("TarReader::next when the writer hangs") {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    UniqueFd read_end(fds[0]);
    UniqueFd write_end(fds[1]); // kept open and silent: a hung appliance
    TarReader reader(read_end.get(), std::chrono::milliseconds(200));
    auto member = reader.next();
    REQUIRE_FALSE(member.has_value());
    CHECK(member.error().code == Errc::io);
    CHECK(member.error().message.find("no data arrived") != std::string::npos);
    SECTION("the failure sticks") {
        CHECK_FALSE(reader.next().has_value());
    }
}
