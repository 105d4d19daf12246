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

// Thread rule: one per worker (it owns that worker's YARA scanner, or its engine worker process when the
// engines are sandboxed); the signature set is shared.
class FileScanner {
public:
    // Waits for the signature set's engines. Error: the ClamAV engine failed to load, the YARA scanner could
    // not be created, or no engine worker could be started.
    static Expected<FileScanner> create(const signatures::SignatureSet& signatures);
    // ClamAV then YARA over all of content; path is the guest path (messages, YARA externals). A sandboxed
    // worker that dies on the file gets one fresh retry; then, or when it hangs, the file is ERROR.
    [[nodiscard]] Outcome scan(const Content& content, std::string_view path);

private:
    FileScanner(const signatures::ClamavEngine* clamav, std::optional<signatures::YaraScanner> yara)
        : m_clamav(clamav), m_yara(std::move(yara)) {}
    FileScanner(const signatures::EngineSandbox* sandbox, signatures::EngineWorker worker)
        : m_sandbox(sandbox), m_worker(std::move(worker)) {}
    Outcome scan_in_worker(const Content& content, std::string_view path);

    const signatures::ClamavEngine* m_clamav = nullptr; // shared; none without ClamAV databases
    std::optional<signatures::YaraScanner> m_yara;
    const signatures::EngineSandbox* m_sandbox = nullptr; // shared; set when the engines are sandboxed
    std::optional<signatures::EngineWorker> m_worker;
};

// Detections from any engine win (INFECTED); otherwise an engine error gives ERROR, a limit LIMIT_EXCEEDED;
// CLEAN only when every engine read all of the file and matched nothing.
[[nodiscard]] Outcome combine_results(std::span<const signatures::EngineResult> results);

} // namespace coldscan::scanner
