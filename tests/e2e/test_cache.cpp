// The verdict cache end to end: warm re-scans, dedupe across images of one tree, and signature updates.
#include "support.hpp"

#include <catch2/catch.hpp>
#include <set>

using namespace coldscan::e2e;

namespace {

const Json& cache_of(const ScanRun& run) {
    REQUIRE(run.report.has_value());
    return run.report->at("cache");
}

std::uint64_t count(const Json& cache, const char* field) {
    return cache.at(field).get<std::uint64_t>();
}

// (path, outcome, signatures) of every inventory line: what a user sees per file.
std::set<std::string> verdicts(const ScanRun& run) {
    REQUIRE(run.inventory.has_value());
    std::set<std::string> out;
    for (const auto& line : *run.inventory) {
        std::string text = raw_field(line, "path") + " " + line.at("outcome").get<std::string>();
        if (line.contains("signatures")) {
            for (const auto& name : line.at("signatures")) {
                text += " " + name.get<std::string>();
            }
        }
        out.insert(std::move(text));
    }
    return out;
}

} // namespace

TEST_CASE("an unchanged image is re-scanned from the cache: nothing read, every detection reported",
          "[cache]") {
    const ScanRun& cold = load_scan("ext4-gpt");
    const ScanRun& warm = load_scan("ext4-gpt-warm");
    const Json& cache = cache_of(warm);
    const auto files = warm.report->at("counts").at("files").get<std::uint64_t>();
    CHECK(files > 200);
    CHECK(cache.at("enabled") == true);
    CHECK(cache.at("problem") == "");
    CHECK(count(cache, "identity_hits") == files);
    CHECK(count(cache, "files_not_read") == files);
    CHECK(count(cache, "engine_scans") == 0);
    CHECK(count(cache, "bytes_not_read") == warm.report->at("counts").at("bytes").get<std::uint64_t>());
    CHECK(report_findings(*warm.report) == report_findings(*cold.report));
    CHECK(verdicts(warm) == verdicts(cold));
    CHECK(warm.exit_code == cold.exit_code);
    // The cold scan filled the cache: one verdict per distinct content it scanned.
    CHECK(count(cache_of(cold), "verdicts_written") == count(cache_of(cold), "engine_scans"));
    CHECK(count(cache_of(cold), "engine_scans") < files); // identical files inside the image scanned once
}

TEST_CASE("another image of the same tree needs no engine: content is known", "[cache]") {
    const ScanRun& cold = load_scan("ext4-gpt");
    const ScanRun& vdi = load_scan("dedupe-vdi");
    const Json& cache = cache_of(vdi);
    const auto files = vdi.report->at("counts").at("files").get<std::uint64_t>();
    CHECK(count(cache, "identity_hits") == 0); // another image: its files' identities are new
    CHECK(count(cache, "verdict_hits") == files);
    CHECK(count(cache, "engine_scans") == 0);
    CHECK(count(cache, "files_not_scanned") == files);
    CHECK(report_findings(*vdi.report) == report_findings(*cold.report));
    CHECK(verdicts(vdi) == verdicts(cold));
}

TEST_CASE("a new signature turns a cached clean file into a detection; each content is checked once",
          "[cache]") {
    const ScanRun& before = load_scan("sig-update-before");
    const ScanRun& after = load_scan("sig-update-after");
    REQUIRE(before.report.has_value());
    REQUIRE(after.report.has_value());
    auto miner_found = [](const ScanRun& run) {
        for (const auto& d : run.report->at("detections")) {
            if (d.at("signature") == "Coldscan_Demo_Miner_Config") {
                return true;
            }
        }
        return false;
    };
    CHECK_FALSE(miner_found(before));
    CHECK(miner_found(after));
    CHECK(before.report->at("signatures").at("fingerprint") !=
          after.report->at("signatures").at("fingerprint"));

    const Json& cache = cache_of(after);
    const auto files = after.report->at("counts").at("files").get<std::uint64_t>();
    std::set<std::string> contents;
    for (const auto& [path, file] : index_tree(fixtures_dir() / "dirscan" / "dormant-vm").regular) {
        contents.insert(file.sha256);
    }
    CHECK(count(cache, "identity_hits") == files); // the files did not change, but no verdict of the old
    // set is used as it is: each content is checked once, a clean one by the added rule alone (rechecked),
    // the ones it may change with the whole set (engine scans).
    CHECK(count(cache, "engine_scans") + count(cache, "verdicts_rechecked") == contents.size());
    CHECK(count(cache, "verdicts_rechecked") > 0);
    // The other files share content with one scanned in this run, under the new set.
    CHECK(count(cache, "verdict_hits") + count(cache, "same_content_waits") == files - contents.size());
    CHECK(count(cache, "engine_scans") < files);
}
