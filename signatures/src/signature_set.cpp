#include "coldscan/signatures/signature_set.hpp"

#include "coldscan/common/sha256.hpp"

namespace coldscan::signatures {
namespace {

// Raised whenever a scan of the same bytes with the same signatures may answer differently, so verdicts
// cached by an older coldscan are not reused. v2: big files went through a libclamav path that could skip
// archive members (clamav_scan.cpp).
constexpr std::string_view k_fingerprint_schema = "coldscan-signature-set-v2";

// Every limit, because a verdict depends on them as much as on the signatures.
std::string limits_text(const ScanLimits& limits) {
    return "max_file_size=" + std::to_string(limits.max_file_size) +
           " max_scan_size=" + std::to_string(limits.max_scan_size) +
           " max_recursion=" + std::to_string(limits.max_recursion) +
           " max_files=" + std::to_string(limits.max_files) +
           " max_scan_time_ms=" + std::to_string(limits.max_scan_time.count()) +
           " yara_timeout_s=" + std::to_string(limits.yara_timeout.count());
}

std::string fingerprint_of(const ClamavEngine* clamav, const YaraRules* yara, const ScanLimits& limits) {
    Sha256 hasher;
    hasher.update(k_fingerprint_schema);
    hasher.update("\nclamav ");
    hasher.update(clamav != nullptr ? clamav->info().engine_version + " " + clamav->info().fingerprint
                                    : "none");
    hasher.update("\nyara ");
    hasher.update(yara != nullptr ? yara->info().engine_version + " " + yara->info().fingerprint : "none");
    hasher.update("\nlimits ");
    hasher.update(limits_text(limits));
    hasher.update("\n");
    const auto digest = hasher.finish();
    return to_hex(digest);
}

} // namespace

Expected<SignatureSet> SignatureSet::load(const SignatureOptions& options) {
    SignatureSet set;
    set.m_limits = options.limits;

    std::error_code ec;
    if (options.clamav_db && !std::filesystem::exists(*options.clamav_db, ec)) {
        return make_error(Errc::invalid_argument,
                          "ClamAV database path " + options.clamav_db->string() + " does not exist");
    }
    for (const auto& path : options.yara_rules) {
        if (!std::filesystem::exists(path, ec)) {
            return make_error(Errc::invalid_argument, "YARA rules path " + path.string() + " does not exist");
        }
    }

    const std::filesystem::path default_db = k_default_clamav_db;
    if (options.clamav_db || holds_clamav_databases(default_db)) {
        auto clamav = ClamavEngine::load(options.clamav_db.value_or(default_db), options.limits);
        if (!clamav) {
            return std::unexpected(clamav.error());
        }
        set.m_clamav = std::move(*clamav);
    }
    if (!options.yara_rules.empty()) {
        auto yara = YaraRules::compile(options.yara_rules);
        if (!yara) {
            return std::unexpected(yara.error());
        }
        set.m_yara = std::move(*yara);
    }

    const std::uint64_t clamav_count = set.m_clamav ? set.m_clamav->info().signature_count : 0;
    const std::uint64_t yara_count = set.m_yara ? set.m_yara->info().rule_count : 0;
    if (clamav_count == 0 && yara_count == 0) {
        std::string message = "no signatures: give --clamav-db PATH and/or --yara-rules PATH";
        if (!options.clamav_db) {
            message += std::string(" (no ClamAV databases in ") + k_default_clamav_db + ")";
        }
        return make_error(Errc::invalid_argument, std::move(message));
    }

    set.m_fingerprint = fingerprint_of(set.clamav(), set.yara(), set.m_limits);
    return set;
}

} // namespace coldscan::signatures
