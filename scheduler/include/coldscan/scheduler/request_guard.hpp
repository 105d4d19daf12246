// What the service's HTTP API checks before it reads a request: who may ask (a bearer token), how much
// (the body size) and how often (a token bucket per client address). Pure logic, like the scheduler: the
// caller passes the request's facts and `now`, so floods and refusals are tested without a server.
//
// The rules (issue 5):
//  - A service listening on anything but loopback requires the config's bearer token; without one
//    configured it refuses to start (ServiceConfig checks that). A configured token is required on
//    loopback too: a token an operator set is never optional. Missing or wrong: 401.
//  - A body over max_body_bytes (as declared, or as received): 413, before anything is parsed.
//  - More requests from one client address than its bucket holds: 429 with Retry-After (whole seconds,
//    rounded up). Refused requests cost nothing; only admitted ones take a token. The console's files
//    have a bucket of their own, ten times as large (a page load fetches a dozen modules at once, and a
//    reload must not leave the API's bucket empty or the page half loaded).
// Thread rule: one owner thread; not thread-safe (the HTTP server's handler wraps it in a lock).
#pragma once

#include "coldscan/scheduler/clock.hpp"
#include "coldscan/scheduler/token_bucket.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace coldscan::scheduler {

struct GuardOptions {
    std::optional<std::string> token; // the bearer token; none: no Authorization needed (loopback only)
    std::size_t max_body_bytes = 1U << 20;
    std::uint32_t requests_per_second = 20; // per client address; 0: no rate limit
    std::uint32_t burst = 40;               // requests a client may send at once
    std::size_t max_clients = 4096;         // buckets kept; the least recently seen are dropped beyond it
};

struct RequestFacts {
    std::string client;                       // the peer address
    std::optional<std::string> authorization; // the Authorization header, as sent
    std::uint64_t body_bytes = 0;             // declared (Content-Length) or received, whichever is larger
    bool public_file = false;                 // the console's pages and static files: no token needed
};

struct GuardAnswer {
    int status = 200; // 200: go on; else 401, 413 or 429
    std::string message;
    std::optional<std::uint32_t> retry_after_seconds; // with 429
    [[nodiscard]] bool admitted() const noexcept { return status == 200; }
};

class RequestGuard {
public:
    explicit RequestGuard(GuardOptions options);

    // Decides whether the request may be served now (see the rules above).
    [[nodiscard]] GuardAnswer check(const RequestFacts& request, TimePoint now);
    [[nodiscard]] std::size_t clients_tracked() const noexcept { return m_clients.size(); }

private:
    struct Client {
        TokenBucket bucket;
        TokenBucket files; // the console's files: a page load fetches a dozen at once, served from memory
        TimePoint last_seen;
    };
    [[nodiscard]] bool token_matches(std::string_view authorization) const;
    void forget_oldest_client();

    GuardOptions m_options;
    std::map<std::string, Client, std::less<>> m_clients;
};

} // namespace coldscan::scheduler
