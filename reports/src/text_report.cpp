#include "coldscan/reports/text_report.hpp"

#include "coldscan/common/text.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>

namespace coldscan::reports {

namespace {

// "vm1.qcow2: qcow2, 256.0 MiB, debian 12.5 "web01", 1 of 2 filesystems scanned, completed"
std::string target_line(const TargetReport& target) {
    std::string text = printable(target.path) + ": ";
    if (target.kind == TargetKind::directory) {
        text += "directory";
    } else if (target.status == RunStatus::failed && target.format.empty()) {
        text += "image";
    } else {
        text += target.format + ", " + format_bytes(target.virtual_size);
    }
    for (const auto& os : target.inspection) {
        text += ", " + printable(os.distro.empty() || os.distro == "unknown" ? os.type : os.distro);
        if (!os.version.empty() && os.version != "0.0") {
            text += " " + printable(os.version);
        }
        if (!os.hostname.empty() && os.hostname != "unknown") {
            text += " \"" + printable(os.hostname) + "\"";
        }
    }
    if (target.kind == TargetKind::image && target.status != RunStatus::failed) {
        std::size_t scanned = 0;
        for (const auto& fs : target.filesystems) {
            scanned += fs.status == FilesystemStatus::scanned ? 1 : 0;
        }
        text += ", " + std::to_string(scanned) + " of " + std::to_string(target.filesystems.size()) +
                (target.filesystems.size() == 1 ? " filesystem" : " filesystems") + " scanned";
    }
    text += ", " + std::string(to_string(target.status));
    if (target.status == RunStatus::inconsistent) {
        text += " (" + printable(target.error) + ")";
    }
    return text;
}

} // namespace

std::string display_location(TargetKind kind, const std::string& target, const std::string& device,
                             const std::string& path) {
    if (path.empty()) {
        return device.empty() ? printable(target) : printable(target) + ":" + printable(device);
    }
    if (kind == TargetKind::directory) {
        // Directory entries carry "/relative/path"; show the host path as clamscan does.
        std::string joined = target;
        while (joined.size() > 1 && joined.back() == '/') {
            joined.pop_back();
        }
        return printable(joined + path);
    }
    return printable(target) + ":" + printable(device) + ":" + printable(path);
}

bool is_part_failure(const IssueRecord& record) {
    return record.outcome == k_target_failed || record.outcome == k_filesystem_failed ||
           record.outcome == k_no_filesystem || record.outcome == k_image_changed;
}

std::string detection_line(TargetKind kind, const DetectionRecord& record) {
    return display_location(kind, record.target, record.device, record.path) + ": " +
           printable(display_name(record.detection)) + " FOUND";
}

std::string issue_line(TargetKind kind, const IssueRecord& record) {
    const std::string suffix = is_part_failure(record) ? "ERROR" : record.outcome;
    return display_location(kind, record.target, record.device, record.path) + ": " +
           printable(record.reason) + " " + suffix;
}

constexpr std::size_t k_warnings_shown = 20;

// One "Warning:" line per file the limits kept from being scanned in full (under LimitPolicy::warn they pass
// the scan; they are never clean), the first k_warnings_shown of them.
void limit_warnings(const Report& report, std::string& out) {
    std::size_t shown = 0;
    std::size_t total = 0;
    for (const auto& issue : report.errors) {
        if (issue.outcome != to_string(OutcomeKind::limit_exceeded)) {
            continue;
        }
        ++total;
        if (shown == k_warnings_shown) {
            continue;
        }
        const auto target = std::ranges::find(report.targets, issue.target, &TargetReport::path);
        const TargetKind kind = target != report.targets.end() ? target->kind : TargetKind::image;
        out += "Warning:            " + issue_line(kind, issue) + "\n";
        ++shown;
    }
    if (total > shown) {
        out += "Warning:            and " + std::to_string(total - shown) + " more (see the report)\n";
    }
}

std::string summary(const Report& report) {
    std::string out = "\n----------- SCAN SUMMARY -----------\n";
    auto line = [&out](const char* label, const std::string& value) {
        std::array<char, 64> head{};
        std::snprintf(head.data(), head.size(), "%-20s", label);
        out += head.data();
        out += value;
        out += '\n';
    };
    std::uint64_t failed = 0;
    std::uint64_t with_issues = 0;
    std::uint64_t inconsistent = 0;
    for (const auto& target : report.targets) {
        failed += target.status == RunStatus::failed ? 1 : 0;
        with_issues += target.status == RunStatus::completed_with_issues ? 1 : 0;
        inconsistent += target.status == RunStatus::inconsistent ? 1 : 0;
    }
    std::string targets = std::to_string(report.targets.size());
    if (failed != 0 || with_issues != 0 || inconsistent != 0) {
        targets +=
            " (" + std::to_string(failed) + " failed, " + std::to_string(with_issues) + " with issues" +
            (inconsistent != 0 ? ", " + std::to_string(inconsistent) + " changed while scanned" : "") + ")";
    }
    line("Targets:", targets);
    for (const auto& target : report.targets) {
        line("", target_line(target));
    }
    const auto& sigs = report.signatures;
    std::string known;
    if (sigs.clamav) {
        known += "ClamAV " + std::to_string(sigs.clamav->signature_count);
    }
    if (sigs.yara) {
        known += (known.empty() ? "" : ", ") + std::string("YARA ") + std::to_string(sigs.yara->rule_count) +
                 " rules";
    }
    line("Known signatures:", known);
    std::string versions;
    if (sigs.clamav) {
        versions += "ClamAV " + sigs.clamav->engine_version;
    }
    if (sigs.yara) {
        versions += (versions.empty() ? "" : ", ") + std::string("YARA ") + sigs.yara->engine_version;
    }
    line("Engine versions:", versions);
    line("Signature set:", sigs.fingerprint.substr(0, 16));
    const auto& c = report.counts;
    line("Scanned files:",
         std::to_string(c.files) + (c.hardlinks != 0 ? " (+" + std::to_string(c.hardlinks) +
                                                           (c.hardlinks == 1 ? " hard link)" : " hard links)")
                                                     : ""));
    line("Infected files:", std::to_string(c.infected));
    std::string limits = std::to_string(c.limit_exceeded);
    if (c.limit_exceeded > 0) {
        limits += report.options.limit_policy == LimitPolicy::warn
                      ? " (not scanned in full; warnings, below)"
                      : " (not scanned in full; --limit-policy fail)";
    }
    line("Limits exceeded:", limits);
    std::uint64_t unscanned_parts = 0; // failed targets and filesystems, not files
    for (const auto& issue : report.errors) {
        unscanned_parts += is_part_failure(issue) ? 1 : 0;
    }
    line("Errors:", std::to_string(c.errors + unscanned_parts));
    if (c.skipped != 0) {
        line("Skipped files:", std::to_string(c.skipped));
    }
    line("Data scanned:", format_bytes(c.bytes));
    if (const auto& cache = report.cache; cache.enabled) {
        std::string text = std::to_string(cache.files_not_read) + " files not read (" +
                           format_bytes(cache.bytes_not_read) + "), " +
                           std::to_string(cache.files_not_scanned) + " not scanned again (" +
                           format_bytes(cache.bytes_not_scanned) + ")";
        if (cache.files_reused_by_blocks > 0) {
            text += ", " + std::to_string(cache.files_reused_by_blocks) + " reused from unchanged blocks (" +
                    format_bytes(cache.bytes_reused_by_blocks) + ")";
        }
        if (cache.verdicts_carried + cache.verdicts_rechecked + cache.verdicts_outdated > 0) {
            text += "; after the signature update " + std::to_string(cache.verdicts_carried) +
                    " verdicts stood, " + std::to_string(cache.verdicts_rechecked) +
                    " stood once checked for the added signatures, " +
                    std::to_string(cache.verdicts_outdated) + " were scanned again";
        }
        line("Cache:", text);
    }
    std::array<char, 64> time{};
    std::snprintf(time.data(), time.size(), "%.3f sec", report.total_seconds);
    line("Time:", time.data());
    line("Status:", std::string(to_string(report.status)) + (report.interrupted ? " (interrupted)" : ""));
    if (report.options.limit_policy == LimitPolicy::warn) {
        limit_warnings(report, out);
    }
    return out;
}

} // namespace coldscan::reports
