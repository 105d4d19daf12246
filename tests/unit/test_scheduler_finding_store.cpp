#include "coldscan/common/temp_dir.hpp"
#include "coldscan/scheduler/api_json.hpp"
#include "coldscan/scheduler/finding_store.hpp"

#include <catch2/catch.hpp>
#include <fstream>

using coldscan::Errc;
using coldscan::TempDir;
using coldscan::scheduler::Finding;
using coldscan::scheduler::FindingContext;
using coldscan::scheduler::FindingCount;
using coldscan::scheduler::FindingQuery;
using coldscan::scheduler::LocalFindingStore;
namespace api = coldscan::scheduler::api;

namespace {

constexpr std::int64_t k_dec_6 = 1796515200; // 2026-12-06T00:00:00Z

Finding finding(std::string image, std::string path, std::string signature, std::int64_t at,
                std::string kind = "DETECTION", std::string host = "kvm01") {
    return Finding{std::move(kind),
                   std::move(image),
                   std::move(host),
                   "nfs-a",
                   "/dev/sda1",
                   std::move(path),
                   "ab12",
                   std::move(signature),
                   "clamav",
                   "sigs-1",
                   "j-1",
                   "scan-a",
                   at};
}

} // namespace

TEST_CASE("findings_of: one row per detection and per issue, with the job's context", "[scheduler]") {
    coldscan::reports::Report report;
    report.signatures.fingerprint = "sigs-9";
    coldscan::reports::DetectionRecord detection;
    detection.device = "/dev/sda1";
    detection.path = std::string("/tmp/bad\xff.exe");
    detection.detection.engine = coldscan::Engine::yara;
    detection.detection.signature = "Evil_Rule";
    detection.sha256 = "cafe";
    report.detections.push_back(detection);
    report.errors.push_back({"img", "/dev/sda1", "/big.zip", "LIMIT_EXCEEDED", "max-filesize"});
    const auto rows =
        findings_of(report, FindingContext{"/images/web.qcow2", "kvm01", "nfs-a", "j-7", "scan-b", 99});
    REQUIRE(rows.size() == 2);
    CHECK(rows[0].kind == "DETECTION");
    CHECK(rows[0].engine == "yara");
    CHECK(rows[0].signature == "Evil_Rule");
    CHECK(rows[0].path == "/tmp/bad\\xFF.exe"); // escaped as the report escapes it
    CHECK(rows[0].signature_set == "sigs-9");
    CHECK(rows[0].node == "scan-b");
    CHECK(rows[0].at == 99);
    CHECK(rows[1].kind == "LIMIT_EXCEEDED");
    CHECK(rows[1].signature == "max-filesize");
    CHECK(rows[1].engine.empty());
    CHECK(coldscan::scheduler::utc_day(k_dec_6 + 86399) == "2026-12-06");
}

TEST_CASE(
    "LocalFindingStore: once per run, filters, pages newest first, counts, and what a restart reads back",
    "[scheduler]") {
    auto dir = TempDir::create("coldscan-test");
    REQUIRE(dir.has_value());
    const auto path = (dir->path() / "findings.jsonl").string();
    auto store = LocalFindingStore::open(path);
    REQUIRE(store.has_value());
    std::vector<Finding> first{
        finding("/i/a.qcow2", "/etc/x", "Eicar", k_dec_6 + 10),
        finding("/i/a.qcow2", "/var/tmp/y", "Other", k_dec_6 + 10),
        finding("/i/a.qcow2", "/big.iso", "max-filesize", k_dec_6 + 10, "LIMIT_EXCEEDED")};
    std::vector<Finding> second{
        finding("/i/b.qcow2", "/home/u/x", "Eicar", k_dec_6 + 86400 + 5, "DETECTION", "kvm02")};
    REQUIRE(*(*store)->record("j-1:1", first));
    REQUIRE(*(*store)->record("j-2:1", second));
    auto again = (*store)->record("j-1:1", first);
    REQUIRE(again.has_value());
    CHECK_FALSE(*again);

    auto all = (*store)->search(FindingQuery{});
    REQUIRE(all.has_value());
    CHECK(all->total == 4);
    CHECK(all->findings.front().image == "/i/b.qcow2"); // newest first
    FindingQuery eicar;
    eicar.signature = "Eicar";
    CHECK((*store)->search(eicar)->total == 2);
    FindingQuery in_tmp;
    in_tmp.path_contains = "tmp";
    CHECK((*store)->search(in_tmp)->findings.at(0).path == "/var/tmp/y");
    FindingQuery later;
    later.since = k_dec_6 + 86400;
    CHECK((*store)->search(later)->total == 1);
    FindingQuery page;
    page.offset = 1;
    page.limit = 2;
    auto second_page = (*store)->search(page);
    CHECK(second_page->total == 4);
    REQUIRE(second_page->findings.size() == 2);
    CHECK(second_page->findings[0].path == "/big.iso"); // same time: by image, device, path

    auto stats = (*store)->stats(FindingQuery{});
    REQUIRE(stats.has_value());
    CHECK(stats->total == 4);
    CHECK(stats->per_day == std::vector<FindingCount>{{"2026-12-06", 3}, {"2026-12-07", 1}});
    CHECK(stats->per_signature == std::vector<FindingCount>{{"Eicar", 2}, {"Other", 1}});
    CHECK(stats->per_host == std::vector<FindingCount>{{"kvm01", 3}, {"kvm02", 1}});

    // A crash in the middle of an append: the half line is cut, the rest is read back.
    store->reset();
    {
        std::ofstream out(path, std::ios::app);
        out << R"({"run":"j-3:1","findings":[{"kind")";
    }
    auto reopened = LocalFindingStore::open(path);
    REQUIRE(reopened.has_value());
    CHECK((*reopened)->search(FindingQuery{})->total == 4);
    CHECK_FALSE(*(*reopened)->record("j-2:1", second));
    CHECK(*(*reopened)->record("j-3:1", second));
    CHECK((*reopened)->search(FindingQuery{})->total == 5);
}

TEST_CASE("finding_query and the findings JSON", "[scheduler]") {
    const std::multimap<std::string, std::string> params{{"signature", "Win.Test.EICAR_HDB-1"},
                                                         {"path", "a b&c"},
                                                         {"since", "2026-12-06T00:00:00Z"},
                                                         {"limit", "50"},
                                                         {"offset", "100"}};
    auto query = api::finding_query(params);
    REQUIRE(query.has_value());
    CHECK(query->since == k_dec_6);
    CHECK(query->limit == 50);
    CHECK(
        api::finding_query_string(*query) ==
        "?signature=Win.Test.EICAR_HDB-1&path=a%20b%26c&since=2026-12-06T00%3A00%3A00Z&offset=100&limit=50");
    for (const auto& [name, value] : std::vector<std::pair<std::string, std::string>>{{"since", "yesterday"},
                                                                                      {"limit", "0"},
                                                                                      {"limit", "1001"},
                                                                                      {"offset", "-1"},
                                                                                      {"colour", "red"}}) {
        auto bad = api::finding_query({{name, value}});
        REQUIRE_FALSE(bad.has_value());
        CHECK(bad.error().code == Errc::invalid_argument);
    }
    coldscan::scheduler::FindingPage page{{finding("/i/<img src=x>.qcow2", "/x", "Eicar", k_dec_6)}, 7};
    auto back = api::parse_findings_body(api::findings_body(page, *query));
    REQUIRE(back.has_value());
    CHECK(back->total == 7);
    CHECK(back->findings == page.findings);
    coldscan::scheduler::FindingStats stats{3, {{"2026-12-06", 3}}, {{"Eicar", 2}}, {{"kvm01", 3}}};
    auto stats_back = api::parse_stats_body(api::stats_body(stats));
    REQUIRE(stats_back.has_value());
    CHECK(stats_back->per_signature == stats.per_signature);
    CHECK(stats_back->per_day == stats.per_day);
}
