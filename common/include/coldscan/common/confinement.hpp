// Confining a process that parses hostile bytes (an engine worker): resource limits, no new privileges,
// and a seccomp filter that takes away the network, exec, tracing other processes, signalling other
// processes and the kernel's administration calls.
//
// The filter is a deny list, not an allow list: libclamav's unpackers use a wide, version-dependent set of
// ordinary calls (files in its scratch folder, mmap, ...), and a call missing from an allow list would turn
// into ERROR verdicts on real files. What a worker must never do is listed and refused instead.
#pragma once

#include "coldscan/common/error.hpp"

#include <chrono>
#include <cstdint>
#include <optional>

namespace coldscan {

struct Confinement {
    // RLIMIT_AS; nullopt leaves it (sanitizer builds reserve terabytes of address space and ignore it).
    std::optional<std::uint64_t> address_space_bytes;
    // RLIMIT_CPU: SIGXCPU at the soft limit, SIGKILL a second later.
    std::optional<std::chrono::seconds> cpu_time;
    // Signals only to itself (kill/tgkill to its own pid): a compromised worker cannot stop the service.
    bool signal_only_self = false;
};

// Applies it to the calling process, for good; inherited by its children. Error: io (a limit or the filter
// could not be installed).
[[nodiscard]] Expected<void> confine_process(const Confinement& confinement);

// Whether this build runs under a sanitizer that needs unlimited address space.
[[nodiscard]] bool sanitizer_build() noexcept;

} // namespace coldscan
