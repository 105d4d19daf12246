#include "coldscan/common/self_process.hpp"

#include "coldscan/common/fd_channel.hpp"

#include <array>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace coldscan {
namespace {

// Runs in the forked child of a threaded process: only async-signal-safe calls until exec.
[[noreturn]] void exec_self(int socket, char* const* argv) {
    int target = socket;
    if (socket != k_self_process_socket_fd) {
        target = ::dup2(socket, k_self_process_socket_fd); // dup2 clears close-on-exec on the copy
    } else {
        ::fcntl(socket, F_SETFD, 0);
    }
    const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (target != k_self_process_socket_fd || null_fd < 0 || ::dup2(null_fd, 0) < 0 || ::dup2(2, 1) < 0) {
        ::_exit(126);
    }
    ::close_range(k_self_process_socket_fd + 1, ~0U, 0);
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execv("/proc/self/exe", argv);
    ::_exit(127);
}

} // namespace

Expected<SelfProcess> start_self_process(const std::string& role) {
    auto pair = make_socket_pair();
    if (!pair) {
        return std::unexpected(pair.error());
    }
    std::array<std::string, 2> args{"/proc/self/exe", role};
    std::array<char*, 3> argv{args[0].data(), args[1].data(), nullptr};
    const pid_t pid = ::fork();
    if (pid < 0) {
        return make_error(Errc::io, errno_message("fork (" + role + ")"));
    }
    if (pid == 0) {
        exec_self(pair->second.get(), argv.data());
    }
    return SelfProcess{pid, std::move(pair->first)};
}

bool asked_for_role(int argc, char** argv, const char* role) noexcept {
    return argc == 2 && std::strcmp(argv[1], role) == 0;
}

void reap_or_kill(pid_t pid, std::chrono::milliseconds grace) {
    if (pid <= 0) {
        return;
    }
    const auto deadline = std::chrono::steady_clock::now() + grace;
    while (std::chrono::steady_clock::now() < deadline) {
        if (::waitpid(pid, nullptr, WNOHANG) != 0) {
            return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
}

} // namespace coldscan
