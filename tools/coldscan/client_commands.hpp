// `coldscan submit|status|wait|cancel|plan`: the scan service's jobs from the command line.
#pragma once

#include <CLI/CLI.hpp>
#include <atomic>
#include <memory>
#include <optional>

namespace coldscan::cli {

struct ClientCommandOptions;

// Registers the five subcommands.
std::shared_ptr<ClientCommandOptions> add_client_commands(CLI::App& app);
// Runs the one that was chosen and returns the exit status; nullopt when none of them was. submit --wait and
// wait: 0 every job clean, 1 any detection, 2 anything failed, cancelled, not fully scanned or timed out.
// Otherwise 0, or 2 for any error (the service cannot be reached, or refused).
std::optional<int> run_client_command(const ClientCommandOptions& options, const std::atomic<bool>& stop);

} // namespace coldscan::cli
