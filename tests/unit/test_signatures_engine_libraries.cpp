#include "coldscan/signatures/engine_libraries.hpp"

#include <catch2/catch.hpp>

using namespace coldscan;
using namespace coldscan::signatures;

TEST_CASE("EngineLibraries::initialize") {
    SECTION("a second instance is refused while the one from main is alive") {
        const auto second = EngineLibraries::initialize();
        REQUIRE_FALSE(second.has_value());
        CHECK(second.error().code == Errc::engine);
        CHECK_THAT(second.error().message, Catch::Contains("already initialised"));
    }
}

TEST_CASE("EngineLibraries::clamav_version") {
    SECTION("the running libclamav's version, as cl_retver gives it") {
        CHECK_THAT(EngineLibraries::clamav_version(), Catch::Matches(R"(\d+\.\d+\.\d+.*)"));
    }
}

TEST_CASE("EngineLibraries::yara_version") {
    SECTION("major.minor.micro of the libyara we build against") {
        CHECK_THAT(EngineLibraries::yara_version(), Catch::Matches(R"(\d+\.\d+\.\d+)"));
    }
}
