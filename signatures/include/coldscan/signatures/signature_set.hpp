// Everything a scan matches against: the ClamAV engine and the YARA rules, loaded together.
// Thread rule: shared, immutable once loaded; every method may be called from any thread (clamav() and
// ready() block until a background load is done).
#pragma once

#include "coldscan/common/error.hpp"
#include "coldscan/signatures/clamav_engine.hpp"
#include "coldscan/signatures/engine_sandbox.hpp"
#include "coldscan/signatures/scan_limits.hpp"
#include "coldscan/signatures/signature_catalogue.hpp"
#include "coldscan/signatures/yara_rules.hpp"

#include <filesystem>
#include <future>
#include <optional>
#include <string>
#include <vector>

namespace coldscan::signatures {

inline constexpr const char* k_default_clamav_db = "/var/lib/clamav";
// SignatureOptions::memo_dir's name inside a verdict cache's folder.
inline constexpr const char* k_memo_folder = "signature-sets";

// in_process: the engines run on the pipeline's threads (tests, benchmarks of the engines alone).
// sandboxed: in confined worker processes (engine_sandbox.hpp): what scans of untrusted images use.
enum class EngineIsolation { in_process, sandboxed };

struct SignatureOptions {
    std::optional<std::filesystem::path> clamav_db; // unset: k_default_clamav_db when it holds databases
    bool use_clamav = true; // false: no ClamAV engine at all (a set of YARA rules alone)
    std::vector<std::filesystem::path> yara_rules;
    ScanLimits limits;
    EngineIsolation isolation = EngineIsolation::in_process;
    // Where the digests of ClamAV databases read before are remembered (a folder in the verdict cache), so
    // loading a set seen before skips unpacking and digesting its lines. Unset: always read them.
    std::optional<std::filesystem::path> memo_dir;
};

// now: both engines are ready when load() returns. background: the ClamAV engine (the slow part: ~1 s per
// million signatures) compiles on its own thread while the caller opens images and asks the verdict cache;
// everything but the engine itself is known at once.
// catalogue: what the set holds (its parts and lines), no engine compiled until one is asked for (clamav()
// compiles it then, on the caller's thread): for a retro-hunt, which reads no file.
enum class LoadMode { now, background, catalogue };

class SignatureSet {
public:
    // Errors: invalid_argument when there are no signatures at all, or a path does not exist; the engines'
    // own load/compile errors otherwise. In background mode a ClamAV load error comes from ready() instead.
    static Expected<SignatureSet> load(const SignatureOptions& options, LoadMode mode = LoadMode::now);

    // Waits for the background load; its error when it failed (then clamav() is nullptr and nothing may be
    // called scanned). Always fine in now mode.
    [[nodiscard]] Expected<void> ready() const;
    // Wait for the background load (nullptr: no ClamAV databases, the load failed (see ready()), or the
    // engines are sandboxed).
    [[nodiscard]] const ClamavEngine* clamav() const;
    // The worker processes' host when sandboxed, else nullptr.
    [[nodiscard]] const EngineSandbox* sandbox() const noexcept { return m_sandbox.get(); }
    // ClamAV signatures loaded; waits for the load (0 when it failed or there are no databases).
    [[nodiscard]] std::uint64_t clamav_signature_count() const;
    [[nodiscard]] const YaraRules* yara() const noexcept { return m_yara ? &*m_yara : nullptr; }
    // The ClamAV databases in use, without waiting (signature_count is 0 until the engine is ready).
    [[nodiscard]] const std::optional<ClamavDatabaseInfo>& clamav_databases() const noexcept {
        return m_clamav_databases;
    }
    // Whether the ClamAV engine is compiling on its own thread (else it was ready when load() returned).
    [[nodiscard]] bool loads_in_background() const noexcept { return m_background; }
    [[nodiscard]] const ScanLimits& limits() const noexcept { return m_limits; }
    // What the set was loaded with (memo_dir aside, the same options load the same set again).
    [[nodiscard]] const SignatureOptions& options() const noexcept { return m_options; }
    // sha256 over the two parts below: names "the signature set" in reports and caches. The same lines in
    // another container (daily.cvd rewritten as daily.cld) are the same set. Known at once in both modes.
    [[nodiscard]] const std::string& fingerprint() const noexcept { return m_fingerprint; }
    // The set in two parts (docs/signature-updates.md), known at once in both modes. engine_part: what
    // forces a full rescan when it changes (engine versions, limits, bytecode, file types, configuration,
    // trust rules, YARA includes and compiled rules). detection_set: which detection lines the set holds
    // (ClamAV's line by line, each YARA rule file whole; signature_catalogue.hpp reads the lines).
    [[nodiscard]] const std::string& engine_part() const noexcept { return m_engine_part; }
    [[nodiscard]] const std::string& detection_set() const noexcept { return m_detection_set; }
    // The detection set's lines, sorted and unique (ClamAV's, and each YARA rule file as one line): what the
    // verdict cache's lineage records for a set it has not seen. Reads every database again (~1.5 s per
    // million signatures). Errors: as load's, when a file changed or vanished since.
    [[nodiscard]] Expected<std::vector<CatalogueLine>> detection_lines() const;
    // The text of these ClamAV lines (sorted) in the set's databases, in their order; lines not found are
    // left out. Reads every database again. Errors: as load's.
    [[nodiscard]] Expected<std::vector<LineText>> line_texts(std::span<const CatalogueLine> wanted) const;
    // Every ClamAV line of this kind with its text, in one read of the databases. Errors: as load's.
    [[nodiscard]] Expected<std::vector<LineText>> line_texts_of(LineKind kind) const;

private:
    SignatureSet() = default;
    static Expected<SignatureSet> load_sandboxed(SignatureSet set, const SignatureOptions& options,
                                                 LoadMode mode, bool has_rules);
    std::optional<ClamavDatabaseInfo> m_clamav_databases;
    // The compiled engine; shared_future so a SignatureSet stays movable while the load runs.
    std::shared_future<Expected<ClamavEngine>> m_clamav;
    bool m_background = false;
    std::shared_ptr<EngineSandbox> m_sandbox;
    bool m_has_rules = false;
    std::optional<YaraRules> m_yara;
    ScanLimits m_limits;
    SignatureOptions m_options;
    std::string m_fingerprint;
    std::string m_engine_part;
    std::string m_detection_set;
    // Reads the databases and rules into the two parts and the fingerprint (after m_clamav_databases,
    // m_yara and m_limits are set).
    [[nodiscard]] Expected<void> catalogue_parts(const std::optional<std::filesystem::path>& memo_dir);
};

} // namespace coldscan::signatures
