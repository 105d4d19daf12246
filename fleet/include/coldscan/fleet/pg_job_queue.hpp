// The fleet's job queue in PostgreSQL (table coldscan_jobs, fleet_schema.cpp): every node submits to it,
// adopts the queued jobs of the datastores it reaches, and claims one before it starts it.
//
// Claim: one transaction takes an advisory lock on the job's host, then on its datastore (always in that
// order, so two claimers never wait on each other in a circle), locks the job's row (FOR UPDATE SKIP LOCKED),
// counts the running jobs with a live lease on that host and datastore, and only under both caps marks the
// job running with this node, a lease and a new fencing number. Every claimer of a host waits for the one
// before it, so a cap holds across the fleet at every instant; a job whose lease ran out no longer counts.
// Gate jobs first: a claim of another job is refused while a gate job waits for its host or datastore, and a
// gate job that finds one full asks a running nightly job there to make room (set_preempt_listener).
//
// Leases: this object's keeper thread renews the leases of the jobs it holds every lease/3 on a connection
// of its own (a slow query on the other never delays it). A lease counts as lost here a quarter lease before
// it runs out in the database if it could not be renewed (a watchdog thread of its own judges that, so a
// renewal stuck on a dead server changes nothing), and at once when the database no longer has it
// (cancelled, taken over after it ran out): the listener hears it and the scan must stop. Writes of a held
// job (pause, success, failure, requeue, alert) name its fence; a write the database refuses is
// Errc::conflict, and is never retried.
//
// Adoption: each call returns what changed since this object's last call (src/adoption_feed.hpp), so twenty
// nodes polling a queue of thousands read tens of rows, not thousands, and drop the jobs others took.
//
// Rescue: adoptable() first queues again every running or paused job whose lease ran out (attempts
// unchanged: a node's death is not the job's fault); recover() at start-up queues again the jobs this
// node's previous process held (a node name belongs to one live process, PgNodeDirectory::claim). Each
// take-back counts (rescues, schema 8): the max_attempts-th makes the job a dead letter, so a job that
// crashes its node every time stops after that many nodes instead of going round the fleet forever.
//
// Thread rule: shared; every member is thread-safe (calls serialise on the one connection; the keeper has
// its own). The lease listener is called from the keeper thread, with no lock of this object held.
#pragma once
#include "coldscan/fleet/pg_connection.hpp"
#include "coldscan/scheduler/job_store.hpp"

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace coldscan::fleet {

class AdoptionFeed;

struct PgJobQueueOptions {
    std::string node;
    std::chrono::seconds lease{30};
    unsigned max_attempts = 3;
    bool keeper = true; // false: no keeper thread (tests call renew_leases() themselves)
};

class PgJobQueue final : public scheduler::JobStore {
public:
    // Both connections to a migrated database (migrate_schema); keeper is the lease keeper's.
    PgJobQueue(PgConnection connection, PgConnection keeper, PgJobQueueOptions options);
    ~PgJobQueue() override;
    PgJobQueue(const PgJobQueue&) = delete;
    PgJobQueue& operator=(const PgJobQueue&) = delete;

    Expected<scheduler::SubmitResult> submit(scheduler::JobRequest request, std::string_view target_identity,
                                             std::string_view signature_set, scheduler::Rescan rescan,
                                             const scheduler::JobSlots& slots) override;
    Expected<scheduler::Claim> claim(std::string_view id, const scheduler::JobSlots& slots) override;
    Expected<scheduler::JobRecord> mark_paused(std::string_view id) override;
    // Stores the report's text with the result, so that every node's API can answer with it.
    Expected<scheduler::JobRecord> mark_succeeded(std::string_view id, std::string report_path) override;
    Expected<scheduler::JobRecord> mark_failed(std::string_view id, std::string error,
                                               scheduler::Retry retry) override;
    Expected<scheduler::JobRecord> requeue(std::string_view id) override;
    // From any node, unfenced (a user's decision); the node that runs the job loses its lease.
    Expected<scheduler::JobRecord> cancel(std::string_view id) override;
    Expected<std::vector<scheduler::JobRecord>> recover() override;
    Expected<std::optional<scheduler::JobRecord>> get(std::string_view id) const override;
    Expected<std::vector<scheduler::JobRecord>>
    list(std::optional<scheduler::JobStatus> status) const override;
    std::size_t damaged_records() const override;
    unsigned max_attempts() const noexcept override { return m_options.max_attempts; }
    Expected<std::string> report_text(const scheduler::JobRecord& record) const override;
    Expected<bool> record_alert(std::string_view job, std::string_view alert_id,
                                std::string_view alert_json) override;
    bool shared() const noexcept override { return true; }
    // Reads only the rows whose status changed since this node's last read (AdoptionFeed).
    Expected<scheduler::Adoption> adoptable(const std::vector<std::string>& datastores) override;
    void set_lease_listener(std::function<void(const std::string& job)> listener) override;
    void set_load_listener(std::function<void(const scheduler::FleetLoad& load)> listener) override;
    void set_preempt_listener(std::function<void(const std::string& job)> listener) override;

    // One renewal of every held lease, as the keeper does (tests without a keeper call it): a lease the
    // database no longer has is lost at once; then the load listener hears the fleet's load there.
    void renew_leases();
    // Every held lease past its local deadline is lost (the watchdog does it every 250 ms, so a renewal
    // stuck on a dead server never keeps a scan reading).
    void expire_leases();
    // The fence of a lease this process holds; nullopt: none (never claimed, finished, or lost).
    [[nodiscard]] std::optional<std::int64_t> fence_of(std::string_view id) const;

private:
    struct Lease {
        std::int64_t fence = 0;
        std::chrono::steady_clock::time_point deadline; // lost here unless renewed before
    };

    // A write of a held job, WHERE its node and fence still match: Errc::conflict when not.
    Expected<scheduler::JobRecord> fenced_update(std::string_view id, std::string_view what,
                                                 std::string_view set_sql, PgParams extra, bool release);
    Expected<scheduler::Claim> claim_locked(std::string_view id, const scheduler::JobSlots& slots);
    // A gate job found its host or datastore full: the most recently started nightly job with a live lease on
    // the full one is asked to make room. Inside the claim's transaction.
    Expected<void> request_room_locked(const scheduler::JobSlots& slots, bool host_full);
    void hold(const std::string& id, std::int64_t fence, std::chrono::steady_clock::time_point sent);
    void release(std::string_view id);
    void tell_lost(const std::vector<std::string>& lost);
    // The load where this node holds leases, on the keeper's connection (requires m_keeper_db_mutex).
    Expected<scheduler::FleetLoad> load_locked();
    void keeper_loop(const std::stop_token& stop);
    void watchdog_loop(const std::stop_token& stop);

    PgJobQueueOptions m_options;
    mutable std::mutex m_mutex; // the connection
    mutable PgConnection m_db;
    mutable std::size_t m_damaged = 0;
    std::unique_ptr<AdoptionFeed> m_feed; // under m_mutex

    mutable std::mutex m_lease_mutex; // m_leases
    std::map<std::string, Lease, std::less<>> m_leases;
    std::mutex m_listener_mutex; // m_listener, held while it is called
    std::function<void(const std::string&)> m_listener;
    std::function<void(const scheduler::FleetLoad&)> m_load_listener; // under m_listener_mutex too
    std::function<void(const std::string&)> m_preempt_listener;       // under m_listener_mutex too

    std::mutex m_keeper_db_mutex; // the keeper's connection (renew_leases from tests too)
    PgConnection m_keeper_db;
    std::condition_variable_any m_keeper_cv;
    std::jthread m_keeper;
    std::jthread m_watchdog;
};

} // namespace coldscan::fleet
