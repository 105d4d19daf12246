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
#include "coldscan/scheduler/job.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace coldscan::scheduler {

enum class JobStatus {
    queued,
    running,
    paused,
    succeeded,
    failed, // a failure retrying cannot fix (mark_failed with Retry::never)
    cancelled,
    dead_letter, // failed max_attempts times; a new submission queues it again
};

[[nodiscard]] std::string_view to_string(JobStatus status);
// The names to_string gives; nullopt otherwise.
[[nodiscard]] std::optional<JobStatus> parse_job_status(std::string_view text);
// succeeded, failed, cancelled, dead_letter: nothing more happens to the job unless it is submitted again.
[[nodiscard]] bool is_finished(JobStatus status);

// One disk of a VM job, in the order the VM sees its disks.
struct JobDisk {
    std::string path;   // absolute, inside a datastore root
    std::string format; // empty: the safety gate detects it
    bool operator==(const JobDisk&) const = default;
};

struct JobRequest {
    std::string target;   // what the user named: an image path, an NBD URI, a VM
    std::string snapshot; // empty: the target as it is
    Priority priority = Priority::nightly;
    std::string requested_by; // optional: who asked (API token name, user)
    std::string host; // optional: the inventory host whose budget the scan uses (else the service's pick)
    // optional: the image's format (--format, the API's "format", libvirt's <driver type=...>); empty: the
    // safety gate detects it. Not hashed here: the caller's target identity says how the image is read.
    std::string format;
    // A VM named by its disks (the gate's --domain-xml, the API's "vm"): target is "vm:NAME" and these are
    // what is scanned, as one target. Empty for an image path and for libvirt:DOMAIN (libvirt says).
    std::vector<JobDisk> disks;
};

struct JobRecord {
    std::string id;
    JobRequest request;
    std::string target_identity; // as submitted: the daemon may compare it with the target's identity now
    std::string signature_set;   // the fingerprint the scan must use
    JobStatus status = JobStatus::queued;
    unsigned attempts = 0;                  // failed attempts so far (a crash is not one)
    std::string last_error;                 // the last failure's message; kept when the job is queued again
    std::int64_t submitted_at = 0;          // unix seconds; a new submission of a finished job sets it again
    std::int64_t updated_at = 0;            // unix seconds of the last change
    std::optional<std::string> report_path; // once succeeded
};

struct SubmitResult {
    JobRecord record;
    bool created = false; // false: the id was known (the job is returned, or queued again if it had ended)
};

// When a known job that succeeded counts as stale and is scanned again (the gate's --max-age).
struct Rescan {
    // Unix seconds: a success last updated at or before it is stale (whole seconds: a max age of 0 must
    // rescan even a verdict of this very second).
    std::optional<std::int64_t> succeeded_before;
};

enum class Retry {
    allowed, // queued again while attempts < max_attempts, then dead_letter
    never,   // failed at once (an image the safety gate refused does not get better)
};

// "j-" + 24 hex digits of SHA-256 over a schema tag and the three fields (length-prefixed, so no two
// triples collide by shifting bytes). target_identity comes from the caller (for an image: its path plus the
// host file's identity, and how its top layer is read); it is hashed, never parsed.
[[nodiscard]] std::string job_id(std::string_view target_identity, std::string_view snapshot,
                                 std::string_view signature_set);

using JobClock = std::function<std::int64_t()>; // unix seconds
[[nodiscard]] std::int64_t unix_seconds();

struct JobQueueOptions {
    unsigned max_attempts = 3; // failures before dead_letter; 0 counts as 1
    JobClock clock = unix_seconds;
};

class JobQueue {
public:
    explicit JobQueue(scanner::KvStore& store, JobQueueOptions options = {});

    // Stores a queued job, synced, unless the same job (same id) is known: then returns it (created=false);
    // a failed, cancelled or dead-lettered one, or a success that rescan calls stale, is queued again with
    // attempts 0 and the new request's priority, host and requester. A damaged record under that id is
    // replaced. Errc::invalid_argument: empty target, target identity or signature set; Errc::internal: the
    // stored job under that id is another (a hash collision); io/corrupt: the store failed.
    [[nodiscard]] Expected<SubmitResult> submit(JobRequest request, std::string_view target_identity,
                                                std::string_view signature_set, Rescan rescan = {});

    // Each returns the updated record, synced. Errc::not_found: unknown id; Errc::invalid_argument: the move
    // is not in the lifecycle above; Errc::corrupt: the record does not decode; io: the store failed.
    [[nodiscard]] Expected<JobRecord> mark_running(std::string_view id); // from queued or paused
    [[nodiscard]] Expected<JobRecord> mark_paused(std::string_view id);  // from running
    [[nodiscard]] Expected<JobRecord> mark_succeeded(std::string_view id, std::string report_path);
    // attempts + 1 and last_error = error; queued again, dead_letter or failed (see Retry).
    [[nodiscard]] Expected<JobRecord> mark_failed(std::string_view id, std::string error,
                                                  Retry retry = Retry::allowed);
    // From running or paused back to queued, attempts unchanged (the service stopped it: shutdown).
    [[nodiscard]] Expected<JobRecord> requeue(std::string_view id);
    // From queued, running or paused; a cancelled job stays cancelled (no error: a repeated API call).
    [[nodiscard]] Expected<JobRecord> cancel(std::string_view id);

    // At start-up: every running or paused job goes back to queued (attempts unchanged: a crash is not the
    // job's fault), synced; returns every unfinished job, oldest submission first.
    [[nodiscard]] Expected<std::vector<JobRecord>> recover();

    // std::nullopt: no such job. Errc::corrupt: its record does not decode; io: the store failed.
    [[nodiscard]] Expected<std::optional<JobRecord>> get(std::string_view id) const;
    // Every job (or those with one status), oldest submission first; damaged records are skipped.
    [[nodiscard]] Expected<std::vector<JobRecord>> list(std::optional<JobStatus> status = std::nullopt) const;
    // Records the last list() or recover() skipped: undecodable, another schema, or a key of another shape.
    [[nodiscard]] std::size_t damaged_records() const;

    [[nodiscard]] unsigned max_attempts() const noexcept { return m_max_attempts; }

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
