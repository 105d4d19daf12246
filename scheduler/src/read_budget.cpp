#include "read_budget.hpp"

#include <algorithm>
#include <chrono>
#include <thread>

namespace coldscan::scheduler {
namespace {

// A quarter second of reading at full rate may come at once: smooth enough for shared storage, big enough
// that 2 MiB reads do not each wait.
std::uint64_t burst_of(std::uint64_t rate) {
    return rate == 0 ? 0 : std::max<std::uint64_t>(rate / 4, 4ULL << 20);
}

std::uint64_t pressure_rate_of(std::uint64_t cap) {
    return cap == 0 ? ReadBudgets::k_pressure_rate : std::max<std::uint64_t>(cap / 4, 1ULL << 20);
}

TimePoint now_ms() {
    return std::chrono::time_point_cast<Duration>(std::chrono::system_clock::now());
}

class JobThrottle final : public ReadThrottle {
public:
    JobThrottle(ReadBudgets& budgets, std::size_t host, std::size_t datastore,
                std::shared_ptr<const std::atomic<bool>> stop)
        : m_budgets(budgets), m_host(host), m_datastore(datastore), m_stop(std::move(stop)) {}

    void acquire(std::uint64_t bytes) override {
        auto wait = m_budgets.charge(m_host, m_datastore, bytes, now_ms());
        // In slices, so a stopped job (pause, cancel, shutdown) does not sit out a long debt.
        constexpr Duration slice{100};
        while (wait > Duration::zero() && !m_stop->load()) {
            const auto step = std::min(wait, slice);
            std::this_thread::sleep_for(step);
            wait -= step;
        }
    }

private:
    ReadBudgets& m_budgets;
    std::size_t m_host;
    std::size_t m_datastore;
    std::shared_ptr<const std::atomic<bool>> m_stop;
};

} // namespace

ReadBudgets::ReadBudgets(const Inventory& inventory) {
    for (const auto& host : inventory.hosts()) {
        const auto rate = host.max_read_bytes_per_second;
        const auto slow = pressure_rate_of(rate);
        m_hosts.push_back(
            Account{rate, TokenBucket(rate, burst_of(rate)), TokenBucket(slow, burst_of(slow))});
    }
    for (const auto& datastore : inventory.datastores()) {
        const auto rate = datastore.max_read_bytes_per_second;
        m_datastores.push_back(Account{rate, TokenBucket(rate, burst_of(rate)), TokenBucket(0, 0)});
    }
}

Duration ReadBudgets::charge(std::size_t host, std::size_t datastore, std::uint64_t bytes, TimePoint now) {
    std::lock_guard lock(m_mutex);
    Account& h = m_hosts.at(host);
    Account& d = m_datastores.at(datastore);
    h.bytes += bytes;
    d.bytes += bytes;
    Duration wait = std::max(h.bucket.delay_for(bytes, now), d.bucket.delay_for(bytes, now));
    if (h.throttled) {
        wait = std::max(wait, h.pressure.delay_for(bytes, now));
    }
    return wait;
}

void ReadBudgets::set_throttled(std::size_t host, bool throttled) {
    std::lock_guard lock(m_mutex);
    m_hosts.at(host).throttled = throttled;
}

namespace {

void share_of(std::uint64_t full_rate, double share, TokenBucket& bucket) {
    if (full_rate == 0) {
        return; // unlimited stays unlimited
    }
    constexpr std::uint64_t k_floor = 256ULL << 10; // a share never stalls a reader outright
    const auto rate = std::max<std::uint64_t>(
        k_floor, static_cast<std::uint64_t>(static_cast<double>(full_rate) * std::clamp(share, 0.0, 1.0)));
    bucket.set_rate(rate, burst_of(rate), now_ms());
}

} // namespace

void ReadBudgets::set_host_share(std::size_t host, double share) {
    std::lock_guard lock(m_mutex);
    Account& account = m_hosts.at(host);
    share_of(account.full_rate, share, account.bucket);
}

void ReadBudgets::set_datastore_share(std::size_t datastore, double share) {
    std::lock_guard lock(m_mutex);
    Account& account = m_datastores.at(datastore);
    share_of(account.full_rate, share, account.bucket);
}

std::uint64_t ReadBudgets::host_rate(std::size_t host) const {
    std::lock_guard lock(m_mutex);
    return m_hosts.at(host).bucket.rate();
}

std::uint64_t ReadBudgets::host_bytes(std::size_t host) const {
    std::lock_guard lock(m_mutex);
    return m_hosts.at(host).bytes;
}

std::uint64_t ReadBudgets::datastore_bytes(std::size_t datastore) const {
    std::lock_guard lock(m_mutex);
    return m_datastores.at(datastore).bytes;
}

std::shared_ptr<ReadThrottle> ReadBudgets::throttle_for(std::size_t host, std::size_t datastore,
                                                        std::shared_ptr<const std::atomic<bool>> stop) {
    return std::make_shared<JobThrottle>(*this, host, datastore, std::move(stop));
}

} // namespace coldscan::scheduler
