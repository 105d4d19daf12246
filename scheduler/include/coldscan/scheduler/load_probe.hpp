// Reading a host's load (0..1) for the scheduler's closed loop: this machine's pressure stall information
// (/proc/pressure/{io,cpu}), an HTTP endpoint that answers the load as text, or a command that prints it.
// Thread rule: free functions, safe from any thread; each call does its own I/O, bounded by timeout.
#pragma once

#include "coldscan/common/error.hpp"
#include "coldscan/scheduler/service_config.hpp"

#include <chrono>
#include <filesystem>
#include <string_view>

namespace coldscan::scheduler {

// The share of time (0..1) some task stalled over the last 10 s ("some avg10") in the text of one
// /proc/pressure file. Errors: invalid_argument (no "some" line with avg10).
[[nodiscard]] Expected<double> parse_psi(std::string_view text);
// The load as a probe prints it: a number in 0..1 with optional whitespace around it. Errors:
// invalid_argument (anything else).
[[nodiscard]] Expected<double> parse_load(std::string_view text);
// Reads the probe: psi takes the larger of io and cpu under pressure_dir. Errors: io, timeout,
// invalid_argument (an answer that is not a load), not_found (the command does not exist).
[[nodiscard]] Expected<double> read_load(const LoadProbe& probe, std::chrono::seconds timeout,
                                         const std::filesystem::path& pressure_dir = "/proc/pressure");

} // namespace coldscan::scheduler
