// ListedSource with scripted reads standing in for the appliance.
#include "../../disk-access/src/listed_source.hpp"
#include "coldscan/common/temp_dir.hpp"
#include "test_support.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>
#include <map>
#include <string>
#include <vector>

using namespace coldscan;
using namespace coldscan::disk;
using coldscan::disk::detail::FileReads;
using coldscan::disk::detail::ListedFile;
using coldscan::disk::detail::ListedSource;

namespace {

class ScriptedReads final : public FileReads {
public:
    explicit ScriptedReads(std::map<std::string, std::string> files, int* calls)
        : m_files(std::move(files)), m_calls(calls) {}
    Expected<std::size_t> pread(const std::string& path, std::uint64_t offset,
                                std::span<std::byte> out) override {
        ++*m_calls;
        if (path == "/bad") {
            return make_error(Errc::io, "I/O error in the guest");
        }
        const std::string& data = m_files.at(path);
        if (offset >= data.size()) {
            return std::size_t{0};
        }
        const std::size_t n = std::min<std::size_t>(out.size(), data.size() - offset);
        std::memcpy(out.data(), data.data() + offset, n);
        return n;
    }

private:
    std::map<std::string, std::string> m_files;
    int* m_calls;
};

ListedFile listed(std::string path, std::uint64_t size, std::uint64_t inode, std::uint64_t links = 1) {
    return ListedFile{
        std::move(path), size,        1, links, FileStamp{inode, 0, 2'000'000'000, 3'000'000'000},
        std::nullopt,    std::nullopt};
}

std::string text_of(const Content& content) {
    std::string out(content.size(), '\0');
    REQUIRE(content.read_at(0, std::as_writable_bytes(std::span(out))).value() == content.size());
    return out;
}

} // namespace

TEST_CASE("ListedSource") {
    auto dir = TempDir::create("coldscan-test").value();
    const std::string big(3000, 'B');
    std::map<std::string, std::string> data{{"/small", "s"},  {"/big", big},    {"/cached", "cc"},
                                            {"/hard1", "hh"}, {"/bad", "xxxx"}, {"/short", "abc"}};
    std::vector<ListedFile> files{listed("/small", 1, 10),    listed("/big", 3000, 11),
                                  listed("/cached", 2, 12),   listed("/hard1", 2, 13, 2),
                                  listed("/hard2", 2, 13, 2), listed("/bad", 4, 14),
                                  listed("/short", 5, 15)};
    int calls = 0;
    std::vector<std::string> asked;
    auto want = [&asked](const FileEntry& entry) {
        asked.push_back(entry.path);
        REQUIRE(entry.stamp);
        return entry.path != "/cached";
    };
    SourceOptions options;
    options.max_in_memory = 1000;
    options.spill_dir = dir.path().string();
    ListedSource source(files, want, std::make_unique<ScriptedReads>(data, &calls), options);
    CHECK(source.expected_bytes() == std::optional<std::uint64_t>(3016));

    std::vector<FileEntry> entries;
    std::map<std::string, std::string> contents;
    std::map<std::string, std::string> errors;
    for (;;) {
        auto next = source.next();
        REQUIRE(next);
        if (!*next) {
            break;
        }
        const FileEntry entry = **next;
        entries.push_back(entry);
        if (entry.bytes_withheld || entry.hardlink_of) {
            CHECK_FALSE(source.read(entry)); // nothing to read for those
            continue;
        }
        auto content = source.read(entry);
        if (content) {
            contents[entry.path] = text_of(*content);
        } else {
            errors[entry.path] = content.error().message;
        }
    }

    SECTION("want is asked once per file, hard links once per group") {
        CHECK(asked.size() == 6);
        CHECK(std::count(asked.begin(), asked.end(), "/hard2") == 0);
    }
    SECTION("files not wanted come first, withheld; the wanted ones follow, largest first") {
        REQUIRE(entries.size() == 7);
        CHECK(entries[0].path == "/cached");
        CHECK(entries[0].bytes_withheld);
        CHECK(entries[1].path == "/big");
        CHECK(entries.back().path == "/small");
        CHECK(contents.count("/cached") == 0);
    }
    SECTION("bytes arrive whole, in memory or spilled") {
        CHECK(contents.at("/small") == "s");
        CHECK(contents.at("/big") == big);
        CHECK(contents.at("/hard1") == "hh");
    }
    SECTION("a hard link names its group's first path and is not read") {
        const auto link =
            std::find_if(entries.begin(), entries.end(), [](const auto& e) { return e.path == "/hard2"; });
        REQUIRE(link != entries.end());
        CHECK(link->hardlink_of == std::optional<std::string>("/hard1"));
    }
    SECTION("a failed or short read is an error for that file only") {
        CHECK(errors.at("/bad").find("I/O error in the guest") != std::string::npos);
        CHECK(errors.at("/short") == "the reader delivered 3 of 5 bytes");
        CHECK(contents.size() == 3);
    }
}

TEST_CASE("ListedSource with random reads") {
    auto dir = TempDir::create("coldscan-test").value();
    std::map<std::string, std::string> data{{"/a", "aaaa"}, {"/b", "bb"}, {"/c", std::string(3000, 'c')}};
    std::vector<ListedFile> files{listed("/a", 4, 1), listed("/b", 2, 2), listed("/c", 3000, 3),
                                  listed("/broken", 9, 4)};
    files.back().problem = Error{Errc::corrupt, "the reader cannot locate its data"};
    std::vector<std::string> asked;
    auto want = [&asked](const FileEntry& entry) {
        asked.push_back(entry.path);
        return true;
    };
    SourceOptions options;
    options.max_in_memory = 1000;
    options.spill_dir = dir.path().string();
    int calls = 0;
    ListedSource source(files, want, std::make_unique<ScriptedReads>(data, &calls), options,
                        ReadOrder::random);
    CHECK(source.read_order() == ReadOrder::random);
    std::vector<FileEntry> entries;
    while (auto next = source.next()) {
        if (!*next) {
            break;
        }
        entries.push_back(**next);
    }
    REQUIRE(entries.size() == 4);
    SECTION("any wanted entry may be read, in any order, after next() has moved on") {
        std::map<std::string, std::string> contents;
        for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
            if (auto content = source.read(*it)) {
                contents[it->path] = text_of(*content);
            }
        }
        CHECK(contents ==
              std::map<std::string, std::string>{{"/a", "aaaa"}, {"/b", "bb"}, {"/c", data["/c"]}});
    }
    SECTION("a file the reader cannot describe is an ERROR, never asked about, never read") {
        CHECK(std::count(asked.begin(), asked.end(), "/broken") == 0);
        const auto broken =
            std::find_if(entries.begin(), entries.end(), [](const auto& e) { return e.path == "/broken"; });
        REQUIRE(broken != entries.end());
        REQUIRE(broken->problem);
        const int before = calls;
        CHECK_FALSE(source.read(*broken));
        CHECK(calls == before);
    }
}
