// Time as the scheduler sees it: UTC instants with millisecond resolution.
// The scheduler never reads a clock. Every call that depends on time takes `now`, so the daemon passes the
// system clock and tests and plan() pass simulated time.
#pragma once

#include <chrono>

namespace coldscan::scheduler {

using Duration = std::chrono::milliseconds;
using TimePoint = std::chrono::sys_time<Duration>;

} // namespace coldscan::scheduler
