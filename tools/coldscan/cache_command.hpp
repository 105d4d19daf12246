// `coldscan cache stats|gc|verify` and where the CLI keeps its verdict cache.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

namespace coldscan::cli {

// $XDG_CACHE_HOME/coldscan, else $HOME/.cache/coldscan; none when neither is set.
[[nodiscard]] std::optional<std::filesystem::path> default_cache_dir();

// Seconds since the epoch as "2026-12-07 10:16 UTC"; "-" for none (cache records' and places' times).
[[nodiscard]] std::string utc_minutes(std::optional<std::int64_t> seconds);

struct CacheCommandOptions;
std::shared_ptr<CacheCommandOptions> add_cache_command(CLI::App& app);
// Returns the process exit status (0 fine, 2 a problem: no cache there, damaged, bad option).
int run_cache(const CacheCommandOptions& options, const CLI::App& app);

} // namespace coldscan::cli
