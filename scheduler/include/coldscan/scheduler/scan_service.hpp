// The scan service behind `coldscan serve`: the persistent JobQueue, the Scheduler's decisions carried out
// with ScanRun workers on engines loaded once, read budgets per host and datastore, nightly discovery,
// signature reloads and a clean shutdown. The HTTP API (ApiServer) and the signal handlers are thin layers
// over the members below.
//
// How a job moves: submit() checks the target (inside a datastore root: else Errc::forbidden), derives its
// identity, stores it in the JobQueue (synced) and hands it to the Scheduler; the dispatcher thread runs
// Scheduler::step() whenever something changes and starts one worker thread per started job. A worker runs
// one ScanRun over the target with the signature set current when it started (a reload never changes a
// running scan; the report names the set), writes the report to STATE/reports/ID.json, appends a line per
// detection to STATE/alerts.jsonl (once per scan, even across a crash) and marks the job succeeded.
// Pausing (a gate job preempting a nightly one), cancelling and shutdown stop a worker through its ScanRun's
// stop flag: reads stop within seconds, and what it verdicted stays in the verdict cache, so a resumed or
// recovered job does not scan those files again.
//
// Thread rule: shared; every public member is thread-safe (HTTP handler threads, signal watcher, probes).
#pragma once

#include "coldscan/common/error.hpp"
#include "coldscan/scheduler/finding_store.hpp"
#include "coldscan/scheduler/job_queue.hpp"
#include "coldscan/scheduler/node_directory.hpp"
#include "coldscan/scheduler/plan.hpp"
#include "coldscan/scheduler/service_config.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace coldscan::scheduler {

struct ScanRequest {
    // An image path inside a datastore root, "libvirt:DOMAIN" (all its disks as one VM job; needs
    // [libvirt] uri in the config), or "vm:NAME" with `disks`.
    std::string target;
    Priority priority = Priority::on_demand;
    std::string snapshot;     // a qcow2 internal snapshot
    std::string host;         // optional: the inventory host whose budget the scan uses
    std::string requested_by; // optional: who asked
    // A job that succeeded longer ago than this is scanned again (the gate's --max-age); none: an earlier
    // success of the same job stands however old.
    std::optional<std::chrono::seconds> max_age;
    // The image's format; empty: the safety gate detects it. For libvirt:DOMAIN, each disk's <driver type>
    // when the XML gives one (a different format here is an error).
    std::string format;
    // A VM of these disks, scanned as one target named `target` ("vm:NAME"); format is then per disk.
    std::vector<JobDisk> disks;
};

// A running job's progress, from its ScanRun.
struct JobProgress {
    std::string phase;
    std::uint64_t files_done = 0;
    std::uint64_t bytes_done = 0;
    double seconds = 0; // since this run started
};

// What a finished scan found, from its report.
struct JobVerdict {
    std::string status;  // the report's: completed, completed_with_warnings, completed_with_issues, failed
    int exit_status = 2; // clamscan's convention: 0 clean (or only limit warnings), 1 detections, 2 failures
    std::uint64_t files = 0;
    std::uint64_t detections = 0;
    std::uint64_t not_fully_scanned = 0; // errors + limit_exceeded + skipped
    std::uint64_t limit_exceeded = 0;    // files the limits kept from being scanned in full
    std::string signature_set;           // the fingerprint of the set it was scanned with
};

struct JobView {
    JobRecord record;
    std::string host;                    // as scheduled
    std::string datastore;               // as scheduled
    std::optional<JobProgress> progress; // while running
    std::optional<JobVerdict> verdict;   // once succeeded (the report exists)
};

struct SubmittedJob {
    JobView job;
    bool created = false; // false: the same scan was known (answered as it is, or queued again)
};

struct HostView {
    HostSpec spec;
    unsigned running = 0;
    unsigned queued = 0;
    std::optional<double> pressure; // the last probe reading; none without a probe or before the first
    std::string probe_error;        // the last probe failure ("" when it worked)
    bool throttled = false;         // above its threshold: no new scans, reads slowed
    double throttled_seconds = 0;   // total time throttled since the service started
    std::uint64_t bytes_read = 0;   // by scans of its images since the service started
};

struct DatastoreView {
    DatastoreSpec spec;
    unsigned running = 0;
    std::uint64_t bytes_read = 0;
};

// Totals since the service started (for /metrics).
struct ServiceCounters {
    std::uint64_t jobs_submitted = 0;
    std::uint64_t jobs_succeeded = 0;
    std::uint64_t jobs_failed = 0; // attempts that failed (retried, failed or dead-lettered)
    std::uint64_t files_scanned = 0;
    std::uint64_t bytes_scanned = 0;
    std::uint64_t cache_hits = 0; // files whose verdict came from the cache (identity, content or blocks)
    std::uint64_t engine_scans = 0;
    std::uint64_t detections = 0;
    std::uint64_t signature_reloads = 0;
    std::uint64_t signature_reload_failures = 0;
    std::uint64_t job_queue_write_errors = 0; // job state changes the store refused (logged as errors)
};

// What a service shares with other nodes in fleet mode (fleet/); each left empty: the service's own (its
// node alone, its JobQueue in STATE/store).
struct ServiceSharing {
    std::shared_ptr<NodeDirectory> nodes;
    std::shared_ptr<JobStore> jobs;
    std::shared_ptr<FindingStore> findings; // none: STATE/findings.jsonl
    // The store the scans use, made from the service's own (STATE/store): a fleet's puts the shared verdicts
    // behind it. None: the service's own.
    std::function<std::shared_ptr<scanner::KvStore>(std::shared_ptr<scanner::KvStore> local)> scan_store;
};

struct ServiceHealth {
    bool accepting = true; // false while shutting down
    std::string signature_set;
    std::string signatures_loaded_at; // ISO 8601 UTC
    std::size_t damaged_job_records = 0;
};

class ScanService {
public:
    // Opens STATE/store (verdict cache and job queue), loads the signatures (waits for them), recovers the
    // jobs a crash or shutdown left unfinished and starts the dispatcher. Errors: the state folder cannot
    // be created or the store opened (io, corrupt), the signatures do not load (engine).
    // sharing: where the service reports itself and finds the others, and where its jobs live (fleet mode).
    [[nodiscard]] static Expected<std::unique_ptr<ScanService>> start(ServiceConfig config,
                                                                      ServiceSharing sharing = {});
    ~ScanService(); // shutdown(zero grace) if not done
    ScanService(const ScanService&) = delete;
    ScanService& operator=(const ScanService&) = delete;

    // All-or-nothing: every request is checked before any is stored. Errors: invalid_argument (empty or
    // malformed), not_found (no such image or domain), forbidden (outside every datastore root, or a host
    // that does not mount its datastore), unsafe_image (the safety gate refused it), cancelled (shutting
    // down), io.
    [[nodiscard]] Expected<std::vector<SubmittedJob>> submit(const std::vector<ScanRequest>& requests);
    // Errors: not_found.
    [[nodiscard]] Expected<JobView> job(std::string_view id) const;
    [[nodiscard]] Expected<std::vector<JobView>> jobs(std::optional<JobStatus> status = std::nullopt) const;
    // Stops a queued, paused or running job (a running one stops reading within seconds). Errors:
    // not_found; invalid_argument: the job already finished.
    [[nodiscard]] Expected<JobView> cancel(std::string_view id);
    // The report's JSON text. Errors: not_found (no such job, or no report yet).
    [[nodiscard]] Expected<std::string> report(std::string_view id) const;

    [[nodiscard]] std::vector<HostView> hosts() const;
    [[nodiscard]] std::vector<DatastoreView> datastores() const;
    [[nodiscard]] Plan plan() const;
    [[nodiscard]] ServiceCounters counters() const;
    [[nodiscard]] ServiceHealth health() const;
    // Every node: this one alone, or each of the fleet's (GET /v1/nodes). Errors: the directory's (io).
    [[nodiscard]] Expected<std::vector<NodeView>> nodes() const;
    // The findings of every scan (of the fleet, in fleet mode) that match, newest first, one page
    // (GET /v1/findings), and their counts per day, signature and host (GET /v1/stats). Errors: the store's.
    [[nodiscard]] Expected<FindingPage> findings(const FindingQuery& query) const;
    [[nodiscard]] Expected<FindingStats> finding_stats(const FindingQuery& query) const;
    // Jobs per status, from one pass over the queue (every status present, 0 when none).
    [[nodiscard]] std::map<JobStatus, std::size_t> job_counts() const;

    // Loads the configured signatures again and makes them current for jobs that start from now on, then
    // runs a retro-hunt; returns the new set's fingerprint. A load that fails keeps the current set.
    // Errors: engine.
    [[nodiscard]] Expected<std::string> reload_signatures();
    // Compares every cached verdict with the hash lines the current set added since it was made, without
    // reading a disk: an alert per newly detected content per image, and a "retro_hunt" section in the
    // image's latest report (the gate then refuses it). Returns the JSON of POST /v1/retro-hunt. Errors: the
    // cache failed, the set's databases could not be read again.
    [[nodiscard]] Expected<std::string> retro_hunt();
    // The loaded set as GET /v1/signatures shows it: its fingerprint and when it was loaded, the engines,
    // databases and rule files, and the last retro-hunt's answer with its time (null before the first).
    [[nodiscard]] std::string signatures_json() const;
    // A host's load reading (0..1) or why it could not be read (the last reading then stands).
    void set_pressure(std::string_view host, Expected<double> reading);

    // Stops taking jobs, lets running ones finish within grace, stops and requeues the rest, waits for
    // every worker. Idempotent; returns once the service is quiet.
    void shutdown(std::chrono::seconds grace);
    // Blocks until shutdown() has finished.
    void wait_stopped();

    [[nodiscard]] const ServiceConfig& config() const noexcept;

    struct Impl;

private:
    explicit ScanService(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> m_impl;
};

} // namespace coldscan::scheduler
