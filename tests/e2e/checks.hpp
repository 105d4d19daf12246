// Assertions shared by the e2e test cases. Each function checks one aspect of a saved scan against the
// schema in docs/report-schema.md and against the fixtures' ground truth (source trees, qemu-img,
// clamscan, yara, tests/fixtures/expected-detections.tsv).
#pragma once

#include "support.hpp"

#include <optional>
#include <set>
#include <string>
#include <vector>

namespace coldscan::e2e {

// A filesystem a target must contain, and the source tree it was built from.
struct FilesystemSpec {
    std::string label;
    std::string type;                // ext4 | ntfs | xfs | vfat | btrfs ("" for directory targets)
    std::set<std::string> devices;   // accepted device names ("" for directory targets)
    std::string tree;                // directory under fixtures_dir()/trees
    std::optional<std::string> uuid; // when the fixture fixes it
};

// A scan that completed: what was scanned, how coldscan must have exited, which filesystems it holds.
struct CompletedScanSpec {
    std::string scan;   // result name (tests/e2e/CMakeLists.txt)
    std::string target; // as given on the command line
    std::string kind;   // image | directory
    int exit_code = 0;
    std::vector<FilesystemSpec> filesystems;
};

// The fixed UUID of the ext4 root filesystem (tests/fixtures/make-ext4-image.sh).
inline constexpr const char* k_root_uuid = "5c0d5ca4-0000-4000-8000-00000000c01d";

// Paths of the fixtures.
std::string image_path(const std::string& file);
std::string dirscan_path();

// Report envelope: schema, tool, status, timestamps.
void check_envelope(const Json& report, const std::string& status);
// The signatures block describes the generated test signature set.
void check_signatures_block(const Json& report);
// Everything about a scan that completed: target fields, filesystems, counts, detections (expected paths,
// clamscan/yara parity, sha256, size, YARA metadata), stdout lines, inventory.
void check_completed_scan(const CompletedScanSpec& spec);
// A scan that must fail or end with issues: exit 2, no detection, no FOUND line, no crash.
void check_not_clean_no_detection(const ScanRun& run);
// stderr holds no trace of a crash or an uncaught exception.
void check_no_crash(const ScanRun& run);

} // namespace coldscan::e2e
