// clamscan-style text: one line per detection or problem, and the end-of-run summary.
#pragma once

#include "coldscan/reports/report.hpp"

#include <string>

namespace coldscan::reports {

// "TARGET:DEVICE:/guest/path" for images; the host path for directory targets. Escaped for terminals.
[[nodiscard]] std::string display_location(TargetKind kind, const std::string& target,
                                           const std::string& device, const std::string& path);
// True for failed targets and filesystems (not for files).
[[nodiscard]] bool is_part_failure(const IssueRecord& record);
// "<location>: <signature> FOUND"
[[nodiscard]] std::string detection_line(TargetKind kind, const DetectionRecord& record);
// "<location>: <reason> ERROR" / "... LIMIT_EXCEEDED" / "... SKIPPED"
[[nodiscard]] std::string issue_line(TargetKind kind, const IssueRecord& record);
[[nodiscard]] std::string summary(const Report& report);

} // namespace coldscan::reports
