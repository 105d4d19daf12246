// TarSource over GNU tar streams made at test time, with a scripted producer standing in for the appliance.
#include "../../disk-access/src/spill_file.hpp"
#include "../../disk-access/src/tar_source.hpp"
#include "coldscan/common/subprocess.hpp"
#include "coldscan/common/temp_dir.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>
#include <fcntl.h>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

using coldscan::Content;
using coldscan::Errc;
using coldscan::Expected;
using coldscan::TempDir;
using coldscan::UniqueFd;
using coldscan::disk::FileEntry;
using coldscan::disk::ReadOrder;
using coldscan::disk::SourceOptions;
using coldscan::disk::detail::create_spill_file;
using coldscan::disk::detail::RegularFile;
using coldscan::disk::detail::TarProducer;
using coldscan::disk::detail::TarProducerResult;
using coldscan::disk::detail::TarSource;

using coldscan::test::content_bytes;
using coldscan::test::write_file;

namespace {

namespace fs = std::filesystem;

std::string pattern(std::size_t size, unsigned seed) {
    std::string data(size, '\0');
    unsigned state = seed;
    for (auto& c : data) {
        state = state * 1103515245U + 12345U;
        c = static_cast<char>(state >> 16);
    }
    return data;
}

// Answers like the appliance would, from a fixed table; records that the source asked in the right order.
class ScriptedProducer final : public TarProducer {
public:
    struct Log {
        bool finished = false;
        bool asked_after_finish = true;
        std::vector<std::string> asked;
    };
    ScriptedProducer(Log& log, TarProducerResult result, std::map<std::string, std::uint64_t> regular,
                     bool fail_lookup = false)
        : m_log(log), m_result(std::move(result)), m_regular(std::move(regular)), m_fail_lookup(fail_lookup) {
    }

    TarProducerResult finish() override {
        m_log.finished = true;
        return m_result;
    }
    Expected<std::vector<RegularFile>> regular_files(const std::vector<std::string>& paths) override {
        m_log.asked_after_finish = m_log.asked_after_finish && m_log.finished;
        m_log.asked.insert(m_log.asked.end(), paths.begin(), paths.end());
        if (m_fail_lookup) {
            return coldscan::make_error(Errc::io, "appliance gone");
        }
        std::vector<RegularFile> found;
        for (const auto& path : paths) {
            if (const auto it = m_regular.find(path); it != m_regular.end()) {
                found.push_back({path, it->second});
            }
        }
        return found;
    }

private:
    Log& m_log;
    TarProducerResult m_result;
    std::map<std::string, std::uint64_t> m_regular;
    bool m_fail_lookup;
};

struct Fixture {
    TempDir dir = *TempDir::create("coldscan-test-tarsrc");
    fs::path tree = dir.path() / "tree";
    fs::path spill = dir.path() / "spill";
    fs::path archive = dir.path() / "tree.tar";

    Fixture() { fs::create_directories(spill); }

    void make_tar() const {
        auto result = coldscan::run_bounded({"tar", "-C", tree.string(), "-cf", archive.string(), "."}, {});
        REQUIRE(result.has_value());
        REQUIRE(result->exit_code == 0);
    }

    // Everything under the tree, as the appliance's find would list it.
    std::vector<std::string> listing() const {
        std::vector<std::string> names;
        for (const auto& item : fs::recursive_directory_iterator(tree)) {
            names.push_back("/" + fs::relative(item.path(), tree).string());
        }
        return names;
    }

    std::map<std::string, std::uint64_t> regular_files() const {
        std::map<std::string, std::uint64_t> files;
        for (const auto& item : fs::recursive_directory_iterator(tree)) {
            if (item.is_regular_file() && !item.is_symlink()) {
                files["/" + fs::relative(item.path(), tree).string()] = item.file_size();
            }
        }
        return files;
    }

    std::unique_ptr<TarSource> open(ScriptedProducer::Log& log, TarProducerResult result = {},
                                    std::vector<std::string> names = {},
                                    std::uint64_t max_in_memory = 1 << 20, bool fail_lookup = false) const {
        UniqueFd fd(::open(archive.c_str(), O_RDONLY | O_CLOEXEC));
        REQUIRE(fd.valid());
        SourceOptions options;
        options.max_in_memory = max_in_memory;
        options.spill_dir = spill.string();
        auto producer =
            std::make_unique<ScriptedProducer>(log, std::move(result), regular_files(), fail_lookup);
        return std::make_unique<TarSource>(std::move(fd), std::move(producer), std::move(names), options,
                                           1234, 99);
    }
};

struct Drained {
    std::map<std::string, FileEntry> entries; // the last entry per path
    std::vector<FileEntry> problems;
    std::map<std::string, std::string> data;
    std::vector<std::string> read_errors;
    std::optional<coldscan::Error> end_error;
};

Drained drain(TarSource& source, bool read_data = true) {
    Drained out;
    for (int guard = 0; guard < 10000; ++guard) {
        auto entry = source.next();
        if (!entry) {
            out.end_error = entry.error();
            return out;
        }
        if (!*entry) {
            return out;
        }
        const FileEntry& e = **entry;
        if (e.problem) {
            out.problems.push_back(e);
        } else if (read_data && !e.hardlink_of) {
            auto content = source.read(e);
            if (content) {
                out.data[e.path] = content_bytes(*content);
            } else {
                out.read_errors.push_back(e.path);
            }
        }
        out.entries[e.path] = e;
    }
    FAIL("the source never ended");
    return out;
}

} // namespace

TEST_CASE("TarSource::next") {
    Fixture f;
    const std::string big = pattern(3 << 20, 7);
    write_file(f.tree / "etc" / "passwd", "root:x:0:0\n");
    write_file(f.tree / "big.bin", big);
    write_file(f.tree / "empty", "");
    write_file(f.tree / (std::string(130, 'n') + ".txt"), "long");
    write_file(f.tree / "sp ace" / "ünï.txt", "uni");
    fs::create_hard_link(f.tree / "etc" / "passwd", f.tree / "passwd-link");
    fs::create_symlink("etc/passwd", f.tree / "symlink");

    SECTION("every regular file once, with its bytes") {
        f.make_tar();
        ScriptedProducer::Log log;
        auto source = f.open(log, {}, f.listing());
        CHECK(source->read_order() == ReadOrder::sequential);
        CHECK(source->expected_bytes() == 1234U);
        CHECK(source->expected_files() == 99U);
        const Drained d = drain(*source);
        CHECK_FALSE(d.end_error);
        CHECK(d.problems.empty());
        CHECK(d.read_errors.empty());
        CHECK(log.finished);
        CHECK(d.entries.count("/symlink") == 0);
        CHECK(d.entries.count("/etc") == 0);
        CHECK(d.entries.count("/sp ace") == 0);
        CHECK(d.data.at("/etc/passwd") == "root:x:0:0\n");
        CHECK(d.data.at("/big.bin") == big);
        CHECK(d.data.at("/empty").empty());
        CHECK(d.data.at("/" + std::string(130, 'n') + ".txt") == "long");
        CHECK(d.data.at("/sp ace/ünï.txt") == "uni");
        // GNU tar stores whichever name it meets first; the other becomes the hard link.
        const bool link_is_second = d.entries.at("/passwd-link").hardlink_of.has_value();
        const FileEntry& link = link_is_second ? d.entries.at("/passwd-link") : d.entries.at("/etc/passwd");
        REQUIRE(link.hardlink_of);
        CHECK(*link.hardlink_of == (link_is_second ? "/etc/passwd" : "/passwd-link"));
        CHECK(link.size == 11);
        CHECK(d.entries.size() == 6);
        // And then it stays at the end.
        auto again = source->next();
        REQUIRE(again.has_value());
        CHECK_FALSE(*again);
    }

    SECTION("a file over max_in_memory comes from an unlinked spill file") {
        f.make_tar();
        ScriptedProducer::Log log;
        auto source = f.open(log, {}, f.listing(), /*max_in_memory=*/1 << 20);
        for (;;) {
            auto entry = source->next();
            REQUIRE(entry.has_value());
            REQUIRE(*entry);
            if ((*entry)->path != "/big.bin") {
                continue;
            }
            auto content = source->read(**entry);
            REQUIRE(content.has_value());
            CHECK_FALSE(content->memory().has_value());
            CHECK(content->fd() >= 0);
            CHECK(content->resident_bytes() == 0);
            CHECK(content->size() == big.size());
            CHECK(content_bytes(*content) == big);
            CHECK(fs::is_empty(f.spill)); // nothing left behind in the spill folder
            break;
        }
    }

    SECTION("entries not read are skipped") {
        f.make_tar();
        ScriptedProducer::Log log;
        auto source = f.open(log, {}, f.listing());
        const Drained d = drain(*source, /*read_data=*/false);
        CHECK_FALSE(d.end_error);
        CHECK(d.problems.empty());
        CHECK(d.entries.size() == 6);
        CHECK(d.entries.at("/big.bin").size == big.size());
    }

    SECTION("read() only for the entry next() just returned, once") {
        f.make_tar();
        ScriptedProducer::Log log;
        auto source = f.open(log, {}, f.listing());
        std::optional<FileEntry> previous;
        for (;;) {
            auto entry = source->next();
            REQUIRE(entry.has_value());
            if (!*entry) {
                break;
            }
            if ((*entry)->hardlink_of) {
                auto link = source->read(**entry);
                REQUIRE_FALSE(link.has_value());
                CHECK(link.error().code == Errc::invalid_argument);
                continue;
            }
            if (previous) {
                auto stale = source->read(*previous);
                REQUIRE_FALSE(stale.has_value());
                CHECK(stale.error().code == Errc::invalid_argument);
            }
            auto first = source->read(**entry);
            REQUIRE(first.has_value());
            auto twice = source->read(**entry);
            REQUIRE_FALSE(twice.has_value());
            CHECK(twice.error().code == Errc::invalid_argument);
            previous = **entry;
        }
    }

    SECTION("listed regular files the stream missed become problem entries") {
        f.make_tar();
        // Files that appear after the archive was made stand for files tar skipped.
        write_file(f.tree / "missed.txt", "never streamed");
        write_file(f.tree / "etc" / "missed-too", "x");
        fs::create_directories(f.tree / "missed-empty-dir");
        ScriptedProducer::Log log;
        auto source = f.open(log, {}, f.listing());
        const Drained d = drain(*source);
        CHECK_FALSE(d.end_error); // the stream itself was fine
        REQUIRE(d.problems.size() == 2);
        std::set<std::string> paths;
        for (const auto& p : d.problems) {
            paths.insert(p.path);
            REQUIRE(p.problem);
            CHECK(p.problem->code == Errc::io);
            CHECK(p.problem->message.find("did not deliver") != std::string::npos);
        }
        CHECK(paths == std::set<std::string>{"/missed.txt", "/etc/missed-too"});
        CHECK(d.entries.at("/missed.txt").size == 14);
        CHECK(log.asked_after_finish);
        CHECK(std::find(log.asked.begin(), log.asked.end(), "/missed-empty-dir") != log.asked.end());
    }

    SECTION("a truncated stream: the cut file fails, the rest is reported, then an error") {
        write_file(f.tree / "zz" / "after1.txt", "a");
        write_file(f.tree / "zz" / "after2.txt", "b");
        f.make_tar();
        const auto size = fs::file_size(f.archive);
        fs::resize_file(f.archive, size / 2); // inside big.bin's 3 MiB of data
        ScriptedProducer::Log log;
        TarProducerResult result;
        result.error = coldscan::Error{Errc::io, "tar-out failed: appliance closed the connection"};
        auto source = f.open(log, result, f.listing());
        const Drained d = drain(*source);
        REQUIRE(d.end_error);
        CHECK(d.end_error->code == Errc::io);
        CHECK(d.end_error->message.find("ended inside") != std::string::npos);
        CHECK(d.end_error->message.find("appliance closed the connection") != std::string::npos);
        // Nothing dropped: every regular file was read whole, failed to read, or is a problem entry.
        std::set<std::string> accounted;
        for (const auto& [path, data] : d.data) {
            accounted.insert(path);
        }
        accounted.insert(d.read_errors.begin(), d.read_errors.end());
        for (const auto& p : d.problems) {
            CHECK(p.problem->message.find("appliance closed the connection") != std::string::npos);
            accounted.insert(p.path);
        }
        for (const auto& [path, e] : d.entries) {
            if (e.hardlink_of) {
                accounted.insert(path);
            }
        }
        for (const auto& [path, file_size] : f.regular_files()) {
            INFO(path);
            CHECK(accounted.count(path) == 1);
        }
        CHECK(std::find(d.read_errors.begin(), d.read_errors.end(), "/big.bin") != d.read_errors.end());
        auto again = source->next();
        REQUIRE_FALSE(again.has_value());
        CHECK(again.error().code == Errc::io);
    }

    SECTION("files the producer complained about after delivering them get a problem entry") {
        f.make_tar();
        ScriptedProducer::Log log;
        TarProducerResult result;
        result.error = coldscan::Error{Errc::io, "file receive cancelled by daemon"};
        result.file_errors.emplace_back("/big.bin",
                                        "tar: ./big.bin: Read error at byte 0: Input/output error");
        result.file_errors.emplace_back("/not-a-file", "tar: ./not-a-file: socket ignored");
        auto source = f.open(log, result, f.listing());
        const Drained d = drain(*source);
        REQUIRE(d.end_error);
        CHECK(d.end_error->message == "file receive cancelled by daemon");
        REQUIRE(d.problems.size() == 1);
        CHECK(d.problems[0].path == "/big.bin");
        CHECK(d.problems[0].size == big.size());
        CHECK(d.problems[0].problem->message.find("Input/output error") != std::string::npos);
        CHECK(d.data.count("/big.bin") == 1); // it was delivered first
    }

    SECTION("when the producer cannot tell types, every missing non-folder name is reported") {
        f.make_tar();
        write_file(f.tree / "newdir" / "inside.txt", "x");
        ScriptedProducer::Log log;
        auto source = f.open(log, {}, f.listing(), 1 << 20, /*fail_lookup=*/true);
        const Drained d = drain(*source);
        CHECK_FALSE(d.end_error);
        std::set<std::string> paths;
        for (const auto& p : d.problems) {
            paths.insert(p.path);
            CHECK(p.problem->message.find("appliance gone") != std::string::npos);
        }
        // "/newdir" has a listed child, so it is known to be a folder.
        CHECK(paths == std::set<std::string>{"/newdir/inside.txt"});
    }

    SECTION("garbage instead of tar: an error, after reporting every listed file") {
        write_file(f.archive, pattern(10000, 3));
        ScriptedProducer::Log log;
        auto source = f.open(log, {}, f.listing());
        const Drained d = drain(*source);
        REQUIRE(d.end_error);
        CHECK(d.end_error->code == Errc::io);
        CHECK(d.problems.size() == f.regular_files().size());
        CHECK(log.finished);
    }
}

TEST_CASE("tar_complaint_path") {
    using coldscan::disk::detail::tar_complaint_path;
    SECTION("names are unquoted as GNU tar quotes them") {
        // As printed by GNU tar 1.34 (LANG=C) for a file named "café x\y<newline>z".
        CHECK(tar_complaint_path("tar: ./caf\\303\\251 x\\\\y\\nz: Cannot open: Permission denied") ==
              std::optional<std::string>("/caf\xc3\xa9 x\\y\nz"));
        CHECK(
            tar_complaint_path("tar: ./f5.bin: Read error at byte 0, while reading 7680 bytes: Input/output "
                               "error") == std::optional<std::string>("/f5.bin"));
        CHECK(tar_complaint_path("tar: ./dir/sub/file: File shrank by 52032 bytes; padding with zeros") ==
              std::optional<std::string>("/dir/sub/file"));
    }
    SECTION("messages about no member") {
        CHECK_FALSE(tar_complaint_path("tar: Exiting with failure status due to previous errors"));
        CHECK_FALSE(tar_complaint_path("something else: ./x: y"));
        CHECK_FALSE(tar_complaint_path("tar: ./no-colon-space"));
    }
}

TEST_CASE("create_spill_file") {
    auto dir = TempDir::create("coldscan-test-spill");
    REQUIRE(dir.has_value());

    SECTION("an unlinked private file") {
        auto fd = create_spill_file(dir->path().string());
        REQUIRE(fd.has_value());
        REQUIRE(::write(fd->get(), "abc", 3) == 3);
        char back[3] = {};
        REQUIRE(::pread(fd->get(), back, 3, 0) == 3);
        CHECK(std::string(back, 3) == "abc");
        CHECK(fs::is_empty(dir->path()));
    }

    SECTION("a missing folder is an io error") {
        auto fd = create_spill_file((dir->path() / "nope").string());
        REQUIRE_FALSE(fd.has_value());
        CHECK(fd.error().code == Errc::io);
        CHECK(fd.error().message.find("nope") != std::string::npos);
    }
}
