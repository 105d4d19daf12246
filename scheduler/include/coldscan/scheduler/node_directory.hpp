// The scanner nodes a service knows (GET /v1/nodes, `coldscan nodes`): itself alone, or in fleet mode every
// node sharing the fleet's database (fleet/pg_node_directory.hpp). Each node's housekeeping reports itself
// every few seconds; a node whose last report is older than its lease is shown as not alive.
// Thread rule: implementations may be called from any thread (they serialise inside).
#pragma once
#include "coldscan/common/error.hpp"

#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <vector>

namespace coldscan::scheduler {

struct NodeView {
    std::string name;
    std::string version;       // coldscan's
    std::string signature_set; // the fingerprint of the set its new jobs scan with
    std::chrono::system_clock::time_point started{};
    std::chrono::system_clock::time_point heartbeat{}; // its last report
    std::size_t running_jobs = 0;
    std::vector<std::string> datastores; // the datastores it can reach
    bool alive = true;                   // reported within its lease
};

class NodeDirectory {
public:
    virtual ~NodeDirectory() = default;
    // Records this node as it is now (heartbeat = now). Errors: the directory cannot be written (io).
    [[nodiscard]] virtual Expected<void> report(const NodeView& self) = 0;
    // Every node, by name. Errors: the directory cannot be read (io).
    [[nodiscard]] virtual Expected<std::vector<NodeView>> nodes() const = 0;
};

// A service on its own: the only node is itself.
class LocalNodeDirectory final : public NodeDirectory {
public:
    Expected<void> report(const NodeView& self) override;
    Expected<std::vector<NodeView>> nodes() const override;

private:
    mutable std::mutex m_mutex;
    std::vector<NodeView> m_self; // empty until the first report
};

} // namespace coldscan::scheduler
