#include "coldscan/scheduler/token_bucket.hpp"

#include <algorithm>
#include <cassert>
#include <limits>

namespace coldscan::scheduler {
namespace {

// Byte counts are kept as byte-milliseconds in an int64: up to about 9 PB, far beyond any one read.
constexpr std::int64_t k_max_level = std::numeric_limits<std::int64_t>::max() / 4;

std::int64_t to_level(std::uint64_t bytes) {
    constexpr std::uint64_t k_max_bytes = static_cast<std::uint64_t>(k_max_level) / 1000;
    return static_cast<std::int64_t>(std::min(bytes, k_max_bytes) * 1000);
}

} // namespace

TokenBucket::TokenBucket(std::uint64_t rate_bytes_per_second, std::uint64_t burst_bytes)
    : m_rate(rate_bytes_per_second), m_burst(burst_bytes), m_level(to_level(burst_bytes)) {}

std::int64_t TokenBucket::level_at(TimePoint now) const {
    const std::int64_t full = to_level(m_burst);
    if (!m_last || now <= *m_last || m_level >= full) {
        return std::min(m_level, full);
    }
    // One millisecond refills m_rate byte-milliseconds. Refill only what is missing, without overflowing.
    const auto missing = static_cast<std::uint64_t>(full - m_level);
    const auto elapsed = static_cast<std::uint64_t>((now - *m_last).count());
    if (elapsed >= missing / m_rate + 1) {
        return full;
    }
    return std::min(full, m_level + static_cast<std::int64_t>(elapsed * m_rate));
}

Duration TokenBucket::delay_for(std::uint64_t bytes, TimePoint now) {
    if (m_rate == 0) {
        return Duration::zero();
    }
    if (m_last && now < *m_last) {
        now = *m_last;
    }
    m_level = level_at(now);
    m_last = now;
    m_level = std::max(m_level - to_level(bytes), -k_max_level);
    if (m_level >= 0) {
        return Duration::zero();
    }
    // Debt of D byte-milliseconds is paid after ceil(D / rate) milliseconds.
    const auto debt = static_cast<std::uint64_t>(-m_level);
    return Duration(static_cast<Duration::rep>((debt + m_rate - 1) / m_rate));
}

void TokenBucket::set_rate(std::uint64_t rate_bytes_per_second, std::uint64_t burst_bytes, TimePoint now) {
    if (m_rate == 0 || rate_bytes_per_second == 0) {
        return;
    }
    if (m_last && now < *m_last) {
        now = *m_last;
    }
    m_level = std::min(level_at(now), to_level(burst_bytes));
    m_last = now;
    m_rate = rate_bytes_per_second;
    m_burst = burst_bytes;
}

std::uint64_t TokenBucket::available(TimePoint now) const {
    if (m_rate == 0) {
        return std::numeric_limits<std::uint64_t>::max();
    }
    if (m_last && now < *m_last) {
        now = *m_last;
    }
    const std::int64_t level = level_at(now);
    assert(level <= to_level(m_burst));
    return level <= 0 ? 0 : static_cast<std::uint64_t>(level) / 1000;
}

} // namespace coldscan::scheduler
