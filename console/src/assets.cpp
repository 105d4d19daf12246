#include "coldscan/console/assets.hpp"

#include "embedded_files.hpp"

#include <algorithm>
#include <array>
#include <string>
#include <vector>

namespace coldscan::console {
namespace {

std::string_view content_type_of(std::string_view path) {
    static constexpr std::array<std::pair<std::string_view, std::string_view>, 10> k_types{{
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".json", "application/json"},
        {".txt", "text/plain; charset=utf-8"},
        {".woff2", "font/woff2"},
    }};
    for (const auto& [suffix, type] : k_types) {
        if (path.ends_with(suffix)) {
            return type;
        }
    }
    return "application/octet-stream";
}

struct Table {
    std::vector<std::string> etags; // owned here; Asset::etag views them
    std::vector<Asset> assets;
};

const Table& table() {
    static const Table built = [] {
        Table out;
        const auto files = detail::embedded_files();
        out.etags.reserve(files.size());
        for (const auto& file : files) {
            out.etags.push_back("\"" + std::string(file.sha256) + "\"");
        }
        for (std::size_t i = 0; i < files.size(); ++i) {
            out.assets.push_back(
                Asset{files[i].path, content_type_of(files[i].path), files[i].bytes, out.etags[i]});
        }
        std::ranges::sort(out.assets, {}, &Asset::path);
        return out;
    }();
    return built;
}

bool is_view(std::string_view path) {
    if (path.size() > 1 && path.ends_with('/')) {
        path.remove_suffix(1);
    }
    if (path == "/" || path == "/jobs" || path == "/findings" || path == "/plan" || path == "/signatures") {
        return true;
    }
    constexpr std::string_view k_job = "/jobs/";
    if (!path.starts_with(k_job) || path.size() == k_job.size()) {
        return false;
    }
    const std::string_view id = path.substr(k_job.size());
    return std::ranges::all_of(id, [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
               c == '_';
    });
}

} // namespace

std::optional<Asset> find_asset(std::string_view url_path) {
    const auto& assets = table().assets;
    const auto found = std::ranges::lower_bound(assets, url_path, {}, &Asset::path);
    if (found == assets.end() || found->path != url_path) {
        return std::nullopt;
    }
    return *found;
}

std::optional<Asset> page_for(std::string_view url_path) {
    return is_view(url_path) ? find_asset("/static/index.html") : std::nullopt;
}

std::span<const std::pair<std::string_view, std::string_view>> security_headers() {
    static constexpr std::array<std::pair<std::string_view, std::string_view>, 5> k_headers{{
        {"Content-Security-Policy",
         "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
         "font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"},
        {"X-Content-Type-Options", "nosniff"},
        {"X-Frame-Options", "DENY"},
        {"Referrer-Policy", "no-referrer"},
        {"Cross-Origin-Opener-Policy", "same-origin"},
    }};
    return k_headers;
}

} // namespace coldscan::console
