#include "coldscan/scheduler/scheduler.hpp"
#include "test_scheduler_support.hpp"

#include <algorithm>
#include <catch2/catch.hpp>

using namespace coldscan;
using namespace coldscan::scheduler;
using namespace std::chrono_literals;
using coldscan::test::at;
using coldscan::test::make_job;
using Ids = std::vector<std::string>;

namespace {

// esx1 and esx2 (2 scans each) share ds1 (3 scans); esx2 also mounts ds2 (2 scans).
Inventory small_inventory() {
    return test::make_inventory({HostSpec{"esx1", 2, 0, 0.7}, HostSpec{"esx2", 2, 0, 0.7}},
                                {DatastoreSpec{"ds1", {"/vmfs/ds1"}, {"esx1", "esx2"}, 3, 0},
                                 DatastoreSpec{"ds2", {"/vmfs/ds2"}, {"esx2"}, 2, 0}});
}

void submit(Scheduler& scheduler, Job job) {
    auto submitted = scheduler.submit(std::move(job));
    REQUIRE(submitted.has_value());
}

void finish(Scheduler& scheduler, std::string_view id, TimePoint now) {
    auto finished = scheduler.finished(id, now);
    REQUIRE(finished.has_value());
}

const TimePoint t0 = at(0, 23);

} // namespace

TEST_CASE("Scheduler::submit", "[scheduler]") {
    Scheduler scheduler(small_inventory(), {});
    SECTION("a job is queued") {
        submit(scheduler, make_job("a", "esx1", "ds1", Priority::nightly, t0));
        CHECK(scheduler.state("a") == JobState::queued);
        CHECK(scheduler.count(JobState::queued) == 1);
        CHECK_FALSE(scheduler.state("b").has_value());
    }
    SECTION("unknown host or datastore") {
        auto host = scheduler.submit(make_job("a", "esx9", "ds1", Priority::nightly, t0));
        REQUIRE_FALSE(host.has_value());
        CHECK(host.error().code == Errc::not_found);
        CHECK(host.error().message == "job a: unknown host esx9");
        auto datastore = scheduler.submit(make_job("a", "esx1", "ds9", Priority::nightly, t0));
        REQUIRE_FALSE(datastore.has_value());
        CHECK(datastore.error().code == Errc::not_found);
        CHECK(datastore.error().message == "job a: unknown datastore ds9");
    }
    SECTION("a host that does not mount the datastore") {
        auto refused = scheduler.submit(make_job("a", "esx1", "ds2", Priority::nightly, t0));
        REQUIRE_FALSE(refused.has_value());
        CHECK(refused.error().code == Errc::invalid_argument);
        CHECK(refused.error().message == "job a: host esx1 does not mount datastore ds2");
    }
    SECTION("ids are unique, done jobs included") {
        submit(scheduler, make_job("a", "esx1", "ds1", Priority::nightly, t0));
        auto twice = scheduler.submit(make_job("a", "esx2", "ds2", Priority::gate, t0));
        REQUIRE_FALSE(twice.has_value());
        CHECK(twice.error().code == Errc::invalid_argument);
        CHECK(twice.error().message == "job id a is already used");
        CHECK(scheduler.step(t0).start == Ids{"a"});
        finish(scheduler, "a", t0 + 1h);
        CHECK_FALSE(scheduler.submit(make_job("a", "esx1", "ds1", Priority::nightly, t0)).has_value());
        CHECK(scheduler.count(JobState::queued) == 0);
        CHECK(scheduler.count(JobState::done) == 1);
    }
    SECTION("an empty id") {
        auto refused = scheduler.submit(make_job("", "esx1", "ds1", Priority::nightly, t0));
        REQUIRE_FALSE(refused.has_value());
        CHECK(refused.error().code == Errc::invalid_argument);
    }
}

TEST_CASE("Scheduler::cancel", "[scheduler]") {
    Scheduler scheduler(small_inventory(), {});
    SECTION("a queued job is done and never starts") {
        submit(scheduler, make_job("a", "esx1", "ds1", Priority::nightly, t0));
        CHECK(scheduler.cancel("a") == JobState::queued);
        CHECK(scheduler.state("a") == JobState::done);
        CHECK(scheduler.step(t0).start.empty());
        CHECK(scheduler.count(JobState::queued) == 0);
    }
    SECTION("a running job keeps its slot until finished") {
        submit(scheduler, make_job("a", "esx1", "ds1", Priority::nightly, t0));
        CHECK(scheduler.step(t0).start == Ids{"a"});
        CHECK(scheduler.cancel("a") == JobState::running);
        CHECK(scheduler.state("a") == JobState::running);
        CHECK(scheduler.running_on_host("esx1") == 1u);
        finish(scheduler, "a", t0 + 1min);
        CHECK(scheduler.running_on_host("esx1") == 0u);
        CHECK(scheduler.cancel("a") == JobState::done);
    }
    SECTION("a paused job is done and never resumes") {
        submit(scheduler, make_job("n1", "esx1", "ds1", Priority::nightly, t0));
        submit(scheduler, make_job("n2", "esx1", "ds1", Priority::nightly, t0));
        CHECK(scheduler.step(t0).start == Ids{"n1", "n2"});
        submit(scheduler, make_job("g", "esx1", "ds1", Priority::gate, t0));
        CHECK(scheduler.step(t0).pause == Ids{"n2"});
        CHECK(scheduler.cancel("n2") == JobState::paused);
        finish(scheduler, "g", t0 + 1min);
        CHECK(scheduler.step(t0 + 1min).resume.empty());
        CHECK(scheduler.count(JobState::paused) == 0);
        CHECK(scheduler.count(JobState::done) == 2);
    }
    SECTION("an unknown id") {
        auto unknown = scheduler.cancel("zz");
        REQUIRE_FALSE(unknown.has_value());
        CHECK(unknown.error().code == Errc::not_found);
    }
}

TEST_CASE("Scheduler::finished", "[scheduler]") {
    Scheduler scheduler(small_inventory(), {});
    submit(scheduler, make_job("a", "esx1", "ds1", Priority::on_demand, t0));
    submit(scheduler, make_job("b", "esx1", "ds1", Priority::on_demand, t0 + 1min));
    SECTION("frees the job's host and datastore slots") {
        CHECK(scheduler.step(t0 + 1min).start == Ids{"a", "b"});
        CHECK(scheduler.running_on_host("esx1") == 2u);
        CHECK(scheduler.running_on_datastore("ds1") == 2u);
        finish(scheduler, "a", t0 + 5min);
        CHECK(scheduler.state("a") == JobState::done);
        CHECK(scheduler.running_on_host("esx1") == 1u);
        CHECK(scheduler.running_on_datastore("ds1") == 1u);
        CHECK(scheduler.count(JobState::running) == 1);
    }
    SECTION("a queued job has not run") {
        auto refused = scheduler.finished("a", t0);
        REQUIRE_FALSE(refused.has_value());
        CHECK(refused.error().code == Errc::invalid_argument);
        CHECK(refused.error().message == "job a is queued, not running");
    }
    SECTION("a job finishes once") {
        CHECK(scheduler.step(t0).start == Ids{"a"});
        finish(scheduler, "a", t0 + 1min);
        auto twice = scheduler.finished("a", t0 + 2min);
        REQUIRE_FALSE(twice.has_value());
        CHECK(twice.error().message == "job a is done, not running");
        CHECK(scheduler.count(JobState::done) == 1);
    }
    SECTION("a done job can be forgotten, and its id used again; a running one cannot") {
        CHECK(scheduler.step(t0 + 1min).start == Ids{"a", "b"});
        CHECK_FALSE(scheduler.forget("a"));
        finish(scheduler, "a", t0 + 2min);
        CHECK(scheduler.forget("a"));
        CHECK_FALSE(scheduler.forget("a"));
        CHECK_FALSE(scheduler.state("a").has_value());
        CHECK(scheduler.count(JobState::done) == 0);
        CHECK(scheduler.count(JobState::running) == 1);
        submit(scheduler, make_job("a", "esx1", "ds1", Priority::on_demand, t0 + 3min));
        CHECK(scheduler.step(t0 + 3min).start == Ids{"a"});
        CHECK(scheduler.running_on_host("esx1") == 2u);
    }
    SECTION("an unknown id") {
        auto unknown = scheduler.finished("zz", t0);
        REQUIRE_FALSE(unknown.has_value());
        CHECK(unknown.error().code == Errc::not_found);
    }
}

TEST_CASE("Scheduler::set_pressure", "[scheduler]") {
    Scheduler scheduler(small_inventory(), {});
    SECTION("above the threshold throttles, at or below it does not") {
        REQUIRE(scheduler.set_pressure("esx1", 0.7, t0).has_value());
        CHECK(scheduler.throttled_hosts().empty());
        REQUIRE(scheduler.set_pressure("esx1", 0.71, t0 + 1min).has_value());
        CHECK(scheduler.throttled_hosts() == Ids{"esx1"});
        CHECK(scheduler.throttled_since("esx1") == t0 + 1min);
        REQUIRE(scheduler.set_pressure("esx1", 0.9, t0 + 2min).has_value());
        CHECK(scheduler.throttled_since("esx1") == t0 + 1min);
        REQUIRE(scheduler.set_pressure("esx1", 0.3, t0 + 3min).has_value());
        CHECK(scheduler.throttled_hosts().empty());
        CHECK_FALSE(scheduler.throttled_since("esx1").has_value());
    }
    SECTION("values outside 0..1 and unknown hosts are refused") {
        auto high = scheduler.set_pressure("esx1", 1.5, t0);
        REQUIRE_FALSE(high.has_value());
        CHECK(high.error().code == Errc::invalid_argument);
        CHECK_FALSE(scheduler.set_pressure("esx1", std::nan(""), t0).has_value());
        auto unknown = scheduler.set_pressure("esx9", 0.5, t0);
        REQUIRE_FALSE(unknown.has_value());
        CHECK(unknown.error().code == Errc::not_found);
    }
}

TEST_CASE("Scheduler::step", "[scheduler]") {
    Scheduler scheduler(small_inventory(), {});
    SECTION("host caps hold") {
        for (const char* id : {"a1", "a2", "a3"}) {
            submit(scheduler, make_job(id, "esx1", "ds1", Priority::nightly, t0));
        }
        const Decision decision = scheduler.step(t0);
        CHECK(decision.start == Ids{"a1", "a2"});
        CHECK(decision.pause.empty());
        CHECK(scheduler.running_on_host("esx1") == 2u);
        CHECK(scheduler.step(t0).empty());
        finish(scheduler, "a1", t0 + 1min);
        CHECK(scheduler.step(t0 + 1min).start == Ids{"a3"});
    }
    SECTION("datastore caps hold across hosts") {
        for (const char* id : {"a1", "a2", "a3"}) {
            submit(scheduler, make_job(id, "esx1", "ds1", Priority::nightly, t0));
        }
        for (const char* id : {"b1", "b2", "b3"}) {
            submit(scheduler, make_job(id, "esx2", "ds1", Priority::nightly, t0));
        }
        CHECK(scheduler.step(t0).start == Ids{"a1", "b1", "a2"});
        CHECK(scheduler.running_on_datastore("ds1") == 3u);
        CHECK(scheduler.running_on_host("esx2") == 1u);
    }
    SECTION("a full datastore passes over to the host's job on another datastore") {
        submit(scheduler, make_job("a1", "esx1", "ds1", Priority::nightly, t0));
        submit(scheduler, make_job("a2", "esx1", "ds1", Priority::nightly, t0));
        submit(scheduler, make_job("b1", "esx2", "ds1", Priority::nightly, t0));
        submit(scheduler, make_job("b2", "esx2", "ds1", Priority::nightly, t0 + 1s));
        submit(scheduler, make_job("b3", "esx2", "ds2", Priority::nightly, t0 + 2s));
        CHECK(scheduler.step(t0 + 2s).start == Ids{"a1", "b1", "a2", "b3"});
        CHECK(scheduler.state("b2") == JobState::queued);
    }
    SECTION("within a host: oldest due first, then id") {
        submit(scheduler, make_job("c", "esx1", "ds1", Priority::on_demand, t0 + 2min));
        submit(scheduler, make_job("b", "esx1", "ds1", Priority::on_demand, t0 + 1min));
        submit(scheduler, make_job("a", "esx1", "ds1", Priority::on_demand, t0 + 2min));
        CHECK(scheduler.step(t0 + 3min).start == Ids{"b", "a"});
    }
    SECTION("a job does not start before it is due") {
        submit(scheduler, make_job("later", "esx1", "ds1", Priority::gate, t0 + 10min));
        CHECK(scheduler.step(t0).empty());
        CHECK(scheduler.step(t0 + 10min).start == Ids{"later"});
    }
    SECTION("priority: gate, then on-demand, then nightly") {
        submit(scheduler, make_job("n", "esx1", "ds1", Priority::nightly, t0 - 1h));
        submit(scheduler, make_job("o", "esx1", "ds1", Priority::on_demand, t0));
        submit(scheduler, make_job("g", "esx1", "ds1", Priority::gate, t0));
        CHECK(scheduler.step(t0).start == Ids{"g", "o"});
        CHECK(scheduler.state("n") == JobState::queued);
    }
    SECTION("fairness: hosts take turns, and the turn carries over between steps") {
        // ds1 (3 slots) is the bottleneck; esx1 has 6 jobs, esx2 has 2.
        for (int i = 1; i <= 6; ++i) {
            submit(scheduler, make_job(test::numbered("a", i), "esx1", "ds1", Priority::nightly, t0));
        }
        submit(scheduler, make_job("b1", "esx2", "ds1", Priority::nightly, t0));
        submit(scheduler, make_job("b2", "esx2", "ds1", Priority::nightly, t0));
        CHECK(scheduler.step(t0).start == Ids{"a1", "b1", "a2"});
        // esx1 started last: the next free ds1 slot is esx2's turn, even though an esx1 job ended.
        finish(scheduler, "a1", t0 + 1min);
        CHECK(scheduler.step(t0 + 1min).start == Ids{"b2"});
        finish(scheduler, "b1", t0 + 2min);
        CHECK(scheduler.step(t0 + 2min).start == Ids{"a3"});
    }
    SECTION("fairness: a host with 500 queued jobs does not starve one with 5") {
        for (int i = 0; i < 500; ++i) {
            submit(scheduler, make_job(test::numbered("a", i), "esx1", "ds1", Priority::nightly, t0));
        }
        // esx2's jobs are due an hour later than all of esx1's: oldest-due-first alone would starve them.
        for (int i = 0; i < 5; ++i) {
            submit(scheduler, make_job(test::numbered("b", i), "esx2", "ds1", Priority::nightly, t0 + 1h));
        }
        std::vector<std::string> order;
        TimePoint now = t0 + 1h;
        while (order.size() < 10) {
            const Decision decision = scheduler.step(now);
            REQUIRE_FALSE(decision.start.empty());
            now += 1min;
            for (const std::string& id : decision.start) {
                order.push_back(id);
                finish(scheduler, id, now);
            }
        }
        // ds1's 3 slots alternate between the hosts: all of esx2's jobs are among the first 10 starts.
        const auto from_esx2 =
            std::ranges::count_if(order, [](const std::string& id) { return id[0] == 'b'; });
        CHECK(from_esx2 == 5);
        CHECK(order.front() == "a0");
        CHECK(order[1] == "b0");
    }
    SECTION("a gate job pauses the most recently started nightly job on its full host") {
        submit(scheduler, make_job("n1", "esx1", "ds1", Priority::nightly, t0));
        submit(scheduler, make_job("n2", "esx1", "ds1", Priority::nightly, t0));
        submit(scheduler, make_job("n3", "esx1", "ds1", Priority::nightly, t0));
        CHECK(scheduler.step(t0).start == Ids{"n1", "n2"});
        submit(scheduler, make_job("g", "esx1", "ds1", Priority::gate, t0 + 1min));
        const Decision decision = scheduler.step(t0 + 1min);
        CHECK(decision.pause == Ids{"n2"});
        CHECK(decision.start == Ids{"g"});
        CHECK(decision.resume.empty());
        CHECK(scheduler.state("n2") == JobState::paused);
        CHECK(scheduler.running_on_host("esx1") == 2u);
        CHECK(scheduler.count(JobState::paused) == 1);
        SECTION("the paused job resumes first when a slot frees") {
            finish(scheduler, "g", t0 + 2min);
            const Decision after = scheduler.step(t0 + 2min);
            CHECK(after.resume == Ids{"n2"});
            CHECK(after.start.empty());
            CHECK(scheduler.state("n3") == JobState::queued);
            CHECK(scheduler.state("n2") == JobState::running);
        }
    }
    SECTION("a gate job pauses a nightly job on its full datastore, on another host") {
        submit(scheduler, make_job("a1", "esx1", "ds1", Priority::nightly, t0));
        submit(scheduler, make_job("a2", "esx1", "ds1", Priority::nightly, t0 + 1s));
        submit(scheduler, make_job("b1", "esx2", "ds1", Priority::nightly, t0));
        CHECK(scheduler.step(t0 + 1s).start == Ids{"a1", "b1", "a2"});
        submit(scheduler, make_job("g", "esx2", "ds1", Priority::gate, t0 + 1min));
        const Decision decision = scheduler.step(t0 + 1min);
        CHECK(decision.pause == Ids{"a2"});
        CHECK(decision.start == Ids{"g"});
        CHECK(scheduler.running_on_datastore("ds1") == 3u);
    }
    SECTION("host and datastore both full: one nightly job on both is enough") {
        submit(scheduler, make_job("a1", "esx1", "ds1", Priority::nightly, t0));
        submit(scheduler, make_job("b1", "esx2", "ds1", Priority::nightly, t0));
        submit(scheduler, make_job("a2", "esx1", "ds1", Priority::nightly, t0));
        submit(scheduler, make_job("b2", "esx2", "ds2", Priority::nightly, t0));
        CHECK(scheduler.step(t0).start == Ids{"a1", "b1", "a2", "b2"});
        submit(scheduler, make_job("g", "esx2", "ds1", Priority::gate, t0 + 1min));
        // b2 is the latest on esx2 but not on ds1; b1 holds both slots g needs.
        const Decision decision = scheduler.step(t0 + 1min);
        CHECK(decision.pause == Ids{"b1"});
        CHECK(decision.start == Ids{"g"});
    }
    SECTION("host and datastore both full, no job on both: the latest on each") {
        submit(scheduler, make_job("a1", "esx1", "ds1", Priority::nightly, t0));
        submit(scheduler, make_job("a2", "esx1", "ds1", Priority::nightly, t0));
        submit(scheduler, make_job("b1", "esx2", "ds1", Priority::on_demand, t0));
        submit(scheduler, make_job("b2", "esx2", "ds2", Priority::nightly, t0));
        CHECK(scheduler.step(t0).start == Ids{"b1", "a1", "b2", "a2"});
        submit(scheduler, make_job("g", "esx2", "ds1", Priority::gate, t0 + 1min));
        const Decision decision = scheduler.step(t0 + 1min);
        CHECK(decision.pause == Ids{"b2", "a2"});
        CHECK(decision.start == Ids{"g"});
        CHECK(scheduler.running_on_host("esx1") == 1u);
        CHECK(scheduler.running_on_host("esx2") == 2u);
        CHECK(scheduler.running_on_datastore("ds1") == 3u);
        CHECK(scheduler.running_on_datastore("ds2") == 0u);
    }
    SECTION("a gate job never pauses on-demand jobs: it takes the next slot") {
        submit(scheduler, make_job("o1", "esx1", "ds1", Priority::on_demand, t0));
        submit(scheduler, make_job("o2", "esx1", "ds1", Priority::on_demand, t0));
        submit(scheduler, make_job("o3", "esx1", "ds1", Priority::on_demand, t0));
        CHECK(scheduler.step(t0).start == Ids{"o1", "o2"});
        submit(scheduler, make_job("g", "esx1", "ds1", Priority::gate, t0 + 1min));
        CHECK(scheduler.step(t0 + 1min).empty());
        finish(scheduler, "o1", t0 + 2min);
        CHECK(scheduler.step(t0 + 2min).start == Ids{"g"});
        CHECK(scheduler.state("o3") == JobState::queued);
    }
    SECTION("paused jobs do not hold slots") {
        submit(scheduler, make_job("n1", "esx1", "ds1", Priority::nightly, t0));
        submit(scheduler, make_job("n2", "esx1", "ds1", Priority::nightly, t0));
        CHECK(scheduler.step(t0).start == Ids{"n1", "n2"});
        submit(scheduler, make_job("g1", "esx1", "ds1", Priority::gate, t0));
        submit(scheduler, make_job("g2", "esx1", "ds1", Priority::gate, t0));
        const Decision decision = scheduler.step(t0);
        CHECK(decision.pause == Ids{"n2", "n1"});
        CHECK(decision.start == Ids{"g1", "g2"});
        CHECK(scheduler.running_on_host("esx1") == 2u);
        CHECK(scheduler.running_on_datastore("ds1") == 2u);
        finish(scheduler, "g2", t0 + 1min);
        // Paused jobs resume in the order they were paused.
        CHECK(scheduler.step(t0 + 1min).resume == Ids{"n2"});
    }
    SECTION("pressure: a throttled host starts nothing but gate jobs, and says so") {
        submit(scheduler, make_job("n", "esx1", "ds1", Priority::nightly, t0));
        submit(scheduler, make_job("o", "esx1", "ds1", Priority::on_demand, t0));
        REQUIRE(scheduler.set_pressure("esx1", 0.95, t0).has_value());
        Decision decision = scheduler.step(t0);
        CHECK(decision.start.empty());
        CHECK(decision.throttled == Ids{"esx1"});
        submit(scheduler, make_job("g", "esx1", "ds1", Priority::gate, t0 + 1min));
        CHECK(scheduler.step(t0 + 1min).start == Ids{"g"});
        REQUIRE(scheduler.set_pressure("esx1", 0.4, t0 + 2min).has_value());
        decision = scheduler.step(t0 + 2min);
        CHECK(decision.start == Ids{"o"});
        CHECK(decision.throttled.empty());
    }
    SECTION("pressure: a throttled host resumes nothing") {
        submit(scheduler, make_job("n1", "esx1", "ds1", Priority::nightly, t0));
        submit(scheduler, make_job("n2", "esx1", "ds1", Priority::nightly, t0));
        CHECK(scheduler.step(t0).start == Ids{"n1", "n2"});
        submit(scheduler, make_job("g", "esx1", "ds1", Priority::gate, t0));
        CHECK(scheduler.step(t0).pause == Ids{"n2"});
        REQUIRE(scheduler.set_pressure("esx1", 0.8, t0).has_value());
        finish(scheduler, "g", t0 + 1min);
        CHECK(scheduler.step(t0 + 1min).empty());
        REQUIRE(scheduler.set_pressure("esx1", 0.5, t0 + 2min).has_value());
        CHECK(scheduler.step(t0 + 2min).resume == Ids{"n2"});
    }
}

TEST_CASE("Scheduler::step with nightly windows", "[scheduler]") {
    SchedulerOptions options;
    options.nightly_windows.push_back(Window::create(22h, 6h).value());
    Scheduler scheduler(small_inventory(), options);
    submit(scheduler, make_job("n1", "esx1", "ds1", Priority::nightly, at(0, 12)));
    submit(scheduler, make_job("n2", "esx1", "ds1", Priority::nightly, at(0, 12)));
    submit(scheduler, make_job("n3", "esx1", "ds1", Priority::nightly, at(0, 12)));
    submit(scheduler, make_job("o", "esx2", "ds1", Priority::on_demand, at(0, 12)));
    SECTION("nightly jobs wait for the window; others do not") {
        CHECK_FALSE(scheduler.nightly_allowed(at(0, 12)));
        CHECK(scheduler.step(at(0, 12)).start == Ids{"o"});
        CHECK(scheduler.step(at(0, 21, 59)).empty());
        CHECK(scheduler.nightly_allowed(at(0, 22)));
        CHECK(scheduler.step(at(0, 22)).start == Ids{"n1", "n2"});
    }
    SECTION("one not started by the window's end waits for the next window; running ones go on") {
        CHECK(scheduler.step(at(0, 22)).start == Ids{"o", "n1", "n2"});
        finish(scheduler, "n1", at(1, 6));
        CHECK(scheduler.step(at(1, 6)).empty());
        CHECK(scheduler.state("n2") == JobState::running);
        CHECK(scheduler.step(at(1, 21, 59, 59)).empty());
        CHECK(scheduler.step(at(1, 22)).start == Ids{"n3"});
    }
}

TEST_CASE("Scheduler::next_wakeup", "[scheduler]") {
    SchedulerOptions options;
    options.nightly_windows.push_back(Window::create(22h, 6h).value());
    options.nightly_windows.push_back(Window::create(13h, 14h).value());
    Scheduler scheduler(small_inventory(), options);
    SECTION("nothing waiting: no wakeup") {
        CHECK_FALSE(scheduler.next_wakeup(at(0, 12)).has_value());
    }
    SECTION("the earliest due time") {
        submit(scheduler, make_job("g", "esx1", "ds1", Priority::gate, at(0, 12, 30)));
        submit(scheduler, make_job("o", "esx2", "ds2", Priority::on_demand, at(0, 12, 10)));
        CHECK(scheduler.next_wakeup(at(0, 12)) == at(0, 12, 10));
        CHECK(scheduler.step(at(0, 12, 10)).start == Ids{"o"});
        CHECK(scheduler.next_wakeup(at(0, 12, 10)) == at(0, 12, 30));
    }
    SECTION("the next window opening for waiting nightly jobs") {
        submit(scheduler, make_job("n", "esx1", "ds1", Priority::nightly, at(0, 9)));
        CHECK(scheduler.next_wakeup(at(0, 10)) == at(0, 13));
        CHECK(scheduler.next_wakeup(at(0, 15)) == at(0, 22));
        // Inside a window the job could start now: only step() is needed, no wakeup.
        CHECK_FALSE(scheduler.next_wakeup(at(0, 23)).has_value());
    }
}

TEST_CASE("Scheduler rule 6: a node's capacity bounds what it starts, gate jobs aside", "[scheduler]") {
    SchedulerOptions options;
    options.max_running = 1;
    Scheduler scheduler(small_inventory(), options);
    submit(scheduler, make_job("n1", "esx1", "ds1", Priority::nightly, t0));
    submit(scheduler, make_job("n2", "esx2", "ds2", Priority::on_demand, t0));
    const Decision first = scheduler.step(t0);
    CHECK(first.start == std::vector<std::string>{"n2"}); // the caps allow both; the node runs one
    CHECK(scheduler.step(t0).empty());
    submit(scheduler, make_job("g1", "esx1", "ds1", Priority::gate, t0));
    CHECK(scheduler.step(t0).start == std::vector<std::string>{"g1"}); // a power-on does not wait for it
    CHECK(scheduler.count(JobState::running) == 2);
    finish(scheduler, "n2", t0);
    CHECK(scheduler.step(t0).empty()); // still one running (the gate job): n1 waits
    finish(scheduler, "g1", t0);
    CHECK(scheduler.step(t0).start == std::vector<std::string>{"n1"});
}

TEST_CASE("Scheduler: jobs other nodes run hold slots, except for gate jobs", "[scheduler]") {
    Scheduler scheduler(small_inventory(), {});
    submit(scheduler, make_job("a", "esx1", "ds1", Priority::nightly, t0));
    submit(scheduler, make_job("b", "esx1", "ds1", Priority::nightly, t0));
    submit(scheduler, make_job("c", "esx2", "ds2", Priority::nightly, t0));
    SECTION("a host's slot taken elsewhere is not offered") {
        scheduler.set_running_elsewhere({{"esx1", 1}, {"unknown-host", 5}}, {});
        CHECK(scheduler.step(t0).start == Ids{"a", "c"});
        CHECK(scheduler.running_on_host("esx1") == 1u); // its own count stays its own
    }
    SECTION("a datastore full elsewhere starts nothing there, and a gate job still starts") {
        scheduler.set_running_elsewhere({}, {{"ds1", 3}});
        CHECK(scheduler.step(t0).start == Ids{"c"});
        submit(scheduler, make_job("g", "esx1", "ds1", Priority::gate, t0));
        CHECK(scheduler.step(t0).start == Ids{"g"});
        scheduler.set_running_elsewhere({}, {}); // the next adoption: ds1 has room again
        CHECK(scheduler.step(t0).start == Ids{"a"});
    }
}

TEST_CASE("Scheduler: the first turn goes to options.first_turn's host", "[scheduler]") {
    SchedulerOptions options;
    options.max_running = 1;
    options.first_turn = 3; // two hosts: esx2 (index 1) first
    Scheduler scheduler(small_inventory(), options);
    submit(scheduler, make_job("a", "esx1", "ds1", Priority::nightly, t0));
    submit(scheduler, make_job("c", "esx2", "ds2", Priority::nightly, t0));
    CHECK(scheduler.step(t0).start == Ids{"c"});
}
