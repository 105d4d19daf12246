// Both engines in confined worker processes, so that a file built to crash or hang libclamav or libyara
// costs that file an ERROR verdict and nothing more.
//
// A scan starts one engine host: /proc/self/exe re-executed as a fresh, single-threaded process (a fork of
// our threaded process could inherit locks held by other threads). The host loads the signatures once and
// forks a worker per pipeline thread on request; the workers share the compiled engine copy-on-write, run
// under address-space and CPU limits and a seccomp filter (no network, no exec, no signals to others), and
// scan one file per request: its bytes arrive as a descriptor (the spill file, or a sealed memfd), the
// verdict goes back as JSON. A worker that crashes, runs past its limits or stops answering is killed and
// replaced; the file it was on is ERROR. A host that dies is replaced too, when a worker is next needed.
//
// Every executable that links this library must call run_engine_host_if_asked() first thing in main.
#pragma once

#include "coldscan/common/content.hpp"
#include "coldscan/common/error.hpp"
#include "coldscan/common/unique_fd.hpp"
#include "coldscan/signatures/clamav_engine.hpp"
#include "coldscan/signatures/engine_result.hpp"
#include "coldscan/signatures/scan_limits.hpp"

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace coldscan::signatures {

struct SandboxOptions {
    std::optional<std::filesystem::path> clamav_db; // resolved: the folder or file to load, if any
    std::vector<std::filesystem::path> yara_rules;
    ScanLimits limits;
    // Address space of one worker beyond what the host has mapped (the engine) when it forks.
    std::uint64_t worker_memory_bytes = 4ULL << 30;
    int log_level = -1; // spdlog's level in the host; -1: the parent's
};

// What the host loaded, known once it is ready.
struct SandboxEngines {
    std::optional<ClamavDatabaseInfo> clamav;
    std::uint64_t yara_rule_count = 0;
    std::string yara_fingerprint; // empty without rules
};

class EngineWorker;

// Thread rule: shared; every method may be called from any thread (spawning is serialized inside).
class EngineSandbox {
public:
    // Starts the host, which begins loading at once. Errors: io (the host cannot be started).
    static Expected<std::shared_ptr<EngineSandbox>> start(const SandboxOptions& options);
    ~EngineSandbox(); // closes the host's socket; the host and its idle workers exit
    EngineSandbox(const EngineSandbox&) = delete;
    EngineSandbox& operator=(const EngineSandbox&) = delete;

    // Waits until the host has loaded the signatures. Errors: the load's own (engine, invalid_argument), or
    // io when the host died.
    [[nodiscard]] Expected<SandboxEngines> ready() const;
    // A new worker process. A host that died or hangs is replaced (at most 3 times in 10 minutes), and must
    // load the same signatures as the first. Errors: those of ready(), io.
    [[nodiscard]] Expected<EngineWorker> spawn_worker() const;
    [[nodiscard]] const ScanLimits& limits() const noexcept { return m_limits; }
    [[nodiscard]] pid_t host_pid() const; // the current host (it changes when one is restarted)

private:
    EngineSandbox() = default;
    struct State;
    std::unique_ptr<State> m_state;
    ScanLimits m_limits;
};

// One worker process. Thread rule: one per pipeline thread.
class EngineWorker {
public:
    EngineWorker(EngineWorker&&) noexcept = default;
    EngineWorker& operator=(EngineWorker&&) noexcept = default;
    ~EngineWorker(); // kills the worker if it is still working

    // Scans content in the worker: one result per engine. Errors: io when the worker died or answered
    // nonsense (it is gone afterwards: spawn another), timeout when it did not answer in time (it was
    // killed).
    [[nodiscard]] Expected<std::vector<EngineResult>> scan(const Content& content, std::string_view path);
    // Whether the worker asked to be replaced (it used much of its CPU budget) or broke.
    [[nodiscard]] bool retired() const noexcept { return !m_socket.valid(); }
    [[nodiscard]] pid_t pid() const noexcept { return m_pid; }

private:
    friend class EngineSandbox;
    EngineWorker(UniqueFd socket, pid_t pid, std::chrono::milliseconds answer_within)
        : m_socket(std::move(socket)), m_pid(pid), m_answer_within(answer_within) {}
    void discard(bool kill);
    UniqueFd m_socket;
    pid_t m_pid = -1;
    std::chrono::milliseconds m_answer_within;
};

// When argv asks for the engine host (only EngineSandbox does), runs it and returns its exit status;
// otherwise nullopt. Call first thing in main.
[[nodiscard]] std::optional<int> run_engine_host_if_asked(int argc, char** argv);

} // namespace coldscan::signatures
