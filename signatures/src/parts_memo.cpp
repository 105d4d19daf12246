#include "parts_memo.hpp"

#include "coldscan/common/log.hpp"
#include "coldscan/common/replace_file.hpp"
#include "coldscan/common/sha256.hpp"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>

namespace coldscan::signatures::detail {
namespace {

std::filesystem::path memo_file(const std::filesystem::path& folder, std::string_view files_fingerprint) {
    return folder /
           (sha256_hex(std::string(k_catalogue_version) + "\n" + std::string(files_fingerprint)) + ".digest");
}

bool is_digest_hex(std::string_view text) {
    return text.size() == 64 &&
           std::ranges::all_of(text, [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

} // namespace

std::optional<CatalogueDigest> recall_catalogue_digest(const std::filesystem::path& folder,
                                                       std::string_view files_fingerprint) {
    std::ifstream in(memo_file(folder, files_fingerprint), std::ios::binary);
    CatalogueDigest digest;
    std::string lines;
    if (!(in >> digest.engine_part >> digest.detection_set >> lines)) {
        return std::nullopt;
    }
    const auto parsed = std::from_chars(lines.data(), lines.data() + lines.size(), digest.lines);
    if (parsed.ec != std::errc{} || parsed.ptr != lines.data() + lines.size() ||
        !is_digest_hex(digest.engine_part) || !is_digest_hex(digest.detection_set)) {
        return std::nullopt;
    }
    return digest;
}

void remember_catalogue_digest(const std::filesystem::path& folder, std::string_view files_fingerprint,
                               const CatalogueDigest& digest) {
    std::error_code ec;
    std::filesystem::create_directories(folder, ec);
    if (ec) {
        spdlog::debug("signature set digests not remembered: cannot create {}: {}", folder.string(),
                      ec.message());
        return;
    }
    std::ostringstream text;
    text << digest.engine_part << '\n' << digest.detection_set << '\n' << digest.lines << '\n';
    if (auto written = replace_file(memo_file(folder, files_fingerprint), text.str()); !written) {
        spdlog::debug("signature set digests not remembered: {}", written.error().message);
    }
}

} // namespace coldscan::signatures::detail
