// Helpers for the end-to-end checks: load the saved outputs of one `coldscan scan` run, index the source
// trees the images were built from, and ask the reference tools (clamscan, yara, qemu-img) for the truth.
// The e2e tests treat coldscan as a black box: nothing here links against coldscan's own libraries.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace coldscan::e2e {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// The fixtures built by tests/fixtures/build-images.sh (env COLDSCAN_E2E_FIXTURES overrides).
fs::path fixtures_dir();
// Where tests/e2e/run-scan.sh saved the scan outputs (env COLDSCAN_E2E_RESULTS overrides).
fs::path results_dir();
// The source tree (for tests/fixtures/expected-detections.tsv).
fs::path source_dir();

// The saved outputs of one scan: NAME.exit, NAME.stdout, NAME.stderr, NAME.report.json,
// NAME.inventory.jsonl, NAME.cmd.
struct ScanRun {
    std::string name;
    int exit_code = -1;
    std::string out;
    std::string err;
    std::string command;
    std::optional<Json> report;                 // absent when coldscan wrote no report
    std::optional<std::vector<Json>> inventory; // absent when coldscan wrote no inventory
};

// Loads the outputs of scan NAME; throws (failing the test) when the scan never ran. Cached.
const ScanRun& load_scan(const std::string& name);

// One detected (file, engine, signature), keyed by filesystem label so that image and directory scans and
// the reference tools can be compared. `path` holds the exact bytes (invalid UTF-8 included).
struct Finding {
    std::string label;
    std::string path;
    std::string engine; // clamav | yara
    std::string signature;
    auto operator<=>(const Finding&) const = default;
};

// A (label, path, engine) triple from tests/fixtures/expected-detections.tsv.
struct ExpectedHit {
    std::string label;
    std::string path;
    std::string engine;
    auto operator<=>(const ExpectedHit&) const = default;
};

// The hand-written list of every path that must be detected, restricted to `labels` (all when empty).
std::set<ExpectedHit> expected_hits(const std::set<std::string>& labels = {});

// What `clamscan --allmatch` and `yara` report for the files under `tree`, paths relative to it with a
// leading '/', duplicates removed. Cached per tree.
const std::set<Finding>& reference_findings(const std::string& label, const fs::path& tree);

// One entry of a source tree, by path relative to the tree root (leading '/').
struct TreeFile {
    std::uintmax_t size = 0;
    std::uintmax_t inode = 0;
    std::string sha256;
};
struct TreeIndex {
    std::map<std::string, TreeFile> regular; // every regular file name
    std::set<std::string> special;           // symlinks, FIFOs, ... (not files for coldscan)
    std::size_t distinct_files = 0;          // regular files counted once per inode
    std::uintmax_t distinct_bytes = 0;
    std::size_t hardlink_names = 0; // names beyond the first per inode
};
// Walks `tree` without following symlinks and hashes every regular file. Cached per tree.
const TreeIndex& index_tree(const fs::path& tree);

// The bytes a guest string stands for: `<field>_hex` decoded when present, else `<field>` itself.
std::string raw_field(const Json& object, const std::string& field);
// Decodes the \xNN escapes used by the report and by expected-detections.tsv.
std::string unescape_bytes(std::string_view text);
// Lower-case hex SHA-256 of a file.
std::string sha256_of_file(const fs::path& file);
// Runs argv (no shell), returns stdout; stderr is discarded unless keep_stderr. Sets *status to the exit
// code.
std::string run_capture(const std::vector<std::string>& argv, int* status = nullptr,
                        bool keep_stderr = false);
// `qemu-img info --output=json FILE`.
Json qemu_img_info(const fs::path& file);
// Splits text into lines (no trailing empty line).
std::vector<std::string> lines_of(const std::string& text);
// Reads a whole file; throws when it cannot.
std::string read_file(const fs::path& file);
bool is_sha256_hex(const std::string& text);
std::string to_lower(std::string text);

// Rule name -> tags, from `yara --print-tags` over `tree` (only rules that match something there).
std::map<std::string, std::vector<std::string>> reference_yara_tags(const fs::path& tree);
// Engine versions as the Debian command-line tools report them ("1.4.6", "4.2.3").
std::string clamscan_version();
std::string yara_version();
// Number of signatures in the generated ClamAV database (one per non-empty line of *.hsb / *.ndb).
std::size_t generated_clamav_signature_count();

std::ostream& operator<<(std::ostream& out, const Finding& finding);
std::ostream& operator<<(std::ostream& out, const ExpectedHit& hit);

// Maps every device in the report's filesystems[] to its label; "" (directory targets) to dir_label.
std::map<std::string, std::string> device_labels(const Json& report, const std::string& dir_label = "");
// The report's detections as Findings (labels through device_labels).
std::set<Finding> report_findings(const Json& report, const std::string& dir_label = "");

} // namespace coldscan::e2e
