#include "coldscan/scheduler/node_directory.hpp"

namespace coldscan::scheduler {

Expected<void> LocalNodeDirectory::report(const NodeView& self) {
    std::lock_guard lock(m_mutex);
    m_self = {self};
    m_self.front().heartbeat = std::chrono::system_clock::now();
    m_self.front().alive = true;
    return {};
}

Expected<std::vector<NodeView>> LocalNodeDirectory::nodes() const {
    std::lock_guard lock(m_mutex);
    return m_self;
}

} // namespace coldscan::scheduler
