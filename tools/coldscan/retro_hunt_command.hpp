// `coldscan retro-hunt`: which contents the verdict cache holds that the current signatures newly detect by
// hash, and where they were seen, without reading a disk (scanner/retro_hunt.hpp).
#pragma once

#include <CLI/CLI.hpp>
#include <memory>

namespace coldscan::cli {

struct RetroHuntOptions;
std::shared_ptr<RetroHuntOptions> add_retro_hunt_command(CLI::App& app);
// Returns the process exit status: 0 nothing found, 1 newly detected content, 2 a problem.
int run_retro_hunt(const RetroHuntOptions& options);

} // namespace coldscan::cli
