#include "coldscan/scheduler/job.hpp"

#include <catch2/catch.hpp>

using namespace coldscan::scheduler;

TEST_CASE("to_string(Priority)", "[scheduler]") {
    CHECK(to_string(Priority::gate) == "gate");
    CHECK(to_string(Priority::on_demand) == "on_demand");
    CHECK(to_string(Priority::nightly) == "nightly");
}

TEST_CASE("to_string(JobState)", "[scheduler]") {
    CHECK(to_string(JobState::queued) == "queued");
    CHECK(to_string(JobState::running) == "running");
    CHECK(to_string(JobState::paused) == "paused");
    CHECK(to_string(JobState::done) == "done");
}

TEST_CASE("parse_priority", "[scheduler]") {
    SECTION("every name round-trips") {
        for (Priority priority : {Priority::gate, Priority::on_demand, Priority::nightly}) {
            CHECK(parse_priority(to_string(priority)) == priority);
        }
    }
    SECTION("the dashed spelling of on-demand is accepted") {
        CHECK(parse_priority("on-demand") == Priority::on_demand);
    }
    SECTION("anything else is nullopt") {
        CHECK_FALSE(parse_priority("Gate").has_value());
        CHECK_FALSE(parse_priority("").has_value());
    }
}
