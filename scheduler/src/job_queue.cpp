// Record layout of the job queue. Keys are fixed-size binary structs (schema version first, then a kind byte,
// then the id), guarded by static_asserts, so a later layout can live beside this one and be told apart;
// values are JSON objects with their own version, so fields can be added. Strings in a record come from
// users and from scan errors (which may quote guest paths): the JSON is dumped with invalid UTF-8 replaced
// rather than throwing. A record that does not decode is skipped and counted, never a crash.
#include "coldscan/scheduler/job_queue.hpp"

#include "coldscan/common/log.hpp"
#include "coldscan/common/sha256.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <type_traits>
#include <utility>

namespace coldscan::scheduler {
namespace {

using nlohmann::json;
using scanner::KeySpace;

constexpr std::uint8_t k_job_schema_version = 1;
constexpr char k_job_kind = 'J';
constexpr int k_job_record_version = 1;
constexpr std::string_view k_id_prefix = "j-";
constexpr std::size_t k_id_hex_digits = 24;
constexpr std::size_t k_id_size = 26;
static_assert(k_id_prefix.size() + k_id_hex_digits == k_id_size);

struct JobKey {
    std::uint8_t schema = k_job_schema_version;
    char kind = k_job_kind;
    std::array<char, k_id_size> id{};
};
static_assert(sizeof(JobKey) == 28 && std::is_trivially_copyable_v<JobKey>);

template <typename T> std::string_view bytes_of(const T& value) {
    return {reinterpret_cast<const char*>(&value), sizeof(T)};
}

bool is_job_id(std::string_view id) {
    if (id.size() != k_id_size || !id.starts_with(k_id_prefix)) {
        return false;
    }
    return std::all_of(id.begin() + static_cast<std::ptrdiff_t>(k_id_prefix.size()), id.end(),
                       [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// nullopt for a string that cannot be an id (no record can have it).
std::optional<JobKey> key_for(std::string_view id) {
    if (!is_job_id(id)) {
        return std::nullopt;
    }
    JobKey key;
    std::memcpy(key.id.data(), id.data(), k_id_size);
    return key;
}

// The id a stored key holds; nullopt for a key of another shape or schema.
std::optional<std::string> id_of_key(std::string_view key) {
    if (key.size() != sizeof(JobKey)) {
        return std::nullopt;
    }
    JobKey decoded;
    std::memcpy(&decoded, key.data(), sizeof(decoded));
    if (decoded.schema != k_job_schema_version || decoded.kind != k_job_kind) {
        return std::nullopt;
    }
    std::string id(decoded.id.data(), decoded.id.size());
    if (!is_job_id(id)) {
        return std::nullopt;
    }
    return id;
}

void add_field(Sha256& hasher, std::string_view text) {
    std::array<std::byte, 8> length{};
    for (std::size_t i = 0; i < length.size(); ++i) {
        length[i] = static_cast<std::byte>((text.size() >> (8 * i)) & 0xff);
    }
    hasher.update(std::span<const std::byte>(length));
    hasher.update(text);
}

json encode_disks(const std::vector<JobDisk>& disks) {
    json out = json::array();
    for (const auto& disk : disks) {
        out.push_back(json{{"path", disk.path}, {"format", disk.format}});
    }
    return out;
}

std::string encode_record(const JobRecord& record) {
    const json value{
        {"v", k_job_record_version},
        {"id", record.id},
        {"target", record.request.target},
        {"snapshot", record.request.snapshot},
        {"priority", to_string(record.request.priority)},
        {"requested_by", record.request.requested_by},
        {"host", record.request.host},
        {"format", record.request.format},
        {"disks", encode_disks(record.request.disks)},
        {"target_identity", record.target_identity},
        {"signature_set", record.signature_set},
        {"status", to_string(record.status)},
        {"attempts", record.attempts},
        {"last_error", record.last_error},
        {"submitted_at", record.submitted_at},
        {"updated_at", record.updated_at},
        {"report_path", record.report_path ? json(*record.report_path) : json(nullptr)},
    };
    return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

// nullopt when the value does not parse, has another version, or disagrees with its key.
std::optional<JobRecord> decode_record(std::string_view id, std::string_view value) {
    try {
        const json j = json::parse(value);
        if (j.at("v").get<int>() != k_job_record_version) {
            return std::nullopt;
        }
        JobRecord record;
        record.id = j.at("id").get<std::string>();
        if (record.id != id) {
            return std::nullopt;
        }
        record.request.target = j.at("target").get<std::string>();
        record.request.snapshot = j.at("snapshot").get<std::string>();
        const auto priority = parse_priority(j.at("priority").get<std::string>());
        const auto status = parse_job_status(j.at("status").get<std::string>());
        if (!priority || !status) {
            return std::nullopt;
        }
        record.request.priority = *priority;
        record.status = *status;
        record.request.requested_by = j.at("requested_by").get<std::string>();
        record.request.host = j.value("host", std::string());       // absent in records of the first release
        record.request.format = j.value("format", std::string());   // absent in records before issue 7
        if (const auto disks = j.find("disks"); disks != j.end()) { // absent in records before issue 17
            for (const auto& disk : disks->get_ref<const json::array_t&>()) {
                record.request.disks.push_back(
                    JobDisk{disk.at("path").get<std::string>(), disk.at("format").get<std::string>()});
            }
        }
        record.target_identity = j.at("target_identity").get<std::string>();
        record.signature_set = j.at("signature_set").get<std::string>();
        const auto& attempts = j.at("attempts");
        if (!attempts.is_number_unsigned() ||
            attempts.get<std::uint64_t>() > std::numeric_limits<unsigned>::max()) {
            return std::nullopt;
        }
        record.attempts = attempts.get<unsigned>();
        record.last_error = j.at("last_error").get<std::string>();
        record.submitted_at = j.at("submitted_at").get<std::int64_t>();
        record.updated_at = j.at("updated_at").get<std::int64_t>();
        if (const auto& path = j.at("report_path"); !path.is_null()) {
            record.report_path = path.get<std::string>();
        }
        return record;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

bool oldest_first(const JobRecord& a, const JobRecord& b) {
    return std::tie(a.submitted_at, a.id) < std::tie(b.submitted_at, b.id);
}

std::unexpected<Error> invalid_move(const JobRecord& record, std::string_view what) {
    return make_error(Errc::invalid_argument, "job " + record.id + ": cannot " + std::string(what) +
                                                  " a job that is " + std::string(to_string(record.status)));
}

} // namespace

std::string_view to_string(JobStatus status) {
    switch (status) {
    case JobStatus::queued:
        return "queued";
    case JobStatus::running:
        return "running";
    case JobStatus::paused:
        return "paused";
    case JobStatus::succeeded:
        return "succeeded";
    case JobStatus::failed:
        return "failed";
    case JobStatus::cancelled:
        return "cancelled";
    case JobStatus::dead_letter:
        return "dead_letter";
    }
    return "unknown";
}

std::optional<JobStatus> parse_job_status(std::string_view text) {
    for (const JobStatus status :
         {JobStatus::queued, JobStatus::running, JobStatus::paused, JobStatus::succeeded, JobStatus::failed,
          JobStatus::cancelled, JobStatus::dead_letter}) {
        if (text == to_string(status)) {
            return status;
        }
    }
    return std::nullopt;
}

bool is_finished(JobStatus status) {
    switch (status) {
    case JobStatus::queued:
    case JobStatus::running:
    case JobStatus::paused:
        return false;
    case JobStatus::succeeded:
    case JobStatus::failed:
    case JobStatus::cancelled:
    case JobStatus::dead_letter:
        return true;
    }
    return true;
}

std::string job_id(std::string_view target_identity, std::string_view snapshot,
                   std::string_view signature_set) {
    Sha256 hasher;
    add_field(hasher, "coldscan job v1");
    add_field(hasher, target_identity);
    add_field(hasher, snapshot);
    add_field(hasher, signature_set);
    const auto digest = hasher.finish();
    return std::string(k_id_prefix) + to_hex(digest).substr(0, k_id_hex_digits);
}

std::int64_t unix_seconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

JobQueue::JobQueue(scanner::KvStore& store, JobQueueOptions options)
    : m_store(store), m_max_attempts(std::max(1U, options.max_attempts)),
      m_clock(options.clock ? std::move(options.clock) : JobClock(unix_seconds)) {}

Expected<JobRecord> JobQueue::load_locked(std::string_view id) const {
    const auto key = key_for(id);
    if (!key) {
        return make_error(Errc::not_found, "job " + std::string(id) + ": no such job");
    }
    auto value = m_store.get(KeySpace::jobs, bytes_of(*key));
    if (!value) {
        return std::unexpected(value.error());
    }
    if (!value->has_value()) {
        return make_error(Errc::not_found, "job " + std::string(id) + ": no such job");
    }
    auto record = decode_record(id, **value);
    if (!record) {
        return make_error(Errc::corrupt, "job " + std::string(id) + ": the stored record does not decode");
    }
    return std::move(*record);
}

Expected<void> JobQueue::store_locked(const JobRecord& record, std::string_view what) {
    const auto key = key_for(record.id);
    if (!key) {
        return make_error(Errc::internal, "job " + record.id + ": not a job id");
    }
    if (auto put = m_store.put(KeySpace::jobs, bytes_of(*key), encode_record(record)); !put) {
        return std::unexpected(Error{put.error().code, "job " + record.id + ": cannot " + std::string(what) +
                                                           ": " + put.error().message});
    }
    if (auto synced = m_store.sync(); !synced) {
        return std::unexpected(
            Error{synced.error().code,
                  "job " + record.id + ": cannot " + std::string(what) + ": " + synced.error().message});
    }
    return {};
}

Expected<std::vector<JobRecord>> JobQueue::scan_locked() const {
    // Copied out first: the visitor must not call the store (the memory store holds its lock meanwhile).
    std::vector<std::pair<std::string, std::string>> pairs;
    auto visited = m_store.for_each(KeySpace::jobs, [&](std::string_view key, std::string_view value) {
        pairs.emplace_back(key, value);
        return true;
    });
    if (!visited) {
        return std::unexpected(visited.error());
    }
    std::vector<JobRecord> records;
    records.reserve(pairs.size());
    std::size_t damaged = 0;
    for (const auto& [key, value] : pairs) {
        const auto id = id_of_key(key);
        auto record = id ? decode_record(*id, value) : std::nullopt;
        if (!record) {
            ++damaged;
            continue;
        }
        records.push_back(std::move(*record));
    }
    if (damaged > 0) {
        spdlog::debug("job queue: skipped {} damaged record(s)", damaged);
    }
    m_damaged = damaged;
    std::sort(records.begin(), records.end(), oldest_first);
    return records;
}

Expected<SubmitResult> JobQueue::submit(JobRequest request, std::string_view target_identity,
                                        std::string_view signature_set, Rescan rescan) {
    if (request.target.empty() || target_identity.empty() || signature_set.empty()) {
        return make_error(Errc::invalid_argument,
                          "job: the target, its identity and the signature set must not be empty");
    }
    const std::string id = job_id(target_identity, request.snapshot, signature_set);
    const std::int64_t now = m_clock();
    std::lock_guard lock(m_mutex);

    const auto key = key_for(id);
    auto stored_value = m_store.get(KeySpace::jobs, bytes_of(*key));
    if (!stored_value) {
        return std::unexpected(stored_value.error());
    }
    auto existing = stored_value->has_value() ? decode_record(id, **stored_value) : std::nullopt;
    if (stored_value->has_value() && !existing) {
        spdlog::warn("job {}: the stored record does not decode; the new submission replaces it", id);
    }
    if (existing) {
        JobRecord& record = *existing;
        if (record.target_identity != target_identity || record.signature_set != signature_set ||
            record.request.snapshot != request.snapshot) {
            return make_error(Errc::internal, "job " + id + ": the id is taken by another job");
        }
        const bool stale = record.status == JobStatus::succeeded && rescan.succeeded_before.has_value() &&
                           record.updated_at <= *rescan.succeeded_before;
        if (!is_finished(record.status) || (record.status == JobStatus::succeeded && !stale)) {
            // Synced again all the same: the call that stored it may have failed before its sync.
            if (auto synced = m_store.sync(); !synced) {
                return std::unexpected(synced.error());
            }
            return SubmitResult{std::move(record), false};
        }
        // Failed, cancelled, dead-lettered or a stale success: asked for again, so scanned again, from a
        // clean slate.
        record.request = std::move(request);
        record.status = JobStatus::queued;
        record.attempts = 0;
        record.report_path.reset();
        record.submitted_at = now;
        record.updated_at = now;
        if (auto stored = store_locked(record, "queue it again"); !stored) {
            return std::unexpected(stored.error());
        }
        return SubmitResult{std::move(record), false};
    }
    JobRecord record;
    record.id = id;
    record.request = std::move(request);
    record.target_identity = std::string(target_identity);
    record.signature_set = std::string(signature_set);
    record.status = JobStatus::queued;
    record.submitted_at = now;
    record.updated_at = now;
    if (auto stored = store_locked(record, "store it"); !stored) {
        return std::unexpected(stored.error());
    }
    return SubmitResult{std::move(record), true};
}

Expected<JobRecord> JobQueue::transition(std::string_view id, std::string_view what,
                                         const std::function<Expected<void>(JobRecord&)>& change) {
    std::lock_guard lock(m_mutex);
    auto record = load_locked(id);
    if (!record) {
        return std::unexpected(record.error());
    }
    const JobStatus before = record->status;
    if (auto changed = change(*record); !changed) {
        return std::unexpected(changed.error());
    }
    if (record->status == before && before == JobStatus::cancelled) {
        return record; // cancel() of a cancelled job: nothing to write
    }
    record->updated_at = m_clock();
    if (auto stored = store_locked(*record, what); !stored) {
        return std::unexpected(stored.error());
    }
    return record;
}

Expected<JobRecord> JobQueue::mark_running(std::string_view id) {
    return transition(id, "start", [](JobRecord& record) -> Expected<void> {
        if (record.status != JobStatus::queued && record.status != JobStatus::paused) {
            return invalid_move(record, "start");
        }
        record.status = JobStatus::running;
        return {};
    });
}

Expected<Claim> JobQueue::claim(std::string_view id, const JobSlots& /*slots*/) {
    auto running = mark_running(id);
    if (running) {
        return Claim{ClaimOutcome::granted, std::move(*running)};
    }
    if (running.error().code == Errc::invalid_argument) {
        return Claim{ClaimOutcome::taken, std::nullopt};
    }
    return std::unexpected(running.error());
}

Expected<JobRecord> JobQueue::mark_paused(std::string_view id) {
    return transition(id, "pause", [](JobRecord& record) -> Expected<void> {
        if (record.status != JobStatus::running) {
            return invalid_move(record, "pause");
        }
        record.status = JobStatus::paused;
        return {};
    });
}

Expected<JobRecord> JobQueue::mark_succeeded(std::string_view id, std::string report_path) {
    return transition(id, "finish", [&](JobRecord& record) -> Expected<void> {
        if (record.status != JobStatus::running) {
            return invalid_move(record, "finish");
        }
        record.status = JobStatus::succeeded;
        record.report_path = std::move(report_path);
        return {};
    });
}

Expected<JobRecord> JobQueue::mark_failed(std::string_view id, std::string error, Retry retry) {
    return transition(id, "fail", [&](JobRecord& record) -> Expected<void> {
        if (record.status != JobStatus::running && record.status != JobStatus::paused) {
            return invalid_move(record, "fail");
        }
        ++record.attempts;
        record.last_error = std::move(error);
        if (retry == Retry::never) {
            record.status = JobStatus::failed;
        } else if (record.attempts >= m_max_attempts) {
            record.status = JobStatus::dead_letter;
        } else {
            record.status = JobStatus::queued;
        }
        return {};
    });
}

Expected<JobRecord> JobQueue::requeue(std::string_view id) {
    return transition(id, "queue it again", [](JobRecord& record) -> Expected<void> {
        if (record.status != JobStatus::running && record.status != JobStatus::paused) {
            return invalid_move(record, "queue again");
        }
        record.status = JobStatus::queued; // attempts unchanged: stopping it was not the job's fault
        return {};
    });
}

Expected<JobRecord> JobQueue::cancel(std::string_view id) {
    return transition(id, "cancel", [](JobRecord& record) -> Expected<void> {
        if (record.status == JobStatus::cancelled) {
            return {};
        }
        if (is_finished(record.status)) {
            return invalid_move(record, "cancel");
        }
        record.status = JobStatus::cancelled;
        return {};
    });
}

Expected<std::vector<JobRecord>> JobQueue::recover() {
    std::lock_guard lock(m_mutex);
    auto records = scan_locked();
    if (!records) {
        return std::unexpected(records.error());
    }
    const std::int64_t now = m_clock();
    bool changed = false;
    std::vector<JobRecord> unfinished;
    for (auto& record : *records) {
        if (is_finished(record.status)) {
            continue;
        }
        if (record.status == JobStatus::running || record.status == JobStatus::paused) {
            record.status = JobStatus::queued; // attempts unchanged: the crash was not the job's fault
            record.updated_at = now;
            const auto key = key_for(record.id);
            if (auto put = m_store.put(KeySpace::jobs, bytes_of(*key), encode_record(record)); !put) {
                return std::unexpected(put.error());
            }
            changed = true;
        }
        unfinished.push_back(std::move(record));
    }
    if (changed) {
        if (auto synced = m_store.sync(); !synced) {
            return std::unexpected(synced.error());
        }
    }
    if (m_damaged > 0) {
        spdlog::warn("job queue: {} damaged record(s) skipped", m_damaged);
    }
    return unfinished;
}

Expected<std::optional<JobRecord>> JobQueue::get(std::string_view id) const {
    std::lock_guard lock(m_mutex);
    auto record = load_locked(id);
    if (!record) {
        if (record.error().code == Errc::not_found) {
            return std::optional<JobRecord>{};
        }
        return std::unexpected(record.error());
    }
    return std::optional<JobRecord>(std::move(*record));
}

Expected<std::vector<JobRecord>> JobQueue::list(std::optional<JobStatus> status) const {
    std::lock_guard lock(m_mutex);
    auto records = scan_locked();
    if (!records || !status) {
        return records;
    }
    std::erase_if(*records, [&](const JobRecord& record) { return record.status != *status; });
    return records;
}

Expected<SubmitResult> JobQueue::submit(JobRequest request, std::string_view target_identity,
                                        std::string_view signature_set, Rescan rescan,
                                        const JobSlots& /*slots*/) {
    return submit(std::move(request), target_identity, signature_set, rescan);
}

Expected<std::string> JobQueue::report_text(const JobRecord& record) const {
    if (!record.report_path) {
        return make_error(Errc::not_found, "job " + record.id + " has no report");
    }
    std::ifstream in(*record.report_path, std::ios::binary);
    if (!in) {
        return make_error(Errc::not_found,
                          "job " + record.id + ": its report " + *record.report_path + " is missing");
    }
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

Expected<bool> JobQueue::record_alert(std::string_view /*job*/, std::string_view /*alert_id*/,
                                      std::string_view /*alert_json*/) {
    return true;
}

Expected<Adoption> JobQueue::adoptable(const std::vector<std::string>& /*datastores*/) {
    return Adoption{};
}

void JobQueue::set_lease_listener(std::function<void(const std::string& job)> /*listener*/) {
    // No leases: one node's jobs are never taken over.
}

std::size_t JobQueue::damaged_records() const {
    std::lock_guard lock(m_mutex);
    return m_damaged;
}

} // namespace coldscan::scheduler
