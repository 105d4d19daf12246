#include "coldscan/common/subprocess.hpp"

#include <catch2/catch.hpp>

using namespace coldscan;

TEST_CASE("run_bounded") {
    ProcessLimits limits;
    SECTION("captures stdout, stderr and the exit code") {
        auto result = run_bounded({"sh", "-c", "echo out; echo err >&2; exit 3"}, limits);
        REQUIRE(result);
        CHECK(result->out == "out\n");
        CHECK(result->err == "err\n");
        CHECK(result->exit_code == 3);
    }
    SECTION("arguments are not interpreted by a shell") {
        auto result = run_bounded({"echo", "$HOME; rm -rf /"}, limits);
        REQUIRE(result);
        CHECK(result->out == "$HOME; rm -rf /\n");
    }
    SECTION("a program past its wall time is stopped") {
        limits.wall_time = std::chrono::milliseconds(300);
        auto result = run_bounded({"sleep", "30"}, limits);
        REQUIRE_FALSE(result);
        CHECK(result.error().code == Errc::timeout);
    }
    SECTION("a program that closes its output is still stopped at its wall time") {
        limits.wall_time = std::chrono::milliseconds(300);
        // Before the fix it waited for sleep and answered exit 0.
        auto result = run_bounded({"sh", "-c", "exec >&- 2>&-; sleep 30"}, limits);
        REQUIRE_FALSE(result);
        CHECK(result.error().code == Errc::timeout);
    }
    SECTION("a CPU-time limit kills a spinning program") {
        limits.cpu_time = std::chrono::seconds(1);
        auto result = run_bounded({"sh", "-c", "while :; do :; done"}, limits);
        REQUIRE(result);
        CHECK(result->exit_code == -1);
        CHECK(result->term_signal != 0);
    }
    SECTION("output beyond the cap is an error") {
        limits.max_output_bytes = 1000;
        auto result = run_bounded({"head", "-c", "100000", "/dev/zero"}, limits);
        REQUIRE_FALSE(result);
        CHECK(result.error().code == Errc::io);
    }
    SECTION("a missing program is not_found") {
        auto result = run_bounded({"coldscan-no-such-program"}, limits);
        REQUIRE_FALSE(result);
        CHECK(result.error().code == Errc::not_found);
    }
}
