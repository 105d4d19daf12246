// One compiled libclamav engine (clamav.h stays private to signatures/src).
//
// Loaded with clamscan's default parsing (archives, packers, documents, mail, ...) and general heuristics on,
// all matches collected, "alert on exceeded limits" on: Heuristics.Limits.Exceeded.* alerts become
// limit_exceeded, never detections and never clean.
// Thread rule: shared, immutable once loaded; scan() may run on any number of threads at once.
#pragma once

#include "coldscan/common/content.hpp"
#include "coldscan/common/error.hpp"
#include "coldscan/signatures/engine_result.hpp"
#include "coldscan/signatures/scan_limits.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace coldscan::signatures {

struct ClamavDatabaseInfo {
    std::filesystem::path path;               // the file or folder loaded
    std::vector<std::filesystem::path> files; // database files found, sorted
    std::uint64_t signature_count = 0;
    std::string fingerprint;    // sha256 over (name, sha256 of content) of every database file, sorted
    std::string engine_version; // cl_retver()
};

class ClamavEngine {
public:
    // Loads a database file or a folder of them (.cvd .cld .cud .hdb .hsb .ndb .ldb .yar ... as cl_load does)
    // and compiles the engine. Errors: not_found (no database there), engine (load/compile failed).
    static Expected<ClamavEngine> load(const std::filesystem::path& path, const ScanLimits& limits);
    // load() in two steps. describe: the database files, their fingerprint and the engine version, without
    // loading anything (signature_count stays 0); compile: loads and compiles what describe found.
    static Expected<ClamavDatabaseInfo> describe(const std::filesystem::path& path);
    static Expected<ClamavEngine> compile(ClamavDatabaseInfo info, const ScanLimits& limits);
    ClamavEngine(ClamavEngine&&) noexcept;
    ClamavEngine& operator=(ClamavEngine&&) noexcept;
    ~ClamavEngine();

    // Scans all of content. name is the guest path, used only in messages.
    [[nodiscard]] EngineResult scan(const Content& content, std::string_view name) const;
    [[nodiscard]] const ClamavDatabaseInfo& info() const noexcept;

private:
    struct Impl;
    explicit ClamavEngine(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> m_impl;
};

// True when the folder holds at least one database file libclamav would load.
[[nodiscard]] bool holds_clamav_databases(const std::filesystem::path& folder);

} // namespace coldscan::signatures
