// Scheduler::plan(): the rules of scheduler.cpp run forward on a copy, with simulated time.
//
// Rather than a second model of the rules that could drift from the real one, plan() copies the scheduler
// and drives the copy as the daemon would: step(), then jump to the next estimated finish or wakeup,
// report those finishes, step() again. The only guesses are the run times (run_time_estimate) and that
// nothing else happens: no new jobs, no early finishes, pressure as it is now.
#include "coldscan/scheduler/scheduler.hpp"

#include <algorithm>
#include <cassert>
#include <limits>

namespace coldscan::scheduler {
namespace {

std::uint64_t per_slot(std::uint64_t bytes_per_second, unsigned slots) {
    if (bytes_per_second == 0) {
        return std::numeric_limits<std::uint64_t>::max();
    }
    return std::max<std::uint64_t>(bytes_per_second / slots, 1);
}

} // namespace

Duration Scheduler::run_time_estimate(const JobRecord& job) const {
    const HostSpec& host = m_inventory.hosts()[job.host];
    const DatastoreSpec& datastore = m_inventory.datastores()[job.datastore];
    const std::uint64_t rate =
        std::min({m_options.assumed_scan_bytes_per_second,
                  per_slot(host.max_read_bytes_per_second, host.max_concurrent_scans),
                  per_slot(datastore.max_read_bytes_per_second, datastore.max_concurrent_scans)});
    const std::uint64_t bytes = job.job.estimated_bytes;
    // bytes / rate seconds, in milliseconds rounded up, without overflowing bytes * 1000.
    const std::uint64_t milliseconds = bytes / rate * 1000 + ((bytes % rate) * 1000 + rate - 1) / rate;
    return Duration(static_cast<Duration::rep>(milliseconds));
}

std::optional<Duration> Scheduler::estimated_run_time(std::string_view id) const {
    auto found = m_jobs.find(id);
    if (found == m_jobs.end()) {
        return std::nullopt;
    }
    return run_time_estimate(found->second);
}

Plan Scheduler::plan(TimePoint now) const {
    Scheduler sim = *this;
    Plan plan;
    plan.now = now;
    plan.nightly_windows = m_options.nightly_windows;
    std::map<std::string, PlanEntry, std::less<>> entries;
    std::set<std::pair<TimePoint, std::string>> finishing;
    // When a job started or resumed in the copy would finish: the rest of its estimate from then on.
    const auto finish_of = [&](const JobRecord& job, TimePoint at) {
        const Duration rest = run_time_estimate(job) - job.ran - (at - job.started_at);
        return at + std::max(rest, Duration::zero());
    };
    for (const auto& [id, job] : m_jobs) {
        if (job.state == JobState::done) {
            continue;
        }
        PlanEntry entry;
        entry.id = id;
        entry.host = job.job.host;
        entry.datastore = job.job.datastore;
        entry.priority = job.job.priority;
        entry.state = job.state;
        entry.estimated_run_time = run_time_estimate(job);
        if (job.state == JobState::running) {
            entry.start = job.started_at;
            entry.finish = finish_of(job, now);
            finishing.insert({*entry.finish, id});
        }
        entries.emplace(id, std::move(entry));
    }

    const TimePoint horizon = now + m_options.plan_horizon;
    TimePoint t = now;
    while (true) {
        const Decision decision = sim.step(t);
        for (const std::string& id : decision.pause) {
            PlanEntry& entry = entries.at(id);
            finishing.erase({*entry.finish, id});
            entry.finish.reset();
        }
        for (const auto* started : {&decision.resume, &decision.start}) {
            for (const std::string& id : *started) {
                PlanEntry& entry = entries.at(id);
                const TimePoint finish = finish_of(sim.record(id), t);
                // A job paused and resumed within the plan keeps its first (or actual) start.
                entry.start = entry.start.value_or(t);
                entry.finish = finish;
                finishing.insert({finish, id});
            }
        }
        std::optional<TimePoint> next = sim.next_wakeup(t);
        if (!finishing.empty() && (!next || finishing.begin()->first < *next)) {
            next = finishing.begin()->first;
        }
        if (!next || *next > horizon) {
            break;
        }
        assert(*next >= t);
        t = *next;
        while (!finishing.empty() && finishing.begin()->first == t) {
            const std::string id = finishing.begin()->second;
            finishing.erase(finishing.begin());
            auto done = sim.finished(id, t);
            assert(done.has_value());
        }
    }
    // Finishes past the horizon were still estimated; a job that never started within it has none.
    for (auto& [id, entry] : entries) {
        if (!entry.start) {
            entry.finish.reset();
        }
        plan.jobs.push_back(std::move(entry));
    }
    std::ranges::stable_sort(plan.jobs, [](const PlanEntry& a, const PlanEntry& b) {
        if (a.start.has_value() != b.start.has_value()) {
            return a.start.has_value();
        }
        return a.start < b.start;
    });
    plan.all_done = now;
    for (const PlanEntry& entry : plan.jobs) {
        if (!entry.finish) {
            plan.all_done.reset();
            break;
        }
        plan.all_done = std::max(*plan.all_done, *entry.finish);
    }
    return plan;
}

} // namespace coldscan::scheduler
