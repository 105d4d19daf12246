#include "coldscan/common/subprocess.hpp"

#include "coldscan/common/unique_fd.hpp"

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <optional>
#include <poll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace coldscan {
namespace {

struct Pipe {
    UniqueFd read;
    UniqueFd write;
};

Expected<Pipe> make_pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        return make_error(Errc::io, errno_message("pipe"));
    }
    return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

// Runs in the forked child: only async-signal-safe calls until exec.
[[noreturn]] void exec_child(const std::vector<char*>& argv, int out_fd, int err_fd,
                             const ProcessLimits& limits, const FileViewRules* view) {
    const int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd < 0 || ::dup2(null_fd, 0) < 0 || ::dup2(out_fd, 1) < 0 || ::dup2(err_fd, 2) < 0) {
        ::_exit(126);
    }
    if (view != nullptr) {
        view->enforce_or_exit(argv[0]); // before close_range: the ruleset is a descriptor
    }
    ::close_range(3, ~0U, 0);
    const auto cpu = static_cast<rlim_t>(limits.cpu_time.count());
    const rlimit cpu_limit{cpu, cpu + 1};
    const rlimit as_limit{limits.address_space_bytes, limits.address_space_bytes};
    const rlimit no_core{0, 0};
    ::setrlimit(RLIMIT_CPU, &cpu_limit);
    ::setrlimit(RLIMIT_AS, &as_limit);
    ::setrlimit(RLIMIT_CORE, &no_core);
    // A blocked signal stays blocked across exec: the child must hear SIGTERM whatever thread forked it.
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
}

// Waits for pid until deadline; true (status set) when it exited and was reaped.
bool exited_by(pid_t pid, std::chrono::steady_clock::time_point deadline, int& status) {
    for (;;) {
        const pid_t done = ::waitpid(pid, &status, WNOHANG);
        if (done == pid) {
            return true;
        }
        if (done < 0 && errno != EINTR) {
            return true; // not our child any more: nothing left to wait for
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

} // namespace

std::optional<std::filesystem::path> find_program(const std::string& name) {
    if (name.find('/') != std::string::npos) {
        return ::access(name.c_str(), X_OK) == 0 ? std::optional<std::filesystem::path>(name) : std::nullopt;
    }
    const char* path = std::getenv("PATH");
    std::string_view rest = path != nullptr ? path : "/usr/bin:/bin";
    while (!rest.empty()) {
        const auto colon = rest.find(':');
        const std::string_view folder = rest.substr(0, colon);
        rest = colon == std::string_view::npos ? std::string_view{} : rest.substr(colon + 1);
        const std::filesystem::path candidate = std::filesystem::path(folder.empty() ? "." : folder) / name;
        struct stat st {};
        if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
            ::access(candidate.c_str(), X_OK) == 0) {
            return candidate;
        }
    }
    return std::nullopt;
}

Expected<std::optional<FileViewRules>> program_file_view(const std::string& program, FileView view) {
    const auto found = find_program(program);
    if (!found) {
        return make_error(Errc::not_found, "cannot run " + program + " (is it installed?)");
    }
    view.execute.push_back(*found);
    return build_file_view_or_warn(view);
}

Expected<ProcessResult> run_bounded(const std::vector<std::string>& argv, const ProcessLimits& limits) {
    if (argv.empty()) {
        return make_error(Errc::invalid_argument, "run_bounded: empty command");
    }
    std::optional<FileViewRules> view;
    if (limits.file_view) {
        auto rules = program_file_view(argv[0], *limits.file_view);
        if (!rules) {
            return std::unexpected(rules.error());
        }
        view = std::move(*rules);
    }
    auto out_pipe = make_pipe();
    auto err_pipe = make_pipe();
    if (!out_pipe || !err_pipe) {
        return std::unexpected(out_pipe ? err_pipe.error() : out_pipe.error());
    }
    std::vector<std::string> args_copy = argv;
    std::vector<char*> c_argv;
    for (auto& arg : args_copy) {
        c_argv.push_back(arg.data());
    }
    c_argv.push_back(nullptr);

    const pid_t pid = ::fork();
    if (pid < 0) {
        return make_error(Errc::io, errno_message("fork"));
    }
    if (pid == 0) {
        exec_child(c_argv, out_pipe->write.get(), err_pipe->write.get(), limits, view ? &*view : nullptr);
    }
    out_pipe->write.reset();
    err_pipe->write.reset();

    ProcessResult result;
    bool overflow = false;
    bool timed_out = false;
    const auto deadline = std::chrono::steady_clock::now() + limits.wall_time;
    std::array<pollfd, 2> fds{pollfd{out_pipe->read.get(), POLLIN, 0},
                              pollfd{err_pipe->read.get(), POLLIN, 0}};
    std::array<std::string*, 2> sinks{&result.out, &result.err};
    int open_streams = 2;
    std::array<char, 65536> buffer{};
    while (open_streams > 0) {
        const auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (remaining.count() <= 0) {
            timed_out = true;
            break;
        }
        const int ready = ::poll(fds.data(), fds.size(), static_cast<int>(remaining.count()));
        if (ready < 0 && errno != EINTR) {
            break;
        }
        for (std::size_t i = 0; i < fds.size(); ++i) {
            if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
                continue;
            }
            const ssize_t n = ::read(fds[i].fd, buffer.data(), buffer.size());
            if (n <= 0) {
                if (n < 0 && errno == EINTR) {
                    continue;
                }
                fds[i].fd = -1;
                --open_streams;
                continue;
            }
            if (sinks[i]->size() + static_cast<std::size_t>(n) > limits.max_output_bytes) {
                overflow = true;
                open_streams = 0;
                break;
            }
            sinks[i]->append(buffer.data(), static_cast<std::size_t>(n));
        }
    }
    int status = 0;
    // A child that closed its pipes (or handed them to a daemon) still has until the deadline to exit.
    if (!timed_out && !overflow && !exited_by(pid, deadline, status)) {
        timed_out = true;
    }
    if (timed_out || overflow) {
        ::kill(pid, SIGKILL);
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
    }
    if (timed_out) {
        return make_error(Errc::timeout, argv[0] + " ran longer than " +
                                             std::to_string(limits.wall_time.count()) +
                                             " ms and was stopped");
    }
    if (overflow) {
        return make_error(Errc::io, argv[0] + " wrote more output than allowed and was stopped");
    }
    if (WIFEXITED(status)) {
        result.exit_code = WEXITSTATUS(status);
        if (result.exit_code == 127) {
            return make_error(Errc::not_found, "cannot run " + argv[0] + " (is it installed?)");
        }
    } else if (WIFSIGNALED(status)) {
        result.term_signal = WTERMSIG(status);
    }
    return result;
}

} // namespace coldscan
