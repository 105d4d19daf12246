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
    case RunStatus::completed_with_warnings:
        return "completed_with_warnings";
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

std::string_view to_string(LimitPolicy policy) {
    return policy == LimitPolicy::fail ? "fail" : "warn";
}

std::optional<LimitPolicy> limit_policy_from(std::string_view text) {
    if (text == "warn") {
        return LimitPolicy::warn;
    }
    if (text == "fail") {
        return LimitPolicy::fail;
    }
    return std::nullopt;
}

RunStatus status_of(const TargetReport& target, LimitPolicy policy) {
    const bool fs_failed = std::ranges::any_of(
        target.filesystems, [](const FilesystemReport& fs) { return fs.status == FilesystemStatus::failed; });
    if (fs_failed || !target.counts.no_failures()) {
        return RunStatus::completed_with_issues;
    }
    if (target.counts.limit_exceeded > 0) {
        return policy == LimitPolicy::fail ? RunStatus::completed_with_issues
                                           : RunStatus::completed_with_warnings;
    }
    return RunStatus::completed;
}

RunStatus status_of(const Report& report) {
    if (report.interrupted) {
        return RunStatus::failed;
    }
    const auto all = [&](auto&& predicate) { return std::ranges::all_of(report.targets, predicate); };
    if (!report.targets.empty() && all([](const TargetReport& t) { return t.status == RunStatus::failed; })) {
        return RunStatus::failed;
    }
    if (all([](const TargetReport& t) { return t.status == RunStatus::completed; })) {
        return RunStatus::completed;
    }
    if (all([](const TargetReport& t) {
            return t.status == RunStatus::completed || t.status == RunStatus::completed_with_warnings;
        })) {
        return RunStatus::completed_with_warnings;
    }
    return RunStatus::completed_with_issues;
}

int exit_status(std::string_view status, std::uint64_t detections) {
    if (detections > 0) {
        return 1;
    }
    return status == to_string(RunStatus::completed) ||
                   status == to_string(RunStatus::completed_with_warnings)
               ? 0
               : 2;
}

int exit_status(const Report& report) {
    return exit_status(to_string(report.status), report.detections.size());
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
