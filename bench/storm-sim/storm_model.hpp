// The scan-storm model behind coldscan-storm-sim: a fleet of hosts and shared datastores, a hundred templates
// due at the same instant, and a few gate requests arriving mid-run, run twice through the real scheduler
// core in simulated time: once with the fleet's caps ("scheduler"), once with caps nobody reaches, so every
// job starts when due ("no-scheduler": the storm).
//
// Why processor sharing: a storm hurts because every scan piled onto one host or datastore slows all of them
// down, gate scans included. So a running scan reads at min(engine speed, host read cap / scans running on
// the host, datastore read cap / scans running on the datastore), recomputed at every event. The read caps
// are the fleet's physical limits and hold in both arms; the scheduler's slot caps hold only in the first.
// The model is work-conserving (no thrashing penalty), so the storm's makespan is not inflated by it: what
// the storm costs shows in the per-scan slowdown and in how long a gate request waits for its verdict.
//
// Deterministic: the input comes from mt19937_64 (fixed by the standard) used without distributions (which
// are not), and the simulation has no other source of variation.
// Thread rule: plain data and free functions; no shared state.
#pragma once

#include "coldscan/common/error.hpp"
#include "coldscan/scheduler/clock.hpp"
#include "coldscan/scheduler/inventory.hpp"
#include "coldscan/scheduler/job.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace coldscan::bench {

struct StormOptions {
    unsigned hosts = 10;
    unsigned datastores = 3; // each mounted by every host (one cluster sharing its datastores)
    unsigned templates = 100;
    unsigned gates = 5;
    std::uint64_t seed = 1;
    unsigned host_slots = 2;                // the scheduler's max_concurrent_scans per host
    unsigned datastore_slots = 4;           // ... per datastore
    double engine_mb_per_s = 110.0;         // one scan on an unloaded host (MB = 10^6 bytes)
    double host_read_mb_per_s = 200.0;      // what a host's scans may read together
    double datastore_read_mb_per_s = 400.0; // what a datastore serves to all scans together
    double min_gib = 1.0;                   // template and gate image sizes, uniform in [min, max)
    double max_gib = 4.0;
    unsigned max_running = 0; // the scheduler's max_running (scans at once in all; 0: no such limit)
};

// Errc::invalid_argument naming the option: zero hosts, datastores, templates or slots, a speed that is not
// positive, sizes not 0 < min <= max.
[[nodiscard]] Expected<void> validate(const StormOptions& options);

struct StormJob {
    std::string id; // "tpl17", "gate2"
    unsigned host = 0;
    unsigned datastore = 0;
    bool gate = false;
    double arrival_s = 0.0; // templates: 0 (all due at once); gates: mid-run
    std::uint64_t bytes = 0;
};

// Templates first (host = index % hosts, datastore = index % datastores, size drawn), then gates (host,
// datastore and arrival drawn, arrivals in 20-80% of the ideal makespan: template bytes / the fleet's
// aggregate read capacity), by arrival.
[[nodiscard]] std::vector<StormJob> make_jobs(const StormOptions& options);

enum class Arm { scheduler, no_scheduler };
[[nodiscard]] std::string_view to_string(Arm arm); // "scheduler", "no-scheduler"

// The state right after an event (and the step that followed it), until the next sample.
struct Sample {
    double time_s = 0.0;
    unsigned max_running_per_host = 0;
    unsigned max_running_per_datastore = 0;
    unsigned total_running = 0;
};

struct JobOutcome {
    std::string id;
    bool gate = false;
    double arrival_s = 0.0;
    double start_s = -1.0;   // first start; -1: never started
    double finish_s = -1.0;  // -1: never finished
    double run_s = 0.0;      // time spent running (pauses excluded)
    double unloaded_s = 0.0; // the same scan alone on the fleet
    unsigned completions = 0;
    unsigned pauses = 0;
};

struct ArmResult {
    Arm arm = Arm::scheduler;
    double makespan_s = 0.0; // from the templates' due time to the last finish
    unsigned peak_per_host = 0;
    unsigned peak_per_datastore = 0;
    unsigned peak_total = 0;
    double mean_slowdown = 0.0; // run time / unloaded run time, over every job
    double max_slowdown = 0.0;
    double gate_wait_max_s = 0.0; // arrival to start
    double gate_wait_median_s = 0.0;
    double gate_turnaround_max_s = 0.0; // arrival to finish: how long the power-on waits for its verdict
    double gate_turnaround_median_s = 0.0;
    unsigned pauses = 0;
    std::uint64_t bytes = 0;
    std::vector<Sample> series;
    std::vector<JobOutcome> jobs; // in make_jobs() order
    // Checked after every event: caps (scheduler arm), the model agreeing with the scheduler's counts,
    // every Decision applicable; at the end: every job completed exactly once. Empty when all held.
    std::vector<std::string> violations;
};

// Runs one arm. Errc::invalid_argument: bad options (validate); Errc::internal: the scheduler refused the
// fleet or a job (a bug in the model).
[[nodiscard]] Expected<ArmResult> run_arm(const StormOptions& options, const std::vector<StormJob>& jobs,
                                          Arm arm);

// Pieces the fleet model (fleet_storm.hpp) shares with this one.
// The simulated fleet: hosts "h0".., datastores "ds0".. (roots /storm/dsN), every host mounting every
// datastore; caps as options say when capped, else slots nobody fills (unlimited).
[[nodiscard]] Expected<scheduler::Inventory> make_inventory(const StormOptions& options, bool capped,
                                                            unsigned unlimited);
[[nodiscard]] std::string host_name(unsigned host);
[[nodiscard]] std::string datastore_name(unsigned datastore);
[[nodiscard]] std::string target_of(const StormJob& job);
// Simulated seconds <-> scheduler time (day 0: 2024-01-01 00:00 UTC, millisecond resolution).
[[nodiscard]] scheduler::TimePoint to_time_point(double seconds);
[[nodiscard]] double to_seconds(scheduler::TimePoint t);
// Processor sharing: a running scan's speed (bytes/s) with these many scans on its host and datastore.
[[nodiscard]] double shared_speed(const StormOptions& options, unsigned on_host, unsigned on_datastore);
// From result.jobs: makespan, slowdowns, gate waits and turnarounds; a job not completed exactly once is a
// violation.
void summarise(ArmResult& result);
// Job indices in arrival order (stable: make_jobs sorts them already; the models do not rely on it).
[[nodiscard]] std::vector<std::size_t> arrival_order(const std::vector<StormJob>& jobs);
// A job's outcome before it runs: id, kind, arrival and its run time alone on the fleet.
[[nodiscard]] JobOutcome outcome_before_run(const StormOptions& options, const StormJob& job);
// The state after an event: the busiest host's and datastore's scans, the total; peaks updated; several
// events at one instant keep the state after the last.
void record_sample(ArmResult& result, const std::vector<unsigned>& host_running,
                   const std::vector<unsigned>& datastore_running, double now);
// Processor sharing over the jobs' live states (each model's Live has state, remaining bytes and speed, one
// per job in make_jobs order): every running scan's speed from the scans on its host and datastore now;
// returns the earliest projected finish (infinity when nothing runs).
template <class Live>
double share_reads(const StormOptions& options, const std::vector<StormJob>& jobs, std::vector<Live>& live,
                   const std::vector<unsigned>& host_running, const std::vector<unsigned>& datastore_running,
                   double now) {
    double next = std::numeric_limits<double>::infinity();
    for (std::size_t i = 0; i < live.size(); ++i) {
        if (live[i].state == scheduler::JobState::running) {
            live[i].speed =
                shared_speed(options, host_running[jobs[i].host], datastore_running[jobs[i].datastore]);
            next = std::min(next, now + live[i].remaining / live[i].speed);
        }
    }
    return next;
}

// Moves the running scans from now to next (next_finish: what share_reads returned): each one's run time
// grows in result.jobs; the scans due to finish at next are returned, still running (the caller ends them),
// the others read on.
template <class Live>
std::vector<std::size_t> read_until(std::vector<Live>& live, ArmResult& result, double now, double next,
                                    double next_finish) {
    constexpr double k_same_instant_s = 1e-9; // finishes this close to the next one happen with it
    std::vector<std::size_t> finishing;
    for (std::size_t i = 0; i < live.size(); ++i) {
        if (live[i].state != scheduler::JobState::running) {
            continue;
        }
        result.jobs[i].run_s += next - now;
        if (next >= next_finish &&
            now + live[i].remaining / live[i].speed <= next_finish + k_same_instant_s) {
            finishing.push_back(i);
        } else {
            live[i].remaining = std::max(0.0, live[i].remaining - live[i].speed * (next - now));
        }
    }
    return finishing;
}

// Adds a violation (the first 20 are kept).
void add_violation(ArmResult& result, std::string message);

} // namespace coldscan::bench
