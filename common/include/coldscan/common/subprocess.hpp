// Runs a helper program (qemu-img, sigtool) with hard resource limits and no shell.
#pragma once

#include "coldscan/common/error.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace coldscan {

struct ProcessLimits {
    std::chrono::seconds cpu_time{30};
    std::uint64_t address_space_bytes = 2ULL << 30;
    std::chrono::milliseconds wall_time{60'000};
    std::size_t max_output_bytes = 16U << 20; // per stream; more is an error
};

struct ProcessResult {
    int exit_code = -1;  // -1 when killed by a signal
    int term_signal = 0; // the signal that ended it, or 0
    std::string out;
    std::string err;
};

// Runs argv[0] (searched in PATH) with stdin from /dev/null and no inherited descriptors. Errors: the
// program cannot start (not_found), runs past wall_time (timeout; it is killed) or floods its output.
[[nodiscard]] Expected<ProcessResult> run_bounded(const std::vector<std::string>& argv,
                                                  const ProcessLimits& limits);

} // namespace coldscan
