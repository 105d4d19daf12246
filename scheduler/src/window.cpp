#include "coldscan/scheduler/window.hpp"

#include <cassert>
#include <string>

namespace coldscan::scheduler {
namespace {

using Days = std::chrono::days;
using std::chrono::minutes;

constexpr minutes k_day = Days{1};

bool time_of_day(minutes value) {
    return value >= minutes::zero() && value < k_day;
}

std::string hh_mm(minutes value) {
    const auto two_digits = [](long long n) {
        std::string text = std::to_string(n);
        if (n >= 0 && n < 10) {
            text.insert(text.begin(), '0');
        }
        return text;
    };
    return two_digits(value.count() / 60) + ":" + two_digits(value.count() % 60);
}

} // namespace

Weekdays::Weekdays(std::initializer_list<std::chrono::weekday> days) {
    for (std::chrono::weekday day : days) {
        if (day.ok()) {
            m_bits = static_cast<std::uint8_t>(m_bits | (1U << day.c_encoding()));
        }
    }
}

Weekdays Weekdays::every_day() {
    Weekdays all;
    all.m_bits = 0x7f;
    return all;
}

bool Weekdays::contains(std::chrono::weekday day) const noexcept {
    return day.ok() && (m_bits & (1U << day.c_encoding())) != 0;
}

Expected<Window> Window::create(minutes start, minutes end, Weekdays days) {
    if (!time_of_day(start) || !time_of_day(end)) {
        return make_error(Errc::invalid_argument, "window " + hh_mm(start) + "-" + hh_mm(end) +
                                                      ": times of day must lie in 00:00..23:59");
    }
    if (days.empty()) {
        return make_error(Errc::invalid_argument,
                          "window " + hh_mm(start) + "-" + hh_mm(end) + ": no weekday");
    }
    return Window(start, end, days);
}

minutes Window::length() const noexcept {
    return m_end > m_start ? m_end - m_start : m_end + k_day - m_start;
}

std::optional<TimePoint> Window::occurrence_of(TimePoint t) const {
    // An occurrence lasts at most a day, so only those starting yesterday or today can hold t.
    const auto today = std::chrono::floor<Days>(t);
    for (const auto day : {today - Days{1}, today}) {
        if (!m_days.contains(std::chrono::weekday(day))) {
            continue;
        }
        const TimePoint start = day + m_start;
        if (start <= t && t < start + length()) {
            return start;
        }
    }
    return std::nullopt;
}

bool Window::contains(TimePoint t) const {
    return occurrence_of(t).has_value();
}

TimePoint Window::next_start(TimePoint t) const {
    const auto today = std::chrono::floor<Days>(t);
    for (int offset = 0; offset <= 7; ++offset) {
        const auto day = today + Days{offset};
        const TimePoint start = day + m_start;
        if (m_days.contains(std::chrono::weekday(day)) && start >= t) {
            return start;
        }
    }
    assert(false && "a window has at least one weekday");
    return t;
}

std::optional<TimePoint> Window::end_of(TimePoint t) const {
    auto start = occurrence_of(t);
    if (!start) {
        return std::nullopt;
    }
    return *start + length();
}

} // namespace coldscan::scheduler
