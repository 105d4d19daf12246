#include "coldscan/scheduler/window.hpp"
#include "test_scheduler_support.hpp"

#include <catch2/catch.hpp>

using namespace coldscan;
using namespace coldscan::scheduler;
using namespace std::chrono_literals;
using coldscan::test::at;

namespace {

Window window(std::chrono::minutes start, std::chrono::minutes end, Weekdays days = Weekdays::every_day()) {
    auto created = Window::create(start, end, days);
    REQUIRE(created.has_value());
    return *created;
}

} // namespace

TEST_CASE("Weekdays::contains", "[scheduler]") {
    const Weekdays weeknights{std::chrono::Monday, std::chrono::Tuesday, std::chrono::Wednesday,
                              std::chrono::Thursday, std::chrono::Friday};
    CHECK(weeknights.contains(std::chrono::Monday));
    CHECK(weeknights.contains(std::chrono::Friday));
    CHECK_FALSE(weeknights.contains(std::chrono::Saturday));
    CHECK_FALSE(weeknights.contains(std::chrono::Sunday));
    CHECK(Weekdays::every_day().contains(std::chrono::Sunday));
    CHECK(Weekdays().empty());
    CHECK_FALSE(weeknights.empty());
}

TEST_CASE("Window::create", "[scheduler]") {
    SECTION("a wrapping window lasts until the next morning") {
        CHECK(window(22h, 6h).length() == 8h);
        CHECK(window(1h, 5h).length() == 4h);
        CHECK(window(6h, 6h).length() == 24h);
    }
    SECTION("times outside a day are refused") {
        auto bad = Window::create(22h, 24h);
        REQUIRE_FALSE(bad.has_value());
        CHECK(bad.error().code == Errc::invalid_argument);
        CHECK(bad.error().message == "window 22:00-24:00: times of day must lie in 00:00..23:59");
        CHECK_FALSE(Window::create(-1min, 6h).has_value());
    }
    SECTION("a window needs a weekday") {
        auto bad = Window::create(22h, 6h, Weekdays());
        REQUIRE_FALSE(bad.has_value());
        CHECK(bad.error().message == "window 22:00-06:00: no weekday");
    }
}

TEST_CASE("Window::contains", "[scheduler]") {
    SECTION("a window past midnight") {
        const Window nightly = window(22h, 6h);
        CHECK_FALSE(nightly.contains(at(0, 21, 59, 59)));
        CHECK(nightly.contains(at(0, 22)));
        CHECK(nightly.contains(at(1, 0)));
        CHECK(nightly.contains(at(1, 5, 59, 59)));
        CHECK_FALSE(nightly.contains(at(1, 6)));
        CHECK_FALSE(nightly.contains(at(1, 12)));
    }
    SECTION("an occurrence belongs to the weekday it starts on") {
        // Day 0 is a Monday, day 4 a Friday, day 5 a Saturday.
        const Window friday = window(22h, 6h, Weekdays{std::chrono::Friday});
        CHECK_FALSE(friday.contains(at(4, 2)));
        CHECK(friday.contains(at(4, 23)));
        CHECK(friday.contains(at(5, 3)));
        CHECK_FALSE(friday.contains(at(5, 23)));
    }
    SECTION("a window within one day") {
        const Window noon = window(12h, 13h);
        CHECK_FALSE(noon.contains(at(2, 11, 59)));
        CHECK(noon.contains(at(2, 12, 30)));
        CHECK_FALSE(noon.contains(at(2, 13)));
    }
}

TEST_CASE("Window::next_start", "[scheduler]") {
    const Window nightly = window(22h, 6h);
    SECTION("later today") {
        CHECK(nightly.next_start(at(0, 12)) == at(0, 22));
    }
    SECTION("a start is its own next start") {
        CHECK(nightly.next_start(at(0, 22)) == at(0, 22));
    }
    SECTION("inside an occurrence: the next one") {
        CHECK(nightly.next_start(at(0, 23)) == at(1, 22));
        CHECK(nightly.next_start(at(1, 3)) == at(1, 22));
    }
    SECTION("skips days not listed") {
        const Window weekend = window(1h, 5h, Weekdays{std::chrono::Saturday, std::chrono::Sunday});
        CHECK(weekend.next_start(at(0, 0)) == at(5, 1));
        CHECK(weekend.next_start(at(5, 2)) == at(6, 1));
        CHECK(weekend.next_start(at(6, 2)) == at(12, 1));
    }
}

TEST_CASE("Window::end_of", "[scheduler]") {
    const Window nightly = window(22h, 6h);
    CHECK(nightly.end_of(at(0, 22)) == at(1, 6));
    CHECK(nightly.end_of(at(1, 5, 59)) == at(1, 6));
    CHECK_FALSE(nightly.end_of(at(1, 6)).has_value());
    CHECK_FALSE(nightly.end_of(at(1, 12)).has_value());
    CHECK(window(0h, 0h).end_of(at(3, 17)) == at(4, 0));
}
