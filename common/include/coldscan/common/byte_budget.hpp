// Bounds the bytes that files in flight hold in memory.
//
// acquire() blocks while others hold the budget. One request larger than the whole budget still passes when
// nothing else is in flight, so the pipeline can never stall on a big file.
// Thread rule: shared; all members are thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace coldscan {

class ByteBudget {
public:
    explicit ByteBudget(std::uint64_t limit) : m_limit(limit) {}
    void acquire(std::uint64_t bytes);
    void release(std::uint64_t bytes);
    [[nodiscard]] std::uint64_t limit() const noexcept { return m_limit; }
    [[nodiscard]] std::uint64_t in_flight() const;
    [[nodiscard]] std::uint64_t peak() const;

private:
    const std::uint64_t m_limit;
    mutable std::mutex m_mutex;
    std::condition_variable m_released;
    std::uint64_t m_in_flight = 0;
    std::uint64_t m_peak = 0;
};

} // namespace coldscan
