#include "coldscan/reports/report.hpp"

#include <algorithm>
#include <array>
#include <ctime>

namespace coldscan::reports {

void Counts::add(OutcomeKind kind, std::uint64_t size) {
    ++files;
    bytes += size;
    switch (kind) {
    case OutcomeKind::clean:
        ++clean;
        break;
    case OutcomeKind::infected:
        ++infected;
        break;
    case OutcomeKind::limit_exceeded:
        ++limit_exceeded;
        break;
    case OutcomeKind::error:
        ++errors;
        break;
    case OutcomeKind::skipped:
        ++skipped;
        break;
    }
}

Counts& Counts::operator+=(const Counts& other) {
    files += other.files;
    bytes += other.bytes;
    clean += other.clean;
    infected += other.infected;
    limit_exceeded += other.limit_exceeded;
    errors += other.errors;
    skipped += other.skipped;
    hardlinks += other.hardlinks;
    return *this;
}

std::string_view to_string(RunStatus status) {
    switch (status) {
    case RunStatus::completed:
        return "completed";
    case RunStatus::completed_with_issues:
        return "completed_with_issues";
    case RunStatus::failed:
        return "failed";
    case RunStatus::inconsistent:
        return "inconsistent";
    }
    return "failed";
}

std::string_view to_string(FilesystemStatus status) {
    switch (status) {
    case FilesystemStatus::scanned:
        return "scanned";
    case FilesystemStatus::skipped:
        return "skipped";
    case FilesystemStatus::failed:
        return "failed";
    }
    return "failed";
}

std::string_view to_string(TargetKind kind) {
    return kind == TargetKind::image ? "image" : "directory";
}

RunStatus status_of(const TargetReport& target) {
    const bool fs_failed = std::ranges::any_of(
        target.filesystems, [](const FilesystemReport& fs) { return fs.status == FilesystemStatus::failed; });
    if (fs_failed || !target.counts.fully_scanned()) {
        return RunStatus::completed_with_issues;
    }
    return RunStatus::completed;
}

RunStatus status_of(const Report& report) {
    if (report.interrupted) {
        return RunStatus::failed;
    }
    if (!report.targets.empty() && std::ranges::all_of(report.targets, [](const TargetReport& t) {
            return t.status == RunStatus::failed;
        })) {
        return RunStatus::failed;
    }
    const bool all_completed = std::ranges::all_of(
        report.targets, [](const TargetReport& t) { return t.status == RunStatus::completed; });
    return all_completed ? RunStatus::completed : RunStatus::completed_with_issues;
}

int exit_status(const Report& report) {
    if (!report.detections.empty()) {
        return 1;
    }
    return report.status == RunStatus::completed ? 0 : 2;
}

std::string utc_now_iso8601() {
    const std::time_t now = std::time(nullptr);
    std::tm utc{};
    gmtime_r(&now, &utc);
    std::array<char, 32> buffer{};
    std::strftime(buffer.data(), buffer.size(), "%Y-%m-%dT%H:%M:%SZ", &utc);
    return buffer.data();
}

} // namespace coldscan::reports
