#include "stall_watchdog.hpp"

#include <csignal>
#include <spdlog/spdlog.h>

namespace coldscan::disk::detail {

namespace {
// How often the watcher looks: the kill comes at most this late after the limit.
constexpr auto k_tick = std::chrono::milliseconds(250);
} // namespace

StallWatchdog::StallWatchdog(pid_t pid, std::chrono::seconds limit) : m_pid(pid), m_limit(limit) {
    if (pid > 0) {
        m_thread = std::thread([this] { watch(); });
    }
}

StallWatchdog::~StallWatchdog() {
    {
        const std::lock_guard lock(m_mutex);
        m_quit = true;
    }
    m_cv.notify_all();
    if (m_thread.joinable()) {
        m_thread.join();
    }
}

StallWatchdog::Call::Call(StallWatchdog& dog) : m_dog(dog) {
    const std::lock_guard lock(m_dog.m_mutex);
    m_dog.m_started = std::chrono::steady_clock::now();
}

StallWatchdog::Call::~Call() {
    const std::lock_guard lock(m_dog.m_mutex);
    m_dog.m_started.reset();
}

void StallWatchdog::Call::restart() {
    const std::lock_guard lock(m_dog.m_mutex);
    m_dog.m_started = std::chrono::steady_clock::now();
}

std::chrono::seconds StallWatchdog::limit() const {
    const std::lock_guard lock(m_mutex);
    return m_limit;
}

void StallWatchdog::set_limit(std::chrono::seconds limit) {
    const std::lock_guard lock(m_mutex);
    m_limit = limit;
}

bool StallWatchdog::fired() const {
    const std::lock_guard lock(m_mutex);
    return m_fired;
}

void StallWatchdog::watch() {
    std::unique_lock lock(m_mutex);
    while (!m_quit) {
        m_cv.wait_for(lock, k_tick);
        if (m_started && !m_fired && m_limit.count() > 0 &&
            std::chrono::steady_clock::now() - *m_started > m_limit) {
            spdlog::warn("the appliance did not answer for {} s; stopping it", m_limit.count());
            ::kill(m_pid, SIGKILL);
            m_fired = true;
        }
    }
}

} // namespace coldscan::disk::detail
