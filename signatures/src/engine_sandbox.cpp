// The parent's side of the engine sandbox: starting the host, asking it for workers, and talking to them.
#include "coldscan/signatures/engine_sandbox.hpp"

#include "coldscan/common/fd_channel.hpp"
#include "coldscan/common/self_process.hpp"
#include "engine_wire.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
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

} // namespace

struct EngineSandbox::State {
    std::mutex mutex; // one conversation with the host at a time
    UniqueFd control;
    std::optional<Expected<SandboxEngines>> loaded;
    std::chrono::milliseconds answer_within{0};
};

Expected<std::shared_ptr<EngineSandbox>> EngineSandbox::start(const SandboxOptions& options) {
    auto host = start_self_process(k_host_role);
    if (!host) {
        return std::unexpected(host.error());
    }
    std::shared_ptr<EngineSandbox> sandbox(new EngineSandbox());
    sandbox->m_host = host->pid;
    sandbox->m_limits = options.limits;
    sandbox->m_state = std::make_unique<State>();
    sandbox->m_state->control = std::move(host->socket);
    // A worker that has not answered by then is stuck: both engines' own time limits have passed, plus half
    // again (at least 10 s) for work they do not time, such as unpacking, and for a busy machine.
    const auto engine_time = std::chrono::duration_cast<std::chrono::milliseconds>(
        options.limits.max_scan_time + options.limits.yara_timeout);
    sandbox->m_state->answer_within =
        engine_time + std::max<std::chrono::milliseconds>(engine_time / 2, std::chrono::seconds(10));
    if (auto sent = send_message(sandbox->m_state->control.get(), detail::options_to_wire(options)); !sent) {
        return make_error(Errc::io, "the engine host did not start: " + sent.error().message);
    }
    return sandbox;
}

EngineSandbox::~EngineSandbox() {
    if (m_state) {
        m_state->control.reset(); // the host exits when its socket closes
    }
    // It frees the engine first (a tenth of a second for a million signatures).
    reap_or_kill(m_host, std::chrono::seconds(5));
}

Expected<SandboxEngines> EngineSandbox::ready() const {
    std::lock_guard lock(m_state->mutex);
    if (!m_state->loaded) {
        auto answer = receive_message(m_state->control.get(), std::nullopt);
        if (!answer) {
            m_state->loaded = make_error(Errc::io, "the engine host exited while loading the signatures (" +
                                                       answer.error().message + ")");
        } else {
            m_state->loaded = detail::engines_from_wire(answer->body);
        }
    }
    return *m_state->loaded;
}

Expected<EngineWorker> EngineSandbox::spawn_worker() const {
    if (auto loaded = ready(); !loaded) {
        return std::unexpected(loaded.error());
    }
    std::lock_guard lock(m_state->mutex);
    if (auto sent = send_message(m_state->control.get(), "spawn"); !sent) {
        return make_error(Errc::io, "the engine host is gone: " + sent.error().message);
    }
    auto answer = receive_message(m_state->control.get(), k_spawn_timeout);
    if (!answer) {
        return make_error(Errc::io, "the engine host did not start a worker: " + answer.error().message);
    }
    if (answer->body.starts_with("error ")) {
        return make_error(Errc::io, "could not start an engine worker: " + answer->body.substr(6));
    }
    const pid_t pid = static_cast<pid_t>(std::strtol(answer->body.c_str(), nullptr, 10));
    if (pid <= 0 || answer->fds.size() != 1) {
        return make_error(Errc::io, "the engine host answered a spawn with nonsense");
    }
    EngineWorker worker(std::move(answer->fds.front()), pid, m_state->answer_within);
    // The worker says hello once it is confined: a worker that cannot be confined must not scan.
    auto hello = receive_message(worker.m_socket.get(), k_spawn_timeout);
    if (!hello || hello->body != "ready") {
        worker.discard(true);
        return make_error(Errc::io, "the engine worker could not start" +
                                        (hello ? ": " + hello->body : std::string(" (it exited)")));
    }
    return worker;
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
