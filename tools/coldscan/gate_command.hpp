// `coldscan gate`: may this VM start? Scans its disks at gate priority through the scan service (a verdict
// younger than --max-age is reused at once) and answers allow, deny or error, for libvirt's qemu hook.
#pragma once

#include <CLI/CLI.hpp>
#include <atomic>
#include <memory>

namespace coldscan::cli {

struct GateCommandOptions;

std::shared_ptr<GateCommandOptions> add_gate_command(CLI::App& app);
// Prints one line on stdout ("allow: ...", "deny: ...", "error: ...") and returns 0 allow (every verdict
// clean), 1 deny (any detection) or 2 error (anything else: the service cannot be reached, a disk that is not
// a file, a scan that failed, was not complete or timed out); with --on-error allow an error is warned about
// and allowed (0). Bad option values are always 2.
int run_gate(const GateCommandOptions& options, const std::atomic<bool>& stop);

} // namespace coldscan::cli
