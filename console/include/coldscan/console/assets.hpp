// The web console (issue 20) as `coldscan serve` serves it: static files embedded in the binary at build
// time from console/static (the app, and Preact, htm and uPlot vendored from npm by
// scripts/vendor-console.sh), each with its content type and a strong ETag, and the views' URLs, which all
// answer with the one page (index.html) so that a deep link works on reload. The console reads and acts
// through the /v1 API only. Thread rule: plain data and free functions; safe from any thread.
#pragma once

#include <optional>
#include <span>
#include <string_view>
#include <utility>

namespace coldscan::console {

struct Asset {
    std::string_view path;         // "/static/app.js"
    std::string_view content_type; // with a charset for text
    std::string_view body;
    std::string_view etag; // "\"<sha256>\""
};

// The static file at a URL path ("/static/..."); nullopt: none.
[[nodiscard]] std::optional<Asset> find_asset(std::string_view url_path);
// The console's page for a view's URL: "/", "/jobs", "/jobs/ID", "/findings", "/plan", "/signatures" (a
// trailing slash allowed); nullopt for any other path.
[[nodiscard]] std::optional<Asset> page_for(std::string_view url_path);
// The headers every console answer carries: a Content-Security-Policy without inline script or style, no
// framing, no sniffing, no referrer.
[[nodiscard]] std::span<const std::pair<std::string_view, std::string_view>> security_headers();

} // namespace coldscan::console
