// A read-bandwidth budget for one host or datastore: readers ask before reading and wait what it says.
//
// The bucket holds up to burst_bytes and refills at rate_bytes_per_second. delay_for() takes the bytes at
// once, even when that leaves the bucket in debt, and answers how long the reader must wait for the debt to
// be paid: a read larger than the burst is allowed and paid for by waiting, and readers that ask later wait
// behind the debt of earlier ones (first come, first served). All arithmetic is in integers (byte
// milliseconds), so the same calls always give the same answers.
// Thread rule: one owner thread; not thread-safe (readers sharing one wrap it in their own lock).
#pragma once

#include "coldscan/scheduler/clock.hpp"

#include <cstdint>
#include <optional>

namespace coldscan::scheduler {

class TokenBucket {
public:
    // rate 0 = unlimited: every delay is zero. The bucket starts full.
    TokenBucket(std::uint64_t rate_bytes_per_second, std::uint64_t burst_bytes);

    // Takes bytes from the budget at now; returns how long the reader must wait before reading them (zero
    // when the bucket held them). A now earlier than an earlier call's counts as that call's.
    [[nodiscard]] Duration delay_for(std::uint64_t bytes, TimePoint now);
    // Bytes that could be read at now without waiting (0 while in debt; the uint64 maximum when unlimited).
    [[nodiscard]] std::uint64_t available(TimePoint now) const;
    // From now on refills at rate (burst the new cap); what was in the bucket at now stays, up to that cap.
    // A bucket made unlimited (rate 0) stays so.
    void set_rate(std::uint64_t rate_bytes_per_second, std::uint64_t burst_bytes, TimePoint now);
    [[nodiscard]] std::uint64_t rate() const noexcept { return m_rate; }
    [[nodiscard]] std::uint64_t burst() const noexcept { return m_burst; }

private:
    // Byte-milliseconds held at now (negative: debt).
    [[nodiscard]] std::int64_t level_at(TimePoint now) const;

    std::uint64_t m_rate;
    std::uint64_t m_burst;
    std::int64_t m_level;            // byte-milliseconds: bytes * 1000
    std::optional<TimePoint> m_last; // when m_level was true; none before the first call
};

} // namespace coldscan::scheduler
