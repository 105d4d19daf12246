#include "coldscan/scheduler/job.hpp"

namespace coldscan::scheduler {

std::string_view to_string(Priority priority) {
    switch (priority) {
    case Priority::gate:
        return "gate";
    case Priority::on_demand:
        return "on_demand";
    case Priority::nightly:
        return "nightly";
    }
    return "unknown";
}

std::string_view to_string(JobState state) {
    switch (state) {
    case JobState::queued:
        return "queued";
    case JobState::running:
        return "running";
    case JobState::paused:
        return "paused";
    case JobState::done:
        return "done";
    }
    return "unknown";
}

std::optional<Priority> parse_priority(std::string_view text) {
    if (text == "gate") {
        return Priority::gate;
    }
    if (text == "on_demand" || text == "on-demand") {
        return Priority::on_demand;
    }
    if (text == "nightly") {
        return Priority::nightly;
    }
    return std::nullopt;
}

} // namespace coldscan::scheduler
