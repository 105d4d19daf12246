// Helpers for the scheduler's unit tests (header-only; the test glob compiles only test_*.cpp).
#pragma once

#include "coldscan/scheduler/inventory.hpp"
#include "coldscan/scheduler/job.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace coldscan::test {

// Day 0 is Monday 2024-01-01, UTC.
inline scheduler::TimePoint at(int day, int hour, int minute = 0, int second = 0) {
    using namespace std::chrono;
    return sys_days{year{2024} / January / 1} + days{day} + hours{hour} + minutes{minute} + seconds{second};
}

// "h" 7 -> "h7" (also sidesteps g++ 12's false -Wrestrict on "literal" + std::string&&).
inline std::string numbered(std::string_view prefix, long long n) {
    std::string name(prefix);
    name += std::to_string(n);
    return name;
}

inline scheduler::Inventory make_inventory(std::vector<scheduler::HostSpec> hosts,
                                           std::vector<scheduler::DatastoreSpec> datastores) {
    auto inventory = scheduler::Inventory::create(std::move(hosts), std::move(datastores));
    REQUIRE(inventory.has_value());
    return *inventory;
}

inline scheduler::Job make_job(std::string id, std::string host, std::string datastore,
                               scheduler::Priority priority, scheduler::TimePoint due,
                               std::uint64_t bytes = 1ULL << 30) {
    scheduler::Job job;
    job.target = "/vmfs/" + datastore + "/" + id + ".qcow2";
    job.id = std::move(id);
    job.host = std::move(host);
    job.datastore = std::move(datastore);
    job.priority = priority;
    job.due = due;
    job.estimated_bytes = bytes;
    return job;
}

} // namespace coldscan::test
