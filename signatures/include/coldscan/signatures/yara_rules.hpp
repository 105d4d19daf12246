// YARA rules compiled once, scanned with one scanner per worker (yara.h stays private to signatures/src).
//
// Sources (.yar/.yara, includes resolved next to the including file) or one compiled file (yarac output).
// Each source file gets its own namespace (its file stem) so rule names from different files cannot clash.
// The external variables common rule sets use (filename, filepath, extension, filetype, owner) are defined,
// set per file.
#pragma once

#include "coldscan/common/content.hpp"
#include "coldscan/common/error.hpp"
#include "coldscan/signatures/engine_result.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace coldscan::signatures {

struct YaraRulesInfo {
    std::vector<std::filesystem::path> files; // rule files loaded, sorted
    std::vector<std::filesystem::path>
        included_files; // files they include (at any depth), sorted, no repeats
    std::uint64_t rule_count = 0;
    // sha256 over (name, sha256 of content) of every rule file, sorted, then of every included file: any
    // change to the text that was compiled changes it.
    std::string fingerprint;
    std::string engine_version;
    // Some rule may read filename, filepath or extension, so a verdict can depend on the file's path and not
    // only on its bytes. From the source text (a mention in a comment or string also counts); always true for
    // compiled rules, whose source is not there to check.
    bool reads_file_path = true;
};

// Thread rule: shared, immutable once compiled.
class YaraRules {
public:
    // paths: rule files or folders (searched recursively for .yar/.yara/.yarc). Errors: not_found (nothing
    // there), invalid_argument (syntax errors, with file:line), engine.
    static Expected<YaraRules> compile(const std::vector<std::filesystem::path>& paths);
    [[nodiscard]] const YaraRulesInfo& info() const noexcept;

private:
    friend class YaraScanner;
    struct Impl;
    explicit YaraRules(std::shared_ptr<const Impl> impl) : m_impl(std::move(impl)) {}
    std::shared_ptr<const Impl> m_impl;
};

// Thread rule: one per worker; never shared between threads at once.
class YaraScanner {
public:
    static Expected<YaraScanner> create(const YaraRules& rules, std::chrono::seconds timeout);
    YaraScanner(YaraScanner&&) noexcept;
    YaraScanner& operator=(YaraScanner&&) noexcept;
    ~YaraScanner();

    // Scans all of content; path is the guest path (sets filename/filepath/extension). A timeout or the
    // too-many-matches cap gives limit_exceeded, keeping the matches found so far.
    [[nodiscard]] EngineResult scan(const Content& content, std::string_view path);

private:
    struct Impl;
    explicit YaraScanner(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> m_impl;
};

} // namespace coldscan::signatures
