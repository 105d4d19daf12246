// The API's request guard, which reads the Authorization header (bearer token), the body size and the
// client address of every request before anything else. The input sets the guard's options and then
// plays a series of requests. Oracles: 401 exactly when a token is configured and the header is not
// "Bearer TOKEN"; 413 exactly when the body is too big (and the token is right); 429 only with a rate
// limit, and always with a Retry-After of at least a second; the client table stays within its cap.
#include "coldscan/scheduler/request_guard.hpp"
#include "fuzz_support.hpp"

using coldscan::fuzz::FuzzInput;
namespace scheduler = coldscan::scheduler;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzInput in(data, size);
    scheduler::GuardOptions options;
    const std::uint8_t flags = in.integer<std::uint8_t>();
    if ((flags & 1U) != 0) {
        options.token = in.string(64);
    }
    options.max_body_bytes = in.integer<std::uint16_t>();
    options.requests_per_second = in.integer<std::uint8_t>() % 8;
    options.burst = in.integer<std::uint8_t>() % 8;
    options.max_clients = 1 + in.integer<std::uint8_t>() % 4;
    scheduler::RequestGuard guard(options);

    scheduler::TimePoint now{};
    for (int i = 0; i < 256 && !in.empty(); ++i) {
        const std::uint8_t what = in.integer<std::uint8_t>();
        scheduler::RequestFacts request;
        request.client = "10.0.0." + std::to_string(what % 8);
        if ((what & 0x10U) != 0) {
            // Sometimes exactly the right header, so the fuzzer need not guess the token.
            request.authorization =
                (what & 0x20U) != 0 && options.token ? "Bearer " + *options.token : in.string(80);
        }
        request.body_bytes = in.integer<std::uint16_t>();
        now += scheduler::Duration(in.integer<std::uint8_t>() * 10);

        const auto answer = guard.check(request, now);
        const bool token_right = !options.token || (!options.token->empty() &&
                                                    request.authorization == "Bearer " + *options.token);
        FUZZ_CHECK((answer.status == 401) == !token_right);
        if (token_right) {
            FUZZ_CHECK((answer.status == 413) == (request.body_bytes > options.max_body_bytes));
        }
        FUZZ_CHECK(answer.status == 200 || answer.status == 401 || answer.status == 413 ||
                   answer.status == 429);
        FUZZ_CHECK(answer.admitted() == (answer.status == 200));
        if (answer.status == 429) {
            FUZZ_CHECK(options.requests_per_second != 0);
            FUZZ_CHECK(answer.retry_after_seconds.has_value() && *answer.retry_after_seconds >= 1);
        } else {
            FUZZ_CHECK(!answer.retry_after_seconds.has_value());
        }
        FUZZ_CHECK(!answer.admitted() || answer.message.empty());
        FUZZ_CHECK(guard.clients_tracked() <= options.max_clients);
    }
    return 0;
}
