#include "checks.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <map>

namespace coldscan::e2e {

namespace {

// The last lines of a text, for failure messages.
std::string tail(const std::string& text, std::size_t count = 15) {
    const auto lines = lines_of(text);
    std::string out;
    for (std::size_t i = lines.size() > count ? lines.size() - count : 0; i < lines.size(); ++i) {
        out += lines[i] + "\n";
    }
    return out;
}

std::vector<std::string> found_lines(const std::string& out) {
    std::vector<std::string> found;
    for (const auto& line : lines_of(out)) {
        if (line.ends_with(" FOUND")) {
            found.push_back(line);
        }
    }
    return found;
}

bool contains(const std::vector<std::string>& lines, const std::string& line) {
    return std::ranges::find(lines, line) != lines.end();
}

// The name a detection carries in stdout lines and inventory "signatures": YARA rules get a "YARA." prefix.
std::string printed_signature(const Json& detection) {
    const std::string signature = detection.at("signature").get<std::string>();
    return detection.at("engine") == "yara" ? "YARA." + signature : signature;
}

const FilesystemSpec* spec_for_label(const CompletedScanSpec& spec, const std::string& label) {
    for (const auto& filesystem : spec.filesystems) {
        if (filesystem.label == label) {
            return &filesystem;
        }
    }
    return nullptr;
}

const TreeIndex& tree_of(const FilesystemSpec& filesystem) {
    return index_tree(fixtures_dir() / "trees" / filesystem.tree);
}

void check_counts_object(const Json& counts, std::size_t files, std::uintmax_t bytes, std::size_t hardlinks,
                         std::size_t infected) {
    for (const char* field :
         {"files", "bytes", "clean", "infected", "limit_exceeded", "errors", "skipped", "hardlinks"}) {
        INFO("counts." << field);
        REQUIRE(counts.contains(field));
        REQUIRE(counts.at(field).is_number_unsigned());
    }
    CHECK(counts.at("files").get<std::size_t>() ==
          counts.at("clean").get<std::size_t>() + counts.at("infected").get<std::size_t>() +
              counts.at("limit_exceeded").get<std::size_t>() + counts.at("errors").get<std::size_t>() +
              counts.at("skipped").get<std::size_t>());
    CHECK(counts.at("files").get<std::size_t>() == files);
    CHECK(counts.at("bytes").get<std::uintmax_t>() == bytes);
    CHECK(counts.at("hardlinks").get<std::size_t>() == hardlinks);
    CHECK(counts.at("infected").get<std::size_t>() == infected);
    CHECK(counts.at("clean").get<std::size_t>() == files - infected);
    CHECK(counts.at("limit_exceeded").get<std::size_t>() == 0);
    CHECK(counts.at("errors").get<std::size_t>() == 0);
    CHECK(counts.at("skipped").get<std::size_t>() == 0);
}

} // namespace

std::string image_path(const std::string& file) {
    return (fixtures_dir() / "images" / file).string();
}
std::string dirscan_path() {
    return (fixtures_dir() / "dirscan/dormant-vm").string();
}

void check_no_crash(const ScanRun& run) {
    INFO("stderr of " << run.name << ":\n" << tail(run.err));
    for (const char* trace : {"terminate called", "what():", "Segmentation fault", "Aborted",
                              "AddressSanitizer", "runtime error:", "core dumped"}) {
        CHECK(run.err.find(trace) == std::string::npos);
    }
    CHECK(run.exit_code < 128); // not killed by a signal
}

void check_envelope(const Json& report, const std::string& status) {
    CHECK(report.at("schema") == "coldscan.report");
    CHECK(report.at("schema_version") == 1);
    CHECK(report.at("tool").at("name") == "coldscan");
    CHECK_FALSE(report.at("tool").at("version").get<std::string>().empty());
    CHECK(report.at("status") == status);
    CHECK_FALSE(report.at("started_at").get<std::string>().empty());
    CHECK_FALSE(report.at("finished_at").get<std::string>().empty());
    CHECK(report.at("targets").is_array());
    CHECK(report.at("detections").is_array());
    CHECK(report.at("errors").is_array());
}

void check_signatures_block(const Json& report) {
    const Json& signatures = report.at("signatures");
    CHECK(is_sha256_hex(signatures.at("fingerprint").get<std::string>()));

    const Json& clamav = signatures.at("clamav");
    REQUIRE(clamav.is_object());
    CHECK(clamav.at("path") == (fixtures_dir() / "sigs/clamav").string());
    CHECK(clamav.at("files").size() == 2); // coldscan-test.hsb, coldscan-test.ndb
    CHECK(clamav.at("signature_count").get<std::size_t>() == generated_clamav_signature_count());
    CHECK(is_sha256_hex(clamav.at("fingerprint").get<std::string>()));
    CHECK(clamav.at("engine_version") == clamscan_version());

    const Json& yara = signatures.at("yara");
    REQUIRE(yara.is_object());
    CHECK(yara.at("files").size() == 2); // demo.yar, miner.yar
    CHECK(yara.at("rule_count") == 2);
    CHECK(is_sha256_hex(yara.at("fingerprint").get<std::string>()));
    CHECK(yara.at("engine_version") == yara_version());
    CHECK(clamav.at("fingerprint") != yara.at("fingerprint"));
}

void check_not_clean_no_detection(const ScanRun& run) {
    INFO("scan " << run.name << ": " << run.command << "\nstderr:\n" << tail(run.err));
    CHECK(run.exit_code == 2);
    CHECK(found_lines(run.out).empty());
    check_no_crash(run);
    if (run.report) {
        CHECK(run.report->at("detections").empty());
        CHECK(run.report->at("status") != "completed");
        CHECK_FALSE(run.report->at("errors").empty());
    }
}

void check_completed_scan(const CompletedScanSpec& spec) {
    const ScanRun& run = load_scan(spec.scan);
    INFO("scan " << spec.scan << ": " << run.command);
    INFO("stderr (tail):\n" << tail(run.err));
    CHECK(run.exit_code == spec.exit_code);
    check_no_crash(run);
    REQUIRE(run.report.has_value());
    const Json& report = *run.report;
    INFO("report errors: " << report.value("errors", Json::array()).dump());

    check_envelope(report, "completed");
    check_signatures_block(report);
    CHECK(report.at("errors").empty());

    // --- the target ---------------------------------------------------------------------------------------
    REQUIRE(report.at("targets").size() == 1);
    const Json& target = report.at("targets").at(0);
    CHECK(target.at("path") == spec.target);
    CHECK(target.at("kind") == spec.kind);
    CHECK(target.at("status") == "completed");
    CHECK_FALSE(target.contains("error"));
    if (spec.kind == "image") {
        const Json info = qemu_img_info(spec.target);
        CHECK(target.at("format") == info.at("format"));
        CHECK(target.at("virtual_size") == info.at("virtual-size"));
        CHECK(target.at("backing_chain").is_array());
        if (!info.contains("backing-filename")) {
            CHECK(target.at("backing_chain").empty());
        }
        const std::string accel = target.at("accel").get<std::string>();
        CHECK((accel == "kvm" || accel == "tcg"));
    }

    // --- filesystems --------------------------------------------------------------------------------------
    std::size_t files = 0;
    std::uintmax_t bytes = 0;
    std::size_t hardlinks = 0;
    if (spec.kind == "image") {
        // Filesystems not scanned by design (btrfs subvolumes reached through their top level, swap) are
        // checked by the tests that expect them.
        std::vector<Json> filesystems;
        for (const auto& filesystem : target.at("filesystems")) {
            if (filesystem.at("status") != "skipped") {
                filesystems.push_back(filesystem);
            }
        }
        CHECK(filesystems.size() == spec.filesystems.size());
        for (const auto& expected : spec.filesystems) {
            INFO("filesystem " << expected.label);
            std::vector<Json> matching;
            for (const auto& filesystem : filesystems) {
                if (filesystem.contains("label") && filesystem.at("label").is_string() &&
                    raw_field(filesystem, "label") == expected.label) {
                    matching.push_back(filesystem);
                }
            }
            REQUIRE(matching.size() == 1);
            const Json& filesystem = matching.front();
            CHECK(expected.devices.contains(filesystem.at("device").get<std::string>()));
            CHECK(filesystem.at("type") == expected.type);
            CHECK(filesystem.at("status") == "scanned");
            if (expected.uuid) {
                CHECK(to_lower(filesystem.at("uuid").get<std::string>()) == *expected.uuid);
            }
            const TreeIndex& tree = tree_of(expected);
            CHECK(filesystem.at("files").get<std::size_t>() == tree.distinct_files);
            CHECK(filesystem.at("bytes").get<std::uintmax_t>() == tree.distinct_bytes);
        }
    }
    for (const auto& expected : spec.filesystems) {
        const TreeIndex& tree = tree_of(expected);
        files += tree.distinct_files;
        bytes += tree.distinct_bytes;
        hardlinks += tree.hardlink_names;
    }

    // --- detections ---------------------------------------------------------------------------------------
    std::set<std::string> labels;
    for (const auto& filesystem : spec.filesystems) {
        labels.insert(filesystem.label);
    }
    const std::string dir_label = spec.kind == "directory" ? spec.filesystems.front().label : "";
    const std::set<Finding> got = report_findings(report, dir_label);
    std::set<ExpectedHit> got_hits;
    for (const auto& finding : got) {
        got_hits.insert({finding.label, finding.path, finding.engine});
    }
    {
        INFO("the detected (filesystem, path, engine) set equals tests/fixtures/expected-detections.tsv");
        CHECK(got_hits == expected_hits(labels));
    }
    std::set<Finding> reference;
    for (const auto& filesystem : spec.filesystems) {
        const auto& findings =
            reference_findings(filesystem.label, fixtures_dir() / "trees" / filesystem.tree);
        reference.insert(findings.begin(), findings.end());
    }
    {
        INFO("coldscan's signatures equal clamscan --allmatch and yara on the source files");
        CHECK(got == reference);
    }

    // Infected distinct files, per inode.
    std::size_t infected = 0;
    for (const auto& filesystem : spec.filesystems) {
        std::set<std::uintmax_t> inodes;
        for (const auto& hit : expected_hits({filesystem.label})) {
            if (const auto file = tree_of(filesystem).regular.find(hit.path);
                file != tree_of(filesystem).regular.end()) {
                inodes.insert(file->second.inode);
            }
        }
        infected += inodes.size();
    }

    const auto labels_by_device = device_labels(report, dir_label);
    std::map<std::pair<std::string, std::string>, std::set<std::string>> signatures_by_file;
    for (const auto& detection : report.at("detections")) {
        const std::string path = raw_field(detection, "path");
        INFO("detection " << detection.dump());
        CHECK(detection.at("target") == spec.target);
        const auto label = labels_by_device.find(detection.at("device").get<std::string>());
        REQUIRE(label != labels_by_device.end());
        const FilesystemSpec* filesystem = spec_for_label(spec, label->second);
        REQUIRE(filesystem != nullptr);
        const auto& regular = tree_of(*filesystem).regular;
        const auto file = regular.find(path);
        REQUIRE(file != regular.end());
        CHECK(detection.at("sha256") == file->second.sha256);
        CHECK(detection.at("size") == file->second.size);
        signatures_by_file[{label->second, path}].insert(printed_signature(detection));
        if (detection.at("engine") == "yara") {
            const Json& yara = detection.at("yara");
            CHECK(yara.at("rule") == detection.at("signature"));
            CHECK_FALSE(yara.at("namespace").get<std::string>().empty());
            const auto tags = reference_yara_tags(fixtures_dir() / "trees" / filesystem->tree);
            const auto rule_tags = tags.find(detection.at("signature").get<std::string>());
            REQUIRE(rule_tags != tags.end());
            CHECK(yara.at("tags").get<std::vector<std::string>>() == rule_tags->second);
            CHECK(yara.at("meta").at("author") == "coldscan tests");
            CHECK_FALSE(yara.at("meta").at("description").get<std::string>().empty());
        } else {
            CHECK(detection.at("engine") == "clamav");
            CHECK((!detection.contains("yara") || detection.at("yara").is_null()));
        }
    }

    // --- counts -------------------------------------------------------------------------------------------
    {
        INFO("top-level counts");
        check_counts_object(report.at("counts"), files, bytes, hardlinks, infected);
    }
    {
        INFO("target counts");
        check_counts_object(target.at("counts"), files, bytes, hardlinks, infected);
    }

    // --- stdout: one line per detection -------------------------------------------------------------------
    const auto lines = found_lines(run.out);
    CHECK(lines.size() == report.at("detections").size());
    for (const auto& detection : report.at("detections")) {
        const auto make_line = [&](const std::string& path) {
            const std::string where =
                spec.kind == "image"
                    ? spec.target + ":" + detection.at("device").get<std::string>() + ":" + path
                    : spec.target + path;
            return where + ": " + printed_signature(detection) + " FOUND";
        };
        // A path that is not valid UTF-8 may be printed as raw bytes or as the report's \xNN text.
        const std::string raw_line = make_line(raw_field(detection, "path"));
        const std::string text_line = make_line(detection.at("path").get<std::string>());
        INFO("expected stdout line: " << raw_line << "\nstdout (tail):\n" << tail(run.out));
        CHECK((contains(lines, raw_line) || contains(lines, text_line)));
    }

    // --- inventory: one line per file name ----------------------------------------------------------------
    REQUIRE(run.inventory.has_value());
    std::map<std::string, std::set<std::string>> names_by_label;
    std::size_t hardlink_lines = 0;
    for (const auto& line : *run.inventory) {
        INFO("inventory line " << line.dump());
        CHECK(line.at("target") == spec.target);
        const auto label = labels_by_device.find(line.at("device").get<std::string>());
        REQUIRE(label != labels_by_device.end());
        const FilesystemSpec* filesystem = spec_for_label(spec, label->second);
        REQUIRE(filesystem != nullptr);
        const std::string path = raw_field(line, "path");
        CHECK(names_by_label[label->second].insert(path).second); // no name twice
        const auto& regular = tree_of(*filesystem).regular;
        const auto file = regular.find(path);
        REQUIRE(file != regular.end()); // only regular files; symlinks and FIFOs are not files
        CHECK(line.at("size") == file->second.size);
        const std::string outcome = line.at("outcome").get<std::string>();
        CHECK((outcome == "CLEAN" || outcome == "INFECTED"));
        CHECK_FALSE(line.contains("reason"));
        if (line.contains("hardlink_of")) {
            ++hardlink_lines;
            const auto other = regular.find(raw_field(line, "hardlink_of"));
            REQUIRE(other != regular.end());
            CHECK(other->first != path);
            CHECK(other->second.inode == file->second.inode);
            CHECK((line.at("sha256").is_null() || line.at("sha256") == file->second.sha256));
        } else {
            CHECK(line.at("sha256") == file->second.sha256);
        }
        const auto signatures = signatures_by_file.find({label->second, path});
        if (signatures == signatures_by_file.end()) {
            CHECK(outcome == "CLEAN");
            CHECK_FALSE(line.contains("signatures"));
        } else {
            CHECK(outcome == "INFECTED");
            const auto listed = line.at("signatures").get<std::vector<std::string>>();
            CHECK(std::set<std::string>(listed.begin(), listed.end()) == signatures->second);
        }
    }
    CHECK(hardlink_lines == hardlinks);
    for (const auto& filesystem : spec.filesystems) {
        INFO("every regular file of " << filesystem.label << " has an inventory line");
        std::set<std::string> expected_names;
        for (const auto& [path, file] : tree_of(filesystem).regular) {
            expected_names.insert(path);
        }
        CHECK(names_by_label[filesystem.label] == expected_names);
    }
}

} // namespace coldscan::e2e
