// The direct path (qemu-nbd + libnbd + The Sleuth Kit, no appliance) against the appliance on the same
// images: the same files with the same SHA-256 and outcome each, the same detections.
#include "support.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <set>

using namespace coldscan::e2e;

namespace {

// (target, device, exact path) -> "sha256 outcome" for every inventory line.
std::map<std::string, std::string> files_of(const ScanRun& run) {
    REQUIRE(run.inventory.has_value());
    std::map<std::string, std::string> files;
    for (const auto& line : *run.inventory) {
        const std::string key = line.at("target").get<std::string>() + "|" +
                                line.at("device").get<std::string>() + "|" + raw_field(line, "path");
        files[key] = line.value("sha256", std::string("-")) + " " + line.at("outcome").get<std::string>();
    }
    return files;
}

std::set<std::string> readers_of(const ScanRun& run) {
    std::set<std::string> readers;
    for (const auto& target : run.report->at("targets")) {
        for (const auto& fs : target.at("filesystems")) {
            if (fs.at("status") == "scanned") {
                readers.insert(fs.at("reader").get<std::string>());
            }
        }
    }
    return readers;
}

// The direct scan lists every file the appliance lists, with the same digest and outcome, plus extra_files
// (alternate data streams, which the appliance does not list).
void same_files_and_findings(const std::string& appliance_scan, const std::string& direct_scan,
                             std::size_t extra_files = 0) {
    const ScanRun& appliance = load_scan(appliance_scan);
    const ScanRun& direct = load_scan(direct_scan);
    REQUIRE(appliance.report.has_value());
    REQUIRE(direct.report.has_value());
    const auto expected = files_of(appliance);
    const auto got = files_of(direct);
    CHECK(got.size() == expected.size() + extra_files);
    for (const auto& [key, value] : expected) {
        INFO(key);
        REQUIRE(got.contains(key));
        CHECK(got.at(key) == value);
    }
    if (extra_files == 0) {
        CHECK(report_findings(*direct.report) == report_findings(*appliance.report));
        CHECK(direct.report->at("counts") == appliance.report->at("counts"));
    }
    CHECK(direct.exit_code == appliance.exit_code);
}

} // namespace

TEST_CASE("ext4 on GPT: the direct reader gives the appliance's files, digests and detections", "[direct]") {
    same_files_and_findings("ext4-gpt", "direct-ext4-gpt");
    const ScanRun& direct = load_scan("direct-ext4-gpt");
    CHECK(readers_of(direct) == std::set<std::string>{"direct"});
    const Json& target = direct.report->at("targets").at(0);
    CHECK(target.at("accel") == ""); // no appliance started
    REQUIRE(target.at("inspection").size() == 1);
    CHECK(target.at("inspection").at(0).at("distro") == "debian");
    CHECK(target.at("inspection").at(0).at("hostname") == "dormant-web01");
}

TEST_CASE("NTFS: the appliance's files and detections, and the alternate data stream it cannot see",
          "[direct]") {
    same_files_and_findings("ntfs", "direct-ntfs", 1);
    const ScanRun& appliance = load_scan("ntfs");
    const ScanRun& direct = load_scan("direct-ntfs");
    const std::string stream = "/Windows/System32/drivers/etc/hosts:payload";
    const auto files = files_of(direct);
    const auto found =
        std::ranges::find_if(files, [&](const auto& f) { return f.first.ends_with("|" + stream); });
    REQUIRE(found != files.end());
    CHECK(found->second.ends_with(" INFECTED"));
    auto findings = report_findings(*appliance.report);
    const auto direct_findings = report_findings(*direct.report);
    CHECK(direct_findings.size() == findings.size() + 1);
    for (const auto& finding : findings) {
        CHECK(direct_findings.contains(finding));
    }
    const auto& counts = direct.report->at("counts");
    CHECK(counts.at("files") == appliance.report->at("counts").at("files").get<int>() + 1);
    CHECK(counts.at("infected") == appliance.report->at("counts").at("infected").get<int>() + 1);
    const Json& target = load_scan("direct-ntfs").report->at("targets").at(0);
    REQUIRE(target.at("inspection").size() == 1);
    CHECK(target.at("inspection").at(0).at("type") == "windows");
}

TEST_CASE("VMDK, VHDX and VDI through qemu-nbd: the same files as the appliance reads", "[direct]") {
    same_files_and_findings("formats", "direct-formats");
}

TEST_CASE("LVM read directly, btrfs: direct-only reports it failed, auto hands it to the appliance",
          "[direct]") {
    const ScanRun& direct = load_scan("direct-lvm");
    // Files were left unscanned: never a clean result (the FAT partition's detections set the exit status).
    CHECK(direct.report->at("status") == "completed_with_issues");
    CHECK(direct.exit_code == 1);
    std::map<std::string, std::string> status;
    for (const auto& fs : direct.report->at("targets").at(0).at("filesystems")) {
        status[fs.at("device").get<std::string>()] = fs.at("status").get<std::string>();
    }
    CHECK(status.at("/dev/sda1") == "skipped"); // the LVM physical volume: its volumes are listed below
    CHECK(status.at("/dev/coldvg/data") == "scanned"); // ext4 on LVM, by the direct path's own LVM reader
    CHECK(status.at("/dev/coldvg/logs") == "scanned"); // XFS on LVM, by the direct path's own XFS reader
    CHECK(status.at("/dev/sda2") == "scanned");        // FAT
    CHECK(status.at("/dev/sda3") == "failed");         // btrfs

    same_files_and_findings("lvm", "auto-lvm");
    CHECK(readers_of(load_scan("auto-lvm")) == std::set<std::string>{"direct", "appliance"});
}

TEST_CASE("--snapshot on the appliance: a snapshot the image lacks fails the target before a launch",
          "[direct]") {
    const ScanRun& run = load_scan("snapshot-on-appliance");
    CHECK(run.exit_code == 2);
    CHECK(run.err.find("no internal snapshot named \"s1\" (it has none)") != std::string::npos);
    CHECK(run.report->at("targets").at(0).at("status") == "failed");
}
