#include "coldscan/signatures/signature_set.hpp"

#include "coldscan/common/sha256.hpp"
#include "coldscan/signatures/signature_catalogue.hpp"
#include "file_fingerprint.hpp"
#include "parts_memo.hpp"

#include <algorithm>

namespace coldscan::signatures {
namespace {

// Raised whenever a scan of the same bytes with the same signatures may answer differently, so verdicts
// cached by an older coldscan are not reused. v2: big files went through a libclamav path that could skip
// archive members (clamav_scan.cpp). v3: files over MaxFileSize have their first MaxFileSize bytes scanned,
// and archive members over it (libclamav cut them short without a word) are limit hits. v4: encrypted
// archive members and documents are limit hits, no longer clean. v5: an archive member over MaxFileSize is a
// limit hit only when libclamav extracted it up to the limit (zip headers inside .pyc and .so files declare
// gigabytes and extract nothing: those files are clean again). v6: the set in two parts (engine part and
// detection lines, signature_catalogue.hpp), the same lines in another container being the same set.
constexpr std::string_view k_fingerprint_schema = "coldscan-signature-set-v6";

// Every limit, because a verdict depends on them as much as on the signatures.
std::string limits_text(const ScanLimits& limits) {
    return "max_file_size=" + std::to_string(limits.max_file_size) +
           " max_scan_size=" + std::to_string(limits.max_scan_size) +
           " max_recursion=" + std::to_string(limits.max_recursion) +
           " max_files=" + std::to_string(limits.max_files) +
           " max_scan_time_ms=" + std::to_string(limits.max_scan_time.count()) +
           " yara_timeout_s=" + std::to_string(limits.yara_timeout.count());
}

// Each YARA rule file is one unit of the detection set; what the rules include, and compiled rules, are
// engine part (a change there may change any rule).
Expected<CatalogueDigest> yara_digest_of(const YaraRulesInfo& info) {
    auto digest = digest_catalogue(info.files);
    if (!digest) {
        return std::unexpected(digest.error());
    }
    if (!info.included_files.empty()) {
        auto included = detail::fingerprint_files(info.included_files);
        if (!included) {
            return std::unexpected(included.error());
        }
        digest->engine_part = sha256_hex(digest->engine_part + " included " + *included);
    }
    return digest;
}

// libclamav reads plain-text databases (.hdb, .ndb, ...) with getc(), which glibc locks once a process has a
// second thread: such a load runs ~2.6x slower next to other work (0.83 s -> 2.2 s for 1.1 M signatures),
// which costs more than the overlap saves. Containers (.cvd, .cld, .cud: what freshclam installs) are read
// through zlib and load as fast on any thread.
bool slow_on_a_thread(const std::vector<std::filesystem::path>& files) {
    constexpr std::uint64_t k_plain_text_budget = 8ULL << 20;
    std::uint64_t plain_text = 0;
    for (const auto& file : files) {
        const std::string ext = detail::ascii_lower(file.extension().string());
        if (ext != ".cvd" && ext != ".cld" && ext != ".cud") {
            std::error_code ec;
            const auto size = std::filesystem::file_size(file, ec);
            plain_text += ec ? 0 : size;
        }
    }
    return plain_text > k_plain_text_budget;
}

Expected<CatalogueDigest> clamav_digest(const ClamavDatabaseInfo& databases,
                                        const std::optional<std::filesystem::path>& memo_dir) {
    if (memo_dir) {
        if (auto known = detail::recall_catalogue_digest(*memo_dir, databases.fingerprint)) {
            return *known;
        }
    }
    auto read = digest_catalogue(databases.files);
    if (!read) {
        return make_error(read.error().code, "the ClamAV databases: " + read.error().message);
    }
    if (memo_dir) {
        detail::remember_catalogue_digest(*memo_dir, databases.fingerprint, *read);
    }
    return read;
}

Error no_signatures(const SignatureOptions& options) {
    std::string message = "no signatures: give --clamav-db PATH and/or --yara-rules PATH";
    if (!options.clamav_db) {
        message += std::string(" (no ClamAV databases in ") + k_default_clamav_db + ")";
    }
    return Error{Errc::invalid_argument, std::move(message)};
}

} // namespace

Expected<SignatureSet> SignatureSet::load(const SignatureOptions& options, LoadMode mode) {
    SignatureSet set;
    set.m_limits = options.limits;
    set.m_options = options;

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

    if (!options.yara_rules.empty()) {
        auto yara = YaraRules::compile(options.yara_rules);
        if (!yara) {
            return std::unexpected(yara.error());
        }
        set.m_yara = std::move(*yara);
    }
    const bool has_rules = set.m_yara && set.m_yara->info().rule_count > 0;

    const std::filesystem::path default_db = k_default_clamav_db;
    if (options.isolation == EngineIsolation::sandboxed && mode != LoadMode::catalogue) {
        return load_sandboxed(std::move(set), options, mode, has_rules);
    }
    if (options.use_clamav && (options.clamav_db || holds_clamav_databases(default_db))) {
        auto databases = ClamavEngine::describe(options.clamav_db.value_or(default_db));
        if (!databases) {
            return std::unexpected(databases.error());
        }
        set.m_clamav_databases = *databases;
        // The engine alone may turn out empty: with no YARA rule either, that is "no signatures".
        auto compile = [info = std::move(*databases), limits = options.limits, has_rules,
                        options]() mutable -> Expected<ClamavEngine> {
            auto engine = ClamavEngine::compile(std::move(info), limits);
            if (engine && engine->info().signature_count == 0 && !has_rules) {
                return std::unexpected(no_signatures(options));
            }
            return engine;
        };
        set.m_background = mode == LoadMode::background && !slow_on_a_thread(set.m_clamav_databases->files);
        set.m_clamav =
            std::async(set.m_background ? std::launch::async : std::launch::deferred, std::move(compile))
                .share();
        if (!set.m_background && mode != LoadMode::catalogue) {
            if (auto ready = set.ready(); !ready) {
                return std::unexpected(ready.error());
            }
        }
    } else if (!has_rules) {
        return std::unexpected(no_signatures(options));
    }

    if (auto parts = set.catalogue_parts(options.memo_dir); !parts) {
        return std::unexpected(parts.error());
    }
    return set;
}

Expected<void> SignatureSet::catalogue_parts(const std::optional<std::filesystem::path>& memo_dir) {
    CatalogueDigest clamav{"none", "none", 0};
    if (m_clamav_databases) {
        auto read = clamav_digest(*m_clamav_databases, memo_dir);
        if (!read) {
            return std::unexpected(read.error());
        }
        clamav = std::move(*read);
    }
    CatalogueDigest yara{"none", "none", 0};
    if (m_yara) {
        auto read = yara_digest_of(m_yara->info());
        if (!read) {
            return make_error(read.error().code, "the YARA rules: " + read.error().message);
        }
        yara = std::move(*read);
    }
    Sha256 hasher;
    hasher.update(k_fingerprint_schema);
    hasher.update("\nclamav ");
    hasher.update(m_clamav_databases ? m_clamav_databases->engine_version + " " + clamav.engine_part
                                     : "none");
    hasher.update("\nyara ");
    hasher.update(m_yara ? m_yara->info().engine_version + " " + yara.engine_part : "none");
    hasher.update("\nlimits ");
    hasher.update(limits_text(m_limits));
    m_engine_part = to_hex(hasher.finish());
    m_detection_set = sha256_hex("coldscan detection set v1\nclamav " + clamav.detection_set + "\nyara " +
                                 yara.detection_set);
    m_fingerprint = sha256_hex("coldscan signature set v6\n" + m_engine_part + "\n" + m_detection_set);
    return {};
}

Expected<std::vector<CatalogueLine>> SignatureSet::detection_lines() const {
    std::vector<CatalogueLine> lines;
    if (m_clamav_databases) {
        auto clamav = read_catalogue(m_clamav_databases->files);
        if (!clamav) {
            return make_error(clamav.error().code, "the ClamAV databases: " + clamav.error().message);
        }
        lines = std::move(clamav->lines);
    }
    if (m_yara) {
        auto yara = read_catalogue(m_yara->info().files);
        if (!yara) {
            return make_error(yara.error().code, "the YARA rules: " + yara.error().message);
        }
        lines.insert(lines.end(), yara->lines.begin(), yara->lines.end());
    }
    std::ranges::sort(lines);
    const auto repeats = std::ranges::unique(lines);
    lines.erase(repeats.begin(), repeats.end());
    return lines;
}

Expected<std::vector<LineText>> SignatureSet::line_texts(std::span<const CatalogueLine> wanted) const {
    if (!m_clamav_databases || wanted.empty()) {
        return std::vector<LineText>{};
    }
    auto texts = find_line_texts(m_clamav_databases->files, wanted);
    if (!texts) {
        return make_error(texts.error().code, "the ClamAV databases: " + texts.error().message);
    }
    return texts;
}

Expected<std::vector<LineText>> SignatureSet::line_texts_of(LineKind kind) const {
    if (!m_clamav_databases) {
        return std::vector<LineText>{};
    }
    auto texts = find_texts_of_kind(m_clamav_databases->files, kind);
    if (!texts) {
        return make_error(texts.error().code, "the ClamAV databases: " + texts.error().message);
    }
    return texts;
}

// The engines load in the sandbox's host process; this one only describes the databases, for the
// fingerprint. The YARA rules were compiled here too (cheap, and their info names the included files).
Expected<SignatureSet> SignatureSet::load_sandboxed(SignatureSet set, const SignatureOptions& options,
                                                    LoadMode mode, bool has_rules) {
    const std::filesystem::path default_db = k_default_clamav_db;
    SandboxOptions sandbox_options;
    if (options.use_clamav && (options.clamav_db || holds_clamav_databases(default_db))) {
        auto databases = ClamavEngine::describe(options.clamav_db.value_or(default_db));
        if (!databases) {
            return std::unexpected(databases.error());
        }
        sandbox_options.clamav_db = databases->path;
        set.m_clamav_databases = std::move(*databases);
    } else if (!has_rules) {
        return std::unexpected(no_signatures(options));
    }
    sandbox_options.yara_rules = options.yara_rules;
    sandbox_options.limits = options.limits;
    auto sandbox = EngineSandbox::start(sandbox_options);
    if (!sandbox) {
        return std::unexpected(sandbox.error());
    }
    set.m_sandbox = std::move(*sandbox);
    set.m_has_rules = has_rules;
    set.m_background = mode == LoadMode::background;
    if (auto parts = set.catalogue_parts(options.memo_dir); !parts) {
        return std::unexpected(parts.error());
    }
    if (!set.m_background) {
        if (auto ready = set.ready(); !ready) {
            return std::unexpected(ready.error());
        }
    }
    return set;
}

Expected<void> SignatureSet::ready() const {
    if (m_sandbox) {
        auto engines = m_sandbox->ready();
        if (!engines) {
            return std::unexpected(engines.error());
        }
        if (engines->clamav && engines->clamav->signature_count == 0 && !m_has_rules) {
            return make_error(Errc::invalid_argument, "no signatures: the ClamAV databases in " +
                                                          engines->clamav->path.string() +
                                                          " hold none, and there are no YARA rules");
        }
        return {};
    }
    if (!m_clamav.valid()) {
        return {};
    }
    const auto& engine = m_clamav.get();
    if (!engine) {
        return std::unexpected(engine.error());
    }
    return {};
}

const ClamavEngine* SignatureSet::clamav() const {
    if (!m_clamav.valid()) {
        return nullptr;
    }
    const auto& engine = m_clamav.get();
    return engine ? &*engine : nullptr;
}

std::uint64_t SignatureSet::clamav_signature_count() const {
    if (m_sandbox) {
        auto engines = m_sandbox->ready();
        return engines && engines->clamav ? engines->clamav->signature_count : 0;
    }
    const auto* engine = clamav();
    return engine != nullptr ? engine->info().signature_count : 0;
}

} // namespace coldscan::signatures
