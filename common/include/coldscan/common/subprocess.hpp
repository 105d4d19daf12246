// Runs a helper program (qemu-img, sigtool) with hard resource limits and no shell.
#pragma once

#include "coldscan/common/error.hpp"
#include "coldscan/common/file_view.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace coldscan {

struct ProcessLimits {
    std::chrono::seconds cpu_time{30};
    std::uint64_t address_space_bytes = 2ULL << 30;
    std::chrono::milliseconds wall_time{60'000};
    std::size_t max_output_bytes = 16U << 20; // per stream; more is an error
    // What it may open (file_view.hpp); nullopt: everything. Unenforceable without Landlock (one warning).
    std::optional<FileView> file_view;
};

struct ProcessResult {
    int exit_code = -1;  // -1 when killed by a signal
    int term_signal = 0; // the signal that ended it, or 0
    std::string out;
    std::string err;
};

// The program name would run: name itself when it has a slash, else the first executable file of that name
// in PATH. nullopt when there is none.
[[nodiscard]] std::optional<std::filesystem::path> find_program(const std::string& name);

// The rules to run program in view: view plus the program itself (as find_program finds it) to run.
// nullopt on a kernel without Landlock (one warning). Errors: not_found (no such program), as
// build_file_view_or_warn.
[[nodiscard]] Expected<std::optional<FileViewRules>> program_file_view(const std::string& program,
                                                                       FileView view);

// Runs argv[0] (searched in PATH; with a file view, the program found is added to what it may run) with stdin
// from /dev/null and no inherited descriptors. Errors: the program cannot start (not_found), runs past
// wall_time (timeout; it is killed) or floods its output.
[[nodiscard]] Expected<ProcessResult> run_bounded(const std::vector<std::string>& argv,
                                                  const ProcessLimits& limits);

} // namespace coldscan
