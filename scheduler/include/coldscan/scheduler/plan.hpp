// What Scheduler::plan() answers: when each waiting or running job would start and finish if nothing else
// arrived, finished early or changed pressure.
#pragma once

#include "coldscan/scheduler/clock.hpp"
#include "coldscan/scheduler/job.hpp"
#include "coldscan/scheduler/window.hpp"

#include <optional>
#include <string>
#include <vector>

namespace coldscan::scheduler {

struct PlanEntry {
    std::string id;
    std::string host;
    std::string datastore;
    Priority priority = Priority::nightly;
    JobState state = JobState::queued; // now
    // Queued: when it would start; paused: when it would resume; running: when it last started or resumed.
    // nullopt: not within the plan's horizon (a throttled host, no window opens, a slot never frees).
    std::optional<TimePoint> start;
    std::optional<TimePoint> finish; // nullopt: not within the horizon
    Duration estimated_run_time{};   // the whole scan at the estimated speed, pauses excluded
};

struct Plan {
    TimePoint now{};
    std::vector<PlanEntry> jobs; // by start (unplanned last), then id
    // When the last job would finish (now when there is none); nullopt when some job has no finish.
    std::optional<TimePoint> all_done;
    std::vector<Window> nightly_windows; // when nightly jobs may start (empty: any time)
};

} // namespace coldscan::scheduler
