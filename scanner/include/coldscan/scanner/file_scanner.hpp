// Both engines on one file, and the one outcome the file gets.
#pragma once

#include "coldscan/common/content.hpp"
#include "coldscan/common/error.hpp"
#include "coldscan/common/verdict.hpp"
#include "coldscan/signatures/signature_set.hpp"

#include <optional>
#include <span>
#include <string_view>

namespace coldscan::scanner {

// Thread rule: one per worker (it owns that worker's YARA scanner); the signature set is shared.
class FileScanner {
public:
    // Waits for the signature set's engines. Error: the ClamAV engine failed to load, or the YARA scanner
    // could not be created.
    static Expected<FileScanner> create(const signatures::SignatureSet& signatures);
    // ClamAV then YARA over all of content; path is the guest path (messages, YARA externals).
    [[nodiscard]] Outcome scan(const Content& content, std::string_view path);

private:
    FileScanner(const signatures::ClamavEngine* clamav, std::optional<signatures::YaraScanner> yara)
        : m_clamav(clamav), m_yara(std::move(yara)) {}
    const signatures::ClamavEngine* m_clamav; // shared; none without ClamAV databases
    std::optional<signatures::YaraScanner> m_yara;
};

// Detections from any engine win (INFECTED); otherwise an engine error gives ERROR, a limit LIMIT_EXCEEDED;
// CLEAN only when every engine read all of the file and matched nothing.
[[nodiscard]] Outcome combine_results(std::span<const signatures::EngineResult> results);

} // namespace coldscan::scanner
