// The dormant tree scanned as a host directory, and cross-checks between scans of the same files.
#include "checks.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>
#include <tuple>

using namespace coldscan::e2e;

namespace {

// Detections reduced to what does not depend on the target: (path, engine, signature, sha256).
std::set<std::tuple<std::string, std::string, std::string, std::string>> portable(const Json& report) {
    std::set<std::tuple<std::string, std::string, std::string, std::string>> out;
    for (const auto& detection : report.at("detections")) {
        out.emplace(raw_field(detection, "path"), detection.at("engine").get<std::string>(),
                    detection.at("signature").get<std::string>(), detection.at("sha256").get<std::string>());
    }
    return out;
}

} // namespace

TEST_CASE("scan the dormant tree as a directory", "[directory]") {
    check_completed_scan(
        {"directory", dirscan_path(), "directory", 1, {{"coldroot", "", {""}, "dormant", std::nullopt}}});
    const ScanRun& run = load_scan("directory");
    REQUIRE(run.report.has_value());
    for (const auto& detection : run.report->at("detections")) {
        CHECK(detection.at("device") == "");
        CHECK(detection.at("path").get<std::string>().starts_with("/"));
    }
}

TEST_CASE("a directory and an image holding the same files give the same detections", "[cross]") {
    const ScanRun& image = load_scan("ext4-gpt");
    const ScanRun& directory = load_scan("directory");
    REQUIRE(image.report.has_value());
    REQUIRE(directory.report.has_value());
    CHECK_FALSE(image.report->at("detections").empty());
    CHECK(portable(*image.report) == portable(*directory.report));
    CHECK(image.report->at("counts").at("files") == directory.report->at("counts").at("files"));
    CHECK(image.report->at("counts").at("bytes") == directory.report->at("counts").at("bytes"));
}

TEST_CASE("the clean image holds the dormant image's files minus the infected ones", "[cross]") {
    const ScanRun& dormant = load_scan("ext4-gpt");
    const ScanRun& clean = load_scan("clean");
    REQUIRE(dormant.report.has_value());
    REQUIRE(clean.report.has_value());
    const auto& dormant_counts = dormant.report->at("counts");
    CHECK(clean.report->at("counts").at("files").get<std::size_t>() ==
          dormant_counts.at("files").get<std::size_t>() - dormant_counts.at("infected").get<std::size_t>());
}

TEST_CASE("scans with the same signatures report the same signature fingerprint", "[cross]") {
    std::set<std::string> fingerprints;
    for (const char* name : {"ext4-gpt", "clean", "directory"}) {
        const ScanRun& run = load_scan(name);
        REQUIRE(run.report.has_value());
        fingerprints.insert(run.report->at("signatures").at("fingerprint").get<std::string>());
    }
    CHECK(fingerprints.size() == 1);
}

TEST_CASE("a file over --max-filesize is LIMIT_EXCEEDED, never clean, and detections still count",
          "[limits]") {
    const ScanRun& run = load_scan("limits");
    const ScanRun& full = load_scan("directory");
    REQUIRE(run.report.has_value());
    REQUIRE(full.report.has_value());
    const std::string big = "/var/backups/db-dump.sql";
    check_envelope(*run.report, "completed_with_warnings"); // a limit hit alone: a warning, not a failure
    CHECK(run.exit_code == 1);                              // detections win over "not fully scanned"
    CHECK(run.report->at("options").at("limits").at("max_file_size") == 16 * 1024 * 1024);
    const Json& counts = run.report->at("counts");
    CHECK(counts.at("limit_exceeded") == 1);
    CHECK(counts.at("clean").get<int>() == full.report->at("counts").at("clean").get<int>() - 1);
    CHECK(portable(*run.report) == portable(*full.report));

    REQUIRE(run.report->at("errors").size() == 1);
    const Json& issue = run.report->at("errors").at(0);
    CHECK(issue.at("path") == big);
    CHECK(issue.at("outcome") == "LIMIT_EXCEEDED");
    CHECK(issue.at("reason").get<std::string>().find("MaxFileSize") != std::string::npos);

    REQUIRE(run.inventory.has_value());
    std::size_t big_lines = 0;
    for (const auto& line : *run.inventory) {
        if (line.at("path") == big) {
            ++big_lines;
            CHECK(line.at("outcome") == "LIMIT_EXCEEDED");
        }
    }
    CHECK(big_lines == 1);
    INFO("stdout:\n" << run.out);
    CHECK(run.out.find(dirscan_path() + big +
                       ": ClamAV: Heuristics.Limits.Exceeded.MaxFileSize (the file has ") !=
          std::string::npos);
}
