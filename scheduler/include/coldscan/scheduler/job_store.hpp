// Where the scan service keeps its jobs: the role behind the persistent queue. JobQueue (job_queue.hpp) keeps
// one node's jobs in its RocksDB store; fleet/pg_job_queue.hpp keeps a fleet's in PostgreSQL, where several
// nodes claim them under leases (docs/fleet.md). The lifecycle and the meaning of every call are JobQueue's;
// what a shared store adds is said here.
//
// Claims. A job starts or resumes through claim(), which in a shared store also takes a lease on the job and
// checks the host's and datastore's caps against every live lease of the fleet. A lease is renewed by the
// store itself; when it cannot be (the database is away, another node took the job over after the lease ran
// out, someone cancelled the job), the store calls the lease listener and every later write of that job by
// this process is refused (Errc::conflict: fencing).
// Thread rule: implementations are shared; every member is thread-safe.
#pragma once

#include "coldscan/common/error.hpp"
#include "coldscan/scheduler/job_record.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace coldscan::scheduler {

// Where a job's bytes come from and the caps that hold there (0: no cap).
struct JobSlots {
    std::string host;
    std::string datastore;
    unsigned host_cap = 0;
    unsigned datastore_cap = 0;
    std::uint64_t estimated_bytes = 0; // for other nodes' plans
};

enum class ClaimOutcome {
    granted,   // the job is running here now
    caps_full, // the host or datastore runs as many jobs as its cap allows, somewhere in the fleet (for a
               // gate job, a nightly job there is asked to make room: claim again shortly)
    taken,     // the job is not there to claim (another node runs it, it was cancelled or finished)
};

struct Claim {
    ClaimOutcome outcome = ClaimOutcome::taken;
    std::optional<JobRecord> record; // the job as it is now (granted: running, with its node)
};

// A queued job another node submitted, with what the claiming node needs to schedule it.
struct SharedJob {
    std::string id;
    Priority priority = Priority::nightly;
    std::string target;
    JobSlots slots;
    std::int64_t submitted_at = 0; // unix seconds: its due time, so the fleet's oldest jobs go first
};

// What changed in a shared queue since a node's last adoption.
struct Adoption {
    // Queued jobs to schedule: new ones, ones queued again, and ones whose claim this node was refused for
    // the caps (offered again once). A job the node holds already may be among them: it is skipped.
    std::vector<SharedJob> queued;
    // Jobs that left the queue (another node runs them, cancelled, ended): a node that holds one of them
    // queued drops it instead of claiming it in vain. Never a job this node runs or paused.
    std::vector<std::string> dequeued;
    // The jobs other nodes run with a live lease, per host and per datastore
    // (Scheduler::set_running_elsewhere): a node does not try to claim where the fleet's caps are full.
    std::map<std::string, unsigned, std::less<>> running_elsewhere_on_host;
    std::map<std::string, unsigned, std::less<>> running_elsewhere_on_datastore;
};

// The running jobs with a live lease on the hosts and datastores where this node holds one: its own and the
// fleet's (for each lease's share of a read budget).
struct FleetLoad {
    struct Entry {
        std::string name;
        unsigned mine = 0;
        unsigned total = 0;
    };
    std::vector<Entry> hosts;
    std::vector<Entry> datastores;
};

class JobStore {
public:
    virtual ~JobStore() = default;

    // As JobQueue::submit; slots say where the job's bytes are, for the nodes that adopt it.
    [[nodiscard]] virtual Expected<SubmitResult> submit(JobRequest request, std::string_view target_identity,
                                                        std::string_view signature_set, Rescan rescan,
                                                        const JobSlots& slots) = 0;
    // Starts a queued job or resumes a paused one (JobQueue::mark_running), within the slots' caps.
    // Errc::not_found: unknown id; io: the store failed.
    [[nodiscard]] virtual Expected<Claim> claim(std::string_view id, const JobSlots& slots) = 0;
    [[nodiscard]] virtual Expected<JobRecord> mark_paused(std::string_view id) = 0;
    [[nodiscard]] virtual Expected<JobRecord> mark_succeeded(std::string_view id,
                                                             std::string report_path) = 0;
    [[nodiscard]] virtual Expected<JobRecord> mark_failed(std::string_view id, std::string error,
                                                          Retry retry) = 0;
    [[nodiscard]] virtual Expected<JobRecord> requeue(std::string_view id) = 0;
    [[nodiscard]] virtual Expected<JobRecord> cancel(std::string_view id) = 0;
    // Unfinished jobs this node must schedule after a start (JobQueue::recover). A shared store gives back
    // the jobs this node's previous process held and returns none: the node adopts queued jobs instead.
    [[nodiscard]] virtual Expected<std::vector<JobRecord>> recover() = 0;
    [[nodiscard]] virtual Expected<std::optional<JobRecord>> get(std::string_view id) const = 0;
    [[nodiscard]] virtual Expected<std::vector<JobRecord>> list(std::optional<JobStatus> status) const = 0;
    [[nodiscard]] virtual std::size_t damaged_records() const = 0;
    [[nodiscard]] virtual unsigned max_attempts() const noexcept = 0;

    // A succeeded job's report (JSON text). Errc::not_found: none.
    [[nodiscard]] virtual Expected<std::string> report_text(const JobRecord& record) const = 0;
    // Records the alert of a job this process runs, once per alert id across the store: true when this call
    // recorded it (the caller raises it), false when it was recorded before. Errc::conflict: the lease is
    // lost.
    [[nodiscard]] virtual Expected<bool> record_alert(std::string_view job, std::string_view alert_id,
                                                      std::string_view alert_json) = 0;

    // Shared stores: whether other processes run jobs from it too.
    [[nodiscard]] virtual bool shared() const noexcept = 0;
    // The queued jobs on these datastores that this node may adopt and claim, as changes since the last call
    // (the first call, and one with other datastores, lists them all); jobs whose lease ran out are queued
    // again first. Empty for a store that is not shared.
    [[nodiscard]] virtual Expected<Adoption> adoptable(const std::vector<std::string>& datastores) = 0;
    // Called (from the store's own thread) with a job's id when this process's lease on it is lost: its scan
    // must stop reading and write nothing more.
    virtual void set_lease_listener(std::function<void(const std::string& job)> listener) = 0;
    // Called (from the store's own thread) after each renewal of this node's leases with the load where they
    // are. Never called by a store that is not shared.
    virtual void set_load_listener(std::function<void(const FleetLoad& load)> listener) = 0;
    // Called (from the store's own thread) with a running nightly job of this node that a gate job elsewhere
    // needs the slot of: the node stops it and queues it again (requeue). Never called by a store that is not
    // shared (one node's scheduler pauses for its gates itself).
    virtual void set_preempt_listener(std::function<void(const std::string& job)> listener) = 0;
};

} // namespace coldscan::scheduler
