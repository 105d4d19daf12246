// `coldscan findings`: search the scan service's findings (detections, files not fully scanned, failed
// scans) of this node or its whole fleet, or count them per day, signature and host (--stats).
#pragma once

#include <CLI/CLI.hpp>
#include <memory>

namespace coldscan::cli {

struct FindingsOptions;
std::shared_ptr<FindingsOptions> add_findings_command(CLI::App& app);
// 0, or 2 for an error (bad filter, service unreachable or refusing).
int run_findings(const FindingsOptions& options);

} // namespace coldscan::cli
