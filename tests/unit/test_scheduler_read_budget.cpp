// The service's read budgets: every read is charged to its host and its datastore, the slower one sets the
// wait, and a throttled host reads at a quarter of its cap.
#include "../../scheduler/src/read_budget.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

using namespace coldscan;
using namespace coldscan::scheduler;
using namespace std::chrono_literals;

namespace {

constexpr std::uint64_t MiB = 1ULL << 20;

Inventory inventory(std::uint64_t host_rate, std::uint64_t datastore_rate) {
    auto made = Inventory::create({HostSpec{"h1", 2, host_rate, 0.7}, HostSpec{"h2", 2, 0, 0.7}},
                                  {DatastoreSpec{"d1", {"/d1"}, {"h1", "h2"}, 6, datastore_rate}});
    REQUIRE(made);
    return *made;
}

const TimePoint t0{std::chrono::hours{1000}};

} // namespace

TEST_CASE("ReadBudgets", "[scheduler]") {
    SECTION("no caps: no waits, bytes counted per host and datastore") {
        ReadBudgets budgets(inventory(0, 0));
        CHECK(budgets.charge(0, 0, 100 * MiB, t0) == 0ms);
        CHECK(budgets.charge(1, 0, 50 * MiB, t0) == 0ms);
        CHECK(budgets.host_bytes(0) == 100 * MiB);
        CHECK(budgets.host_bytes(1) == 50 * MiB);
        CHECK(budgets.datastore_bytes(0) == 150 * MiB);
    }
    SECTION("the host cap: a burst of a quarter second, then the rate") {
        ReadBudgets budgets(inventory(40 * MiB, 0)); // burst 10 MiB
        CHECK(budgets.charge(0, 0, 10 * MiB, t0) == 0ms);
        CHECK(budgets.charge(0, 0, 20 * MiB, t0) == 500ms);
        CHECK(budgets.charge(1, 0, 20 * MiB, t0) == 0ms); // another host is not charged
    }
    SECTION("the datastore cap binds every host on it") {
        ReadBudgets budgets(inventory(0, 8 * MiB)); // burst 4 MiB (the minimum)
        CHECK(budgets.charge(0, 0, 4 * MiB, t0) == 0ms);
        CHECK(budgets.charge(1, 0, 8 * MiB, t0) == 1000ms);
    }
    SECTION("the slower of host and datastore sets the wait") {
        ReadBudgets budgets(inventory(16 * MiB, 80 * MiB)); // bursts 4 and 20 MiB
        CHECK(budgets.charge(0, 0, 20 * MiB, t0) == 1000ms);
    }
    SECTION("a throttled host reads at a quarter of its cap, or 32 MiB/s without one") {
        ReadBudgets budgets(inventory(40 * MiB, 0));
        budgets.set_throttled(0, true);
        budgets.set_throttled(1, true);
        // Host 0: cap 40 MiB/s, burst 10; pressure rate 10 MiB/s, burst 4 MiB.
        CHECK(budgets.charge(0, 0, 10 * MiB, t0) == 600ms);
        // Host 1: no cap; pressure rate 32 MiB/s, burst 8 MiB.
        CHECK(budgets.charge(1, 0, 40 * MiB, t0) == 1000ms);
        budgets.set_throttled(1, false);
        CHECK(budgets.charge(1, 0, 40 * MiB, t0 + 10s) == 0ms);
    }
    SECTION("a stopped job's throttle does not sit out its debt") {
        ReadBudgets budgets(inventory(4 * MiB, 0));
        auto stop = std::make_shared<std::atomic<bool>>(false);
        auto throttle = budgets.throttle_for(0, 0, stop);
        // 400 MiB at 4 MiB/s is 100 s of debt; stopping ends the wait (else this test outlives its timeout).
        std::thread reader([&] { throttle->acquire(400 * MiB); });
        std::this_thread::sleep_for(200ms);
        stop->store(true);
        reader.join();
        CHECK(budgets.host_bytes(0) == 400 * MiB);
    }
}

TEST_CASE("ReadBudgets: a fleet node reads at its share of a budget", "[scheduler]") {
    ReadBudgets budgets(inventory(40 * MiB, 0));
    budgets.set_host_share(0, 0.5); // two live leases on h1 in the fleet, one of them here
    CHECK(budgets.host_rate(0) == 20 * MiB);
    // Burst a quarter second of the share (5 MiB), then the share's rate: 20 MiB more take a second.
    CHECK(budgets.charge(0, 0, 5 * MiB, t0) == 0ms);
    CHECK(budgets.charge(0, 0, 20 * MiB, t0) == 1000ms);
    budgets.set_host_share(0, 1.0);
    CHECK(budgets.host_rate(0) == 40 * MiB);
    budgets.set_host_share(0, 0.0); // never stalled outright
    CHECK(budgets.host_rate(0) == 256 * 1024);
    budgets.set_host_share(1, 0.5); // an unlimited host stays unlimited
    CHECK(budgets.host_rate(1) == 0);
    CHECK(budgets.charge(1, 0, 100 * MiB, t0) == 0ms);
}
