// The report model: everything a scan run produced, as plain data. Filled by the scanner, written by
// json_report / text_report. Schema and meaning of each field: docs/report-schema.md.
#pragma once

#include "coldscan/common/verdict.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace coldscan::reports {

inline constexpr int k_schema_version = 1;

// inconsistent (targets only): the image changed while it was scanned; nothing it gave was cached.
// completed: every file scanned in full. completed_with_warnings: nothing failed, but the limits kept some
// files from being scanned in full (LIMIT_EXCEEDED, never clean). completed_with_issues: something could not
// be read or scanned (or, under LimitPolicy::fail, a limit was hit).
enum class RunStatus { completed, completed_with_warnings, completed_with_issues, failed, inconsistent };
// What files the limits kept from being scanned in full mean for a run: warnings (the default, as clamscan's
// and enterprise AV's: exit 0, the gate allows) or failures (exit 2, the gate denies).
enum class LimitPolicy { warn, fail };
enum class TargetKind { image, directory };

struct Counts {
    std::uint64_t files = 0; // distinct files (a hard-linked file once)
    std::uint64_t bytes = 0;
    std::uint64_t clean = 0;
    std::uint64_t infected = 0;
    std::uint64_t limit_exceeded = 0;
    std::uint64_t errors = 0;
    std::uint64_t skipped = 0;
    std::uint64_t hardlinks = 0; // further names of files already counted

    void add(OutcomeKind kind, std::uint64_t size);
    Counts& operator+=(const Counts& other);
    [[nodiscard]] bool fully_scanned() const noexcept {
        return limit_exceeded == 0 && errors == 0 && skipped == 0;
    }
    // Nothing failed (limit hits aside).
    [[nodiscard]] bool no_failures() const noexcept { return errors == 0 && skipped == 0; }
};

struct LayerReport {
    std::string path;
    std::string format;
    std::uint64_t virtual_size = 0;
    std::uint64_t file_size = 0;
};

struct OsReport {
    std::string root;
    std::string type;
    std::string distro;
    std::string product_name;
    std::string version;
    std::string hostname;
};

enum class FilesystemStatus { scanned, skipped, failed };

struct FilesystemReport {
    std::string device;
    std::string type;
    std::string label;
    std::string uuid;
    FilesystemStatus status = FilesystemStatus::scanned;
    std::string reason;
    std::uint64_t files = 0;
    std::uint64_t bytes = 0;
    double open_seconds = 0; // mounting and listing (names, and identities when a cache is in use)
    double scan_seconds = 0; // reading and scanning, after open_seconds
    std::string reader;      // "direct" (in process over NBD) or "appliance" (libguestfs)
};

struct TargetReport {
    std::string path;
    TargetKind kind = TargetKind::image;
    RunStatus status = RunStatus::completed;
    std::string error; // when failed
    std::string format;
    std::uint64_t virtual_size = 0;
    std::vector<LayerReport> backing_chain; // every disk's backing files, in order
    std::vector<LayerReport> disks;         // a VM target: each disk's image (then format is "vm")
    std::string accel;
    std::vector<OsReport> inspection;
    std::vector<FilesystemReport> filesystems;
    Counts counts;
    double probe_seconds = 0;
    double launch_seconds = 0;
    double scan_seconds = 0;    // everything after the launch, inspection included
    double inspect_seconds = 0; // OS inspection and the filesystem list (images)
};

struct DetectionRecord {
    std::string target;
    std::string device;
    std::string path;
    Detection detection;
    std::string sha256;
    std::uint64_t size = 0;
};

// Anything not fully scanned: a failed target, a failed filesystem, a disk without a readable filesystem, or
// a file whose outcome is ERROR / LIMIT_EXCEEDED / SKIPPED (outcome holds the file's outcome name then).
inline constexpr const char* k_target_failed = "TARGET_FAILED";
inline constexpr const char* k_filesystem_failed = "FILESYSTEM_FAILED";
inline constexpr const char* k_no_filesystem = "NO_FILESYSTEM";
inline constexpr const char* k_image_changed = "IMAGE_CHANGED"; // the target is inconsistent

struct IssueRecord {
    std::string target;
    std::string device;
    std::string path;
    std::string outcome;
    std::string reason;
};

struct ClamavSignatures {
    std::string path;
    std::vector<std::string> files;
    std::uint64_t signature_count = 0;
    std::string fingerprint;
    std::string engine_version;
};

struct YaraSignatures {
    std::vector<std::string> files;
    std::uint64_t rule_count = 0;
    std::string fingerprint;
    std::string engine_version;
};

struct SignatureReport {
    std::string fingerprint;
    std::string engine_part;   // what forces a full rescan when it changes (docs/signature-updates.md)
    std::string detection_set; // which detection lines the set holds
    std::optional<ClamavSignatures> clamav;
    std::optional<YaraSignatures> yara;
};

struct OptionsReport {
    unsigned threads = 0;
    std::string accel;
    std::uint64_t max_file_size = 0;
    std::uint64_t max_scan_size = 0;
    std::uint32_t max_recursion = 0;
    std::uint32_t max_files = 0;
    std::uint64_t max_scan_time_ms = 0;
    std::uint64_t yara_timeout_s = 0;
    LimitPolicy limit_policy = LimitPolicy::warn;
};

// How the verdict cache served this run. Per file: a file counts once in identity_hits or identity_misses
// (when its identity was looked up) and once in verdict_hits or verdict_misses (when its verdict was).
struct CacheReport {
    bool enabled = false; // a persistent cache was used (false: --no-cache, or it could not be opened)
    std::string path;     // its folder
    std::string problem;  // why it was not used or stopped answering ("" when all went well)
    std::uint64_t identity_hits = 0;
    std::uint64_t identity_misses = 0;
    std::uint64_t verdict_hits = 0;
    std::uint64_t verdict_misses = 0;
    std::uint64_t verdicts_written = 0;
    std::uint64_t files_not_read = 0; // verdict known from the file's identity: no byte read
    std::uint64_t bytes_not_read = 0;
    std::uint64_t files_not_scanned = 0; // verdict from the cache or from the same content in this run
    std::uint64_t bytes_not_scanned = 0;
    std::uint64_t same_content_waits =
        0;                          // files that took the verdict of identical content scanned meanwhile
    std::uint64_t engine_scans = 0; // files the engines actually scanned
    // Files (and their bytes) whose content was known from the disk blocks they lie in, unchanged in a
    // backing layer or an earlier scan (the direct path): block-level reuse, no guest timestamp involved.
    std::uint64_t block_hits = 0;
    std::uint64_t block_misses = 0;
    std::uint64_t files_reused_by_blocks = 0; // not read: block hit and a cached verdict
    std::uint64_t bytes_reused_by_blocks = 0;
    // Signature updates (docs/signature-updates.md): verdicts made with an older detection set that stand
    // under this one with no work, those that stood once the bytes were scanned for the added lines alone,
    // and those the change since made void (their files were scanned again in full).
    std::string detection_set; // the one this run's verdicts are made with
    bool lineage = false;      // its lines are recorded, so later sets can be checked against it
    std::uint64_t verdicts_carried = 0;
    std::uint64_t verdicts_rechecked = 0;
    std::uint64_t verdicts_outdated = 0;
};

struct Report {
    RunStatus status = RunStatus::completed;
    std::string started_at; // ISO 8601 UTC
    std::string finished_at;
    OptionsReport options;
    SignatureReport signatures;
    std::vector<TargetReport> targets;
    std::vector<DetectionRecord> detections;
    Counts counts;
    std::vector<IssueRecord> errors;
    double total_seconds = 0;
    double signature_load_seconds = 0; // how long the engines took to load (maybe while images were opened)
    double signature_wait_seconds = 0; // the part of total_seconds spent waiting for that load
    bool interrupted = false;
    CacheReport cache;
};

// One line per file name for --inventory.
struct InventoryRecord {
    std::string target;
    std::string device;
    std::string path;
    std::uint64_t size = 0;
    std::optional<std::string> sha256;
    OutcomeKind outcome = OutcomeKind::error;
    std::string reason;
    std::vector<std::string> signatures;
    std::optional<std::string> hardlink_of;
};

[[nodiscard]] std::string_view to_string(RunStatus status);
[[nodiscard]] std::string_view to_string(FilesystemStatus status);
[[nodiscard]] std::string_view to_string(TargetKind kind);

[[nodiscard]] std::string_view to_string(LimitPolicy policy);
// "warn" or "fail"; nullopt for anything else.
[[nodiscard]] std::optional<LimitPolicy> limit_policy_from(std::string_view text);

// A target's status from what happened to it (not for failed targets, which are set directly).
[[nodiscard]] RunStatus status_of(const TargetReport& target, LimitPolicy policy);
// The run's status: failed if every target failed, completed_with_issues if any target had issues,
// completed_with_warnings if any had warnings, else completed.
[[nodiscard]] RunStatus status_of(const Report& report);
// clamscan's convention: 1 if anything was detected, else 2 if anything failed or (under LimitPolicy::fail)
// hit a limit, else 0.
[[nodiscard]] int exit_status(const Report& report);
// The same from a report's status name and detection count (the service reads finished reports back).
[[nodiscard]] int exit_status(std::string_view status, std::uint64_t detections);
// Current UTC time as 2026-11-23T10:00:00Z.
[[nodiscard]] std::string utc_now_iso8601();

} // namespace coldscan::reports
