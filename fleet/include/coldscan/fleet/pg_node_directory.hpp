// The fleet's nodes in PostgreSQL (table coldscan_nodes, fleet_schema.cpp): each node reports itself at every
// housekeeping tick; every node's API lists them all. A node is alive while its last report is younger than
// its lease. A node name belongs to one process at a time: claim() refuses a name whose holder is alive.
// Thread rule: any thread; calls are serialised on the one connection, which is re-opened once when lost.
#pragma once
#include "coldscan/fleet/pg_connection.hpp"
#include "coldscan/scheduler/node_directory.hpp"

#include <chrono>
#include <mutex>
#include <string>

namespace coldscan::fleet {

class PgNodeDirectory final : public scheduler::NodeDirectory {
public:
    // connection: to a migrated database (migrate_schema). lease: this node's.
    PgNodeDirectory(PgConnection connection, std::string node, std::chrono::seconds lease);

    // Takes the node name for this process. Errc::forbidden: another process holds it and is alive (its
    // last report is younger than its lease); Errc::io: the database's.
    [[nodiscard]] Expected<void> claim(const scheduler::NodeView& self);
    // As claim(), at every tick. Errc::forbidden: another process took the name after ours expired.
    Expected<void> report(const scheduler::NodeView& self) override;
    Expected<std::vector<scheduler::NodeView>> nodes() const override;

private:
    mutable std::mutex m_mutex;
    mutable PgConnection m_db;
    std::string m_node;
    std::string m_instance; // random, per process
    std::chrono::seconds m_lease;
};

} // namespace coldscan::fleet
