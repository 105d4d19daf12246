// Stops a helper process (the appliance's qemu) when one call into it runs longer than a limit: a hung qemu
// would otherwise block the thread that drives it forever. After the kill the call fails, later calls fail at
// once, and the caller reports every file it could not read as ERROR.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <sys/types.h>
#include <thread>

namespace coldscan::disk::detail {

// Thread rule: Call guards come from one thread at a time (the one driving the process); fired() from any.
class StallWatchdog {
public:
    // No pid (-1) watches nothing; neither does a limit of zero.
    StallWatchdog(pid_t pid, std::chrono::seconds limit);
    ~StallWatchdog();
    StallWatchdog(const StallWatchdog&) = delete;
    StallWatchdog& operator=(const StallWatchdog&) = delete;

    // Marks one call into the process; the call must end before the guard does.
    class Call {
    public:
        explicit Call(StallWatchdog& dog);
        ~Call();
        Call(const Call&) = delete;
        Call& operator=(const Call&) = delete;
        // Starts the clock again: for a sequence of calls under one guard, each gets the whole limit.
        void restart();

    private:
        StallWatchdog& m_dog;
    };

    // Whether the process was stopped for not answering.
    [[nodiscard]] bool fired() const;
    [[nodiscard]] std::chrono::seconds limit() const;
    void set_limit(std::chrono::seconds limit);

private:
    void watch();

    pid_t m_pid;
    std::chrono::seconds m_limit;
    mutable std::mutex m_mutex;
    std::condition_variable m_cv;
    std::optional<std::chrono::steady_clock::time_point> m_started;
    bool m_quit = false;
    bool m_fired = false;
    std::thread m_thread;
};

} // namespace coldscan::disk::detail
