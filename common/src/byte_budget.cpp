#include "coldscan/common/byte_budget.hpp"

#include <algorithm>
#include <cassert>

namespace coldscan {

void ByteBudget::acquire(std::uint64_t bytes) {
    std::unique_lock lock(m_mutex);
    m_released.wait(lock, [&] { return m_in_flight == 0 || m_in_flight + bytes <= m_limit; });
    m_in_flight += bytes;
    m_peak = std::max(m_peak, m_in_flight);
}

void ByteBudget::release(std::uint64_t bytes) {
    {
        std::lock_guard lock(m_mutex);
        assert(bytes <= m_in_flight);
        m_in_flight -= bytes;
    }
    m_released.notify_all();
}

std::uint64_t ByteBudget::in_flight() const {
    std::lock_guard lock(m_mutex);
    return m_in_flight;
}

std::uint64_t ByteBudget::peak() const {
    std::lock_guard lock(m_mutex);
    return m_peak;
}

} // namespace coldscan
