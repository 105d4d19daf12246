#include "coldscan/common/byte_budget.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

using namespace coldscan;

TEST_CASE("ByteBudget::acquire") {
    ByteBudget budget(100);
    SECTION("counts what is held and the peak") {
        budget.acquire(40);
        budget.acquire(60);
        CHECK(budget.in_flight() == 100);
        budget.release(60);
        CHECK(budget.in_flight() == 40);
        CHECK(budget.peak() == 100);
        budget.release(40);
        CHECK(budget.in_flight() == 0);
    }
    SECTION("one request bigger than the budget passes when nothing else is in flight") {
        budget.acquire(500);
        CHECK(budget.in_flight() == 500);
        budget.release(500);
    }
    SECTION("blocks while the budget is held, resumes on release") {
        budget.acquire(80);
        std::atomic<bool> acquired{false};
        std::thread waiter([&] {
            budget.acquire(50);
            acquired = true;
        });
        // The waiter cannot get 50 more while 80 of 100 are held, however the threads are scheduled.
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        CHECK_FALSE(acquired.load());
        budget.release(80);
        waiter.join();
        CHECK(acquired.load());
        CHECK(budget.in_flight() == 50);
        CHECK(budget.peak() == 80);
        budget.release(50);
    }
}
