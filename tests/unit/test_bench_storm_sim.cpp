// The scan-storm model of bench/storm-sim: the input it draws, both arms on the default fleet, and small
// fleets whose answers can be worked out by hand.
#include "storm_model.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <map>

using namespace coldscan;
using namespace coldscan::bench;

namespace {

constexpr double k_gib = 1024.0 * 1024.0 * 1024.0;

ArmResult run(const StormOptions& options, const std::vector<StormJob>& jobs, Arm arm) {
    auto result = run_arm(options, jobs, arm);
    REQUIRE(result.has_value());
    return std::move(*result);
}

void require_every_job_once(const ArmResult& result, const std::vector<StormJob>& jobs) {
    CHECK(result.violations == std::vector<std::string>{});
    REQUIRE(result.jobs.size() == jobs.size());
    for (std::size_t i = 0; i < jobs.size(); ++i) {
        INFO(jobs[i].id);
        CHECK(result.jobs[i].id == jobs[i].id);
        CHECK(result.jobs[i].completions == 1);
        CHECK(result.jobs[i].start_s >= jobs[i].arrival_s);
        CHECK(result.jobs[i].finish_s > result.jobs[i].start_s);
    }
}

} // namespace

TEST_CASE("bench::make_jobs", "[bench]") {
    const StormOptions options;
    const std::vector<StormJob> jobs = make_jobs(options);
    REQUIRE(jobs.size() == 105);

    SECTION("templates are due at once, spread over hosts and datastores, sized within bounds") {
        for (unsigned i = 0; i < 100; ++i) {
            const StormJob& job = jobs[i];
            CHECK(job.id == std::string("tpl") + std::to_string(i));
            CHECK_FALSE(job.gate);
            CHECK(job.arrival_s == 0.0);
            CHECK(job.host == i % 10);
            CHECK(job.datastore == i % 3);
            CHECK(job.bytes >= static_cast<std::uint64_t>(1 * k_gib));
            CHECK(job.bytes < static_cast<std::uint64_t>(4 * k_gib));
        }
    }
    SECTION("gates arrive mid-run, in time order") {
        double template_bytes = 0.0;
        for (unsigned i = 0; i < 100; ++i) {
            template_bytes += static_cast<double>(jobs[i].bytes);
        }
        // The fleet reads at most min(10 x 200, 3 x 400, 100 x 110) MB/s = 1200 MB/s.
        const double ideal = template_bytes / 1200e6;
        for (std::size_t k = 100; k < jobs.size(); ++k) {
            CHECK(jobs[k].gate);
            CHECK(jobs[k].arrival_s >= 0.2 * ideal - 0.001);
            CHECK(jobs[k].arrival_s <= 0.8 * ideal + 0.001);
            if (k > 100) {
                CHECK(jobs[k].arrival_s >= jobs[k - 1].arrival_s);
            }
        }
    }
    SECTION("the same seed draws the same input, another seed another") {
        const std::vector<StormJob> again = make_jobs(options);
        for (std::size_t i = 0; i < jobs.size(); ++i) {
            CHECK(again[i].id == jobs[i].id);
            CHECK(again[i].bytes == jobs[i].bytes);
            CHECK(again[i].datastore == jobs[i].datastore);
            CHECK(again[i].arrival_s == jobs[i].arrival_s);
        }
        StormOptions other = options;
        other.seed = 2;
        const std::vector<StormJob> different = make_jobs(other);
        CHECK(different[0].bytes != jobs[0].bytes);
    }
}

TEST_CASE("bench::validate", "[bench]") {
    CHECK(validate(StormOptions{}).has_value());
    StormOptions options;
    options.hosts = 0;
    CHECK(validate(options).error().code == Errc::invalid_argument);
    options = StormOptions{};
    options.datastore_slots = 0;
    CHECK(validate(options).error().code == Errc::invalid_argument);
    options = StormOptions{};
    options.min_gib = 5.0; // above max_gib
    CHECK(validate(options).error().code == Errc::invalid_argument);
    options = StormOptions{};
    options.engine_mb_per_s = 0.0;
    CHECK(run_arm(options, make_jobs(StormOptions{}), Arm::scheduler).error().code == Errc::invalid_argument);
}

TEST_CASE("bench::run_arm on the default fleet", "[bench]") {
    const StormOptions options;
    const std::vector<StormJob> jobs = make_jobs(options);
    const ArmResult capped = run(options, jobs, Arm::scheduler);
    const ArmResult storm = run(options, jobs, Arm::no_scheduler);

    SECTION("the scheduler arm keeps the caps and completes every job once") {
        require_every_job_once(capped, jobs);
        // 100 templates fill every slot at t=0: the peaks are the caps themselves.
        CHECK(capped.peak_per_host == 2);
        CHECK(capped.peak_per_datastore == 4);
        CHECK(capped.peak_total == 12); // 3 datastores x 4 slots bind before 10 hosts x 2
        for (const Sample& s : capped.series) {
            CHECK(s.max_running_per_host <= 2);
            CHECK(s.max_running_per_datastore <= 4);
        }
        CHECK(capped.series.back().total_running == 0);
        CHECK(capped.series.back().time_s == capped.makespan_s);
        // Within the caps a scan reads at least min(200 / 2, 400 / 4) = 100 MB/s; alone at 110 MB/s.
        CHECK(capped.max_slowdown <= 1.1 + 1e-9);
        CHECK(capped.mean_slowdown >= 1.0 - 1e-9);
    }
    SECTION("without the scheduler every job starts at once: the peaks are what the input puts there") {
        require_every_job_once(storm, jobs);
        std::map<unsigned, unsigned> per_host;
        std::map<unsigned, unsigned> per_datastore;
        for (std::size_t i = 0; i < 100; ++i) {
            ++per_host[jobs[i].host];
            ++per_datastore[jobs[i].datastore];
            CHECK(storm.jobs[i].start_s == 0.0);
        }
        unsigned busiest_datastore = 0;
        for (const auto& [datastore, count] : per_datastore) {
            busiest_datastore = std::max(busiest_datastore, count);
        }
        CHECK(storm.series.front().time_s == 0.0);
        CHECK(storm.series.front().max_running_per_host == 10);
        CHECK(storm.series.front().max_running_per_datastore == busiest_datastore);
        CHECK(storm.series.front().total_running == 100);
        CHECK(storm.peak_per_host >= 10); // gates may add to a host still busy
        CHECK(storm.peak_per_datastore >= busiest_datastore);
        CHECK(storm.pauses == 0);
        for (std::size_t k = 100; k < jobs.size(); ++k) {
            CHECK(storm.jobs[k].start_s == jobs[k].arrival_s);
        }
    }
    SECTION("the storm slows every scan down and holds gate verdicts back") {
        CHECK(storm.mean_slowdown > 3.0 * capped.mean_slowdown);
        CHECK(storm.gate_turnaround_max_s > capped.gate_turnaround_max_s);
        CHECK(storm.gate_wait_max_s == 0.0);
        // Either arm reads at most 1200 MB/s in all.
        CHECK(capped.makespan_s >= static_cast<double>(capped.bytes) / 1200e6 - 1e-6);
        CHECK(storm.makespan_s >= static_cast<double>(storm.bytes) / 1200e6 - 1e-6);
    }
    SECTION("the same options give the same run") {
        const ArmResult again = run(options, jobs, Arm::scheduler);
        REQUIRE(again.series.size() == capped.series.size());
        for (std::size_t i = 0; i < again.series.size(); ++i) {
            CHECK(again.series[i].time_s == capped.series[i].time_s);
            CHECK(again.series[i].total_running == capped.series[i].total_running);
        }
        for (std::size_t i = 0; i < again.jobs.size(); ++i) {
            CHECK(again.jobs[i].finish_s == capped.jobs[i].finish_s);
        }
        CHECK(again.makespan_s == capped.makespan_s);
        CHECK(again.gate_turnaround_max_s == capped.gate_turnaround_max_s);
    }
}

TEST_CASE("bench::run_arm on fleets small enough to work out by hand", "[bench]") {
    StormOptions options;
    options.hosts = 1;
    options.datastores = 1;
    options.host_slots = 1;
    options.min_gib = 1.0;
    options.max_gib = 1.0;

    SECTION("two templates: one after the other, or both at once at a shared read cap") {
        options.templates = 2;
        options.gates = 0;
        const std::vector<StormJob> jobs = make_jobs(options);
        const ArmResult capped = run(options, jobs, Arm::scheduler);
        require_every_job_once(capped, jobs);
        // Alone: min(110, 200, 400) MB/s.
        CHECK(capped.makespan_s == Approx(2 * k_gib / 110e6));
        CHECK(capped.max_slowdown == Approx(1.0));
        const ArmResult storm = run(options, jobs, Arm::no_scheduler);
        require_every_job_once(storm, jobs);
        // Together: each min(110, 200 / 2, 400 / 2) = 100 MB/s, so both finish together.
        CHECK(storm.makespan_s == Approx(k_gib / 100e6));
        CHECK(storm.jobs[0].finish_s == Approx(storm.jobs[1].finish_s));
        CHECK(storm.mean_slowdown == Approx(1.1));
        CHECK(storm.peak_per_host == 2);
    }
    SECTION("a gate pauses the running template and starts at once") {
        options.templates = 1;
        options.gates = 1;
        const std::vector<StormJob> jobs = make_jobs(options);
        const ArmResult capped = run(options, jobs, Arm::scheduler);
        require_every_job_once(capped, jobs);
        const double alone = k_gib / 110e6;
        CHECK(capped.pauses == 1);
        CHECK(capped.jobs[0].pauses == 1);
        CHECK(capped.gate_wait_max_s == 0.0);
        CHECK(capped.gate_turnaround_max_s == Approx(alone));
        // The template resumes when the gate is done and finishes after both scans' time.
        CHECK(capped.jobs[0].run_s == Approx(alone));
        CHECK(capped.makespan_s == Approx(2 * alone));
        CHECK(capped.peak_per_host == 1);
        const ArmResult storm = run(options, jobs, Arm::no_scheduler);
        require_every_job_once(storm, jobs);
        CHECK(storm.pauses == 0);
        CHECK(storm.peak_per_host == 2);
        CHECK(storm.gate_turnaround_max_s > alone);
    }
}
