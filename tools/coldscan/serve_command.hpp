// `coldscan serve --config FILE`: the scan service (scheduler, job queue, HTTP API) until SIGTERM.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>

namespace coldscan::cli {

struct ServeCommandOptions;

std::shared_ptr<ServeCommandOptions> add_serve_command(CLI::App& app);
// SIGHUP reloads the signatures, SIGINT or SIGTERM shuts down (running scans get shutdown_grace). 0 after a
// clean shutdown, 2 when the service cannot start.
int run_serve(const ServeCommandOptions& options);

} // namespace coldscan::cli
