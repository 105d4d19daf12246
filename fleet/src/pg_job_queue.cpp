#include "coldscan/fleet/pg_job_queue.hpp"

#include "adoption_feed.hpp"
#include "coldscan/common/log.hpp"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace coldscan::fleet {
namespace {

using scheduler::Claim;
using scheduler::ClaimOutcome;
using scheduler::JobRecord;
using scheduler::JobStatus;
using SteadyClock = std::chrono::steady_clock;

constexpr std::string_view k_columns =
    "id, request, target_identity, signature_set, status, attempts, last_error, submitted_at, updated_at, "
    "report_path, node";

// Jobs taken back from a node that stopped while it ran them ($1: now, $2: max_attempts; the caller appends
// the WHERE condition): queued again, unless that happened max_attempts times: then the job is a dead letter
// (a job that brings its node down each time must not take the fleet's nodes down one after another).
constexpr std::string_view k_take_back =
    "UPDATE coldscan_jobs SET rescues = rescues + 1, lease_until = NULL, updated_at = $1::bigint, status = "
    "CASE WHEN rescues + 1 >= $2::integer THEN 'dead_letter' ELSE 'queued' END, last_error = CASE WHEN "
    "rescues + 1 >= $2::integer THEN 'its node stopped while scanning it ' || (rescues + 1) || ' times "
    "(crashed, killed or cut off): not tried again' ELSE last_error END WHERE ";

// Logs what a take-back did (its rows: id, status).
void log_taken_back(const PgResult& rows, std::string_view why) {
    std::size_t dead = 0;
    for (std::size_t row = 0; row < rows.size(); ++row) {
        if (rows.text(row, "status") == "dead_letter") {
            ++dead;
            spdlog::error("fleet: job {} is a dead letter: its node stopped while scanning it too often",
                          rows.text(row, "id"));
        }
    }
    if (rows.size() > dead) {
        spdlog::warn("fleet: {} job(s) {} are queued again", rows.size() - dead, why);
    }
}

// pg_advisory_xact_lock(class, key) classes: "cs" + 1 for hosts, + 2 for datastores.
constexpr std::string_view k_host_lock_class = "6515457";
constexpr std::string_view k_datastore_lock_class = "6515458";

std::optional<JobRecord> record_of(const PgResult& rows, std::size_t row) {
    JobRecord record;
    record.id = rows.text(row, "id");
    auto request = scheduler::request_from_json(rows.text(row, "request"));
    const auto status = scheduler::parse_job_status(rows.text(row, "status"));
    if (!request || !status) {
        return std::nullopt;
    }
    record.request = std::move(*request);
    record.status = *status;
    record.target_identity = rows.text(row, "target_identity");
    record.signature_set = rows.text(row, "signature_set");
    try {
        record.attempts = static_cast<unsigned>(std::stoul(rows.text(row, "attempts")));
        record.submitted_at = std::stoll(rows.text(row, "submitted_at"));
        record.updated_at = std::stoll(rows.text(row, "updated_at"));
    } catch (const std::exception&) {
        return std::nullopt;
    }
    record.last_error = rows.text(row, "last_error");
    if (auto path = rows.at(row, "report_path"); path && *path) {
        record.report_path = **path;
    }
    record.node = rows.text(row, "node");
    return record;
}

std::string json_array(const std::vector<std::string>& values) {
    return nlohmann::json(values).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Expected<std::string> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return make_error(Errc::io, "cannot read the report " + path);
    }
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

Error conflict(std::string_view id, std::string_view what) {
    return Error{Errc::conflict, "job " + std::string(id) + ": cannot " + std::string(what) +
                                     ": this node's lease on it is lost (fencing: another node may run it)"};
}

} // namespace

PgJobQueue::PgJobQueue(PgConnection connection, PgConnection keeper, PgJobQueueOptions options)
    : m_options(std::move(options)), m_db(std::move(connection)),
      m_feed(std::make_unique<AdoptionFeed>(m_options.node)), m_keeper_db(std::move(keeper)) {
    if (m_options.keeper) {
        m_keeper = std::jthread([this](const std::stop_token& stop) { keeper_loop(stop); });
        m_watchdog = std::jthread([this](const std::stop_token& stop) { watchdog_loop(stop); });
    }
}

PgJobQueue::~PgJobQueue() {
    for (auto* thread : {&m_keeper, &m_watchdog}) {
        if (thread->joinable()) {
            thread->request_stop();
            m_keeper_cv.notify_all();
            thread->join();
        }
    }
}

Expected<scheduler::SubmitResult> PgJobQueue::submit(scheduler::JobRequest request,
                                                     std::string_view target_identity,
                                                     std::string_view signature_set, scheduler::Rescan rescan,
                                                     const scheduler::JobSlots& slots) {
    if (request.target.empty() || target_identity.empty() || signature_set.empty()) {
        return make_error(Errc::invalid_argument,
                          "job: the target, its identity and the signature set must not be empty");
    }
    const std::string id = scheduler::job_id(target_identity, request.snapshot, signature_set);
    const std::string now = std::to_string(scheduler::unix_seconds());
    const std::string request_text = scheduler::request_json(request);
    std::lock_guard lock(m_mutex);
    scheduler::SubmitResult result;
    auto done = m_db.transaction([&]() -> Expected<void> {
        auto inserted = m_db.exec(
            "INSERT INTO coldscan_jobs (id, request, target, target_identity, signature_set, priority, host, "
            "datastore, estimated_bytes, status, submitted_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, "
            "$7, "
            "$8, $9::bigint, 'queued', $10::bigint, $10::bigint) ON CONFLICT (id) DO NOTHING RETURNING " +
                std::string(k_columns),
            {id, request_text, request.target, std::string(target_identity), std::string(signature_set),
             std::string(to_string(request.priority)), slots.host, slots.datastore,
             std::to_string(slots.estimated_bytes), now});
        if (!inserted) {
            return std::unexpected(inserted.error());
        }
        if (!inserted->empty()) {
            result = {*record_of(*inserted, 0), true};
            return {};
        }
        auto found = m_db.exec(
            "SELECT " + std::string(k_columns) + " FROM coldscan_jobs WHERE id = $1 FOR UPDATE", {id});
        if (!found) {
            return std::unexpected(found.error());
        }
        auto existing = found->empty() ? std::nullopt : record_of(*found, 0);
        if (!existing) {
            return make_error(Errc::corrupt, "job " + id + ": its row in coldscan_jobs does not decode");
        }
        if (existing->target_identity != target_identity || existing->signature_set != signature_set ||
            existing->request.snapshot != request.snapshot) {
            return make_error(Errc::internal, "job " + id + ": the id is taken by another job");
        }
        const bool stale = existing->status == JobStatus::succeeded && rescan.succeeded_before.has_value() &&
                           existing->updated_at <= *rescan.succeeded_before;
        if (!scheduler::is_finished(existing->status) ||
            (existing->status == JobStatus::succeeded && !stale)) {
            result = {std::move(*existing), false};
            return {};
        }
        auto queued =
            m_db.exec("UPDATE coldscan_jobs SET request = $2, priority = $3, status = 'queued', "
                      "attempts = 0, rescues = 0, report_path = NULL, report = NULL, submitted_at = "
                      "$4::bigint, "
                      "updated_at = $4::bigint, lease_until = NULL WHERE id = $1 RETURNING " +
                          std::string(k_columns),
                      {id, request_text, std::string(to_string(request.priority)), now});
        if (!queued) {
            return std::unexpected(queued.error());
        }
        result = {*record_of(*queued, 0), false};
        return {};
    });
    if (!done) {
        return std::unexpected(done.error());
    }
    return result;
}

Expected<Claim> PgJobQueue::claim(std::string_view id, const scheduler::JobSlots& slots) {
    std::lock_guard lock(m_mutex);
    Expected<Claim> claimed = Claim{};
    auto done = m_db.transaction([&]() -> Expected<void> {
        claimed = claim_locked(id, slots);
        return claimed ? Expected<void>{} : std::unexpected(claimed.error());
    });
    if (!done) {
        return std::unexpected(done.error());
    }
    if (claimed->outcome == ClaimOutcome::caps_full) {
        m_feed->refused_for_caps(std::string(id));
    } else {
        m_feed->claimed_or_taken(std::string(id));
    }
    return claimed;
}

Expected<Claim> PgJobQueue::claim_locked(std::string_view id, const scheduler::JobSlots& slots) {
    const auto sent = SteadyClock::now();
    const std::string key(id);
    for (const auto& [lock_class, name] :
         {std::pair{k_host_lock_class, slots.host}, std::pair{k_datastore_lock_class, slots.datastore}}) {
        if (auto locked = m_db.exec(
                "SELECT pg_advisory_xact_lock(" + std::string(lock_class) + ", hashtext($1))", {name});
            !locked) {
            return std::unexpected(locked.error());
        }
    }
    auto row = m_db.exec(
        "SELECT status, node, fence, priority FROM coldscan_jobs WHERE id = $1 FOR UPDATE SKIP LOCKED",
        {key});
    if (!row) {
        return std::unexpected(row.error());
    }
    if (row->empty()) {
        auto known = m_db.exec("SELECT 1 FROM coldscan_jobs WHERE id = $1", {key});
        if (known && known->empty()) {
            return make_error(Errc::not_found, "no job " + key);
        }
        return Claim{ClaimOutcome::taken, std::nullopt}; // another transaction holds it
    }
    const std::string status = row->text(0, "status");
    const bool resumable = status == "paused" && row->text(0, "node") == m_options.node &&
                           fence_of(id) == std::stoll(row->text(0, "fence"));
    if (status != "queued" && !resumable) {
        return Claim{ClaimOutcome::taken, std::nullopt};
    }
    auto counted =
        m_db.exec("SELECT count(*) FILTER (WHERE host = $2) AS on_host, count(*) FILTER (WHERE "
                  "datastore = $3) AS on_datastore FROM coldscan_jobs WHERE status = 'running' AND "
                  "lease_until > clock_timestamp() AND id <> $1 AND (host = $2 OR datastore = $3)",
                  {key, slots.host, slots.datastore});
    if (!counted) {
        return std::unexpected(counted.error());
    }
    const auto on_host = std::stoul(counted->text(0, "on_host"));
    const auto on_datastore = std::stoul(counted->text(0, "on_datastore"));
    const bool gate = row->text(0, "priority") == to_string(scheduler::Priority::gate);
    if (!gate) {
        // A gate job waiting for this host or datastore goes first: a slot made for it is not taken back.
        auto waiting =
            m_db.exec("SELECT 1 FROM coldscan_jobs WHERE status = 'queued' AND priority = 'gate' AND "
                      "(host = $1 OR datastore = $2) LIMIT 1",
                      {slots.host, slots.datastore});
        if (!waiting) {
            return std::unexpected(waiting.error());
        }
        if (!waiting->empty()) {
            return Claim{ClaimOutcome::caps_full, std::nullopt};
        }
    }
    const bool host_full = slots.host_cap != 0 && on_host >= slots.host_cap;
    const bool datastore_full = slots.datastore_cap != 0 && on_datastore >= slots.datastore_cap;
    if (host_full || datastore_full) {
        if (gate) {
            if (auto asked = request_room_locked(slots, host_full); !asked) {
                return std::unexpected(asked.error());
            }
        }
        return Claim{ClaimOutcome::caps_full, std::nullopt};
    }
    auto updated =
        m_db.exec("UPDATE coldscan_jobs SET status = 'running', preempt = false, node = $2, fence = "
                  "nextval('coldscan_fence'), lease_until = clock_timestamp() + $3::integer * "
                  "interval '1 second', updated_at = $4::bigint WHERE id = $1 RETURNING fence, " +
                      std::string(k_columns),
                  {key, m_options.node, std::to_string(m_options.lease.count()),
                   std::to_string(scheduler::unix_seconds())});
    if (!updated) {
        return std::unexpected(updated.error());
    }
    auto record = record_of(*updated, 0);
    if (!record) {
        return make_error(Errc::corrupt, "job " + key + ": its row in coldscan_jobs does not decode");
    }
    hold(key, std::stoll(updated->text(0, "fence")), sent);
    return Claim{ClaimOutcome::granted, std::move(record)};
}

Expected<void> PgJobQueue::request_room_locked(const scheduler::JobSlots& slots, bool host_full) {
    // One at a time: a job already asked counts, so repeated claims do not stop every nightly job there.
    const std::string where = host_full ? "host = $1" : "datastore = $1";
    auto asked = m_db.exec(
        "UPDATE coldscan_jobs SET preempt = true WHERE id = (SELECT id FROM coldscan_jobs WHERE " + where +
            " AND status = 'running' AND priority = 'nightly' AND lease_until > clock_timestamp() AND NOT "
            "EXISTS "
            "(SELECT 1 FROM coldscan_jobs WHERE " +
            where +
            " AND status = 'running' AND preempt) ORDER BY updated_at DESC, id LIMIT 1 FOR UPDATE SKIP "
            "LOCKED)",
        {host_full ? slots.host : slots.datastore});
    if (!asked) {
        return std::unexpected(asked.error());
    }
    return {};
}

Expected<JobRecord> PgJobQueue::fenced_update(std::string_view id, std::string_view what,
                                              std::string_view set_sql, PgParams extra, bool release_lease) {
    const auto fence = fence_of(id);
    if (!fence) {
        return std::unexpected(conflict(id, what));
    }
    PgParams params{std::string(id), m_options.node, std::to_string(*fence),
                    std::to_string(scheduler::unix_seconds())};
    params.insert(params.end(), extra.begin(), extra.end());
    std::unique_lock lock(m_mutex);
    auto updated = m_db.exec_reconnecting(
        "UPDATE coldscan_jobs SET updated_at = $4::bigint, " + std::string(set_sql) +
            " WHERE id = $1 AND node = $2 AND fence = $3::bigint AND status IN ('running', "
            "'paused') RETURNING " +
            std::string(k_columns),
        params);
    lock.unlock();
    if (!updated) {
        return std::unexpected(updated.error());
    }
    if (updated->empty()) {
        release(id);
        return std::unexpected(conflict(id, what));
    }
    if (release_lease) {
        release(id);
    }
    auto record = record_of(*updated, 0);
    if (!record) {
        return make_error(Errc::corrupt,
                          "job " + std::string(id) + ": its row in coldscan_jobs does not decode");
    }
    return std::move(*record);
}

Expected<JobRecord> PgJobQueue::mark_paused(std::string_view id) {
    // A paused job holds no slot: a gate job's request for room is answered.
    return fenced_update(
        id, "pause it",
        "preempt = false, status = CASE WHEN status = 'running' THEN 'paused' ELSE status END", {}, false);
}

Expected<JobRecord> PgJobQueue::mark_succeeded(std::string_view id, std::string report_path) {
    auto report = read_file(report_path);
    if (!report) {
        return std::unexpected(report.error());
    }
    return fenced_update(id, "record its success",
                         "status = 'succeeded', report_path = $5, report = $6, lease_until = NULL",
                         {std::move(report_path), std::move(*report)}, true);
}

Expected<JobRecord> PgJobQueue::mark_failed(std::string_view id, std::string error, scheduler::Retry retry) {
    return fenced_update(
        id, "record its failure",
        "attempts = attempts + 1, last_error = $5, lease_until = NULL, status = CASE WHEN $6 "
        "= 'never' THEN 'failed' WHEN attempts + 1 >= $7::integer THEN 'dead_letter' ELSE "
        "'queued' END",
        {std::move(error), retry == scheduler::Retry::never ? "never" : "allowed",
         std::to_string(std::max(1U, m_options.max_attempts))},
        true);
}

Expected<JobRecord> PgJobQueue::requeue(std::string_view id) {
    return fenced_update(id, "queue it again", "status = 'queued', preempt = false, lease_until = NULL", {},
                         true);
}

Expected<JobRecord> PgJobQueue::cancel(std::string_view id) {
    std::unique_lock lock(m_mutex);
    auto cancelled = m_db.exec_reconnecting(
        "UPDATE coldscan_jobs SET status = 'cancelled', lease_until = NULL, updated_at = "
        "$2::bigint WHERE id = $1 AND status IN ('queued', 'running', 'paused') RETURNING " +
            std::string(k_columns),
        {std::string(id), std::to_string(scheduler::unix_seconds())});
    lock.unlock();
    if (!cancelled) {
        return std::unexpected(cancelled.error());
    }
    if (!cancelled->empty()) {
        release(id);
        return *record_of(*cancelled, 0);
    }
    auto found = get(id);
    if (!found) {
        return std::unexpected(found.error());
    }
    if (!*found) {
        return make_error(Errc::not_found, "no job " + std::string(id));
    }
    if ((*found)->status == JobStatus::cancelled) {
        return std::move(**found);
    }
    return make_error(Errc::invalid_argument, "job " + std::string(id) + ": cannot cancel it: it is " +
                                                  std::string(to_string((*found)->status)));
}

Expected<std::vector<JobRecord>> PgJobQueue::recover() {
    std::lock_guard lock(m_mutex);
    auto requeued = m_db.exec_reconnecting(
        std::string(k_take_back) + "node = $3 AND status IN ('running', 'paused') RETURNING id, status",
        {std::to_string(scheduler::unix_seconds()), std::to_string(m_options.max_attempts), m_options.node});
    if (!requeued) {
        return std::unexpected(requeued.error());
    }
    log_taken_back(*requeued, "this node held before it stopped");
    return std::vector<JobRecord>{}; // adopted like any queued job
}

Expected<std::optional<JobRecord>> PgJobQueue::get(std::string_view id) const {
    std::lock_guard lock(m_mutex);
    auto found = m_db.exec_reconnecting(
        "SELECT " + std::string(k_columns) + " FROM coldscan_jobs WHERE id = $1", {std::string(id)});
    if (!found) {
        return std::unexpected(found.error());
    }
    if (found->empty()) {
        return std::optional<JobRecord>{};
    }
    auto record = record_of(*found, 0);
    if (!record) {
        return make_error(Errc::corrupt,
                          "job " + std::string(id) + ": its row in coldscan_jobs does not decode");
    }
    return record;
}

Expected<std::vector<JobRecord>> PgJobQueue::list(std::optional<JobStatus> status) const {
    std::lock_guard lock(m_mutex);
    const std::string order = " ORDER BY submitted_at, id";
    auto rows =
        status
            ? m_db.exec_reconnecting("SELECT " + std::string(k_columns) +
                                         " FROM coldscan_jobs WHERE status = $1" + order,
                                     {std::string(to_string(*status))})
            : m_db.exec_reconnecting("SELECT " + std::string(k_columns) + " FROM coldscan_jobs" + order, {});
    if (!rows) {
        return std::unexpected(rows.error());
    }
    std::vector<JobRecord> records;
    std::size_t damaged = 0;
    for (std::size_t row = 0; row < rows->size(); ++row) {
        if (auto record = record_of(*rows, row)) {
            records.push_back(std::move(*record));
        } else {
            ++damaged;
        }
    }
    m_damaged = damaged;
    return records;
}

std::size_t PgJobQueue::damaged_records() const {
    std::lock_guard lock(m_mutex);
    return m_damaged;
}

Expected<std::string> PgJobQueue::report_text(const JobRecord& record) const {
    std::lock_guard lock(m_mutex);
    auto found = m_db.exec_reconnecting("SELECT report FROM coldscan_jobs WHERE id = $1", {record.id});
    if (!found) {
        return std::unexpected(found.error());
    }
    if (found->empty() || !found->rows().front().front()) {
        return make_error(Errc::not_found, "job " + record.id + " has no report");
    }
    return *found->rows().front().front();
}

Expected<bool> PgJobQueue::record_alert(std::string_view job, std::string_view alert_id,
                                        std::string_view alert_json) {
    const auto fence = fence_of(job);
    if (!fence) {
        return std::unexpected(conflict(job, "record its alert"));
    }
    std::lock_guard lock(m_mutex);
    bool recorded = false;
    auto done = m_db.transaction([&]() -> Expected<void> {
        auto held =
            m_db.exec("SELECT 1 FROM coldscan_jobs WHERE id = $1 AND node = $2 AND fence = $3::bigint AND "
                      "status IN ('running', 'paused') FOR UPDATE",
                      {std::string(job), m_options.node, std::to_string(*fence)});
        if (!held) {
            return std::unexpected(held.error());
        }
        if (held->empty()) {
            return std::unexpected(conflict(job, "record its alert"));
        }
        auto inserted =
            m_db.exec("INSERT INTO coldscan_alerts (alert_id, job, fence, node, alert) VALUES ($1, $2, "
                      "$3::bigint, $4, $5) ON CONFLICT (alert_id) DO NOTHING",
                      {std::string(alert_id), std::string(job), std::to_string(*fence), m_options.node,
                       std::string(alert_json)});
        if (!inserted) {
            return std::unexpected(inserted.error());
        }
        recorded = inserted->affected() == 1;
        return {};
    });
    if (!done) {
        return std::unexpected(done.error());
    }
    return recorded;
}

Expected<scheduler::Adoption> PgJobQueue::adoptable(const std::vector<std::string>& datastores) {
    std::lock_guard lock(m_mutex);
    auto rescued = m_db.exec_reconnecting(
        std::string(k_take_back) +
            "status IN ('running', 'paused') AND lease_until < clock_timestamp() RETURNING id, status",
        {std::to_string(scheduler::unix_seconds()), std::to_string(m_options.max_attempts)});
    if (!rescued) {
        return std::unexpected(rescued.error());
    }
    log_taken_back(*rescued, "whose node's lease ran out");
    return m_feed->read(m_db, datastores);
}

void PgJobQueue::set_lease_listener(std::function<void(const std::string& job)> listener) {
    std::lock_guard calls(
        m_listener_mutex); // waits for a call under way: the old listener may be freed after
    m_listener = std::move(listener);
}

std::optional<std::int64_t> PgJobQueue::fence_of(std::string_view id) const {
    std::lock_guard lock(m_lease_mutex);
    const auto found = m_leases.find(id);
    return found == m_leases.end() ? std::nullopt : std::optional(found->second.fence);
}

void PgJobQueue::hold(const std::string& id, std::int64_t fence, SteadyClock::time_point sent) {
    const auto margin = std::max<SteadyClock::duration>(std::chrono::seconds{1}, m_options.lease / 4);
    std::lock_guard lock(m_lease_mutex);
    m_leases[id] = Lease{fence, sent + m_options.lease - margin};
}

void PgJobQueue::release(std::string_view id) {
    std::lock_guard lock(m_lease_mutex);
    if (const auto found = m_leases.find(id); found != m_leases.end()) {
        m_leases.erase(found);
    }
}

void PgJobQueue::renew_leases() {
    std::map<std::string, std::int64_t> held; // fence by job
    {
        std::lock_guard lock(m_lease_mutex);
        for (const auto& [id, lease] : m_leases) {
            held[id] = lease.fence;
        }
    }
    if (held.empty()) {
        return;
    }
    std::vector<std::string> fences;
    for (const auto& [id, fence] : held) {
        fences.push_back(std::to_string(fence));
    }
    const auto sent = SteadyClock::now();
    Expected<PgResult> renewed = PgResult{};
    Expected<scheduler::FleetLoad> load = make_error(Errc::io, "not read");
    {
        std::lock_guard lock(m_keeper_db_mutex);
        const PgParams params{m_options.node, std::to_string(m_options.lease.count()), json_array(fences)};
        const std::string sql =
            "UPDATE coldscan_jobs SET lease_until = clock_timestamp() + $2::integer * interval "
            "'1 second' WHERE node = $1 AND status IN ('running', 'paused') AND fence IN "
            "(SELECT jsonb_array_elements_text($3::jsonb)::bigint) RETURNING id, fence, preempt AND status = "
            "'running' AS preempt";
        renewed = m_keeper_db.exec_reconnecting(sql, params);
        if (renewed) {
            load = load_locked();
        }
    }
    std::vector<std::string> lost;
    std::vector<std::string> preempted;
    {
        std::lock_guard lock(m_lease_mutex);
        std::map<std::string, std::int64_t> kept;
        if (renewed) {
            for (std::size_t row = 0; row < renewed->size(); ++row) {
                kept[renewed->text(row, "id")] = std::stoll(renewed->text(row, "fence"));
                if (renewed->text(row, "preempt") == "t") {
                    preempted.push_back(renewed->text(row, "id"));
                }
            }
        }
        const auto margin = std::max<SteadyClock::duration>(std::chrono::seconds{1}, m_options.lease / 4);
        for (const auto& [id, fence] : held) {
            const auto lease = m_leases.find(id);
            if (!renewed || lease == m_leases.end() || lease->second.fence != fence) {
                continue; // the watchdog judges; or finished (or claimed again) while we renewed
            }
            if (const auto ok = kept.find(id); ok != kept.end() && ok->second == fence) {
                lease->second.deadline = sent + m_options.lease - margin;
            } else {
                lost.push_back(id); // cancelled, or taken over after it ran out
                m_leases.erase(lease);
            }
        }
    }
    if (!renewed) {
        spdlog::warn("fleet: cannot renew this node's leases: {}", renewed.error().message);
    }
    tell_lost(lost);
    std::lock_guard calls(m_listener_mutex);
    for (const auto& id : preempted) {
        if (m_preempt_listener) {
            spdlog::info("job {}: a gate scan elsewhere needs its slot; it is queued again", id);
            m_preempt_listener(id);
        }
    }
    if (load && m_load_listener) {
        m_load_listener(*load);
    }
}

void PgJobQueue::set_preempt_listener(std::function<void(const std::string& job)> listener) {
    std::lock_guard calls(m_listener_mutex);
    m_preempt_listener = std::move(listener);
}

Expected<scheduler::FleetLoad> PgJobQueue::load_locked() {
    auto rows =
        m_keeper_db.exec("WITH live AS (SELECT host, datastore, node FROM coldscan_jobs WHERE status = "
                         "'running' AND lease_until > "
                         "clock_timestamp()), mine AS (SELECT host, datastore FROM live WHERE node = $1) "
                         "SELECT 'host' AS kind, host AS name, count(*) FILTER (WHERE node = $1) AS mine, "
                         "count(*) AS total FROM "
                         "live WHERE host IN (SELECT host FROM mine) GROUP BY host "
                         "UNION ALL SELECT 'datastore', datastore, count(*) FILTER (WHERE node = $1), "
                         "count(*) FROM live WHERE "
                         "datastore IN (SELECT datastore FROM mine) GROUP BY datastore",
                         {m_options.node});
    if (!rows) {
        return std::unexpected(rows.error());
    }
    scheduler::FleetLoad load;
    for (std::size_t row = 0; row < rows->size(); ++row) {
        scheduler::FleetLoad::Entry entry{rows->text(row, "name"),
                                          static_cast<unsigned>(std::stoul(rows->text(row, "mine"))),
                                          static_cast<unsigned>(std::stoul(rows->text(row, "total")))};
        (rows->text(row, "kind") == "host" ? load.hosts : load.datastores).push_back(std::move(entry));
    }
    return load;
}

void PgJobQueue::set_load_listener(std::function<void(const scheduler::FleetLoad& load)> listener) {
    std::lock_guard calls(m_listener_mutex);
    m_load_listener = std::move(listener);
}

void PgJobQueue::expire_leases() {
    std::vector<std::string> lost;
    {
        std::lock_guard lock(m_lease_mutex);
        const auto now = SteadyClock::now();
        std::erase_if(m_leases, [&](const auto& entry) {
            if (now < entry.second.deadline) {
                return false;
            }
            lost.push_back(entry.first);
            return true;
        });
    }
    tell_lost(lost);
}

void PgJobQueue::tell_lost(const std::vector<std::string>& lost) {
    std::lock_guard calls(m_listener_mutex);
    for (const auto& id : lost) {
        spdlog::warn("job {}: this node's lease on it is lost; its scan stops and writes nothing", id);
        if (m_listener) {
            m_listener(id);
        }
    }
}

void PgJobQueue::keeper_loop(const std::stop_token& stop) {
    const auto period = std::max<std::chrono::milliseconds>(std::chrono::seconds{1}, m_options.lease / 3);
    std::mutex idle;
    std::unique_lock lock(idle);
    while (!stop.stop_requested()) {
        lock.unlock();
        renew_leases();
        lock.lock();
        m_keeper_cv.wait_for(lock, stop, period, [] { return false; });
    }
}

void PgJobQueue::watchdog_loop(const std::stop_token& stop) {
    std::mutex idle;
    std::unique_lock lock(idle);
    while (!stop.stop_requested()) {
        lock.unlock();
        expire_leases();
        lock.lock();
        m_keeper_cv.wait_for(lock, stop, std::chrono::milliseconds{250}, [] { return false; });
    }
}

} // namespace coldscan::fleet
