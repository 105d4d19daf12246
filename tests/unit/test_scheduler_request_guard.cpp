#include "coldscan/scheduler/request_guard.hpp"

#include <catch2/catch.hpp>

using namespace coldscan::scheduler;
using namespace std::chrono_literals;

namespace {

const TimePoint k_start = TimePoint{} + std::chrono::days{20000};

RequestFacts from(const std::string& client) {
    RequestFacts facts;
    facts.client = client;
    return facts;
}

RequestFacts with_authorization(const std::string& client, const std::string& authorization) {
    RequestFacts facts = from(client);
    facts.authorization = authorization;
    return facts;
}

RequestFacts with_body(const std::string& client, std::uint64_t bytes) {
    RequestFacts facts = from(client);
    facts.body_bytes = bytes;
    return facts;
}

} // namespace

TEST_CASE("RequestGuard::check", "[scheduler]") {
    SECTION("with a token: missing or wrong is 401, right is admitted") {
        RequestGuard guard(GuardOptions{"s3cret-token", 1024, 0, 0, 16});
        CHECK(guard.check(from("10.0.0.5"), k_start).status == 401);
        CHECK(guard.check(with_authorization("10.0.0.5", "Bearer wrong-token!"), k_start).status == 401);
        CHECK(guard.check(with_authorization("10.0.0.5", "Bearer s3cret-toke"), k_start).status == 401);
        CHECK(guard.check(with_authorization("10.0.0.5", "Bearer s3cret-token-and-more"), k_start).status ==
              401);
        CHECK(guard.check(with_authorization("10.0.0.5", "Basic s3cret-token"), k_start).status == 401);
        CHECK(guard.check(with_authorization("10.0.0.5", "s3cret-token"), k_start).status == 401);
        const auto ok = guard.check(with_authorization("10.0.0.5", "Bearer s3cret-token"), k_start);
        CHECK(ok.admitted());
        CHECK(ok.status == 200);
    }
    SECTION("without a token no Authorization is needed") {
        RequestGuard guard(GuardOptions{std::nullopt, 1024, 0, 0, 16});
        CHECK(guard.check(from("127.0.0.1"), k_start).admitted());
    }
    SECTION("a body over the limit is 413, at the limit is admitted") {
        RequestGuard guard(GuardOptions{std::nullopt, 1024, 0, 0, 16});
        const auto big = guard.check(with_body("127.0.0.1", 1025), k_start);
        CHECK(big.status == 413);
        CHECK(big.message == "the request body is larger than 1024 bytes");
        CHECK(guard.check(with_body("127.0.0.1", 1024), k_start).admitted());
    }
    SECTION("the token is checked before the size: a stranger learns nothing") {
        RequestGuard guard(GuardOptions{"t0ken", 10, 0, 0, 16});
        CHECK(guard.check(with_body("10.0.0.9", 1'000'000), k_start).status == 401);
    }
}

TEST_CASE("RequestGuard::check rate limits each client", "[scheduler]") {
    RequestGuard guard(GuardOptions{std::nullopt, 1024, 2, 3, 16}); // 2 per second, bursts of 3

    SECTION("a flood gets 429 with Retry-After once the burst is spent; other clients are not affected") {
        for (int i = 0; i < 3; ++i) {
            CHECK(guard.check(from("10.0.0.1"), k_start).admitted());
        }
        const auto refused = guard.check(from("10.0.0.1"), k_start);
        CHECK(refused.status == 429);
        REQUIRE(refused.retry_after_seconds.has_value());
        CHECK(*refused.retry_after_seconds == 1); // half a second for the next token, rounded up
        CHECK(guard.check(from("10.0.0.2"), k_start).admitted());
        // Refusals take nothing: after half a second exactly one more request fits.
        CHECK(guard.check(from("10.0.0.1"), k_start + 500ms).admitted());
        CHECK(guard.check(from("10.0.0.1"), k_start + 500ms).status == 429);
        // After a quiet while the burst is back.
        for (int i = 0; i < 3; ++i) {
            CHECK(guard.check(from("10.0.0.1"), k_start + 10s).admitted());
        }
        CHECK(guard.check(from("10.0.0.1"), k_start + 10s).status == 429);
    }
    SECTION("the console's files: a bucket of their own, ten times as large, and no token needed") {
        RequestGuard guarded(GuardOptions{std::string("0123456789abcdef-token"), 1024, 2, 3, 16});
        RequestFacts file = from("10.0.0.1");
        file.public_file = true;
        for (int i = 0; i < 30; ++i) {
            CHECK(guarded.check(file, k_start).admitted());
        }
        CHECK(guarded.check(file, k_start).status == 429);
        // The API's bucket is untouched by them (401 without the token, not 429).
        CHECK(guarded.check(from("10.0.0.1"), k_start).status == 401);
        const auto api = with_authorization("10.0.0.1", "Bearer 0123456789abcdef-token");
        for (int i = 0; i < 3; ++i) {
            CHECK(guarded.check(api, k_start).admitted());
        }
        CHECK(guarded.check(api, k_start).status == 429);
    }
    SECTION("the number of tracked clients stays bounded") {
        RequestGuard small(GuardOptions{std::nullopt, 1024, 2, 3, 4});
        for (int i = 0; i < 10; ++i) {
            CHECK(small.check(from("10.0.1." + std::to_string(i)), k_start + std::chrono::seconds(i))
                      .admitted());
        }
        CHECK(small.clients_tracked() == 4);
    }
}
