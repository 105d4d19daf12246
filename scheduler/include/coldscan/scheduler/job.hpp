// A scan job as the scheduler sees it: what to scan, where its bytes come from, how urgent it is.
#pragma once

#include "coldscan/scheduler/clock.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace coldscan::scheduler {

// Highest first: a gate scan holds back a VM power-on, an on-demand scan has a user waiting, nightly scans
// of templates and backups fill what is left.
enum class Priority {
    gate,
    on_demand,
    nightly,
};

enum class JobState {
    queued,
    running,
    paused, // a nightly job preempted by a gate job; holds no slot, resumes before queued nightly jobs
    done,   // finished or cancelled
};

struct Job {
    std::string id;
    std::string target;    // the image, backup or snapshot to scan
    std::string host;      // the hypervisor host the image belongs to (an Inventory host name)
    std::string datastore; // where its bytes live (an Inventory datastore name)
    Priority priority = Priority::nightly;
    TimePoint due{};                   // not started before; within a host, the oldest due starts first
    std::uint64_t estimated_bytes = 0; // for plan(): bytes the scan will read
};

[[nodiscard]] std::string_view to_string(Priority priority);
[[nodiscard]] std::string_view to_string(JobState state);
// "gate", "on_demand" (or "on-demand"), "nightly"; nullopt otherwise.
[[nodiscard]] std::optional<Priority> parse_priority(std::string_view text);

} // namespace coldscan::scheduler
