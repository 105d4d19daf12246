// Targets and inputs that must not end as "clean": unsafe backing chains, damaged images, files that are
// not disk images, missing targets, bad options, unusable signatures. Exit status 2, no detection, no crash,
// and a report (when one is written) that says what went wrong.
#include "checks.hpp"
#include "support.hpp"

#include <algorithm>
#include <catch2/catch.hpp>

using namespace coldscan::e2e;

namespace {

const Json& only_target(const ScanRun& run) {
    REQUIRE(run.report.has_value());
    REQUIRE(run.report->at("targets").size() == 1);
    return run.report->at("targets").at(0);
}

// Every errors[] entry names the target.
void check_errors_name_target(const ScanRun& run, const std::string& target) {
    REQUIRE(run.report.has_value());
    const Json& errors = run.report->at("errors");
    CHECK_FALSE(errors.empty());
    for (const auto& error : errors) {
        INFO(error.dump());
        CHECK(error.at("target") == target);
        CHECK_FALSE(error.at("outcome").get<std::string>().empty());
        CHECK_FALSE(error.at("reason").get<std::string>().empty());
    }
}

std::size_t lines_mentioning(const std::string& text, const std::string& needle) {
    const auto lines = lines_of(text);
    return static_cast<std::size_t>(std::ranges::count_if(
        lines, [&](const std::string& line) { return line.find(needle) != std::string::npos; }));
}

} // namespace

TEST_CASE("an overlay whose backing file is outside the allowed roots is refused", "[outside-backing]") {
    const ScanRun& run = load_scan("outside-backing");
    check_not_clean_no_detection(run);
    const std::string overlay = (fixtures_dir() / "chain/overlay.qcow2").string();
    const Json& target = only_target(run);
    check_envelope(*run.report, "failed");
    CHECK(target.at("path") == overlay);
    CHECK(target.at("status") == "failed");
    const std::string error = target.at("error").get<std::string>();
    CHECK(to_lower(error).find("outside") != std::string::npos);
    CHECK(error.find("base.qcow2") != std::string::npos);
    check_errors_name_target(run, overlay);
    const Json& errors = run.report->at("errors");
    CHECK(std::ranges::any_of(errors, [](const Json& e) { return e.at("outcome") == "TARGET_FAILED"; }));
    CHECK(run.report->at("counts").at("files") == 0);
    // The refusal is also printed (a clamscan-style "TARGET: reason ERROR" line on stdout, or stderr).
    CHECK(lines_mentioning(run.out + run.err, "outside") >= 1);
}

TEST_CASE("a truncated qcow2 image is not reported clean", "[truncated-qcow2]") {
    const ScanRun& run = load_scan("truncated-qcow2");
    check_not_clean_no_detection(run);
    const Json& target = only_target(run);
    CHECK(target.at("path") == image_path("truncated.qcow2"));
    CHECK(target.at("status") != "completed");
    check_errors_name_target(run, image_path("truncated.qcow2"));
}

TEST_CASE("a truncated raw image is not reported clean", "[truncated-raw]") {
    const ScanRun& run = load_scan("truncated-raw");
    check_not_clean_no_detection(run);
    const Json& target = only_target(run);
    CHECK(target.at("path") == image_path("truncated.raw"));
    CHECK(target.at("status") != "completed");
    check_errors_name_target(run, image_path("truncated.raw"));
}

// A file qemu-img calls raw (it calls anything it cannot identify raw) but that has no partition table or
// filesystem at its start is refused by the safety gate before any appliance starts: one clear line, exit 2.
TEST_CASE("a text file given as an image is refused: not a disk image", "[not-an-image]") {
    const ScanRun& run = load_scan("not-an-image");
    check_not_clean_no_detection(run);
    const std::string path = image_path("not-an-image.txt");
    const Json& target = only_target(run);
    check_envelope(*run.report, "failed");
    CHECK(target.at("path") == path);
    CHECK(target.at("status") == "failed");
    CHECK(target.at("error").get<std::string>().find("is not a disk image") != std::string::npos);
    CHECK(run.report->at("counts").at("files") == 0);
    check_errors_name_target(run, path);
    INFO("stderr:\n" << run.err);
    CHECK(lines_mentioning(run.err, path) == 1);
}

TEST_CASE("a missing target fails with one clear line on stderr", "[missing-file]") {
    const ScanRun& run = load_scan("missing-file");
    check_not_clean_no_detection(run);
    const std::string missing = (fixtures_dir() / "images/does-not-exist.qcow2").string();
    INFO("stderr:\n" << run.err);
    CHECK(lines_mentioning(run.err, missing) == 1);
}

TEST_CASE("an unknown option fails before scanning", "[bad-option]") {
    const ScanRun& run = load_scan("bad-option");
    check_not_clean_no_detection(run);
    INFO("stderr:\n" << run.err);
    CHECK(run.err.find("--no-such-option") != std::string::npos);
    CHECK_FALSE(run.report.has_value());
    CHECK_FALSE(run.inventory.has_value());
}

TEST_CASE("YARA rules that do not compile fail the run", "[broken-rules]") {
    const ScanRun& run = load_scan("broken-rules");
    check_not_clean_no_detection(run);
    INFO("stderr:\n" << run.err);
    CHECK(run.err.find("broken.yar") != std::string::npos);
}

TEST_CASE("a database libclamav refuses fails the run, without a report", "[broken-db]") {
    const ScanRun& run = load_scan("broken-db");
    check_not_clean_no_detection(run);
    INFO("stderr:\n" << run.err);
    CHECK(run.err.find("Malformed database") != std::string::npos);
    CHECK(run.err.find("broken.ndb") != std::string::npos);
    CHECK_FALSE(run.report.has_value()); // the files were not scanned: no report says they were
}

TEST_CASE("a missing ClamAV database fails the run", "[missing-db]") {
    const ScanRun& run = load_scan("missing-db");
    check_not_clean_no_detection(run);
    INFO("stderr:\n" << run.err);
    CHECK(run.err.find((fixtures_dir() / "sigs/no-such-clamav-db").string()) != std::string::npos);
}
