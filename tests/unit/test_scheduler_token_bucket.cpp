#include "coldscan/scheduler/token_bucket.hpp"
#include "test_scheduler_support.hpp"

#include <catch2/catch.hpp>

using namespace coldscan::scheduler;
using coldscan::test::at;
using std::chrono::milliseconds;
using std::chrono::seconds;

TEST_CASE("TokenBucket::delay_for", "[scheduler]") {
    const TimePoint t0 = at(0, 12);
    SECTION("reads within the burst do not wait") {
        TokenBucket bucket(1000, 4000);
        CHECK(bucket.delay_for(1500, t0) == Duration::zero());
        CHECK(bucket.delay_for(2500, t0) == Duration::zero());
        CHECK(bucket.available(t0) == 0);
    }
    SECTION("a read beyond what is held waits for the refill") {
        TokenBucket bucket(1000, 4000);
        CHECK(bucket.delay_for(4000, t0) == Duration::zero());
        CHECK(bucket.delay_for(500, t0) == milliseconds(500));
        // Later readers wait behind the earlier debt: 500 + 1000 bytes at 1000 B/s.
        CHECK(bucket.delay_for(1000, t0) == milliseconds(1500));
    }
    SECTION("the bucket refills with time, up to the burst") {
        TokenBucket bucket(1000, 4000);
        CHECK(bucket.delay_for(4000, t0) == Duration::zero());
        CHECK(bucket.available(t0 + milliseconds(250)) == 250);
        CHECK(bucket.available(t0 + seconds(3)) == 3000);
        CHECK(bucket.available(t0 + seconds(60)) == 4000);
        CHECK(bucket.delay_for(4000, t0 + seconds(60)) == Duration::zero());
    }
    SECTION("a read larger than the burst is allowed and paid for by waiting") {
        TokenBucket bucket(1000, 1000);
        CHECK(bucket.delay_for(5000, t0) == seconds(4));
        CHECK(bucket.available(t0 + seconds(4)) == 0);
        CHECK(bucket.available(t0 + seconds(5)) == 1000);
    }
    SECTION("fractions of a millisecond round up") {
        TokenBucket bucket(3, 0);
        // 1 byte at 3 B/s is 333.3 ms.
        CHECK(bucket.delay_for(1, t0) == milliseconds(334));
    }
    SECTION("a sustained reader gets the rate") {
        TokenBucket bucket(100'000'000, 10'000'000);
        TimePoint now = t0;
        std::uint64_t read = 0;
        for (int i = 0; i < 100; ++i) {
            now += bucket.delay_for(10'000'000, now);
            read += 10'000'000;
        }
        // 1 GB at 100 MB/s with the first 10 MB free: 9.9 s.
        CHECK(now - t0 == milliseconds(9900));
        CHECK(read == 1'000'000'000);
    }
    SECTION("a time earlier than the last call counts as the last call") {
        TokenBucket bucket(1000, 1000);
        CHECK(bucket.delay_for(1000, t0 + seconds(10)) == Duration::zero());
        CHECK(bucket.delay_for(1000, t0) == seconds(1));
    }
    SECTION("rate 0 is unlimited") {
        TokenBucket bucket(0, 0);
        CHECK(bucket.delay_for(1ULL << 50, t0) == Duration::zero());
        CHECK(bucket.available(t0) == std::numeric_limits<std::uint64_t>::max());
    }
    SECTION("huge rates and long gaps do not overflow") {
        TokenBucket bucket(1ULL << 40, 1ULL << 40);
        CHECK(bucket.delay_for(1ULL << 40, t0) == Duration::zero());
        CHECK(bucket.available(t0 + std::chrono::days(3650)) == (1ULL << 40));
        CHECK(bucket.delay_for(1ULL << 41, t0 + std::chrono::days(3650)) == seconds(1));
    }
}

TEST_CASE("TokenBucket::available", "[scheduler]") {
    TokenBucket bucket(2000, 8000);
    SECTION("a new bucket is full") {
        CHECK(bucket.available(at(0, 0)) == 8000);
        CHECK(bucket.rate() == 2000);
        CHECK(bucket.burst() == 8000);
    }
    SECTION("asking does not take") {
        CHECK(bucket.delay_for(8000, at(0, 0)) == Duration::zero());
        CHECK(bucket.available(at(0, 0, 0, 1)) == 2000);
        CHECK(bucket.available(at(0, 0, 0, 1)) == 2000);
        CHECK(bucket.delay_for(2000, at(0, 0, 0, 1)) == Duration::zero());
        CHECK(bucket.available(at(0, 0, 0, 1)) == 0);
    }
}

TEST_CASE("TokenBucket::set_rate", "[scheduler]") {
    const TimePoint t0{std::chrono::hours{1000}};
    TokenBucket bucket(1000, 1000);
    CHECK(bucket.delay_for(1000, t0) == Duration::zero()); // empty now
    bucket.set_rate(500, 500, t0);
    CHECK(bucket.rate() == 500);
    CHECK(bucket.delay_for(500, t0) == Duration(1000)); // the debt is paid at the new rate
    bucket.set_rate(2000, 4000, t0 + Duration(5000));   // refilled at 500/s up to its old cap, 500
    CHECK(bucket.available(t0 + Duration(5000)) == 500);
    CHECK(bucket.available(t0 + Duration(6000)) == 2500); // then at 2000/s, up to 4000
    TokenBucket unlimited(0, 0);
    unlimited.set_rate(100, 100, t0);
    CHECK(unlimited.rate() == 0);
}
