// `coldscan scan [options] TARGET...`
#pragma once

#include <CLI/CLI.hpp>
#include <atomic>
#include <memory>

namespace coldscan::cli {

struct ScanCommandOptions;

// Registers the subcommand; run_scan() does the work once it was chosen.
std::shared_ptr<ScanCommandOptions> add_scan_command(CLI::App& app);
// Returns the process exit status (0 clean, 1 detection, 2 failure or not fully scanned). Sets stop itself
// when the signatures fail to load mid-run.
int run_scan(const ScanCommandOptions& options, std::atomic<bool>& stop);

} // namespace coldscan::cli
