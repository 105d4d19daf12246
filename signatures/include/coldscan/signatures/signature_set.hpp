// Everything a scan matches against: the ClamAV engine and the YARA rules, loaded together.
// Thread rule: shared, immutable once loaded.
#pragma once

#include "coldscan/common/error.hpp"
#include "coldscan/signatures/clamav_engine.hpp"
#include "coldscan/signatures/scan_limits.hpp"
#include "coldscan/signatures/yara_rules.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace coldscan::signatures {

inline constexpr const char* k_default_clamav_db = "/var/lib/clamav";

struct SignatureOptions {
    std::optional<std::filesystem::path> clamav_db; // unset: k_default_clamav_db when it holds databases
    std::vector<std::filesystem::path> yara_rules;
    ScanLimits limits;
};

class SignatureSet {
public:
    // Errors: invalid_argument when there are no signatures at all, or a path does not exist; the engines'
    // own load/compile errors otherwise.
    static Expected<SignatureSet> load(const SignatureOptions& options);

    [[nodiscard]] const ClamavEngine* clamav() const noexcept { return m_clamav ? &*m_clamav : nullptr; }
    [[nodiscard]] const YaraRules* yara() const noexcept { return m_yara ? &*m_yara : nullptr; }
    [[nodiscard]] const ScanLimits& limits() const noexcept { return m_limits; }
    // sha256 over both engines' fingerprints and versions: names "the signature set" in reports and caches.
    [[nodiscard]] const std::string& fingerprint() const noexcept { return m_fingerprint; }

private:
    SignatureSet() = default;
    std::optional<ClamavEngine> m_clamav;
    std::optional<YaraRules> m_yara;
    ScanLimits m_limits;
    std::string m_fingerprint;
};

} // namespace coldscan::signatures
