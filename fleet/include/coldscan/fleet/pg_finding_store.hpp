// The fleet's findings in PostgreSQL (coldscan_findings, coldscan_finding_runs: fleet_schema.cpp): every node
// records the findings of the scans it runs, and every node's API searches and counts them all. A run's
// findings are written once, in one transaction that also checks the job's lease (node and fence, as every
// write of a held job): a node whose lease is lost records nothing (Errc::conflict).
// Thread rule: shared; calls serialise on the one connection.
#pragma once
#include "coldscan/fleet/pg_connection.hpp"
#include "coldscan/scheduler/finding_store.hpp"

#include <functional>
#include <mutex>

namespace coldscan::fleet {

class PgFindingStore final : public scheduler::FindingStore {
public:
    // fence_of: the fence of a job this node holds (PgJobQueue::fence_of); nullopt when it holds none.
    PgFindingStore(PgConnection connection, std::string node,
                   std::function<std::optional<std::int64_t>(std::string_view job)> fence_of);

    Expected<bool> record(std::string_view run_id, const std::vector<scheduler::Finding>& findings) override;
    Expected<scheduler::FindingPage> search(const scheduler::FindingQuery& query) const override;
    Expected<scheduler::FindingStats> stats(const scheduler::FindingQuery& query) const override;

private:
    mutable std::mutex m_mutex;
    mutable PgConnection m_db;
    std::string m_node;
    std::function<std::optional<std::int64_t>(std::string_view)> m_fence_of;
};

} // namespace coldscan::fleet
