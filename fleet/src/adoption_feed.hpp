// What one node knows of the fleet's queue between two adoptions, so that each adoption reads only the rows
// whose status changed since the last (PgJobQueue::adoptable).
//
// Why a transaction horizon and not a sequence: a row changed by a transaction that commits after a read
// but got its number before it would be skipped by "greater than the last number seen". Each row names the
// transaction that last changed its status (changed_xid, schema 6), and a read takes the oldest transaction
// still running at that moment (pg_snapshot_xmin) as the next read's horizon: every change the read could not
// see was made by a transaction at or after it. Rows seen twice are harmless.
// Thread rule: not thread-safe; PgJobQueue calls it under its connection's mutex.
#pragma once

#include "coldscan/fleet/pg_connection.hpp"
#include "coldscan/scheduler/job_store.hpp"

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace coldscan::fleet {

class AdoptionFeed {
public:
    explicit AdoptionFeed(std::string node) : m_node(std::move(node)) {}

    // The changes since the last read on these datastores; every queued job there on the first read, after
    // a change of datastores, or while a full read comes back cut at its limit.
    [[nodiscard]] Expected<scheduler::Adoption> read(PgConnection& db,
                                                     const std::vector<std::string>& datastores);
    // A claim refused for the caps: the job is offered again at the next read (the service drops it until
    // then), unless it left the queue meanwhile.
    void refused_for_caps(const std::string& id);
    // A claim granted or the job taken: not offered again unless it is queued anew.
    void claimed_or_taken(const std::string& id);

    static constexpr std::size_t k_full_read_limit = 10000;

private:
    // Other nodes' running jobs with a live lease, per host and datastore.
    [[nodiscard]] Expected<void> count_running_elsewhere(PgConnection& db, scheduler::Adoption& out) const;

    std::string m_node;
    std::optional<std::string> m_horizon; // xid8 as text; nullopt: the next read is a full one
    std::vector<std::string> m_datastores;
    std::map<std::string, scheduler::SharedJob, std::less<>> m_queued; // queued as last seen
    std::set<std::string, std::less<>> m_parked;
};

} // namespace coldscan::fleet
