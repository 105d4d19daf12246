// Which requests from web browsers the API answers (issue 20). The console is served by the service itself,
// so its calls are same-origin; every other page is refused, whatever it sends. Pure logic: the HTTP server
// passes the request's headers.
//
// The rules, for requests a browser may make:
//  - An Origin header must name this very origin (http:// or https:// and the Host the request was sent
//    to): a page elsewhere cannot submit, cancel or reload (CSRF), even with no token configured.
//  - Sec-Fetch-Site, where the browser sends it, must be same-origin or none for the API: a cross-site
//    fetch is refused before it reads anything. The console's own files may be loaded from anywhere (a link
//    to a view), as they hold no data.
//  - Without a token (a loopback-only service), a browser's API request (one with Origin or Sec-Fetch-Site,
//    as every current browser sends) must name a loopback Host (localhost, 127.x.y.z, [::1]): a hostile page
//    whose own name resolves to 127.0.0.1 (DNS rebinding) is same-origin with itself but sends its own name
//    as Host. Programs (no such headers) are not affected. With a token, the token is what protects, and
//    any Host is fine (a proxy or a DNS name in front of the service).
// Requests over the Unix socket come from local programs, not browsers: only the Origin rule applies.
// Thread rule: plain data and a free function.
#pragma once

#include <optional>
#include <string>

namespace coldscan::scheduler {

struct BrowserFacts {
    std::optional<std::string> origin;
    std::optional<std::string> host;
    std::optional<std::string> fetch_site; // Sec-Fetch-Site
    bool console_file = false;             // a console page or static file (GET or HEAD)
    bool token_configured = false;
    bool unix_socket = false;
};

// Why the request is refused (403); nullopt: it may go on to the guard.
[[nodiscard]] std::optional<std::string> browser_refusal(const BrowserFacts& facts);

// Whether a Host header names a loopback address (with or without a port).
[[nodiscard]] bool loopback_host(std::string_view host);

} // namespace coldscan::scheduler
