#include "coldscan/fleet/pg_finding_store.hpp"

namespace coldscan::fleet {
namespace {

using scheduler::Finding;
using scheduler::FindingCount;
using scheduler::FindingQuery;

constexpr std::string_view k_columns =
    "kind, image, host, datastore, device, path, sha256, signature, engine, signature_set, job, node, at";

// The WHERE clause of a query's filters, its values appended to params ($1... in order).
std::string where_of(const FindingQuery& query, PgParams& params) {
    std::string where = " WHERE true";
    const auto add = [&](std::string_view condition, std::string value) {
        params.emplace_back(std::move(value));
        where += " AND " + std::string(condition) + "$" + std::to_string(params.size());
    };
    if (query.signature) {
        add("signature = ", *query.signature);
    }
    if (query.image) {
        add("image = ", *query.image);
    }
    if (query.host) {
        add("host = ", *query.host);
    }
    if (query.kind) {
        add("kind = ", *query.kind);
    }
    if (query.path_contains) {
        params.emplace_back(*query.path_contains);
        where += " AND strpos(path, $" + std::to_string(params.size()) + ") > 0";
    }
    if (query.since) {
        add("at >= ", std::to_string(*query.since));
        where += "::bigint";
    }
    if (query.until) {
        add("at < ", std::to_string(*query.until));
        where += "::bigint";
    }
    return where;
}

std::vector<FindingCount> counts(const PgResult& rows) {
    std::vector<FindingCount> out;
    for (std::size_t row = 0; row < rows.size(); ++row) {
        out.push_back(FindingCount{rows.text(row, "key"), std::stoull(rows.text(row, "n"))});
    }
    return out;
}

} // namespace

PgFindingStore::PgFindingStore(PgConnection connection, std::string node,
                               std::function<std::optional<std::int64_t>(std::string_view)> fence_of)
    : m_db(std::move(connection)), m_node(std::move(node)), m_fence_of(std::move(fence_of)) {}

Expected<bool> PgFindingStore::record(std::string_view run_id, const std::vector<Finding>& findings) {
    if (findings.empty()) {
        return false;
    }
    const std::string job = findings.front().job;
    const auto fence = m_fence_of(job);
    const Error lost{Errc::conflict,
                     "job " + job + ": its findings are not recorded: this node's lease on it is lost"};
    if (!fence) {
        return std::unexpected(lost);
    }
    std::lock_guard lock(m_mutex);
    bool recorded = false;
    auto done = m_db.transaction([&]() -> Expected<void> {
        auto run = m_db.exec(
            "INSERT INTO coldscan_finding_runs (run_id, job, fence, node) SELECT $1, $2, $3::bigint, $4 "
            "WHERE EXISTS "
            "(SELECT 1 FROM coldscan_jobs WHERE id = $2 AND node = $4 AND fence = $3::bigint AND status IN "
            "('running', 'paused') FOR UPDATE) ON CONFLICT (run_id) DO NOTHING RETURNING run_id",
            {std::string(run_id), job, std::to_string(*fence), m_node});
        if (!run) {
            return std::unexpected(run.error());
        }
        if (run->empty()) {
            auto known =
                m_db.exec("SELECT 1 FROM coldscan_finding_runs WHERE run_id = $1", {std::string(run_id)});
            if (!known) {
                return std::unexpected(known.error());
            }
            if (known->empty()) {
                return std::unexpected(lost);
            }
            recorded = false; // recorded before (perhaps by a first try whose COMMIT answer was lost)
            return {};
        }
        auto rows =
            m_db.exec("INSERT INTO coldscan_findings (run_id, " + std::string(k_columns) + ") SELECT $2, " +
                          std::string(k_columns) +
                          " FROM jsonb_to_recordset($1::jsonb) AS r(kind text, image text, "
                          "host text, datastore text, device text, path text, sha256 text, signature text, "
                          "engine text, signature_set text, job text, node text, at bigint)",
                      {scheduler::findings_json(findings), std::string(run_id)});
        if (!rows) {
            return std::unexpected(rows.error());
        }
        recorded = true;
        return {};
    });
    if (!done) {
        return std::unexpected(done.error());
    }
    return recorded;
}

Expected<scheduler::FindingPage> PgFindingStore::search(const FindingQuery& query) const {
    PgParams params;
    const std::string where = where_of(query, params);
    const std::size_t limit = std::min(query.limit, FindingQuery::k_max_limit);
    std::lock_guard lock(m_mutex);
    auto total = m_db.exec_reconnecting("SELECT count(*) AS n FROM coldscan_findings" + where, params);
    if (!total) {
        return std::unexpected(total.error());
    }
    auto rows =
        m_db.exec_reconnecting("SELECT " + std::string(k_columns) + " FROM coldscan_findings" + where +
                                   " ORDER BY at DESC, image, device, path, signature LIMIT " +
                                   std::to_string(limit) + " OFFSET " + std::to_string(query.offset),
                               params);
    if (!rows) {
        return std::unexpected(rows.error());
    }
    scheduler::FindingPage page;
    page.total = std::stoull(total->text(0, "n"));
    for (std::size_t row = 0; row < rows->size(); ++row) {
        const auto field = [&](std::string_view column) { return rows->text(row, column); };
        page.findings.push_back(Finding{field("kind"), field("image"), field("host"), field("datastore"),
                                        field("device"), field("path"), field("sha256"), field("signature"),
                                        field("engine"), field("signature_set"), field("job"), field("node"),
                                        std::stoll(field("at"))});
    }
    return page;
}

Expected<scheduler::FindingStats> PgFindingStore::stats(const FindingQuery& query) const {
    PgParams params;
    const std::string where = where_of(query, params);
    const std::string from = " FROM coldscan_findings" + where;
    std::lock_guard lock(m_mutex);
    auto total = m_db.exec_reconnecting("SELECT count(*) AS n" + from, params);
    auto days =
        m_db.exec_reconnecting("SELECT to_char(to_timestamp(at) AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS key, "
                               "count(*) AS n" +
                                   from + " GROUP BY key ORDER BY key",
                               params);
    auto signatures = m_db.exec_reconnecting("SELECT signature AS key, count(*) AS n" + from +
                                                 " AND kind = 'DETECTION' GROUP BY key ORDER BY n DESC, key",
                                             params);
    auto hosts = m_db.exec_reconnecting(
        "SELECT host AS key, count(*) AS n" + from + " GROUP BY key ORDER BY n DESC, key", params);
    for (const auto* result : {&total, &days, &signatures, &hosts}) {
        if (!*result) {
            return std::unexpected(result->error());
        }
    }
    return scheduler::FindingStats{std::stoull(total->text(0, "n")), counts(*days), counts(*signatures),
                                   counts(*hosts)};
}

} // namespace coldscan::fleet
