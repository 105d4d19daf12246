#include "coldscan/reports/report.hpp"

#include <catch2/catch.hpp>

using namespace coldscan;
using namespace coldscan::reports;

namespace {

TargetReport target_with(OutcomeKind outcome) {
    TargetReport target;
    target.path = "/images/vm.qcow2";
    target.filesystems.push_back(FilesystemReport{"/dev/sda1", "ext4", "", "", FilesystemStatus::scanned});
    target.counts.add(OutcomeKind::clean, 10);
    target.counts.add(outcome, 10);
    return target;
}

Report report_of(std::vector<TargetReport> targets) {
    Report report;
    report.targets = std::move(targets);
    report.status = status_of(report);
    return report;
}

} // namespace

TEST_CASE("status_of") {
    SECTION("limit hits alone are warnings by default and failures under the fail policy") {
        const auto limited = target_with(OutcomeKind::limit_exceeded);
        CHECK(status_of(limited, LimitPolicy::warn) == RunStatus::completed_with_warnings);
        CHECK(status_of(limited, LimitPolicy::fail) == RunStatus::completed_with_issues);
    }
    SECTION("errors, skipped files and failed filesystems are failures whatever the policy") {
        CHECK(status_of(target_with(OutcomeKind::error), LimitPolicy::warn) ==
              RunStatus::completed_with_issues);
        CHECK(status_of(target_with(OutcomeKind::skipped), LimitPolicy::warn) ==
              RunStatus::completed_with_issues);
        auto failed_fs = target_with(OutcomeKind::clean);
        failed_fs.filesystems.push_back(
            FilesystemReport{"/dev/sda2", "xfs", "", "", FilesystemStatus::failed});
        CHECK(status_of(failed_fs, LimitPolicy::warn) == RunStatus::completed_with_issues);
    }
    SECTION("a run is as bad as its worst target") {
        auto clean = target_with(OutcomeKind::clean);
        clean.status = RunStatus::completed;
        auto warned = target_with(OutcomeKind::limit_exceeded);
        warned.status = RunStatus::completed_with_warnings;
        auto issues = target_with(OutcomeKind::error);
        issues.status = RunStatus::completed_with_issues;
        CHECK(report_of({clean}).status == RunStatus::completed);
        CHECK(report_of({clean, warned}).status == RunStatus::completed_with_warnings);
        CHECK(report_of({warned, issues}).status == RunStatus::completed_with_issues);
    }
}

TEST_CASE("exit_status with limit warnings") {
    auto warned = target_with(OutcomeKind::limit_exceeded);
    warned.status = RunStatus::completed_with_warnings;
    auto report = report_of({warned});
    CHECK(exit_status(report) == 0);
    CHECK(exit_status("completed_with_warnings", 0) == 0);
    CHECK(exit_status("completed", 0) == 0);
    CHECK(exit_status("completed_with_issues", 0) == 2);
    CHECK(exit_status("failed", 0) == 2);
    CHECK(exit_status("inconsistent", 0) == 2);
    CHECK(exit_status("completed_with_warnings", 1) == 1);
    CHECK(exit_status("completed_with_issues", 3) == 1);
}

TEST_CASE("limit_policy_from") {
    CHECK(limit_policy_from("warn") == LimitPolicy::warn);
    CHECK(limit_policy_from("fail") == LimitPolicy::fail);
    CHECK_FALSE(limit_policy_from("strict").has_value());
    CHECK(to_string(LimitPolicy::fail) == "fail");
}
