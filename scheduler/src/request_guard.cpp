#include "coldscan/scheduler/request_guard.hpp"

#include <algorithm>

namespace coldscan::scheduler {
namespace {

constexpr std::string_view k_bearer = "Bearer ";

// Compares in time independent of where the strings differ, so the token cannot be guessed byte by byte.
bool equal_in_constant_time(std::string_view a, std::string_view b) {
    unsigned char differ = a.size() == b.size() ? 0 : 1;
    for (std::size_t i = 0; i < a.size(); ++i) {
        differ |= static_cast<unsigned char>(a[i] ^ b[i % std::max<std::size_t>(b.size(), 1)]);
    }
    return differ == 0 && !b.empty();
}

} // namespace

RequestGuard::RequestGuard(GuardOptions options) : m_options(std::move(options)) {}

bool RequestGuard::token_matches(std::string_view authorization) const {
    if (!authorization.starts_with(k_bearer)) {
        return false;
    }
    return equal_in_constant_time(authorization.substr(k_bearer.size()), *m_options.token);
}

void RequestGuard::forget_oldest_client() {
    const auto oldest =
        std::ranges::min_element(m_clients, {}, [](const auto& entry) { return entry.second.last_seen; });
    if (oldest != m_clients.end()) {
        m_clients.erase(oldest);
    }
}

GuardAnswer RequestGuard::check(const RequestFacts& request, TimePoint now) {
    if (m_options.token && !request.public_file &&
        (!request.authorization || !token_matches(*request.authorization))) {
        return {401, "a bearer token is required (Authorization: Bearer TOKEN)", std::nullopt};
    }
    if (request.body_bytes > m_options.max_body_bytes) {
        return {413, "the request body is larger than " + std::to_string(m_options.max_body_bytes) + " bytes",
                std::nullopt};
    }
    if (m_options.requests_per_second == 0) {
        return {};
    }
    auto found = m_clients.find(request.client);
    if (found == m_clients.end()) {
        if (m_clients.size() >= m_options.max_clients) {
            forget_oldest_client();
        }
        // One token per request: the bucket's "bytes" are requests.
        found = m_clients
                    .emplace(request.client,
                             Client{TokenBucket(m_options.requests_per_second, std::max(m_options.burst, 1U)),
                                    TokenBucket(10ULL * m_options.requests_per_second,
                                                10ULL * std::max(m_options.burst, 1U)),
                                    now})
                    .first;
    }
    Client& client = found->second;
    client.last_seen = now;
    TokenBucket& bucket = request.public_file ? client.files : client.bucket;
    if (bucket.available(now) < 1) {
        // The wait for one token: ask a copy, so a refused request takes nothing from the bucket.
        TokenBucket probe = bucket;
        const auto wait = probe.delay_for(1, now);
        const auto seconds = static_cast<std::uint32_t>((wait.count() + 999) / 1000);
        return {429, "too many requests from " + request.client, std::max<std::uint32_t>(seconds, 1)};
    }
    (void)bucket.delay_for(1, now);
    return {};
}

} // namespace coldscan::scheduler
