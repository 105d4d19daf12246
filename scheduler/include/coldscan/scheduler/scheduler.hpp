// The scheduler core: which scan jobs start, pause and resume when, so that scans never pile onto one
// hypervisor host or shared datastore ("scan storms").
//
// Why it is pure logic: the rules below interact (caps on two levels, priorities, windows, pressure), and the
// only way to trust them is to run thousands of jobs through them in a test. So the core owns no thread,
// reads no clock and does no I/O: every call that depends on time takes `now`, and step() answers with a
// Decision the caller carries out. step() also records it (started jobs count as running from then on), so
// the caller must carry out every Decision and report each job's end with finished(). The daemon calls
// step() after each submit(), finished(), cancel() and set_pressure(), and at next_wakeup().
//
// The rules, as step() applies them:
//  1. Caps. A host or datastore never runs more than its max_concurrent_scans jobs. Running jobs count;
//     paused jobs do not.
//  2. Priority. Lanes are served in this order: gate, on_demand, paused nightly jobs (resumed, oldest pause
//     first), queued nightly jobs. A gate job whose host or datastore is full pauses nightly jobs to make
//     room: one running on both its host and its datastore when both are full and such a job exists,
//     else the most recently started nightly job on each full one. It never pauses gate or on-demand jobs;
//     when those hold the slots it needs, it starts at the next step with room, before anything else.
//  3. Fairness. Within a lane, hosts take turns (round robin, one job per turn, the turn order carried over
//     from step to step), so a host with 500 jobs cannot starve one with 5 behind a shared datastore.
//     Within a host, the oldest due first, then the smallest id. A job whose datastore is full is passed
//     over for the host's next job on a datastore with room.
//  4. Windows. Queued nightly jobs start only while a nightly window is open (no windows: always). Running
//     jobs are not stopped at the window's end; paused ones resume outside it too (they started inside
//     one). Gate and on-demand jobs ignore windows. A job never starts before its due time.
//  5. Pressure. A host whose last reported pressure is above its threshold is throttled: it starts and
//     resumes nothing until the pressure falls to the threshold or below. Gate jobs still start there (a
//     power-on waits on them, and the scan's own load is one job); they may also pause nightly jobs there.
//     Running jobs are not stopped.
//  6. Capacity. With options.max_running, nothing but a gate job starts or resumes while that many run.
// Thread rule: one owner thread; not thread-safe (the daemon wraps it).
#pragma once

#include "coldscan/common/error.hpp"
#include "coldscan/scheduler/clock.hpp"
#include "coldscan/scheduler/inventory.hpp"
#include "coldscan/scheduler/job.hpp"
#include "coldscan/scheduler/plan.hpp"
#include "coldscan/scheduler/window.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace coldscan::scheduler {

struct SchedulerOptions {
    std::vector<Window> nightly_windows; // empty: nightly jobs may start at any time
    // For plan(): the speed of one scan when no host or datastore cap is tighter (libclamav in-process
    // scans at about 110 MB/s on two cores).
    std::uint64_t assumed_scan_bytes_per_second = 100ULL << 20;
    Duration plan_horizon = std::chrono::days{14}; // plan() looks no further
    // Rule 6: at most this many jobs run at once on this scheduler (a node's own capacity: in a fleet the
    // other nodes then get the slots it leaves); gate jobs are not held back by it. 0: no such limit.
    unsigned max_running = 0;
    // The host whose turn comes first (rule 3), modulo the number of hosts. A fleet's nodes start at
    // different hosts, so that their first picks spread over the fleet instead of all trying the same hosts.
    std::size_t first_turn = 0;
};

// What the caller must do now, in this order: pause, resume, start.
struct Decision {
    std::vector<std::string> pause;     // running nightly jobs to pause (they keep their progress)
    std::vector<std::string> resume;    // paused jobs to continue
    std::vector<std::string> start;     // queued jobs to start
    std::vector<std::string> throttled; // hosts above their pressure threshold (they start no new jobs)

    [[nodiscard]] bool empty() const noexcept { return pause.empty() && resume.empty() && start.empty(); }
};

class Scheduler {
public:
    Scheduler(Inventory inventory, SchedulerOptions options);

    // Queues a job. Errc::not_found: unknown host or datastore; Errc::invalid_argument: an empty id, an id
    // already used (done jobs keep theirs), a host that does not mount the datastore.
    [[nodiscard]] Expected<void> submit(Job job);
    // Takes a queued or paused job out (it is done) and returns the state it was in. A running job keeps
    // its slots until the caller has stopped it and called finished(); a done job stays done.
    // Errc::not_found: unknown id.
    [[nodiscard]] Expected<JobState> cancel(std::string_view id);
    // A running or paused job ended (success or failure): it is done and its slots are free.
    // Errc::not_found: unknown id; Errc::invalid_argument: the job is queued or already done.
    [[nodiscard]] Expected<void> finished(std::string_view id, TimePoint now);
    // Drops a done job, so that a long-lived caller (the daemon gives every placement an id of its own)
    // does not keep every job it ever ran; its id may be used again. False: unknown or not done.
    bool forget(std::string_view id);
    // Fleet mode: how many jobs other nodes run on each host and datastore (by name; unnamed: none), as the
    // last adoption read them. A queued or paused job starts or resumes only where those and this
    // scheduler's own leave a slot (rules 1 and 2); gate jobs are not held back by them (the fleet's claim
    // asks a nightly job elsewhere to make room). Unknown names are ignored.
    void set_running_elsewhere(const std::map<std::string, unsigned, std::less<>>& hosts,
                               const std::map<std::string, unsigned, std::less<>>& datastores);
    // The host's latest load reading, 0..1 (rule 5). Errc::not_found: unknown host;
    // Errc::invalid_argument: a value outside 0..1.
    [[nodiscard]] Expected<void> set_pressure(std::string_view host, double value, TimePoint now);

    // Decides and records what pauses, resumes and starts at now (rules 1-5 above).
    [[nodiscard]] Decision step(TimePoint now);
    // When step() should run next if nothing arrives, finishes or changes pressure: a queued job's due
    // time or a window opening for waiting nightly jobs, whichever is first; nullopt if neither.
    [[nodiscard]] std::optional<TimePoint> next_wakeup(TimePoint now) const;
    // When each queued, paused and running job would start and finish if nothing else arrived, by running
    // these very rules on a copy, with simulated time, up to options.plan_horizon. Estimate: a scan reads
    // estimated_bytes at min(assumed_scan_bytes_per_second, host cap / host slots, datastore cap /
    // datastore slots): every slot is assumed to get an equal share of a read cap, which is pessimistic
    // when a host runs fewer scans than its slots. A running job past its estimate is assumed to finish
    // now. Pressure is assumed to stay as it is: a throttled host's jobs do not start within the plan.
    [[nodiscard]] Plan plan(TimePoint now) const;
    // The plan()'s run-time estimate for a job (see above); nullopt for an unknown id.
    [[nodiscard]] std::optional<Duration> estimated_run_time(std::string_view id) const;

    [[nodiscard]] const Inventory& inventory() const noexcept { return m_inventory; }
    [[nodiscard]] const SchedulerOptions& options() const noexcept { return m_options; }
    [[nodiscard]] std::optional<JobState> state(std::string_view id) const;
    [[nodiscard]] std::size_t count(JobState state) const noexcept;
    // Running jobs on a host or datastore; nullopt for an unknown name.
    [[nodiscard]] std::optional<unsigned> running_on_host(std::string_view host) const;
    [[nodiscard]] std::optional<unsigned> running_on_datastore(std::string_view datastore) const;
    // Hosts whose pressure is above their threshold, in inventory order.
    [[nodiscard]] std::vector<std::string> throttled_hosts() const;
    // Since when a host is throttled; nullopt when it is not (or is unknown).
    [[nodiscard]] std::optional<TimePoint> throttled_since(std::string_view host) const;
    // Whether a queued nightly job may start at now (rule 4).
    [[nodiscard]] bool nightly_allowed(TimePoint now) const;

private:
    enum class Lane { gate, on_demand, paused, nightly };
    static constexpr std::size_t k_lanes = 4;

    // Queued jobs of one host and priority, in start order.
    struct QueueKey {
        TimePoint due;
        std::string id;
        auto operator<=>(const QueueKey&) const = default;
    };
    // Running nightly jobs by start order, paused jobs by pause order.
    struct SequenceKey {
        std::uint64_t sequence;
        std::string id;
        auto operator<=>(const SequenceKey&) const = default;
    };
    struct JobRecord {
        Job job;
        std::size_t host = 0;
        std::size_t datastore = 0;
        JobState state = JobState::queued;
        std::uint64_t sequence = 0; // of the last start, resume or pause
        TimePoint started_at{};     // the last start or resume
        Duration ran{};             // running time before the last start or resume
    };
    struct HostState {
        unsigned running = 0;
        unsigned elsewhere = 0; // other nodes' (set_running_elsewhere)
        double pressure = 0.0;
        std::optional<TimePoint> throttled_since;
        std::array<std::set<QueueKey>, 3> queued; // by Priority
        std::set<SequenceKey> paused;
        std::set<SequenceKey> running_nightly;
    };
    struct DatastoreState {
        unsigned running = 0;
        unsigned elsewhere = 0;
        std::set<SequenceKey> running_nightly;
    };

    [[nodiscard]] bool throttled(std::size_t host) const;
    [[nodiscard]] bool node_has_room() const;
    // fleet: count other nodes' jobs too (every lane but gate's).
    [[nodiscard]] bool host_has_room(std::size_t host, bool fleet = false) const;
    [[nodiscard]] bool datastore_has_room(std::size_t datastore, bool fleet = false) const;
    // Serves one lane: hosts take turns, one job each, until no host can start another.
    void serve_lane(Lane lane, TimePoint now, std::uint64_t first_sequence_of_step, Decision& decision);
    // Starts or resumes at most one job of lane on host; whether it did.
    bool serve_host(Lane lane, std::size_t host, TimePoint now, std::uint64_t first_sequence_of_step,
                    Decision& decision);
    // Starts a gate job, pausing nightly jobs when its host or datastore is full (rule 2); whether it did.
    bool start_gate(JobRecord& job, TimePoint now, Decision& decision);
    void start(JobRecord& job, TimePoint now);
    void pause(JobRecord& job, TimePoint now);
    void resume(JobRecord& job, TimePoint now);
    void release_slots(JobRecord& job);
    void set_state(JobRecord& job, JobState state);
    [[nodiscard]] Duration run_time_estimate(const JobRecord& job) const;
    [[nodiscard]] JobRecord& record(const std::string& id);

    Inventory m_inventory;
    SchedulerOptions m_options;
    std::map<std::string, JobRecord, std::less<>> m_jobs; // every job ever submitted, done ones included
    std::vector<HostState> m_hosts;                       // by inventory index
    std::vector<DatastoreState> m_datastores;             // by inventory index
    std::array<std::size_t, k_lanes> m_turn{};            // per lane: the host whose turn is next
    std::array<std::size_t, 4> m_counts{};                // per JobState
    std::uint64_t m_sequence = 0;
};

} // namespace coldscan::scheduler
