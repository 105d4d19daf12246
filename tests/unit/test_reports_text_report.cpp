#include "coldscan/reports/text_report.hpp"

#include <catch2/catch.hpp>

using namespace coldscan;
using namespace coldscan::reports;

TEST_CASE("detection_line") {
    DetectionRecord record{"/img/vm1.qcow2",
                           "/dev/sda1",
                           "/home/a b/clam.exe",
                           Detection{Engine::clamav, "Clamav.Test.File-6", "", {}, {}},
                           "",
                           544};
    SECTION("images: TARGET:DEVICE:/guest/path") {
        CHECK(detection_line(TargetKind::image, record) ==
              "/img/vm1.qcow2:/dev/sda1:/home/a b/clam.exe: Clamav.Test.File-6 FOUND");
    }
    SECTION("directories: the host path") {
        record.target = "/mnt/backup/";
        record.device = "";
        CHECK(detection_line(TargetKind::directory, record) ==
              "/mnt/backup/home/a b/clam.exe: Clamav.Test.File-6 FOUND");
    }
    SECTION("YARA hits print as YARA.<rule>") {
        record.detection = Detection{Engine::yara, "Ransom_Note", "demo", {}, {}};
        CHECK(detection_line(TargetKind::image, record).ends_with(": YARA.Ransom_Note FOUND"));
    }
    SECTION("a hostile file name stays on one line") {
        record.path = "/x\n/etc/passwd: OK";
        const auto line = detection_line(TargetKind::image, record);
        CHECK(line.find('\n') == std::string::npos);
        CHECK(line.find("\\x0A") != std::string::npos);
    }
}

TEST_CASE("issue_line") {
    CHECK(issue_line(TargetKind::image,
                     IssueRecord{"/i.qcow2", "/dev/sda1", "/big", "LIMIT_EXCEEDED", "MaxFileSize"}) ==
          "/i.qcow2:/dev/sda1:/big: MaxFileSize LIMIT_EXCEEDED");
    CHECK(issue_line(TargetKind::image, IssueRecord{"/i.qcow2", "", "", "TARGET_FAILED", "no such file"}) ==
          "/i.qcow2: no such file ERROR");
}

TEST_CASE("summary") {
    Report report;
    report.counts.add(OutcomeKind::infected, 10);
    report.counts.add(OutcomeKind::clean, 2048);
    report.errors.push_back(IssueRecord{"/x", "", "", "TARGET_FAILED", "gone"});
    TargetReport target;
    target.path = "/img/vm1.qcow2";
    target.format = "qcow2";
    target.virtual_size = 256ULL << 20;
    target.inspection.push_back(OsReport{"/dev/sda1", "linux", "debian", "Debian", "12.5", "web\n01"});
    target.filesystems.push_back(
        FilesystemReport{"/dev/sda1", "ext4", "", "", FilesystemStatus::scanned, "", 1, 10, 0, 0, ""});
    target.filesystems.push_back(
        FilesystemReport{"/dev/sda2", "swap", "", "", FilesystemStatus::skipped, "", 0, 0, 0, 0, ""});
    report.targets.push_back(target);
    const std::string text = summary(report);
    CHECK(
        text.find("/img/vm1.qcow2: qcow2, 256.0 MiB, debian 12.5 \"web\\x0A01\", 1 of 2 filesystems scanned, "
                  "completed\n") != std::string::npos);
    CHECK(text.find("----------- SCAN SUMMARY -----------") != std::string::npos);
    CHECK(text.find("Scanned files:      2") != std::string::npos);
    CHECK(text.find("Infected files:     1") != std::string::npos);
    CHECK(text.find("Errors:             1") != std::string::npos);
}
