#include "coldscan/scheduler/scheduler.hpp"
#include "test_scheduler_support.hpp"

#include <catch2/catch.hpp>

using namespace coldscan;
using namespace coldscan::scheduler;
using namespace std::chrono_literals;
using coldscan::test::at;
using coldscan::test::make_job;

namespace {

// One host with one slot, unlimited caps; scans run at 1000 B/s, so 10'000 bytes take 10 s.
SchedulerOptions slow_scans() {
    SchedulerOptions options;
    options.assumed_scan_bytes_per_second = 1000;
    return options;
}

Scheduler one_slot(SchedulerOptions options = slow_scans()) {
    return Scheduler(test::make_inventory({HostSpec{"esx1", 1, 0, 0.7}},
                                          {DatastoreSpec{"ds1", {"/vmfs/ds1"}, {"esx1"}, 4, 0}}),
                     std::move(options));
}

void submit(Scheduler& scheduler, Job job) {
    REQUIRE(scheduler.submit(std::move(job)).has_value());
}

const PlanEntry& entry(const Plan& plan, std::string_view id) {
    for (const PlanEntry& job : plan.jobs) {
        if (job.id == id) {
            return job;
        }
    }
    FAIL("no plan entry for " << id);
    return plan.jobs.front();
}

const TimePoint t0 = at(0, 23);

} // namespace

TEST_CASE("Scheduler::estimated_run_time", "[scheduler]") {
    SECTION("the assumed scan speed when no cap is tighter") {
        Scheduler scheduler = one_slot();
        submit(scheduler, make_job("a", "esx1", "ds1", Priority::nightly, t0, 10'000));
        CHECK(scheduler.estimated_run_time("a") == 10s);
        CHECK_FALSE(scheduler.estimated_run_time("zz").has_value());
    }
    SECTION("a read cap is shared equally by the slots") {
        Scheduler scheduler(test::make_inventory({HostSpec{"esx1", 2, 1000, 0.7}},
                                                 {DatastoreSpec{"ds1", {"/vmfs/ds1"}, {"esx1"}, 4, 1000}}),
                            SchedulerOptions{});
        submit(scheduler, make_job("a", "esx1", "ds1", Priority::nightly, t0, 10'000));
        // Host: 1000 B/s over 2 slots; datastore: 1000 B/s over 4 slots is tighter (250 B/s).
        CHECK(scheduler.estimated_run_time("a") == 40s);
    }
    SECTION("milliseconds round up") {
        Scheduler scheduler = one_slot();
        submit(scheduler, make_job("a", "esx1", "ds1", Priority::nightly, t0, 1));
        CHECK(scheduler.estimated_run_time("a") == 1ms);
    }
}

TEST_CASE("Scheduler::plan", "[scheduler]") {
    SECTION("queued jobs one after another in the order step() would start them") {
        Scheduler scheduler = one_slot();
        submit(scheduler, make_job("c", "esx1", "ds1", Priority::nightly, t0, 10'000));
        submit(scheduler, make_job("b", "esx1", "ds1", Priority::nightly, t0, 20'000));
        submit(scheduler, make_job("a", "esx1", "ds1", Priority::on_demand, t0, 5'000));
        const Plan plan = scheduler.plan(t0);
        REQUIRE(plan.jobs.size() == 3);
        CHECK(plan.jobs[0].id == "a");
        CHECK(plan.jobs[0].start == t0);
        CHECK(plan.jobs[0].finish == t0 + 5s);
        CHECK(plan.jobs[1].id == "b");
        CHECK(plan.jobs[1].start == t0 + 5s);
        CHECK(plan.jobs[1].finish == t0 + 25s);
        CHECK(plan.jobs[1].estimated_run_time == 20s);
        CHECK(plan.jobs[2].id == "c");
        CHECK(plan.jobs[2].start == t0 + 25s);
        CHECK(plan.all_done == t0 + 35s);
    }
    SECTION("the scheduler itself is not changed") {
        Scheduler scheduler = one_slot();
        submit(scheduler, make_job("a", "esx1", "ds1", Priority::nightly, t0, 10'000));
        const Plan plan = scheduler.plan(t0);
        CHECK(plan.jobs.size() == 1);
        CHECK(scheduler.state("a") == JobState::queued);
        CHECK(scheduler.count(JobState::done) == 0);
        CHECK(scheduler.step(t0).start == std::vector<std::string>{"a"});
    }
    SECTION("a running job finishes after the rest of its estimate") {
        Scheduler scheduler = one_slot();
        submit(scheduler, make_job("a", "esx1", "ds1", Priority::nightly, t0, 10'000));
        submit(scheduler, make_job("b", "esx1", "ds1", Priority::nightly, t0, 10'000));
        CHECK(scheduler.step(t0).start == std::vector<std::string>{"a"});
        const Plan plan = scheduler.plan(t0 + 4s);
        CHECK(entry(plan, "a").state == JobState::running);
        CHECK(entry(plan, "a").start == t0);
        CHECK(entry(plan, "a").finish == t0 + 10s);
        CHECK(entry(plan, "b").start == t0 + 10s);
        SECTION("a running job past its estimate is assumed to finish now") {
            const Plan late = scheduler.plan(t0 + 60s);
            CHECK(entry(late, "a").finish == t0 + 60s);
            CHECK(entry(late, "b").start == t0 + 60s);
        }
    }
    SECTION("a paused job resumes after the gate job, with the rest of its estimate") {
        Scheduler scheduler = one_slot();
        submit(scheduler, make_job("n", "esx1", "ds1", Priority::nightly, t0, 10'000));
        CHECK(scheduler.step(t0).start == std::vector<std::string>{"n"});
        submit(scheduler, make_job("g", "esx1", "ds1", Priority::gate, t0 + 3s, 2'000));
        CHECK(scheduler.step(t0 + 3s).pause == std::vector<std::string>{"n"});
        const Plan plan = scheduler.plan(t0 + 3s);
        CHECK(entry(plan, "g").finish == t0 + 5s);
        CHECK(entry(plan, "n").state == JobState::paused);
        CHECK(entry(plan, "n").start == t0 + 5s);
        CHECK(entry(plan, "n").finish == t0 + 12s);
    }
    SECTION("nightly jobs start when the window opens") {
        SchedulerOptions options = slow_scans();
        options.nightly_windows.push_back(Window::create(22h, 6h).value());
        Scheduler scheduler = one_slot(options);
        submit(scheduler, make_job("n", "esx1", "ds1", Priority::nightly, at(0, 9), 10'000));
        const Plan plan = scheduler.plan(at(0, 9));
        CHECK(entry(plan, "n").start == at(0, 22));
        CHECK(plan.all_done == at(0, 22, 0, 10));
    }
    SECTION("a throttled host's jobs are not planned") {
        Scheduler scheduler = one_slot();
        submit(scheduler, make_job("n", "esx1", "ds1", Priority::nightly, t0, 10'000));
        REQUIRE(scheduler.set_pressure("esx1", 0.9, t0).has_value());
        const Plan plan = scheduler.plan(t0);
        CHECK_FALSE(entry(plan, "n").start.has_value());
        CHECK_FALSE(entry(plan, "n").finish.has_value());
        CHECK_FALSE(plan.all_done.has_value());
    }
    SECTION("nothing beyond the horizon") {
        SchedulerOptions options = slow_scans();
        options.plan_horizon = 15s;
        Scheduler scheduler = one_slot(options);
        submit(scheduler, make_job("a", "esx1", "ds1", Priority::nightly, t0, 10'000));
        submit(scheduler, make_job("b", "esx1", "ds1", Priority::nightly, t0, 10'000));
        submit(scheduler, make_job("c", "esx1", "ds1", Priority::nightly, t0, 10'000));
        const Plan plan = scheduler.plan(t0);
        CHECK(entry(plan, "b").start == t0 + 10s);
        CHECK(entry(plan, "b").finish == t0 + 20s);
        CHECK_FALSE(entry(plan, "c").start.has_value());
        CHECK(plan.jobs.back().id == "c");
        CHECK_FALSE(plan.all_done.has_value());
    }
    SECTION("an empty scheduler is all done now") {
        Scheduler scheduler = one_slot();
        const Plan plan = scheduler.plan(t0);
        CHECK(plan.jobs.empty());
        CHECK(plan.all_done == t0);
    }
}
