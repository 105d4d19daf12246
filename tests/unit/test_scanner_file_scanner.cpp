#include "coldscan/scanner/file_scanner.hpp"

#include <catch2/catch.hpp>

using namespace coldscan;
using coldscan::scanner::combine_results;
using Status = signatures::EngineResult::Status;

namespace {

signatures::EngineResult result(Status status, std::string reason = {},
                                std::vector<Detection> detections = {}, bool timed_out = false) {
    return signatures::EngineResult{status, std::move(detections), std::move(reason), timed_out};
}

Detection clamav_hit(std::string name) {
    return Detection{Engine::clamav, std::move(name), "", {}, {}};
}

} // namespace

TEST_CASE("combine_results") {
    SECTION("clean only when every engine is clean") {
        std::vector results{result(Status::clean), result(Status::clean)};
        CHECK(combine_results(results).kind == OutcomeKind::clean);
    }
    SECTION("a detection wins over a limit or an error of the other engine") {
        std::vector results{result(Status::detected, "", {clamav_hit("Eicar")}),
                            result(Status::limit_exceeded, "YARA: scan timed out", {}, true)};
        const auto outcome = combine_results(results);
        CHECK(outcome.kind == OutcomeKind::infected);
        REQUIRE(outcome.detections.size() == 1);
        CHECK(outcome.detections[0].signature == "Eicar");
        CHECK(outcome.reason == "YARA: scan timed out");
        CHECK(outcome.transient); // the timeout may not recur
    }
    SECTION("a limit is never clean") {
        std::vector results{result(Status::limit_exceeded, "ClamAV: Heuristics.Limits.Exceeded.MaxFileSize"),
                            result(Status::clean)};
        const auto outcome = combine_results(results);
        CHECK(outcome.kind == OutcomeKind::limit_exceeded);
        CHECK(outcome.reason == "ClamAV: Heuristics.Limits.Exceeded.MaxFileSize");
        CHECK_FALSE(outcome.transient); // the same bytes stop at the same size every time
    }
    SECTION("an engine error is an error, even if the other was clean") {
        std::vector results{result(Status::clean), result(Status::error, "YARA: error code 1")};
        const auto outcome = combine_results(results);
        CHECK(outcome.kind == OutcomeKind::error);
        CHECK(outcome.reason == "YARA: error code 1");
        CHECK(outcome.transient);
    }
    SECTION("detections of both engines are kept") {
        std::vector results{result(Status::detected, "", {clamav_hit("A")}),
                            result(Status::detected, "", {Detection{Engine::yara, "R", "ns", {}, {}}})};
        CHECK(combine_results(results).detections.size() == 2);
    }
    SECTION("no engine at all is not clean") {
        CHECK(combine_results({}).kind == OutcomeKind::error);
    }
}
