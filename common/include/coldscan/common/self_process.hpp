// Helper processes that are this executable re-executed for one role (the engine host, a filesystem
// worker): a fresh, single-threaded process, safe to fork in and to confine, talking over a socket pair.
// A fork of our threaded process could inherit a lock another thread held, so roles never run forked.
#pragma once

#include "coldscan/common/error.hpp"
#include "coldscan/common/unique_fd.hpp"

#include <chrono>
#include <string>
#include <sys/types.h>

namespace coldscan {

// The socket's descriptor number in the helper.
inline constexpr int k_self_process_socket_fd = 3;

struct SelfProcess {
    pid_t pid = -1;
    UniqueFd socket; // ours; the helper has the other end as k_self_process_socket_fd
};

// Starts `/proc/self/exe ROLE` with stdin from /dev/null, stdout onto stderr (stdout may be the user's
// report), no other descriptors and an empty signal mask. Error: io.
[[nodiscard]] Expected<SelfProcess> start_self_process(const std::string& role);

// Whether argv asks for role (argv[1] == role, nothing more).
[[nodiscard]] bool asked_for_role(int argc, char** argv, const char* role) noexcept;

// Waits up to grace for pid to exit, then kills it (SIGKILL) and reaps it.
void reap_or_kill(pid_t pid, std::chrono::milliseconds grace);

} // namespace coldscan
