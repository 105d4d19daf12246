// One `coldscan scan` run: every target (image or directory) through the safety gate, the appliance and the
// pipeline, into one report. Nothing a target does stops the others.
#pragma once

#include "coldscan/disk/direct_image.hpp"
#include "coldscan/disk/guestfs_image.hpp"
#include "coldscan/disk/image_probe.hpp"
#include "coldscan/reports/report.hpp"
#include "coldscan/scanner/pipeline.hpp"
#include "coldscan/scanner/scan_cache.hpp"
#include "coldscan/scanner/scan_events.hpp"
#include "coldscan/signatures/signature_set.hpp"

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace coldscan::scanner {

// How images are read: direct (qemu-nbd + the in-process reader), guestfs (the appliance), or auto (direct
// where the in-process reader can, the appliance for the rest: LVM, XFS, btrfs, unknown types).
enum class Backend { automatic, direct, guestfs };

struct ScanOptions {
    unsigned threads = 1;
    disk::Accel accel = disk::Accel::automatic;
    Backend backend = Backend::automatic;
    std::string snapshot;     // a qcow2 internal snapshot to scan (direct path)
    std::string dirty_bitmap; // NBD targets: files in blocks this bitmap calls clean keep earlier verdicts
    std::optional<std::string> format;
    std::vector<std::filesystem::path> allowed_roots;
    std::uint64_t bytes_in_flight = 256ULL << 20;
    disk::SourceOptions source;
    bool inventory = false;
    // The verdict cache's folder (RocksDB); none: --no-cache (a memory store dedupes within this run only).
    std::optional<std::filesystem::path> cache_dir;
    IdentityUse identity = IdentityUse::trust; // ignore: --verify-content
    // The scan service's store, shared with its job queue (a RocksDB folder opens once per process); when
    // set, cache_dir only names it in the report.
    std::shared_ptr<KvStore> shared_store;
    // The direct path parses filesystems in confined worker processes (disk-access's SandboxedFilesystem);
    // false: in this process (--no-sandbox).
    bool sandbox_filesystems = false;
    // Whether files the limits kept from being scanned in full are warnings (exit 0) or failures (exit 2).
    reports::LimitPolicy limit_policy = reports::LimitPolicy::warn;
};

// One disk of a VM target: an image file and its format (nullopt: the run's --format, else safe detection).
// An OVF package (.ova, .ovf) named as a path is such a VM, its disks read in place.
struct VmDisk {
    std::string path;
    std::optional<std::string> format;
    // A disk inside a package (an OVA member): [offset, offset + length) of path; length 0: the whole file.
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
    std::string name; // how the report names it: PACKAGE/MEMBER; "": path
};

// What one target of a run is: a path (image file, folder, NBD URI), or the disks of one VM, scanned as one
// target (a volume group may span them; the report names each disk). name is what the report calls it.
struct ScanTarget {
    std::string name;
    std::vector<VmDisk> disks; // a VM: its disks in the order the VM sees them; empty for a path
    std::string error;         // a target that could not be described (an unknown domain): it fails with this
};

// Opens the persistent cache for a run. A damaged one is moved aside (DIR.damaged-TIME) and started afresh;
// one that cannot be used at all (locked by another run, unwritable) leaves this run with a memory store.
// Either way the problem is warned about and reported, and no verdict comes from a damaged store.
[[nodiscard]] std::unique_ptr<ScanCache> open_scan_cache(const ScanOptions& options, std::string context);

// Thread rule: one per run, driven by one thread; progress() may be read from any thread.
class ScanRun {
public:
    ScanRun(const signatures::SignatureSet& signatures, ScanOptions options, ScanEvents& events,
            const std::atomic<bool>& stop);

    // Scans the targets in order. The report is complete except its timings' total (set by the caller).
    [[nodiscard]] reports::Report run(const std::vector<std::string>& targets);
    [[nodiscard]] reports::Report run(const std::vector<ScanTarget>& targets);
    [[nodiscard]] const Progress& progress() const noexcept { return m_progress; }

private:
    // What the direct path did with an image: the devices it reported (read, or said why not), and those it
    // left to the appliance.
    struct DirectPass {
        std::vector<std::string> reported;
        std::vector<disk::FilesystemInfo> left;
    };
    void scan_target(const ScanTarget& target, reports::Report& report, Pipeline& pipeline);
    // Probes the image (each disk of a VM), takes its state (image_state.hpp), scans it, and marks the target
    // inconsistent when the state differs afterwards.
    void scan_image(reports::TargetReport& target, const std::vector<VmDisk>& disks, reports::Report& report,
                    Pipeline& pipeline);
    void scan_probed_image(const std::vector<disk::ImageInfo>& disks, reports::TargetReport& target,
                           reports::Report& report, Pipeline& pipeline);
    // The direct path over the image's filesystems; the devices it read go to done. Returns whether some
    // filesystem needs the appliance. Error: the image could not be opened this way.
    [[nodiscard]] Expected<bool> scan_direct(disk::DirectImage& image, const std::string& identity,
                                             const std::vector<std::vector<std::string>>& disk_layers,
                                             bool appliance_available, reports::TargetReport& target,
                                             reports::Report& report, Pipeline& pipeline, DirectPass& pass);
    // An OVF package: the VM of the disks it holds, read in place.
    void scan_package(reports::TargetReport& target, reports::Report& report, Pipeline& pipeline);
    // An NBD export (nbd://, nbd+unix://) made by the hypervisor or backup software: the direct path only.
    void scan_nbd(reports::TargetReport& target, reports::Report& report, Pipeline& pipeline);
    // Status, and NO_FILESYSTEM when nothing could be read, once every filesystem is done.
    void finish_image(reports::TargetReport& target, reports::Report& report);
    [[nodiscard]] disk::DirectOptions direct_options() const;
    // The appliance over every filesystem not in done.
    void scan_with_appliance(const std::vector<disk::ImageInfo>& disks, const std::string& identity,
                             reports::TargetReport& target, reports::Report& report, Pipeline& pipeline,
                             const DirectPass& pass);
    // What the direct path left to the appliance and the appliance did not list either: failed.
    void report_unfound(const DirectPass& pass, const std::vector<disk::FilesystemInfo>& found,
                        const std::string& identity, reports::TargetReport& target, reports::Report& report,
                        Pipeline& pipeline);
    using OpenSource = std::function<Expected<std::unique_ptr<disk::FileSource>>(disk::WantBytes)>;
    // One filesystem into the report: without open, not scannable (fs.not_scannable_reason; failed when
    // unread_is_failure or encrypted, else skipped); else scanned through open. A failure is also an issue.
    void scan_filesystem(const disk::FilesystemInfo& fs, std::string reader, const OpenSource* open,
                         bool unread_is_failure, const std::string& identity, reports::TargetReport& target,
                         reports::Report& report, Pipeline& pipeline);
    // For each layer of the chain (top first): the identity of the chain from that layer down.
    [[nodiscard]] std::vector<std::string> layer_identities(const disk::ImageInfo& info) const;
    void scan_directory(reports::TargetReport& target, reports::Report& report, Pipeline& pipeline);
    // Names the current step on the progress line and in the log (-v).
    void enter_phase(const std::string& phase);
    // One filesystem on its way into the report: opened on the owner thread, read (maybe on a relay thread,
    // overlapped with the next one), then moved into the target in the filesystems' order.
    struct FilesystemScan {
        reports::FilesystemReport report;
        reports::Counts counts;
        bool issue = false; // a failure that is also an issue (not an interrupted run's: reported once)
        SourceLocation where;
        std::unique_ptr<disk::FileSource> source; // set while its files are to be read
    };
    // The report of a filesystem not read (no open, or the run stopped), or its opened source.
    [[nodiscard]] FilesystemScan open_filesystem(const disk::FilesystemInfo& fs, std::string reader,
                                                 const OpenSource* open, bool unread_is_failure,
                                                 const std::string& identity,
                                                 const reports::TargetReport& target, Pipeline& pipeline);
    // Reads the opened source's files through the pipeline; any thread (at most two at once).
    void read_filesystem(FilesystemScan& scan, reports::Report& report, Pipeline& pipeline,
                         const std::function<void()>& listed) noexcept;
    // Into the target: its counts, its report, an issue for a failure. Owner thread, in order.
    void end_filesystem(FilesystemScan& scan, reports::TargetReport& target, reports::Report& report);
    // Tells the caller and adds it to errors[].
    void record_issue(reports::TargetKind kind, reports::Report& report, reports::IssueRecord issue);
    void fail_target(reports::TargetReport& target, reports::Report& report, const std::string& reason);

    const signatures::SignatureSet& m_signatures;
    ScanOptions m_options;
    ScanEvents& m_events;
    const std::atomic<bool>& m_stop;
    Progress m_progress;
    ScanCache* m_cache = nullptr; // the run's, while run() runs
};

// A host file's identity ("dev:ino:size:mtime_ns:ctime_ns"): the same path, inode and times mean the same
// bytes (the host kernel keeps ctime, which nothing in the guest can set).
[[nodiscard]] std::string host_file_identity(const std::filesystem::path& path);

// The signatures section of a report, from a loaded set.
[[nodiscard]] reports::SignatureReport describe(const signatures::SignatureSet& signatures);

} // namespace coldscan::scanner
