#include "coldscan/common/temp_dir.hpp"
#include "coldscan/common/text.hpp"
#include "coldscan/reports/json_report.hpp"

#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

using namespace coldscan;
using namespace coldscan::reports;
using nlohmann::json;

namespace {

Report sample_report() {
    Report report;
    report.status = RunStatus::completed_with_issues;
    report.started_at = "2026-11-23T10:00:00Z";
    report.finished_at = "2026-11-23T10:01:00Z";
    report.signatures.fingerprint = "ff00";
    report.signatures.clamav = ClamavSignatures{"/db", {"/db/a.hsb"}, 12, "aa", "1.4.6"};
    TargetReport target;
    target.path = "/images/vm1.qcow2";
    target.format = "qcow2";
    target.virtual_size = 1 << 30;
    target.backing_chain.push_back(LayerReport{"/images/base.qcow2", "qcow2", 1 << 30, 4096});
    target.inspection.push_back(OsReport{"/dev/sda1", "linux", "debian", "Debian 12", "12.0", "web1"});
    target.filesystems.push_back(FilesystemReport{"/dev/sda1", "ext4", "root", "1234-abcd",
                                                  FilesystemStatus::scanned, "", 3, 300, 1.5, 2.5, "direct"});
    target.inspect_seconds = 6.25;
    target.counts.add(OutcomeKind::clean, 100);
    target.counts.add(OutcomeKind::infected, 100);
    target.counts.add(OutcomeKind::limit_exceeded, 100);
    target.status = status_of(target, LimitPolicy::fail);
    report.counts = target.counts;
    report.targets.push_back(target);
    Detection yara{Engine::yara, "Demo_Rule", "demo", {"ransom"}, {{"author", "coldscan"}}};
    report.detections.push_back(
        DetectionRecord{"/images/vm1.qcow2", "/dev/sda1", "/home/j\xFFrg/note.txt", yara, "abcd", 100});
    report.errors.push_back(
        IssueRecord{"/images/vm1.qcow2", "/dev/sda1", "/big.iso", "LIMIT_EXCEEDED", "MaxFileSize"});
    return report;
}

} // namespace

TEST_CASE("to_json") {
    const Report report = sample_report();
    const json j = json::parse(to_json(report));
    CHECK(j["schema"] == "coldscan.report");
    CHECK(j["schema_version"] == 1);
    CHECK(j["status"] == "completed_with_issues");
    CHECK(j["signatures"]["clamav"]["signature_count"] == 12);
    CHECK(j["signatures"]["yara"].is_null());
    const auto& target = j["targets"][0];
    CHECK(target["status"] == "completed_with_issues");
    CHECK(target["format"] == "qcow2");
    CHECK(target["backing_chain"][0]["path"] == "/images/base.qcow2");
    CHECK(target["inspection"][0]["hostname"] == "web1");
    CHECK(target["filesystems"][0]["uuid"] == "1234-abcd");
    CHECK(target["counts"]["files"] == 3);
    CHECK(target["timings"]["inspect_seconds"] == 6.25);
    CHECK(target["filesystems"][0]["timings"]["open_seconds"] == 1.5);
    CHECK(target["filesystems"][0]["timings"]["scan_seconds"] == 2.5);
    CHECK(target["filesystems"][0]["reader"] == "direct");
    SECTION("a guest path that is not UTF-8 is escaped, with its exact bytes in path_hex") {
        const auto& detection = j["detections"][0];
        CHECK(detection["path"] == "/home/j\\xFFrg/note.txt");
        CHECK(detection["path_hex"] == hex_encode("/home/j\xFFrg/note.txt"));
        CHECK(detection["engine"] == "yara");
        CHECK(detection["yara"]["namespace"] == "demo");
        CHECK(detection["yara"]["tags"][0] == "ransom");
        CHECK(detection["yara"]["meta"]["author"] == "coldscan");
    }
    SECTION("counts add up") {
        const auto& c = j["counts"];
        CHECK(c["files"].get<int>() == c["clean"].get<int>() + c["infected"].get<int>() +
                                           c["limit_exceeded"].get<int>() + c["errors"].get<int>() +
                                           c["skipped"].get<int>());
        CHECK(c["bytes"] == 300);
    }
    CHECK(j["errors"][0]["outcome"] == "LIMIT_EXCEEDED");
}

TEST_CASE("write_json_file") {
    auto dir = TempDir::create("coldscan-test");
    REQUIRE(dir);
    const auto path = dir->path() / "report.json";
    REQUIRE(write_json_file(sample_report(), path));
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    CHECK(json::parse(text.str())["targets"][0]["path"] == "/images/vm1.qcow2");
    SECTION("an unwritable place is an io error") {
        auto failed = write_json_file(sample_report(), dir->path() / "missing" / "r.json");
        REQUIRE_FALSE(failed);
        CHECK(failed.error().code == Errc::io);
    }
}

TEST_CASE("inventory_line") {
    InventoryRecord record{
        "/i.qcow2",  "/dev/sda1",           "/a b/c.exe", 544,
        "ab12",      OutcomeKind::infected, "",           {"Coldscan.Test.ClamExe.UNOFFICIAL"},
        std::nullopt};
    const std::string line = inventory_line(record);
    REQUIRE(line.back() == '\n');
    CHECK(line.find('\n') == line.size() - 1);
    const json j = json::parse(line);
    CHECK(j["path"] == "/a b/c.exe");
    CHECK(j["outcome"] == "INFECTED");
    CHECK(j["signatures"][0] == "Coldscan.Test.ClamExe.UNOFFICIAL");
    CHECK_FALSE(j.contains("reason"));
    record.outcome = OutcomeKind::error;
    record.reason = "read failed";
    record.sha256.reset();
    const json e = json::parse(inventory_line(record));
    CHECK(e["sha256"].is_null());
    CHECK(e["reason"] == "read failed");
}

TEST_CASE("exit_status") {
    Report report = sample_report();
    CHECK(exit_status(report) == 1);
    report.detections.clear();
    report.status = status_of(report);
    CHECK(exit_status(report) == 2);
    report.targets[0].status = RunStatus::completed;
    report.status = status_of(report);
    CHECK(exit_status(report) == 0);
    report.targets[0].status = RunStatus::failed;
    report.status = status_of(report);
    CHECK(report.status == RunStatus::failed);
    CHECK(exit_status(report) == 2);
}

TEST_CASE("check_writable") {
    auto dir = TempDir::create("coldscan-test");
    REQUIRE(dir);
    CHECK(check_writable(dir->path() / "new.json"));
    CHECK_FALSE(check_writable(dir->path() / "no" / "such.json"));
    CHECK_FALSE(check_writable(dir->path()));
}
