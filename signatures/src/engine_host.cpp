// The engine host and its workers (see engine_sandbox.hpp). The host is a fresh process, single-threaded,
// so fork() is safe in it; it trusts only its parent's socket, loads the signatures once, and forks workers.
// A worker confines itself before it touches a file and scans one file per request until its socket closes.
#include "coldscan/common/confinement.hpp"
#include "coldscan/common/fd_channel.hpp"
#include "coldscan/common/log.hpp"
#include "coldscan/common/self_process.hpp"
#include "coldscan/signatures/engine_libraries.hpp"
#include "coldscan/signatures/engine_sandbox.hpp"
#include "coldscan/signatures/yara_rules.hpp"
#include "engine_wire.hpp"

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <span>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace coldscan::signatures {
namespace {

constexpr int k_socket_fd = k_self_process_socket_fd;
// A worker retires after this much CPU time, so that its CPU limit (this plus one file's budget) is never
// what stops a file that is merely the last of many.
constexpr std::chrono::seconds k_retire_after_cpu{600};

struct Engines {
    std::optional<ClamavEngine> clamav;
    std::optional<YaraRules> yara;
};

Expected<Engines> load(const SandboxOptions& options) {
    Engines engines;
    if (options.clamav_db) {
        auto info = ClamavEngine::describe(*options.clamav_db);
        if (!info) {
            return std::unexpected(info.error());
        }
        auto engine = ClamavEngine::compile(std::move(*info), options.limits);
        if (!engine) {
            return std::unexpected(engine.error());
        }
        engines.clamav.emplace(std::move(*engine));
    }
    if (!options.yara_rules.empty()) {
        auto rules = YaraRules::compile(options.yara_rules);
        if (!rules) {
            return std::unexpected(rules.error());
        }
        engines.yara.emplace(std::move(*rules));
    }
    return engines;
}

std::uint64_t mapped_bytes() {
    std::ifstream statm("/proc/self/statm");
    std::uint64_t pages = 0;
    statm >> pages;
    return pages * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

std::chrono::seconds cpu_used() {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    return std::chrono::seconds(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec);
}

// Test hooks, read before confinement: a file whose bytes start with one of these markers makes the worker
// crash (SIGSEGV) or hang, as a file built against an engine would. Unset in production: nothing happens.
struct TestMarkers {
    std::string crash = env_or_empty("COLDSCAN_TEST_ENGINE_CRASH_MARKER");
    std::string hang = env_or_empty("COLDSCAN_TEST_ENGINE_HANG_MARKER");

    static std::string env_or_empty(const char* name) {
        const char* value = std::getenv(name);
        return value != nullptr ? value : "";
    }
    void apply(const Content& content) const {
        if (crash.empty() && hang.empty()) {
            return;
        }
        std::string head(std::max(crash.size(), hang.size()), '\0');
        auto got = content.read_at(0, std::as_writable_bytes(std::span(head)));
        head.resize(got ? *got : 0);
        if (!crash.empty() && head.starts_with(crash)) {
            std::signal(SIGSEGV, SIG_DFL); // a sanitizer's handler would turn it into an abort
            std::raise(SIGSEGV);
        }
        while (!hang.empty() && head.starts_with(hang)) {
            ::pause();
        }
    }
};

// One worker's life, in the forked child. Returns its exit status.
int run_worker(int socket, const Engines& engines, const SandboxOptions& options) {
    const TestMarkers markers;
    const auto per_file = std::chrono::duration_cast<std::chrono::seconds>(options.limits.max_scan_time) +
                          options.limits.yara_timeout + std::chrono::seconds(30);
    Confinement confinement;
    confinement.address_space_bytes = mapped_bytes() + options.worker_memory_bytes;
    confinement.cpu_time = k_retire_after_cpu + per_file;
    confinement.signal_only_self = true;
    if (auto confined = confine_process(confinement); !confined) {
        (void)send_message(socket, "cannot confine the worker: " + confined.error().message);
        return 3;
    }
    std::optional<YaraScanner> yara;
    if (engines.yara) {
        auto scanner = YaraScanner::create(*engines.yara, options.limits.yara_timeout);
        if (!scanner) {
            (void)send_message(socket, "cannot create a YARA scanner: " + scanner.error().message);
            return 3;
        }
        yara.emplace(std::move(*scanner));
    }
    if (!send_message(socket, "ready")) {
        return 1;
    }
    for (;;) {
        auto message = receive_message(socket, std::nullopt);
        if (!message) {
            return message.error().code == Errc::not_found ? 0 : 1;
        }
        auto request = detail::request_from_wire(message->body);
        if (!request || message->fds.size() != 1) {
            return 1;
        }
        const Content content = Content::from_fd(std::move(message->fds.front()), request->size);
        markers.apply(content);
        detail::ScanAnswer answer;
        if (engines.clamav) {
            answer.results.push_back(engines.clamav->scan(content, request->path));
        }
        if (yara) {
            answer.results.push_back(yara->scan(content, request->path));
        }
        answer.retire = cpu_used() >= k_retire_after_cpu;
        if (!send_message(socket, detail::answer_to_wire(answer)) || answer.retire) {
            return 0;
        }
    }
}

void reap_workers() {
    int status = 0;
    pid_t pid = 0;
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
        if (WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL) {
            spdlog::warn("engine worker {} was killed by signal {} ({})", pid, WTERMSIG(status),
                         ::strsignal(WTERMSIG(status)));
        } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
            spdlog::warn("engine worker {} exited with status {}", pid, WEXITSTATUS(status));
        }
    }
}

// Forks one worker and hands its socket to the parent.
void spawn(int control, const Engines& engines, const SandboxOptions& options) {
    auto pair = make_socket_pair();
    if (!pair) {
        (void)send_message(control, "error " + pair.error().message);
        return;
    }
    const pid_t pid = ::fork();
    if (pid < 0) {
        (void)send_message(control, "error " + errno_message("fork"));
        return;
    }
    if (pid == 0) {
        ::close(control);
        pair->first.reset();
        ::_exit(run_worker(pair->second.get(), engines, options));
    }
    const int handed = pair->first.get();
    (void)send_message(control, std::to_string(pid), std::span(&handed, 1));
}

int run_host() {
    std::signal(SIGPIPE, SIG_IGN);
    std::signal(SIGINT, SIG_IGN); // Ctrl-C is the parent's to handle: it finishes its files, then closes us
    auto options_message = receive_message(k_socket_fd, std::nullopt);
    if (!options_message) {
        return 1;
    }
    auto options = detail::options_from_wire(options_message->body);
    if (!options) {
        std::fprintf(stderr, "coldscan engine host: %s\n", options.error().message.c_str());
        return 1;
    }
    setup_logging(LogLevel::normal);
    spdlog::set_level(static_cast<spdlog::level::level_enum>(std::clamp(options->log_level, 0, 6)));
    auto libraries = EngineLibraries::initialize();
    if (!libraries) {
        (void)send_message(k_socket_fd, detail::load_error_to_wire(libraries.error()));
        return 0;
    }
    auto engines = load(*options);
    if (!engines) {
        (void)send_message(k_socket_fd, detail::load_error_to_wire(engines.error()));
        return 0;
    }
    SandboxEngines loaded;
    if (engines->clamav) {
        loaded.clamav = engines->clamav->info();
    }
    if (engines->yara) {
        loaded.yara_rule_count = engines->yara->info().rule_count;
        loaded.yara_fingerprint = engines->yara->info().fingerprint;
    }
    if (!send_message(k_socket_fd, detail::engines_to_wire(loaded))) {
        return 0;
    }
    for (;;) {
        // Wakes every second to reap dead workers (and log how they died) while the parent is quiet.
        auto waited = wait_for_message(k_socket_fd, std::chrono::seconds(1));
        reap_workers();
        if (!waited && waited.error().code == Errc::timeout) {
            continue;
        }
        auto message = receive_message(k_socket_fd, std::nullopt);
        if (!message) {
            return 0; // the parent closed the socket (or died): done
        }
        if (message->body == "spawn") {
            spawn(k_socket_fd, *engines, *options);
        }
    }
}

} // namespace

std::optional<int> run_engine_host_if_asked(int argc, char** argv) {
    if (!asked_for_role(argc, argv, "__coldscan-engine-host")) {
        return std::nullopt;
    }
    return run_host();
}

} // namespace coldscan::signatures
