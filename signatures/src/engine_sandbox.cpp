// The parent's side of the engine sandbox: starting the host, asking it for workers, and talking to them.
#include "coldscan/signatures/engine_sandbox.hpp"

#include "coldscan/common/fd_channel.hpp"
#include "coldscan/common/self_process.hpp"
#include "engine_wire.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <deque>
#include <fcntl.h>
#include <mutex>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <unistd.h>

namespace coldscan::signatures {
namespace {

constexpr const char* k_host_role = "__coldscan-engine-host";
// A spawn is a fork of a loaded host: milliseconds, unless the machine is drowning.
constexpr std::chrono::seconds k_spawn_timeout{60};

// The content as a descriptor the worker can map: its own when it has one, else a sealed memfd copy.
Expected<UniqueFd> content_descriptor(const Content& content) {
    UniqueFd fd(::memfd_create("coldscan-content", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!fd) {
        return make_error(Errc::io, errno_message("memfd_create"));
    }
    std::vector<std::byte> chunk;
    std::uint64_t offset = 0;
    while (offset < content.size()) {
        std::span<const std::byte> piece;
        if (const auto memory = content.memory()) {
            piece = memory->subspan(static_cast<std::size_t>(offset));
        } else {
            chunk.resize(1U << 20);
            auto got = content.read_at(offset, chunk);
            if (!got) {
                return std::unexpected(got.error());
            }
            if (*got == 0) {
                return make_error(Errc::io, "the content ended before its size");
            }
            piece = std::span<const std::byte>(chunk).first(*got);
        }
        while (!piece.empty()) {
            const ssize_t n = ::write(fd.get(), piece.data(), piece.size());
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                return make_error(Errc::io, errno_message("write to memfd"));
            }
            piece = piece.subspan(static_cast<std::size_t>(n));
            offset += static_cast<std::uint64_t>(n);
        }
    }
    ::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
    return fd;
}

// The host is restarted after it dies (it parses nothing after loading, so a death is rare: the OOM
// killer, an operator's kill), at most this often, so a host that dies on every start cannot loop.
constexpr int k_max_host_restarts = 3;
constexpr std::chrono::minutes k_host_restart_window{10};

} // namespace

struct EngineSandbox::State {
    std::mutex mutex; // one conversation with the host at a time; guards everything below
    SandboxOptions options;
    UniqueFd control;
    pid_t host = -1;
    std::optional<Expected<SandboxEngines>> loaded;
    std::chrono::milliseconds answer_within{0};
    std::deque<std::chrono::steady_clock::time_point> restarts;

    Expected<void> launch_host();
    void await_load();
    Expected<EngineWorker> ask_for_worker(bool& host_failed);
    Expected<void> restart_host();
};

Expected<void> EngineSandbox::State::launch_host() {
    auto started = start_self_process(k_host_role);
    if (!started) {
        return std::unexpected(started.error());
    }
    host = started->pid;
    control = std::move(started->socket);
    loaded.reset();
    if (auto sent = send_message(control.get(), detail::options_to_wire(options)); !sent) {
        return make_error(Errc::io, "the engine host did not start: " + sent.error().message);
    }
    return {};
}

void EngineSandbox::State::await_load() {
    if (loaded) {
        return;
    }
    auto answer = receive_message(control.get(), std::nullopt);
    if (!answer) {
        loaded = make_error(Errc::io, "the engine host exited while loading the signatures (" +
                                          answer.error().message + ")");
    } else {
        loaded = detail::engines_from_wire(answer->body);
    }
}

// host_failed: the conversation with the host broke (it died or hangs), as opposed to a refusal it sent.
Expected<EngineWorker> EngineSandbox::State::ask_for_worker(bool& host_failed) {
    host_failed = false;
    if (auto sent = send_message(control.get(), "spawn"); !sent) {
        host_failed = true;
        return make_error(Errc::io, "the engine host is gone: " + sent.error().message);
    }
    auto answer = receive_message(control.get(), k_spawn_timeout);
    if (!answer) {
        host_failed = true;
        return make_error(Errc::io, "the engine host did not start a worker: " + answer.error().message);
    }
    if (answer->body.starts_with("error ")) {
        return make_error(Errc::io, "could not start an engine worker: " + answer->body.substr(6));
    }
    const pid_t pid = static_cast<pid_t>(std::strtol(answer->body.c_str(), nullptr, 10));
    if (pid <= 0 || answer->fds.size() != 1) {
        host_failed = true;
        return make_error(Errc::io, "the engine host answered a spawn with nonsense");
    }
    EngineWorker worker(std::move(answer->fds.front()), pid, answer_within);
    // The worker says hello once it is confined: a worker that cannot be confined must not scan.
    auto hello = receive_message(worker.m_socket.get(), k_spawn_timeout);
    if (!hello || hello->body != "ready") {
        worker.discard(true);
        return make_error(Errc::io, "the engine worker could not start" +
                                        (hello ? ": " + hello->body : std::string(" (it exited)")));
    }
    return worker;
}

// A new host in place of a dead or stuck one. It must load exactly what the first one did: verdicts are
// cached under the signature set's fingerprint, taken when the scan began, so a set changed on disk since
// then is refused (every later file is ERROR) rather than scanned under the old set's name.
Expected<void> EngineSandbox::State::restart_host() {
    const auto now = std::chrono::steady_clock::now();
    while (!restarts.empty() && now - restarts.front() > k_host_restart_window) {
        restarts.pop_front();
    }
    if (restarts.size() >= static_cast<std::size_t>(k_max_host_restarts)) {
        return make_error(Errc::io, "the engine host died " + std::to_string(k_max_host_restarts + 1) +
                                        " times within " + std::to_string(k_host_restart_window.count()) +
                                        " minutes; not restarting it again");
    }
    restarts.push_back(now);
    const SandboxEngines before = loaded && *loaded ? **loaded : SandboxEngines{};
    const pid_t dead = host;
    control.reset();
    if (dead > 0) {
        ::kill(dead, SIGKILL); // it may be stuck rather than dead
        reap_or_kill(dead, std::chrono::seconds(5));
    }
    spdlog::warn("the engine host (pid {}) is gone; starting a new one and loading the signatures again",
                 dead);
    if (auto launched = launch_host(); !launched) {
        loaded = std::unexpected(launched.error());
        return launched;
    }
    await_load();
    if (!*loaded) {
        return std::unexpected(loaded->error());
    }
    const SandboxEngines& after = **loaded;
    const bool same = after.yara_fingerprint == before.yara_fingerprint &&
                      after.clamav.has_value() == before.clamav.has_value() &&
                      (!after.clamav || after.clamav->fingerprint == before.clamav->fingerprint);
    if (!same) {
        loaded = make_error(Errc::io,
                            "the engine host died and the signatures changed on disk since the scan "
                            "began; the rest of this scan cannot be scanned under the set it began with");
        return std::unexpected(loaded->error());
    }
    spdlog::info("a new engine host (pid {}) loaded the same signatures", host);
    return {};
}

Expected<std::shared_ptr<EngineSandbox>> EngineSandbox::start(const SandboxOptions& options) {
    std::shared_ptr<EngineSandbox> sandbox(new EngineSandbox());
    sandbox->m_limits = options.limits;
    sandbox->m_state = std::make_unique<State>();
    State& state = *sandbox->m_state;
    state.options = options;
    // A worker that has not answered by then is stuck: both engines' own time limits have passed, plus half
    // again (at least 10 s) for work they do not time, such as unpacking, and for a busy machine.
    const auto engine_time = std::chrono::duration_cast<std::chrono::milliseconds>(
        options.limits.max_scan_time + options.limits.yara_timeout);
    state.answer_within =
        engine_time + std::max<std::chrono::milliseconds>(engine_time / 2, std::chrono::seconds(10));
    if (auto launched = state.launch_host(); !launched) {
        return std::unexpected(launched.error());
    }
    return sandbox;
}

EngineSandbox::~EngineSandbox() {
    if (!m_state) {
        return;
    }
    m_state->control.reset(); // the host exits when its socket closes
    // It frees the engine first (a tenth of a second for a million signatures).
    reap_or_kill(m_state->host, std::chrono::seconds(5));
}

pid_t EngineSandbox::host_pid() const {
    std::lock_guard lock(m_state->mutex);
    return m_state->host;
}

Expected<SandboxEngines> EngineSandbox::ready() const {
    std::lock_guard lock(m_state->mutex);
    m_state->await_load();
    return *m_state->loaded;
}

Expected<EngineWorker> EngineSandbox::spawn_worker() const {
    std::lock_guard lock(m_state->mutex);
    State& state = *m_state;
    state.await_load();
    if (!*state.loaded) {
        return std::unexpected(state.loaded->error());
    }
    bool host_failed = false;
    auto worker = state.ask_for_worker(host_failed);
    if (worker || !host_failed) {
        return worker;
    }
    spdlog::warn("{}", worker.error().message);
    if (auto restarted = state.restart_host(); !restarted) {
        return std::unexpected(restarted.error());
    }
    return state.ask_for_worker(host_failed);
}

EngineWorker::~EngineWorker() {
    m_socket.reset(); // an idle worker exits when its socket closes
}

void EngineWorker::discard(bool kill) {
    if (kill && m_pid > 0) {
        ::kill(m_pid, SIGKILL);
    }
    m_socket.reset();
}

Expected<std::vector<EngineResult>> EngineWorker::scan(const Content& content, std::string_view path) {
    if (!m_socket) {
        return make_error(Errc::io, "the engine worker is gone");
    }
    UniqueFd copy;
    int fd = content.fd();
    if (fd < 0) {
        auto made = content_descriptor(content);
        if (!made) {
            return std::unexpected(made.error());
        }
        copy = std::move(*made);
        fd = copy.get();
    }
    const detail::ScanRequest request{std::string(path), content.size()};
    if (auto sent = send_message(m_socket.get(), detail::request_to_wire(request), std::span(&fd, 1));
        !sent) {
        discard(true);
        return make_error(Errc::io, "the engine worker is gone: " + sent.error().message);
    }
    auto answer = receive_message(m_socket.get(), m_answer_within);
    if (!answer) {
        discard(true);
        if (answer.error().code == Errc::timeout) {
            return make_error(Errc::timeout, "the engine worker did not answer within " +
                                                 std::to_string(m_answer_within.count() / 1000) +
                                                 " s and was stopped");
        }
        return make_error(Errc::io, "the engine worker died scanning this file (a crash, or its memory or "
                                    "CPU limit)");
    }
    auto parsed = detail::answer_from_wire(answer->body);
    if (!parsed) {
        discard(true);
        return std::unexpected(parsed.error());
    }
    if (parsed->retire) {
        discard(false);
    }
    return std::move(parsed->results);
}

} // namespace coldscan::signatures
