#include "coldscan/fleet/pg_node_directory.hpp"

#include <nlohmann/json.hpp>
#include <random>

namespace coldscan::fleet {
namespace {

using scheduler::NodeView;
using Clock = std::chrono::system_clock;

std::string random_instance() {
    std::random_device device;
    std::string id;
    for (int i = 0; i < 4; ++i) {
        char part[9];
        std::snprintf(part, sizeof part, "%08x", device());
        id += part;
    }
    return id;
}

std::string milliseconds_of(Clock::time_point time) {
    return std::to_string(
        std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count());
}

Clock::time_point time_of(const std::optional<std::string>& milliseconds) {
    return Clock::time_point{} + std::chrono::milliseconds(milliseconds ? std::stoll(*milliseconds) : 0);
}

// Inserts this node, or takes its row over when it is ours (same instance) or its holder's lease ran out.
constexpr std::string_view k_upsert = R"sql(
INSERT INTO coldscan_nodes AS n (name, instance, version, signature_set, datastores, running_jobs, lease_seconds,
                                 started_at, heartbeat_at)
VALUES ($1, $2, $3, $4, ARRAY(SELECT jsonb_array_elements_text($5::jsonb)), $6::integer, $7::integer,
        to_timestamp($8::double precision / 1000), now())
ON CONFLICT (name) DO UPDATE SET
    instance = EXCLUDED.instance, version = EXCLUDED.version, signature_set = EXCLUDED.signature_set,
    datastores = EXCLUDED.datastores, running_jobs = EXCLUDED.running_jobs,
    lease_seconds = EXCLUDED.lease_seconds, started_at = EXCLUDED.started_at, heartbeat_at = now()
WHERE n.instance = EXCLUDED.instance OR n.heartbeat_at < now() - n.lease_seconds * interval '1 second'
)sql";

constexpr std::string_view k_list = R"sql(
SELECT name, version, signature_set, array_to_json(datastores)::text AS datastores, running_jobs,
       floor(extract(epoch FROM started_at) * 1000)::bigint AS started,
       floor(extract(epoch FROM heartbeat_at) * 1000)::bigint AS heartbeat,
       heartbeat_at >= now() - lease_seconds * interval '1 second' AS alive
FROM coldscan_nodes ORDER BY name
)sql";

Expected<NodeView> node_of(const PgResult& rows, std::size_t row) {
    NodeView node;
    const auto text = [&](std::string_view column) { return rows.at(row, column).value_or(std::nullopt); };
    node.name = text("name").value_or("");
    node.version = text("version").value_or("");
    node.signature_set = text("signature_set").value_or("");
    node.running_jobs = static_cast<std::size_t>(std::stoul(text("running_jobs").value_or("0")));
    node.started = time_of(text("started"));
    node.heartbeat = time_of(text("heartbeat"));
    node.alive = text("alive").value_or("f") == "t";
    const auto datastores = nlohmann::json::parse(text("datastores").value_or("[]"), nullptr, false);
    if (!datastores.is_array()) {
        return make_error(Errc::corrupt, "coldscan_nodes: node " + node.name + " has unreadable datastores");
    }
    for (const auto& datastore : datastores) {
        node.datastores.push_back(datastore.get<std::string>());
    }
    return node;
}

} // namespace

PgNodeDirectory::PgNodeDirectory(PgConnection connection, std::string node, std::chrono::seconds lease)
    : m_db(std::move(connection)), m_node(std::move(node)), m_instance(random_instance()), m_lease(lease) {}

Expected<void> PgNodeDirectory::claim(const NodeView& self) {
    nlohmann::json datastores = self.datastores;
    std::lock_guard lock(m_mutex);
    auto written =
        m_db.exec_reconnecting(k_upsert, {m_node, m_instance, self.version, self.signature_set,
                                          datastores.dump(), std::to_string(self.running_jobs),
                                          std::to_string(m_lease.count()), milliseconds_of(self.started)});
    if (!written) {
        return std::unexpected(written.error());
    }
    if (written->affected() == 0) {
        return make_error(Errc::forbidden, "another coldscan runs as node " + m_node +
                                               " and is alive: give this one another [fleet] node name");
    }
    return {};
}

Expected<void> PgNodeDirectory::report(const NodeView& self) {
    return claim(self);
}

Expected<std::vector<NodeView>> PgNodeDirectory::nodes() const {
    std::lock_guard lock(m_mutex);
    auto rows = m_db.exec_reconnecting(k_list, {});
    if (!rows) {
        return std::unexpected(rows.error());
    }
    std::vector<NodeView> nodes;
    for (std::size_t row = 0; row < rows->size(); ++row) {
        auto node = node_of(*rows, row);
        if (!node) {
            return std::unexpected(node.error());
        }
        nodes.push_back(std::move(*node));
    }
    return nodes;
}

} // namespace coldscan::fleet
