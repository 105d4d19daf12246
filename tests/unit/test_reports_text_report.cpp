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
    const std::string text = summary(report);
    CHECK(text.find("----------- SCAN SUMMARY -----------") != std::string::npos);
    CHECK(text.find("Scanned files:      2") != std::string::npos);
    CHECK(text.find("Infected files:     1") != std::string::npos);
    CHECK(text.find("Errors:             1") != std::string::npos);
}
