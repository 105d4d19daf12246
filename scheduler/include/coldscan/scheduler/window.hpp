// Recurring time windows, such as "22:00-06:00 on weeknights", in UTC (time zones come later).
#pragma once

#include "coldscan/common/error.hpp"
#include "coldscan/scheduler/clock.hpp"

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <optional>

namespace coldscan::scheduler {

// A set of weekdays. Thread rule: a value; shared, immutable.
class Weekdays {
public:
    Weekdays() = default; // no day
    Weekdays(std::initializer_list<std::chrono::weekday> days);
    [[nodiscard]] static Weekdays every_day();

    [[nodiscard]] bool contains(std::chrono::weekday day) const noexcept;
    [[nodiscard]] bool empty() const noexcept { return m_bits == 0; }

private:
    std::uint8_t m_bits = 0; // bit n: weekday with c_encoding() n (0 = Sunday)
};

// One recurring window: from start to end (times of day, UTC), on the listed weekdays.
// An occurrence belongs to the weekday it starts on: Friday 22:00-06:00 ends on Saturday morning.
// Thread rule: a value; shared, immutable.
class Window {
public:
    // end <= start wraps past midnight; end == start is a whole day. Errc::invalid_argument: a time outside
    // [00:00, 24:00), or no weekday.
    [[nodiscard]] static Expected<Window> create(std::chrono::minutes start, std::chrono::minutes end,
                                                 Weekdays days = Weekdays::every_day());

    [[nodiscard]] bool contains(TimePoint t) const;
    // The start of the first occurrence that begins at or after t.
    [[nodiscard]] TimePoint next_start(TimePoint t) const;
    // The end of the occurrence that contains t; nullopt when t is outside every occurrence.
    [[nodiscard]] std::optional<TimePoint> end_of(TimePoint t) const;

    [[nodiscard]] std::chrono::minutes start() const noexcept { return m_start; }
    [[nodiscard]] std::chrono::minutes end() const noexcept { return m_end; }
    [[nodiscard]] std::chrono::minutes length() const noexcept;
    [[nodiscard]] const Weekdays& days() const noexcept { return m_days; }

private:
    Window(std::chrono::minutes start, std::chrono::minutes end, Weekdays days)
        : m_start(start), m_end(end), m_days(days) {}
    // The occurrence containing t, as its start.
    [[nodiscard]] std::optional<TimePoint> occurrence_of(TimePoint t) const;

    std::chrono::minutes m_start;
    std::chrono::minutes m_end;
    Weekdays m_days;
};

} // namespace coldscan::scheduler
