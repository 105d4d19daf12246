// ScanService's state, shared by its three source files: scan_service.cpp (the public calls),
// service_workers.cpp (the dispatcher and the scan workers) and service_housekeeping.cpp (load probes,
// nightly discovery, the signature folder watch).
//
// Locking: m_mutex guards the scheduler, the job table, the workers, the current signature set, the host
// views and the counters. JobQueue has its own lock and never calls out, so calling it under m_mutex is
// safe. Scans themselves run outside every lock.
#pragma once

#include "coldscan/scanner/kv_store.hpp"
#include "coldscan/scanner/scan_events.hpp"
#include "coldscan/scanner/scan_run.hpp"
#include "coldscan/scheduler/scan_service.hpp"
#include "coldscan/scheduler/scheduler.hpp"
#include "coldscan/signatures/signature_set.hpp"
#include "read_budget.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <spdlog/spdlog.h>
#include <string>
#include <thread>
#include <vector>

namespace coldscan::scheduler {

// Where a job's bytes come from, fixed when it is handed to the scheduler.
struct JobPlacement {
    std::size_t host = 0;
    std::size_t datastore = 0;
    std::string scheduler_id; // the id the Scheduler knows (a job queued again gets a new one)
    std::uint64_t estimated_bytes = 0;
};

// lease_lost (fleet mode): the job's lease ran out or was taken; the scan stops and writes nothing.
// preempted (fleet mode): a gate job on another node needs its slot; it is queued again.
enum class StopReason { none, pause, cancel, shutdown, lease_lost, preempted };

// One scan of one job. A resumed job gets a new Worker, which waits for the previous one (still stopping
// after its pause) before it starts.
struct Worker {
    std::shared_ptr<std::atomic<bool>> stop = std::make_shared<std::atomic<bool>>(false);
    StopReason reason = StopReason::none;        // under m_mutex
    std::atomic<bool> lease_lost{false};         // set without m_mutex (a stuck database call may hold it)
    std::atomic<bool> preempted{false};          // the same
    const scanner::Progress* progress = nullptr; // while the scan runs; under m_mutex
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    std::promise<void> ended;
    std::shared_future<void> ended_future = ended.get_future().share();
};

struct PressureState {
    std::optional<double> value;
    std::string error;
    bool throttled = false;
    std::chrono::steady_clock::duration throttled_total{};
    std::optional<std::chrono::steady_clock::time_point> throttled_since;
};

struct ScanService::Impl {
    explicit Impl(ServiceConfig service_config);

    // --- scan_service.cpp
    // Checks one request and turns it into the job to store (libvirt:DOMAIN: one job of all its disks).
    struct Resolved {
        JobRequest request;
        std::string identity;
        std::size_t host = 0;
        std::size_t datastore = 0;
        std::uint64_t estimated_bytes = 0;
        std::optional<std::chrono::seconds> max_age;
    };
    [[nodiscard]] Expected<std::vector<Resolved>> resolve(const ScanRequest& request) const;
    [[nodiscard]] Expected<Resolved> resolve_image(const std::string& path, const ScanRequest& request) const;
    // A VM of these disks as one job (each disk checked as an image; identity of them all).
    [[nodiscard]] Expected<Resolved> resolve_vm(const ScanRequest& request,
                                                const std::vector<JobDisk>& disks) const;
    // A libvirt:DOMAIN's file disks, as its XML says now. Errors: no [libvirt] uri, libvirt's, a disk that
    // is not a file, a format coldscan does not open or that contradicts the request's.
    [[nodiscard]] Expected<std::vector<JobDisk>> libvirt_job_disks(const ScanRequest& request) const;
    // What a job is to a scan: an image path, or a VM (vm: disks; a libvirt domain's disks as its XML says
    // now).
    [[nodiscard]] scanner::ScanTarget scan_target_of(const JobRequest& request) const;
    // The datastore roots of a VM's disks that `roots` lacks (a VM's disks may lie in several datastores).
    void add_disk_roots(const scanner::ScanTarget& target, std::vector<std::filesystem::path>& roots) const;
    // Stores and schedules resolved jobs (locks m_mutex).
    [[nodiscard]] Expected<std::vector<SubmittedJob>> store_and_schedule(std::vector<Resolved> jobs);
    // Hands a queued job to the scheduler under a fresh scheduler id. Requires m_mutex.
    void schedule_locked(const JobRecord& record, std::size_t host, std::size_t datastore,
                         std::uint64_t estimated_bytes, TimePoint due);
    // A placement whose scheduler job is done (finished or cancelled): the scheduler forgets it too.
    void forget_locked(const std::string& scheduler_id) {
        m_by_scheduler_id.erase(scheduler_id);
        m_scheduler.forget(scheduler_id);
    }
    [[nodiscard]] JobView view_locked(const JobRecord& record) const;
    [[nodiscard]] std::optional<JobVerdict> verdict_of(const JobRecord& record) const;
    [[nodiscard]] std::filesystem::path report_path(std::string_view id) const;

    // --- service_workers.cpp
    void dispatch_loop();
    void carry_out_locked(const Decision& decision, TimePoint now);
    void start_worker_locked(const std::string& id);
    void run_job(const std::string& id, const std::shared_ptr<Worker>& worker);
    // After a scan ended: record its outcome (report, alerts, queue) and free its slots. Locks m_mutex.
    void finish_job(const std::string& id, const std::shared_ptr<Worker>& worker,
                    const reports::Report& report);
    void record_alerts(const JobRecord& record, const reports::Report& report);
    // The report's findings, once per run (run_id); a failure the store refuses is logged.
    void record_findings(const JobRecord& record, const reports::Report& report, const std::string& run_id);
    // Appends one alert line to STATE/alerts.jsonl (fsync'd) and remembers its id. Requires m_alert_mutex.
    bool append_alert_locked(const std::string& alert_id, const std::string& alert_json);
    void load_alert_ids();
    void reap_workers_locked();
    void wake();

    // Loads the signatures again, then hunts the cache for what the new set added (retro_hunt).
    [[nodiscard]] Expected<std::string> reload_signatures();
    [[nodiscard]] Expected<std::string> load_new_signatures();

    // --- service_retro_hunt.cpp
    // The retro-hunt over the service's cache with the current set: alerts once per (image, content,
    // signature), a "retro_hunt" section in the latest report of each affected image. Returns the JSON
    // answer of POST /v1/retro-hunt. Error: the store failed, the set's lines could not be read.
    [[nodiscard]] Expected<std::string> retro_hunt();
    void set_pressure(std::string_view host, Expected<double> reading);

    // Whether a job-queue write went through; a failed one is logged and counted (/metrics
    // coldscan_job_queue_write_errors_total): the job may be recovered in another state after a restart.
    template <typename T> bool queue_written_locked(std::string_view id, const Expected<T>& written) {
        if (written) {
            return true;
        }
        ++m_counters.job_queue_write_errors;
        spdlog::error("job {}: the job queue could not record it: {}", id, written.error().message);
        return false;
    }

    // --- service_fleet.cpp (a shared job store; nothing happens with one node's JobQueue)
    // Schedules the fleet's queued jobs (queue->adoptable(), read without m_mutex) that it does not hold yet,
    // and drops the queued ones it holds that left the fleet's queue (another node runs them, cancelled).
    void adopt_shared_jobs_locked(const Expected<Adoption>& adoption);
    // From the store's lease keeper: the scan of id stops at once and writes nothing.
    void on_lease_lost(const std::string& id);
    // From the store's lease keeper after each renewal: this node's share of each read budget where it reads
    // (its live leases there against the fleet's). Takes no m_mutex, as on_lease_lost.
    void on_fleet_load(const FleetLoad& load);
    // From the store's lease keeper: a gate job elsewhere needs the slot of this running nightly job.
    void on_preempt(const std::string& id);
    [[nodiscard]] JobSlots slots_of(std::size_t host, std::size_t datastore,
                                    std::uint64_t estimated_bytes) const;
    // The datastores with a root that is a folder here.
    [[nodiscard]] std::vector<std::string> reachable_datastores() const;

    // --- service_housekeeping.cpp
    void housekeeping_loop();
    void probe_hosts();
    // Reports this node to the node directory (a failure is logged once until it works again).
    void report_node();
    // What nightly discovery would scan: the datastores' images (images = [...]) and each libvirt domain
    // ("libvirt:DOMAIN": one job of all its disks, resolve_vm).
    [[nodiscard]] std::vector<ScanRequest> discovered_requests() const;
    void discover_images();
    [[nodiscard]] std::string signature_folder_stamp() const;

    ServiceConfig config;
    std::filesystem::path state_dir;
    std::shared_ptr<scanner::KvStore> store; // STATE/store: the verdict cache and the local job queue
    std::shared_ptr<scanner::KvStore>
        scan_store;                  // what scans use: store, or the fleet's shared verdicts on it
    std::shared_ptr<JobStore> queue; // JobQueue, or the fleet's shared store
    std::shared_ptr<FindingStore> findings;
    std::unique_ptr<ReadBudgets> budgets;
    std::shared_ptr<NodeDirectory> node_directory;
    std::string node_name; // [fleet] node, or this host's name
    std::chrono::system_clock::time_point started_at = std::chrono::system_clock::now();
    bool m_node_report_failing = false; // housekeeping thread only

    mutable std::mutex m_mutex;
    std::condition_variable m_wake_cv;
    bool m_woken = false;
    Scheduler m_scheduler;
    std::map<std::string, JobPlacement, std::less<>> m_placements;     // jobs the scheduler holds, by job id
    std::map<std::string, std::string, std::less<>> m_by_scheduler_id; // scheduler id -> job id
    std::map<std::string, std::shared_ptr<Worker>, std::less<>> m_workers; // by job id: the current one
    // The same workers for on_lease_lost, which must not wait for m_mutex: a thread may hold that while a
    // call to an unreachable database runs into its timeout. Taken after m_mutex, never before.
    std::mutex m_lease_stop_mutex;
    std::map<std::string, std::shared_ptr<Worker>, std::less<>> m_lease_stops;
    // Every worker thread with its end signal: joined once ended (reap_workers_locked).
    std::vector<std::pair<std::thread, std::shared_future<void>>> m_threads;
    std::uint64_t m_generation = 0;
    std::shared_ptr<const signatures::SignatureSet> m_signatures;
    std::string m_signatures_loaded_at;
    std::string m_last_retro_hunt;         // {"at", "result"} of the last retro-hunt; empty before the first
    std::string m_signature_stamp;         // signature_folder_stamp() taken before the current set was loaded
    std::vector<PressureState> m_pressure; // by host index
    ServiceCounters m_counters;
    mutable std::map<std::string, JobVerdict, std::less<>> m_verdicts; // parsed reports, by job id

    std::mutex m_reload_mutex; // one reload at a time
    std::mutex m_alert_mutex;  // alerts.jsonl and m_alert_ids
    std::set<std::string> m_alert_ids;

    std::atomic<bool> accepting{true};
    bool m_draining = false; // no new starts (shutdown); under m_mutex
    bool m_quit = false;     // the dispatcher and housekeeping end; under m_mutex
    bool m_stopped = false;  // shutdown() finished; under m_mutex
    std::condition_variable m_stopped_cv;
    std::condition_variable m_worker_ended_cv;
    std::mutex m_shutdown_mutex;
    std::thread dispatcher;
    std::thread housekeeper;
};

[[nodiscard]] TimePoint service_now();

} // namespace coldscan::scheduler
