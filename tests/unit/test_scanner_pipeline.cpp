#include "../../scanner/src/filesystem_relay.hpp"
#include "coldscan/common/sha256.hpp"
#include "coldscan/common/temp_dir.hpp"
#include "coldscan/common/text.hpp"
#include "coldscan/scanner/pipeline.hpp"
#include "coldscan/scanner/scan_cache.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <set>

using namespace coldscan;
using namespace coldscan::scanner;

namespace {

const std::string k_eicar = R"(X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*)";

std::vector<std::byte> bytes_of(const std::string& text) {
    std::vector<std::byte> out(text.size());
    std::memcpy(out.data(), text.data(), text.size());
    return out;
}

// A source over files held in a map, sequential or random, with optional failures.
class FakeSource final : public disk::FileSource {
public:
    FakeSource(std::vector<disk::FileEntry> entries, std::map<std::string, std::string> data,
               disk::ReadOrder order)
        : m_entries(std::move(entries)), m_data(std::move(data)), m_order(order) {}

    Expected<std::optional<disk::FileEntry>> next() override {
        if (m_fail_after && m_next == *m_fail_after) {
            return make_error(Errc::io, "stream broke");
        }
        if (m_next == m_entries.size()) {
            return std::optional<disk::FileEntry>{};
        }
        return std::optional<disk::FileEntry>{m_entries[m_next++]};
    }
    disk::ReadOrder read_order() const noexcept override { return m_order; }
    Expected<Content> read(const disk::FileEntry& entry) override {
        std::lock_guard lock(m_mutex);
        ++m_reads;
        if (entry.path == "/unreadable") {
            return make_error(Errc::io, "bad sector");
        }
        return Content::from_memory(bytes_of(m_data.at(entry.path)));
    }
    std::optional<std::size_t> m_fail_after;
    int m_reads = 0;

private:
    std::vector<disk::FileEntry> m_entries;
    std::map<std::string, std::string> m_data;
    disk::ReadOrder m_order;
    std::size_t m_next = 0;
    std::mutex m_mutex;
};

class RecordingEvents final : public ScanEvents {
public:
    void on_file(const reports::InventoryRecord& record) override { files.push_back(record); }
    std::vector<reports::InventoryRecord> files;
};

struct Fixture {
    TempDir dir = TempDir::create("coldscan-test").value();
    std::optional<signatures::SignatureSet> signatures;

    Fixture() {
        std::filesystem::create_directories(dir.path() / "db");
        std::ofstream(dir.path() / "db" / "test.ndb")
            << "Coldscan.Test.Eicar:0:*:" << hex_encode(k_eicar) << "\n";
        std::ofstream(dir.path() / "rules.yar") << "rule Marker : demo { meta: author = \"tests\" strings: "
                                                   "$m = \"COLDSCAN-MARKER\" condition: $m }\n";
        signatures::SignatureOptions options;
        options.clamav_db = dir.path() / "db";
        options.yara_rules = {dir.path() / "rules.yar"};
        auto loaded = signatures::SignatureSet::load(options);
        REQUIRE(loaded);
        signatures.emplace(std::move(*loaded));
    }
};

disk::FileEntry entry(std::string path, std::size_t size) {
    disk::FileEntry e;
    e.path = std::move(path);
    e.size = size;
    return e;
}

} // namespace

TEST_CASE("Pipeline::scan") {
    Fixture fixture;
    std::vector<disk::FileEntry> entries;
    std::map<std::string, std::string> data;
    for (int i = 0; i < 200; ++i) {
        const std::string path = "/file" + std::to_string(i);
        data[path] =
            "benign content number " + std::to_string(i) + std::string(static_cast<std::size_t>(i) * 50, 'x');
        entries.push_back(entry(path, data[path].size()));
    }
    data["/eicar.com"] = k_eicar;
    entries.push_back(entry("/eicar.com", k_eicar.size()));
    data["/both"] = k_eicar + " COLDSCAN-MARKER";
    entries.push_back(entry("/both", data["/both"].size()));
    auto link = entry("/eicar-link", k_eicar.size());
    link.hardlink_of = "/eicar.com";
    entries.push_back(link);
    auto problem = entry("/vanished", 10);
    problem.problem = Error{Errc::io, "the appliance did not deliver this file"};
    entries.push_back(problem);
    data["/unreadable"] = "";
    entries.push_back(entry("/unreadable", 5));

    const auto order = GENERATE(disk::ReadOrder::sequential, disk::ReadOrder::random);
    const unsigned threads = GENERATE(1U, 2U, 4U);
    CAPTURE(static_cast<int>(order), threads);
    FakeSource source(entries, data, order);
    RecordingEvents events;
    Progress progress;
    std::atomic<bool> stop{false};
    PipelineSettings settings{threads, 4096, 1024, true};
    ScanCache cache(open_memory_store(), "ctx", IdentityUse::ignore, "");
    Pipeline pipeline(*fixture.signatures, settings, cache, events, progress, stop);
    reports::Report report;
    const auto result =
        pipeline.scan(source, SourceLocation{reports::TargetKind::image, "img", "/dev/sda1", "", ""}, report);

    REQUIRE_FALSE(result.source_error);
    SECTION("every file gets exactly one outcome") {
        CHECK(result.counts.files == 204);
        CHECK(result.counts.clean == 200);
        CHECK(result.counts.infected == 2);
        CHECK(result.counts.errors == 2);
        CHECK(result.counts.hardlinks == 1);
        CHECK(result.counts.files == result.counts.clean + result.counts.infected + result.counts.errors +
                                         result.counts.limit_exceeded + result.counts.skipped);
        CHECK(source.m_reads == 203); // 205 entries; the hard link and the problem entry are not read
        CHECK(progress.files_done == 204);
    }
    SECTION("detections carry the engine, signature and the real sha256") {
        REQUIRE(report.detections.size() == 3);
        std::vector<std::string> found;
        for (const auto& d : report.detections) {
            found.push_back(d.path + " " + display_name(d.detection));
            if (d.path == "/eicar.com") {
                CHECK(d.sha256 == sha256_hex(k_eicar));
            }
        }
        std::sort(found.begin(), found.end());
        CHECK(found[0].starts_with("/both Coldscan.Test.Eicar"));
        CHECK(found[1] == "/both YARA.Marker");
        CHECK(found[2].starts_with("/eicar.com Coldscan.Test.Eicar"));
    }
    SECTION("problems are reported with their reason") {
        REQUIRE(report.errors.size() == 2);
        std::vector<std::string> reasons{report.errors[0].reason, report.errors[1].reason};
        std::sort(reasons.begin(), reasons.end());
        CHECK(reasons[0] == "read failed: bad sector");
        CHECK(reasons[1] == "the appliance did not deliver this file");
    }
    SECTION("one inventory line per name; the hard link repeats its file's outcome") {
        CHECK(events.files.size() == 205);
        const auto found = std::find_if(events.files.begin(), events.files.end(),
                                        [](const auto& r) { return r.path == "/eicar-link"; });
        REQUIRE(found != events.files.end());
        CHECK(found->outcome == OutcomeKind::infected);
        CHECK(found->hardlink_of == std::optional<std::string>("/eicar.com"));
        CHECK(found->sha256 == std::optional<std::string>(sha256_hex(k_eicar)));
    }
    SECTION("bytes in flight stay within the budget when every file fits") {
        CHECK(pipeline.peak_bytes_in_flight() <= 4096);
        CHECK(pipeline.peak_bytes_in_flight() > 0);
    }
}

TEST_CASE("Pipeline::scan when the source breaks") {
    Fixture fixture;
    std::vector<disk::FileEntry> entries;
    std::map<std::string, std::string> data;
    for (int i = 0; i < 10; ++i) {
        const std::string path = "/f" + std::to_string(i);
        data[path] = "x";
        entries.push_back(entry(path, 1));
    }
    FakeSource source(entries, data, disk::ReadOrder::sequential);
    source.m_fail_after = 4;
    RecordingEvents events;
    Progress progress;
    std::atomic<bool> stop{false};
    ScanCache cache(open_memory_store(), "ctx", IdentityUse::ignore, "");
    Pipeline pipeline(*fixture.signatures, PipelineSettings{2, 1 << 20, 1 << 20, false}, cache, events,
                      progress, stop);
    reports::Report report;
    const auto result = pipeline.scan(source, SourceLocation{}, report);
    REQUIRE(result.source_error);
    CHECK(result.source_error->message == "stream broke");
    CHECK(result.counts.files == 4);
    CHECK(result.counts.clean == 4);
}

TEST_CASE("Pipeline::scan stops when asked") {
    Fixture fixture;
    std::vector<disk::FileEntry> entries{entry("/a", 1)};
    FakeSource source(entries, {{"/a", "a"}}, disk::ReadOrder::random);
    RecordingEvents events;
    Progress progress;
    std::atomic<bool> stop{true};
    ScanCache cache(open_memory_store(), "ctx", IdentityUse::ignore, "");
    Pipeline pipeline(*fixture.signatures, PipelineSettings{}, cache, events, progress, stop);
    reports::Report report;
    const auto result = pipeline.scan(source, SourceLocation{}, report);
    CHECK(result.counts.files == 0);
    CHECK(source.m_reads == 0);
}

namespace {

// One scan of entries through a fresh pipeline over cache; returns the report and the source's read count.
struct CachedRun {
    reports::Report report;
    SourceScanResult result;
    int reads = 0;
};

CachedRun scan_with(Fixture& fixture, ScanCache& cache, const std::vector<disk::FileEntry>& entries,
                    const std::map<std::string, std::string>& data, unsigned threads = 2) {
    FakeSource source(entries, data, disk::ReadOrder::random);
    RecordingEvents events;
    Progress progress;
    std::atomic<bool> stop{false};
    Pipeline pipeline(*fixture.signatures, PipelineSettings{threads, 1 << 20, 1 << 20, false}, cache, events,
                      progress, stop);
    CachedRun run;
    run.result = pipeline.scan(
        source, SourceLocation{reports::TargetKind::image, "img", "/dev/sda1", "img-id", "fs"}, run.report);
    run.reads = source.m_reads;
    return run;
}

disk::FileEntry stamped(std::string path, std::size_t size, std::uint64_t inode, std::int64_t ctime_ns) {
    auto e = entry(std::move(path), size);
    e.stamp = disk::FileStamp{inode, 0, 1'000'000'000, ctime_ns};
    return e;
}

// Thirty clean files ("benign N", /fileN) and EICAR (/eicar.com), each with its identity.
std::pair<std::vector<disk::FileEntry>, std::map<std::string, std::string>> benign_and_eicar() {
    std::vector<disk::FileEntry> entries;
    std::map<std::string, std::string> data;
    for (int i = 0; i < 30; ++i) {
        const std::string path = "/file" + std::to_string(i);
        data[path] = "benign " + std::to_string(i);
        entries.push_back(stamped(path, data[path].size(), 100 + static_cast<std::uint64_t>(i), 5));
    }
    data["/eicar.com"] = k_eicar;
    entries.push_back(stamped("/eicar.com", k_eicar.size(), 99, 5));
    return {std::move(entries), std::move(data)};
}

} // namespace

TEST_CASE("Pipeline::scan with the verdict cache") {
    Fixture fixture;
    auto [entries, data] = benign_and_eicar();
    ScanCache cache(open_memory_store(), "ctx", IdentityUse::trust, "test-store");

    const auto first = scan_with(fixture, cache, entries, data);
    REQUIRE(first.report.detections.size() == 1);
    CHECK(first.reads == 31);
    CHECK(cache.report().engine_scans == 31);
    CHECK(cache.report().verdicts_written == 31);

    SECTION("an unchanged re-scan reads nothing and still reports every detection") {
        const auto second = scan_with(fixture, cache, entries, data);
        CHECK(second.reads == 0);
        CHECK(cache.report().engine_scans == 31); // none more
        CHECK(cache.report().identity_hits == 31);
        CHECK(cache.report().files_not_read == 31);
        CHECK(second.result.counts.clean == 30);
        CHECK(second.result.counts.infected == 1);
        REQUIRE(second.report.detections.size() == 1);
        CHECK(second.report.detections[0].path == "/eicar.com");
        CHECK(second.report.detections[0].sha256 == sha256_hex(k_eicar));
    }
    SECTION("a file whose ctime changed is read again; same bytes are not scanned again") {
        entries[3].stamp->ctime_ns += 1;
        const auto second = scan_with(fixture, cache, entries, data);
        CHECK(second.reads == 1);
        CHECK(cache.report().engine_scans == 31);
        CHECK(cache.report().verdict_hits == 31); // 30 by identity, 1 by content
    }
    SECTION("a file whose bytes changed under an unchanged-looking identity is rescanned once read") {
        data["/file3"] = k_eicar; // e.g. a guest that restored size, mtime and (impossibly) ctime
        entries[3].size = k_eicar.size();
        entries[3].stamp->ctime_ns += 1;
        const auto second = scan_with(fixture, cache, entries, data);
        CHECK(second.reads == 1);
        CHECK(second.result.counts.infected == 2);
    }
    SECTION("--verify-content reads and hashes everything, but the engines stay idle") {
        ScanCache verifying(open_memory_store(), "ctx", IdentityUse::ignore, "test-store");
        const auto cold = scan_with(fixture, verifying, entries, data);
        const auto warm = scan_with(fixture, verifying, entries, data);
        CHECK(warm.reads == 31);
        CHECK(verifying.report().engine_scans == 31);
        CHECK(warm.result.counts.infected == 1);
    }
    SECTION("another signature set (another context) scans everything again") {
        auto store = open_memory_store();
        ScanCache a(open_memory_store(), "set A", IdentityUse::trust, "test-store");
        (void)scan_with(fixture, a, entries, data);
        ScanCache b(open_memory_store(), "set B", IdentityUse::trust, "test-store");
        (void)scan_with(fixture, b, entries, data);
        CHECK(b.report().engine_scans == 31);
    }
}

TEST_CASE("Pipeline::scan scans identical content once per run") {
    Fixture fixture;
    std::vector<disk::FileEntry> entries;
    std::map<std::string, std::string> data;
    for (int i = 0; i < 64; ++i) {
        const std::string path = "/copy" + std::to_string(i);
        data[path] = k_eicar;
        entries.push_back(entry(path, k_eicar.size()));
    }
    const unsigned threads = GENERATE(1U, 4U);
    ScanCache cache(open_memory_store(), "ctx", IdentityUse::ignore, "");
    const auto run = scan_with(fixture, cache, entries, data, threads);
    CHECK(run.result.counts.infected == 64);
    CHECK(run.report.detections.size() == 64);
    CHECK(cache.report().engine_scans == 1);
    CHECK(cache.report().files_not_scanned == 63);
}

TEST_CASE("Pipeline::scan of two sources at once, through FilesystemRelay") {
    Fixture fixture;
    // Two filesystems of one image: the first ends with a large file, the second holds EICAR.
    const auto make = [](const std::string& prefix, int files, const std::string& last) {
        std::vector<disk::FileEntry> entries;
        std::map<std::string, std::string> data;
        for (int i = 0; i < files; ++i) {
            const std::string path = prefix + std::to_string(i);
            data[path] = path + std::string(static_cast<std::size_t>(i) * 10, 'y');
            entries.push_back(entry(path, data[path].size()));
        }
        data[prefix + "last"] = last;
        entries.push_back(entry(prefix + "last", last.size()));
        return std::make_pair(entries, data);
    };
    const auto [boot_entries, boot_data] = make("/boot/f", 20, std::string(3U << 20, 'z'));
    const auto [root_entries, root_data] = make("/root/f", 300, k_eicar);
    const auto order = GENERATE(disk::ReadOrder::sequential, disk::ReadOrder::random);
    const unsigned threads = GENERATE(1U, 2U);
    CAPTURE(static_cast<int>(order), threads);
    FakeSource boot(boot_entries, boot_data, order);
    FakeSource root(root_entries, root_data, order);
    RecordingEvents events;
    Progress progress;
    std::atomic<bool> stop{false};
    ScanCache cache(open_memory_store(), "ctx", IdentityUse::ignore, "");
    Pipeline pipeline(*fixture.signatures, PipelineSettings{threads, 1 << 20, 1 << 20, false}, cache, events,
                      progress, stop);
    reports::Report report;
    SourceScanResult boot_result;
    SourceScanResult root_result;
    std::atomic<int> listed{0};
    std::vector<int> listed_before_start; // how many sources had been listed when each read started
    {
        FilesystemRelay relay;
        for (auto* scan : {&boot_result, &root_result}) {
            listed_before_start.push_back(listed.load());
            const bool first = scan == &boot_result;
            relay.start([&, scan, first](const std::function<void()>& on_listed) {
                *scan = pipeline.scan(first ? boot : root,
                                      SourceLocation{reports::TargetKind::image, "img",
                                                     first ? "/dev/sda1" : "/dev/sda2", "", ""},
                                      report, [&] {
                                          ++listed;
                                          on_listed();
                                      });
            });
        }
    }
    CHECK(listed_before_start == std::vector<int>{0, 1}); // the second started once the first was listed
    CHECK(listed == 2);
    CHECK(boot_result.counts.files == 21);
    CHECK(boot_result.counts.clean == 21);
    CHECK(root_result.counts.files == 301);
    CHECK(root_result.counts.clean == 300);
    CHECK(root_result.counts.infected == 1);
    CHECK(events.files.size() == 322);
    REQUIRE(report.detections.size() == 1);
    CHECK(report.detections[0].device == "/dev/sda2");
    CHECK(report.detections[0].path == "/root/flast");
    CHECK(progress.files_done == 322);
}

TEST_CASE("Pipeline::scan after a signature update checks older verdicts against the added lines") {
    Fixture fixture;
    auto [entries, data] = benign_and_eicar();
    const auto store_dir = fixture.dir.path() / "cache";
    auto scan_under_current_set = [&] {
        ScanCache cache(open_rocksdb_store(store_dir).value(), "ctx", IdentityUse::trust, store_dir.string());
        cache.follow_sets(*fixture.signatures);
        auto run = scan_with(fixture, cache, entries, data);
        return std::pair{std::move(run), cache.report()};
    };
    const auto [cold, cold_cache] = scan_under_current_set();
    REQUIRE(cold_cache.lineage);
    REQUIRE(cold_cache.engine_scans == 31);
    auto update = [&](const std::string& file, const std::string& text, bool yara = false) {
        std::ofstream(fixture.dir.path() / (yara ? "" : "db") / file) << text;
        signatures::SignatureOptions options;
        options.clamav_db = fixture.dir.path() / "db";
        options.yara_rules = {fixture.dir.path() / "rules.yar"};
        if (yara) {
            options.yara_rules.push_back(fixture.dir.path() / file);
        }
        fixture.signatures.emplace(signatures::SignatureSet::load(options).value());
    };
    auto paths_detected = [](const CachedRun& run) {
        std::set<std::string> paths;
        for (const auto& detection : run.report.detections) {
            paths.insert(detection.path);
        }
        return paths;
    };

    SECTION("a body line for any file type: every clean content is read and checked by it alone") {
        update("added.ndb", "Coldscan.Test.Benign7:0:*:" + hex_encode("benign 7") + "\n");
        const auto [run, report] = scan_under_current_set();
        CHECK(run.reads == 31);
        CHECK(report.verdicts_rechecked == 29);
        CHECK(report.engine_scans == 2); // the new detection and the INFECTED one, with the whole set
        CHECK(paths_detected(run) == std::set<std::string>{"/eicar.com", "/file7"});
    }
    SECTION("a body line for PE files: no layer was a PE, no clean file is read") {
        update("added.ndb", "Coldscan.Test.Pe:1:*:" + hex_encode("benign 7") + "\n");
        const auto [run, report] = scan_under_current_set();
        CHECK(run.reads == 1); // the INFECTED file, scanned in full
        CHECK(report.verdicts_carried == 30);
        CHECK(report.verdicts_rechecked == 0);
        CHECK(paths_detected(run) == std::set<std::string>{"/eicar.com"});
    }
    SECTION("a YARA rule file: every clean content checked by it alone") {
        update("added.yar", "rule Benign3 { strings: $b = \"benign 3\" condition: $b }\n", true);
        const auto [run, report] = scan_under_current_set();
        CHECK(report.verdicts_rechecked == 29); // all clean contents but the one the rule now matches
        CHECK(paths_detected(run) == std::set<std::string>{"/eicar.com", "/file3"});
    }
}
