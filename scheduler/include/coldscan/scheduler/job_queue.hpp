// The persistent job queue of the scan service: every job the API accepted, in the store's `jobs` key space
// (its own RocksDB column family, next to the verdict cache).
//
// Why it exists beside Scheduler: the scheduler core decides what runs when and forgets everything at exit;
// this queue is what survives one. A job is on disk (the write-ahead log synced) before submit() returns, so
// the API never acknowledges a job a crash can lose. After a restart, recover() puts every job that was
// running or paused back in the queue; the verdict cache makes the rerun cheap (files already verdicted under
// the same cache key are not scanned again).
//
// Idempotence: a job's id is derived from what it scans and with what (job_id: the target's identity, the
// snapshot, the signature set), so submitting the same scan twice finds the first job instead of scanning,
// and alerting, twice. A new signature set is a new job.
//
// Lifecycle (every other move is Errc::invalid_argument):
//   queued  -> running (mark_running) | cancelled (cancel)
//   running -> paused (mark_paused) | succeeded (mark_succeeded) | cancelled
//            | queued / dead_letter / failed (mark_failed: retried until max_attempts failures, then
//              dead_letter; Retry::never fails it at once)
//   paused  -> running (resumed) | cancelled | queued / dead_letter / failed (mark_failed)
//   running, paused -> queued (requeue: the service stopped it at shutdown; attempts unchanged)
//   succeeded, failed, cancelled, dead_letter: finished; submit() of the same job queues a failed,
//   cancelled or dead-lettered one again (attempts back to 0), and answers a succeeded one as it is.
//
// Records: key = schema version, kind 'J', the 26-character id (fixed size, static_assert); value = a JSON
// object with its own version. A record that does not decode, or has another schema, is skipped and counted
// (damaged_records()), never fatal, and never hides the others.
// Thread rule: shared; every member is thread-safe (one mutex makes each read-modify-write atomic). One
// JobQueue per store: two over the same store could interleave their updates.
#pragma once

#include "coldscan/common/error.hpp"
#include "coldscan/scanner/kv_store.hpp"
#include "coldscan/scheduler/job_record.hpp"
#include "coldscan/scheduler/job_store.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace coldscan::scheduler {

using JobClock = std::function<std::int64_t()>; // unix seconds

struct JobQueueOptions {
    unsigned max_attempts = 3; // failures before dead_letter; 0 counts as 1
    JobClock clock = unix_seconds;
};

class JobQueue final : public JobStore {
public:
    explicit JobQueue(scanner::KvStore& store, JobQueueOptions options = {});

    // Stores a queued job, synced, unless the same job (same id) is known: then returns it (created=false);
    // a failed, cancelled or dead-lettered one, or a success that rescan calls stale, is queued again with
    // attempts 0 and the new request's priority, host and requester. A damaged record under that id is
    // replaced. Errc::invalid_argument: empty target, target identity or signature set; Errc::internal: the
    // stored job under that id is another (a hash collision); io/corrupt: the store failed.
    [[nodiscard]] Expected<SubmitResult> submit(JobRequest request, std::string_view target_identity,
                                                std::string_view signature_set, Rescan rescan = {});
    // The slots say nothing to a store of one node: its own scheduler holds every job it schedules.
    [[nodiscard]] Expected<SubmitResult> submit(JobRequest request, std::string_view target_identity,
                                                std::string_view signature_set, Rescan rescan,
                                                const JobSlots& slots) override;

    // Each returns the updated record, synced. Errc::not_found: unknown id; Errc::invalid_argument: the move
    // is not in the lifecycle above; Errc::corrupt: the record does not decode; io: the store failed.
    [[nodiscard]] Expected<JobRecord> mark_running(std::string_view id); // from queued or paused
    // mark_running: the scheduler of the one node has checked the caps. A job that is not queued or paused
    // is ClaimOutcome::taken.
    [[nodiscard]] Expected<Claim> claim(std::string_view id, const JobSlots& slots) override;
    [[nodiscard]] Expected<JobRecord> mark_paused(std::string_view id) override; // from running
    [[nodiscard]] Expected<JobRecord> mark_succeeded(std::string_view id, std::string report_path) override;
    // attempts + 1 and last_error = error; queued again, dead_letter or failed (see Retry).
    [[nodiscard]] Expected<JobRecord> mark_failed(std::string_view id, std::string error,
                                                  Retry retry) override;
    [[nodiscard]] Expected<JobRecord> mark_failed(std::string_view id, std::string error) {
        return mark_failed(id, std::move(error), Retry::allowed);
    }
    // From running or paused back to queued, attempts unchanged (the service stopped it: shutdown).
    [[nodiscard]] Expected<JobRecord> requeue(std::string_view id) override;
    // From queued, running or paused; a cancelled job stays cancelled (no error: a repeated API call).
    [[nodiscard]] Expected<JobRecord> cancel(std::string_view id) override;

    // At start-up: every running or paused job goes back to queued (attempts unchanged: a crash is not the
    // job's fault), synced; returns every unfinished job, oldest submission first.
    [[nodiscard]] Expected<std::vector<JobRecord>> recover() override;

    // std::nullopt: no such job. Errc::corrupt: its record does not decode; io: the store failed.
    [[nodiscard]] Expected<std::optional<JobRecord>> get(std::string_view id) const override;
    // Every job (or those with one status), oldest submission first; damaged records are skipped.
    [[nodiscard]] Expected<std::vector<JobRecord>> list(std::optional<JobStatus> status) const override;
    [[nodiscard]] Expected<std::vector<JobRecord>> list() const { return list(std::nullopt); }
    // Records the last list() or recover() skipped: undecodable, another schema, or a key of another shape.
    [[nodiscard]] std::size_t damaged_records() const override;

    [[nodiscard]] unsigned max_attempts() const noexcept override { return m_max_attempts; }

    // The file at report_path.
    [[nodiscard]] Expected<std::string> report_text(const JobRecord& record) const override;
    // Always true: one node's alerts.jsonl is the record, and the service keeps its alert ids.
    [[nodiscard]] Expected<bool> record_alert(std::string_view job, std::string_view alert_id,
                                              std::string_view alert_json) override;
    [[nodiscard]] bool shared() const noexcept override { return false; }
    [[nodiscard]] Expected<Adoption> adoptable(const std::vector<std::string>& datastores) override;
    void set_lease_listener(std::function<void(const std::string& job)> listener) override;
    void set_load_listener(std::function<void(const FleetLoad& load)> /*listener*/) override {}
    void set_preempt_listener(std::function<void(const std::string& job)> /*listener*/) override {}

private:
    Expected<JobRecord> load_locked(std::string_view id) const;
    Expected<void> store_locked(const JobRecord& record, std::string_view what);
    Expected<std::vector<JobRecord>> scan_locked() const;
    Expected<JobRecord> transition(std::string_view id, std::string_view what,
                                   const std::function<Expected<void>(JobRecord&)>& change);

    scanner::KvStore& m_store;
    unsigned m_max_attempts;
    JobClock m_clock;
    mutable std::mutex m_mutex;
    mutable std::size_t m_damaged = 0;
};

} // namespace coldscan::scheduler
