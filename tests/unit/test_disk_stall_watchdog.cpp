// StallWatchdog against a real child process standing in for qemu.
#include "../../disk-access/src/stall_watchdog.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using coldscan::disk::detail::StallWatchdog;
using namespace std::chrono_literals;

namespace {

// A child that waits for a signal; reaped by the destructor, so no test leaves it behind.
class SleepingChild {
public:
    SleepingChild() : m_pid(::fork()) {
        if (m_pid == 0) {
            ::pause();
            ::_exit(0);
        }
    }
    ~SleepingChild() {
        if (m_pid > 0 && !m_reaped) {
            ::kill(m_pid, SIGKILL);
            ::waitpid(m_pid, nullptr, 0);
        }
    }
    SleepingChild(const SleepingChild&) = delete;
    SleepingChild& operator=(const SleepingChild&) = delete;
    [[nodiscard]] pid_t pid() const { return m_pid; }

    // The signal that ended the child within the wait, or 0 if it is still running.
    int ended_by(std::chrono::milliseconds wait) {
        const auto deadline = std::chrono::steady_clock::now() + wait;
        while (std::chrono::steady_clock::now() < deadline) {
            int status = 0;
            if (::waitpid(m_pid, &status, WNOHANG) == m_pid) {
                m_reaped = true;
                return WIFSIGNALED(status) ? WTERMSIG(status) : -1;
            }
            std::this_thread::sleep_for(20ms);
        }
        return 0;
    }

private:
    pid_t m_pid;
    bool m_reaped = false;
};

} // namespace

TEST_CASE("StallWatchdog") {
    SleepingChild child;
    REQUIRE(child.pid() > 0);

    SECTION("a call that outlives the limit gets the process killed") {
        StallWatchdog dog(child.pid(), 1s);
        const StallWatchdog::Call call(dog);
        CHECK(child.ended_by(30s) == SIGKILL);
        CHECK(dog.fired());
    }
    SECTION("no call in flight means no kill, however long the pause") {
        StallWatchdog dog(child.pid(), 1s);
        for (int i = 0; i < 5; ++i) {
            const StallWatchdog::Call call(dog);
        }
        CHECK(child.ended_by(2500ms) == 0);
        CHECK_FALSE(dog.fired());
    }
    SECTION("a zero limit watches nothing") {
        StallWatchdog dog(child.pid(), 0s);
        const StallWatchdog::Call call(dog);
        CHECK(child.ended_by(1500ms) == 0);
        CHECK_FALSE(dog.fired());
    }
}
