// open_directory on trees built at test time.
#include "coldscan/common/temp_dir.hpp"
#include "coldscan/disk/directory_source.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using coldscan::Content;
using coldscan::Errc;
using coldscan::TempDir;
using coldscan::disk::FileEntry;
using coldscan::disk::FileSource;
using coldscan::disk::open_directory;
using coldscan::disk::ReadOrder;

using coldscan::test::content_bytes;
using coldscan::test::write_file;

namespace {

namespace fs = std::filesystem;

std::map<std::string, FileEntry> all_entries(FileSource& source) {
    std::map<std::string, FileEntry> entries;
    for (;;) {
        auto entry = source.next();
        REQUIRE(entry.has_value());
        if (!*entry) {
            return entries;
        }
        const bool fresh = entries.emplace((*entry)->path, **entry).second;
        CHECK(fresh);
    }
}

} // namespace

TEST_CASE("open_directory") {
    auto dir = TempDir::create("coldscan-test-dir");
    REQUIRE(dir.has_value());
    const fs::path root = dir->path() / "root";
    const fs::path outside = dir->path() / "outside";
    write_file(root / "a.txt", "alpha");
    write_file(root / "sub" / "deeper" / "b.bin", std::string(1000, 'b'));
    write_file(root / "sp ace" / "ünï.txt", "uni");
    write_file(root / "empty", "");
    write_file(outside / "secret.txt", "do not read");
    fs::create_symlink(outside / "secret.txt", root / "link-to-file");
    fs::create_directory_symlink(outside, root / "link-to-dir");
    fs::create_hard_link(root / "a.txt", root / "sub" / "hard.txt");
    REQUIRE(::mkfifo((root / "fifo").c_str(), 0600) == 0);

    SECTION("regular files only, relative paths, symlinks not followed") {
        auto source = open_directory(root);
        REQUIRE(source.has_value());
        CHECK((*source)->read_order() == ReadOrder::random);
        const auto entries = all_entries(**source);
        CHECK(entries.size() == 5);
        REQUIRE(entries.count("/a.txt") == 1);
        CHECK(entries.count("/sub/deeper/b.bin") == 1);
        CHECK(entries.count("/sp ace/ünï.txt") == 1);
        CHECK(entries.count("/empty") == 1);
        CHECK(entries.count("/link-to-file") == 0);
        CHECK(entries.count("/link-to-dir/secret.txt") == 0);
        CHECK(entries.count("/fifo") == 0);

        const FileEntry& a = entries.at("/a.txt");
        struct stat st {};
        REQUIRE(::lstat((root / "a.txt").c_str(), &st) == 0);
        CHECK(a.size == 5);
        REQUIRE(a.stamp);
        CHECK(a.stamp->inode == static_cast<std::uint64_t>(st.st_ino));
        CHECK(a.stamp->ctime_ns ==
              static_cast<std::int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec);
        CHECK(a.mtime == st.st_mtim.tv_sec);
        CHECK_FALSE(a.problem);
        CHECK(entries.at("/sub/deeper/b.bin").size == 1000);
    }

    SECTION("a hard link is read once") {
        auto source = open_directory(root);
        REQUIRE(source.has_value());
        const auto entries = all_entries(**source);
        REQUIRE(entries.count("/sub/hard.txt") == 1);
        CHECK_FALSE(entries.at("/a.txt").hardlink_of); // the walk meets /a.txt first
        REQUIRE(entries.at("/sub/hard.txt").hardlink_of);
        CHECK(*entries.at("/sub/hard.txt").hardlink_of == "/a.txt");
        CHECK(entries.at("/sub/hard.txt").size == 5);
    }

    SECTION("read() returns the bytes") {
        auto source = open_directory(root);
        REQUIRE(source.has_value());
        const auto entries = all_entries(**source);
        auto a = (*source)->read(entries.at("/a.txt"));
        REQUIRE(a.has_value());
        REQUIRE(a->memory().has_value());
        CHECK(content_bytes(*a) == "alpha");
        auto empty = (*source)->read(entries.at("/empty"));
        REQUIRE(empty.has_value());
        CHECK(empty->size() == 0);
        auto uni = (*source)->read(entries.at("/sp ace/ünï.txt"));
        REQUIRE(uni.has_value());
        CHECK(content_bytes(*uni) == "uni");
    }

    SECTION("a big file stays behind a descriptor") {
        const fs::path big = root / "big.sparse";
        write_file(big, "");
        fs::resize_file(big, 40ULL << 20); // sparse: cheap to make
        {
            std::fstream out(big, std::ios::binary | std::ios::in | std::ios::out);
            out.seekp((40LL << 20) - 4);
            out << "tail";
        }
        auto source = open_directory(root);
        REQUIRE(source.has_value());
        const auto entries = all_entries(**source);
        auto content = (*source)->read(entries.at("/big.sparse"));
        REQUIRE(content.has_value());
        CHECK_FALSE(content->memory().has_value());
        CHECK(content->fd() >= 0);
        CHECK(content->size() == 40ULL << 20);
        std::array<std::byte, 4> tail{};
        auto n = content->read_at((40ULL << 20) - 4, tail);
        REQUIRE(n.has_value());
        CHECK(*n == 4);
        CHECK(std::string(reinterpret_cast<const char*>(tail.data()), 4) == "tail");
    }

    SECTION("a file that changed or was swapped is an error, not other bytes") {
        auto source = open_directory(root);
        REQUIRE(source.has_value());
        const auto entries = all_entries(**source);
        write_file(root / "sub" / "deeper" / "b.bin", "shorter");
        auto changed = (*source)->read(entries.at("/sub/deeper/b.bin"));
        REQUIRE_FALSE(changed.has_value());
        CHECK(changed.error().code == Errc::io);

        fs::remove(root / "empty");
        fs::create_symlink(outside / "secret.txt", root / "empty");
        auto swapped = (*source)->read(entries.at("/empty"));
        REQUIRE_FALSE(swapped.has_value());
        CHECK(swapped.error().code == Errc::io);

        // A folder swapped for a symlink to the outside is not followed either.
        fs::rename(root / "sp ace", dir->path() / "moved");
        write_file(outside / "ünï.txt", "uni");
        fs::create_directory_symlink(outside, root / "sp ace");
        auto escaped = (*source)->read(entries.at("/sp ace/ünï.txt"));
        REQUIRE_FALSE(escaped.has_value());
        CHECK(escaped.error().code == Errc::io);
    }

    SECTION("read() is safe from several threads") {
        for (int i = 0; i < 40; ++i) {
            write_file(root / "many" / ("f" + std::to_string(i)),
                       std::string(static_cast<std::size_t>(i * 100), 'x'));
        }
        auto source = open_directory(root);
        REQUIRE(source.has_value());
        const auto entries = all_entries(**source);
        std::vector<FileEntry> list;
        for (const auto& [path, entry] : entries) {
            if (!entry.hardlink_of) {
                list.push_back(entry);
            }
        }
        std::atomic<int> good{0};
        std::vector<std::thread> threads;
        for (int t = 0; t < 4; ++t) {
            threads.emplace_back([&, t] {
                for (std::size_t i = static_cast<std::size_t>(t); i < list.size(); i += 4) {
                    auto content = (*source)->read(list[i]);
                    if (content && content->size() == list[i].size) {
                        ++good;
                    }
                }
            });
        }
        for (auto& thread : threads) {
            thread.join();
        }
        CHECK(good.load() == static_cast<int>(list.size()));
    }

    SECTION("the root may be a symlink to a folder") {
        const fs::path link = dir->path() / "root-link";
        fs::create_directory_symlink(root, link);
        auto source = open_directory(link);
        REQUIRE(source.has_value());
        const auto entries = all_entries(**source);
        CHECK(entries.count("/a.txt") == 1);
        CHECK(entries.count("/sub/deeper/b.bin") == 1);
        auto a = (*source)->read(entries.at("/a.txt"));
        REQUIRE(a.has_value());
        CHECK(content_bytes(*a) == "alpha");
    }

    SECTION("errors") {
        auto missing = open_directory(dir->path() / "nope");
        REQUIRE_FALSE(missing.has_value());
        CHECK(missing.error().code == Errc::not_found);
        auto file = open_directory(root / "a.txt");
        REQUIRE_FALSE(file.has_value());
        CHECK(file.error().code == Errc::invalid_argument);
        CHECK(file.error().message.find("not a directory") != std::string::npos);
    }

    SECTION("an unreadable folder becomes a problem entry") {
        // Root reads every folder, so the walk runs in a child that drops to nobody.
        fs::create_directories(root / "locked");
        write_file(root / "locked" / "hidden.txt", "x");
        fs::permissions(root / "locked", fs::perms::none);
        fs::permissions(dir->path(), fs::perms::owner_all | fs::perms::others_read | fs::perms::others_exec);
        if (::geteuid() != 0) {
            auto source = open_directory(root);
            REQUIRE(source.has_value());
            const auto entries = all_entries(**source);
            REQUIRE(entries.count("/locked") == 1);
            REQUIRE(entries.at("/locked").problem);
            CHECK(entries.at("/locked").problem->message.find("cannot list folder") != std::string::npos);
            CHECK(entries.count("/a.txt") == 1);
        } else {
            const pid_t pid = ::fork();
            REQUIRE(pid >= 0);
            if (pid == 0) {
                // Child: no Catch2 here; the exit code is the verdict.
                if (::setgid(65534) != 0 || ::setuid(65534) != 0) {
                    ::_exit(77);
                }
                auto source = open_directory(root);
                if (!source) {
                    ::_exit(10);
                }
                bool locked_reported = false;
                bool others_listed = false;
                for (;;) {
                    auto entry = (*source)->next();
                    if (!entry) {
                        ::_exit(11);
                    }
                    if (!*entry) {
                        break;
                    }
                    if ((*entry)->path == "/locked" && (*entry)->problem &&
                        (*entry)->problem->message.find("cannot list folder") != std::string::npos) {
                        locked_reported = true;
                    }
                    if ((*entry)->path == "/a.txt" && !(*entry)->problem) {
                        others_listed = true;
                    }
                    if ((*entry)->path == "/locked/hidden.txt") {
                        ::_exit(12);
                    }
                }
                ::_exit(locked_reported && others_listed ? 0 : 13);
            }
            int status = 0;
            REQUIRE(::waitpid(pid, &status, 0) == pid);
            REQUIRE(WIFEXITED(status));
            if (WEXITSTATUS(status) == 77) {
                WARN("cannot drop privileges here; the unreadable-folder case is not tested");
            } else {
                CHECK(WEXITSTATUS(status) == 0);
            }
        }
        fs::permissions(root / "locked", fs::perms::owner_all);
    }
}
