// The read budgets of the service's hosts and datastores, and the ReadThrottle each job's readers ask.
//
// Every byte a scan reads is charged to two token buckets, its host's and its datastore's (each with the
// config's max_read_per_second), and the reader waits for the slower one. A host above its pressure
// threshold also charges a third, slow bucket (a quarter of its cap, or k_pressure_rate without one): new
// scans do not start there (the scheduler's rule 5) and running ones slow down until the pressure falls.
// Thread rule: shared; every member is thread-safe (one mutex; waiting happens outside it).
#pragma once

#include "coldscan/common/read_throttle.hpp"
#include "coldscan/scheduler/inventory.hpp"
#include "coldscan/scheduler/token_bucket.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace coldscan::scheduler {

class ReadBudgets {
public:
    static constexpr std::uint64_t k_pressure_rate = 32ULL << 20; // a throttled host without a cap
    explicit ReadBudgets(const Inventory& inventory);

    // How long a read of bytes by a job on host and datastore (indexes) must wait, now; the bytes are
    // charged at once.
    [[nodiscard]] Duration charge(std::size_t host, std::size_t datastore, std::uint64_t bytes,
                                  TimePoint now);
    void set_throttled(std::size_t host, bool throttled);
    // Fleet mode: this node's share (0..1] of a host's or datastore's read budget, from the node's live
    // leases there against the fleet's (updated at each lease renewal); 1 on one node.
    void set_host_share(std::size_t host, double share);
    void set_datastore_share(std::size_t datastore, double share);
    [[nodiscard]] std::uint64_t host_rate(std::size_t host) const; // what its readers here get now
    [[nodiscard]] std::uint64_t host_bytes(std::size_t host) const;
    [[nodiscard]] std::uint64_t datastore_bytes(std::size_t datastore) const;

    // The throttle for one job's readers; stop cuts its waits short.
    [[nodiscard]] std::shared_ptr<ReadThrottle> throttle_for(std::size_t host, std::size_t datastore,
                                                             std::shared_ptr<const std::atomic<bool>> stop);

private:
    struct Account {
        std::uint64_t full_rate = 0; // the config's; bucket's rate is this node's share of it
        TokenBucket bucket;
        TokenBucket pressure; // charged only while throttled
        bool throttled = false;
        std::uint64_t bytes = 0;
    };
    mutable std::mutex m_mutex;
    std::vector<Account> m_hosts;
    std::vector<Account> m_datastores;
};

} // namespace coldscan::scheduler
