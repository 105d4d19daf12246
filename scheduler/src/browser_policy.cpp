#include "coldscan/scheduler/browser_policy.hpp"

#include <arpa/inet.h>

namespace coldscan::scheduler {

bool loopback_host(std::string_view host) {
    std::string name;
    if (host.starts_with('[')) { // [::1]:8080
        const auto end = host.find(']');
        if (end == std::string_view::npos) {
            return false;
        }
        name = std::string(host.substr(1, end - 1));
    } else {
        name = std::string(host.substr(0, host.find(':')));
    }
    if (name == "localhost") {
        return true;
    }
    in_addr v4{};
    if (::inet_pton(AF_INET, name.c_str(), &v4) == 1) {
        return (ntohl(v4.s_addr) >> 24) == 127;
    }
    in6_addr v6{};
    return ::inet_pton(AF_INET6, name.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

std::optional<std::string> browser_refusal(const BrowserFacts& facts) {
    if (facts.origin) {
        const std::string host = facts.host.value_or("");
        if (host.empty() || (*facts.origin != "http://" + host && *facts.origin != "https://" + host)) {
            return "requests from other web pages are not accepted (Origin " + *facts.origin + ")";
        }
    }
    if (facts.unix_socket) {
        return std::nullopt;
    }
    if (!facts.console_file && facts.fetch_site && *facts.fetch_site != "same-origin" &&
        *facts.fetch_site != "none") {
        return "requests from other web pages are not accepted (Sec-Fetch-Site " + *facts.fetch_site + ")";
    }
    const bool from_browser = facts.origin || facts.fetch_site;
    if (!facts.token_configured && from_browser && !facts.console_file &&
        !loopback_host(facts.host.value_or(""))) {
        return "without [api] auth_token this service answers only under a loopback name (localhost, "
               "127.0.0.1, [::1]), not " +
               facts.host.value_or("no Host");
    }
    return std::nullopt;
}

} // namespace coldscan::scheduler
