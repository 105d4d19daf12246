#include "adoption_feed.hpp"

#include <nlohmann/json.hpp>

namespace coldscan::fleet {
namespace {

constexpr std::string_view k_columns =
    "SELECT id, status, node, priority, target, host, datastore, estimated_bytes, submitted_at FROM "
    "coldscan_jobs WHERE datastore IN (SELECT jsonb_array_elements_text($1::jsonb)) AND ";

std::optional<scheduler::SharedJob> shared_job_of(const PgResult& rows, std::size_t row) {
    const auto priority = scheduler::parse_priority(rows.text(row, "priority"));
    if (!priority) {
        return std::nullopt;
    }
    scheduler::SharedJob job;
    job.id = rows.text(row, "id");
    job.priority = *priority;
    job.target = rows.text(row, "target");
    job.slots.host = rows.text(row, "host");
    job.slots.datastore = rows.text(row, "datastore");
    try {
        job.slots.estimated_bytes = std::stoull(rows.text(row, "estimated_bytes"));
        job.submitted_at = std::stoll(rows.text(row, "submitted_at"));
    } catch (const std::exception&) {
        return std::nullopt;
    }
    return job;
}

} // namespace

Expected<scheduler::Adoption> AdoptionFeed::read(PgConnection& db,
                                                 const std::vector<std::string>& datastores) {
    // Taken before the rows: an older horizon than the rows' own snapshot only means rows seen again.
    auto horizon = db.exec_reconnecting("SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS horizon");
    if (!horizon) {
        return std::unexpected(horizon.error());
    }
    const bool full = !m_horizon || datastores != m_datastores;
    const std::string where_in =
        nlohmann::json(datastores).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    auto rows = full ? db.exec_reconnecting(std::string(k_columns) +
                                                "status = 'queued' ORDER BY submitted_at, id "
                                                "LIMIT " +
                                                std::to_string(k_full_read_limit),
                                            {where_in})
                     : db.exec_reconnecting(std::string(k_columns) +
                                                "changed_xid >= $2::xid8 ORDER BY submitted_at, id",
                                            {where_in, *m_horizon});
    if (!rows) {
        return std::unexpected(rows.error());
    }
    scheduler::Adoption out;
    auto before = full ? std::exchange(m_queued, {}) : decltype(m_queued){};
    for (std::size_t row = 0; row < rows->size(); ++row) {
        const std::string id = rows->text(row, "id");
        const std::string status = rows->text(row, "status");
        if (status == "queued") {
            if (auto job = shared_job_of(*rows, row)) {
                before.erase(id);
                m_queued[id] = *job;
                out.queued.push_back(std::move(*job));
            }
            continue;
        }
        m_queued.erase(id);
        m_parked.erase(id);
        const bool mine = rows->text(row, "node") == m_node && (status == "running" || status == "paused");
        if (!mine) {
            out.dequeued.push_back(id);
        }
    }
    const bool cut = full && rows->size() >= k_full_read_limit;
    if (full && !cut) {
        for (const auto& [id, job] : before) {
            out.dequeued.push_back(id); // queued at the last read, not now
        }
    }
    for (const std::string& id : std::exchange(m_parked, {})) {
        if (const auto job = m_queued.find(id); job != m_queued.end() && !full) {
            out.queued.push_back(job->second);
        }
    }
    if (auto counted = count_running_elsewhere(db, out); !counted) {
        return std::unexpected(counted.error());
    }
    m_datastores = datastores;
    m_horizon = cut ? std::nullopt : std::optional<std::string>(horizon->text(0, "horizon"));
    return out;
}

Expected<void> AdoptionFeed::count_running_elsewhere(PgConnection& db, scheduler::Adoption& out) const {
    auto rows =
        db.exec_reconnecting("SELECT host, datastore, count(*) AS n FROM coldscan_jobs WHERE status = "
                             "'running' AND lease_until > clock_timestamp() AND node IS DISTINCT FROM $1 "
                             "GROUP BY host, datastore",
                             {m_node});
    if (!rows) {
        return std::unexpected(rows.error());
    }
    for (std::size_t row = 0; row < rows->size(); ++row) {
        const auto n = static_cast<unsigned>(std::stoul(rows->text(row, "n")));
        out.running_elsewhere_on_host[rows->text(row, "host")] += n;
        out.running_elsewhere_on_datastore[rows->text(row, "datastore")] += n;
    }
    return {};
}

void AdoptionFeed::refused_for_caps(const std::string& id) {
    if (m_queued.contains(id)) {
        m_parked.insert(id);
    }
}

void AdoptionFeed::claimed_or_taken(const std::string& id) {
    m_queued.erase(id);
    m_parked.erase(id);
}

} // namespace coldscan::fleet
