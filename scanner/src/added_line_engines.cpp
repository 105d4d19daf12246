#include "coldscan/scanner/added_line_engines.hpp"

#include "coldscan/common/log.hpp"
#include "coldscan/signatures/subset_databases.hpp"

#include <chrono>

namespace coldscan::scanner {
namespace {

using signatures::SignatureOptions;
using signatures::SignatureSet;

Expected<std::optional<SignatureSet>> added_clamav(const SignatureSet& current, const SetChange& change,
                                                   const std::filesystem::path& folder) {
    if (!current.clamav_databases()) {
        return std::optional<SignatureSet>{};
    }
    auto written =
        signatures::write_subset_databases(current.clamav_databases()->files, change.delta.added, folder);
    if (!written) {
        return std::unexpected(written.error());
    }
    if (written->lines == 0) {
        return std::optional<SignatureSet>{};
    }
    SignatureOptions options = current.options();
    options.clamav_db = folder;
    options.yara_rules.clear();
    options.memo_dir.reset();
    auto set = SignatureSet::load(options);
    if (!set) {
        return std::unexpected(set.error());
    }
    return std::optional<SignatureSet>(std::move(*set));
}

Expected<std::optional<SignatureSet>> added_yara(const SignatureSet& current, const SetChange& change) {
    if (current.yara() == nullptr) {
        return std::optional<SignatureSet>{};
    }
    auto files = signatures::wanted_rule_files(current.yara()->info().files, change.delta.added);
    if (!files) {
        return std::unexpected(files.error());
    }
    if (files->empty()) {
        return std::optional<SignatureSet>{};
    }
    SignatureOptions options = current.options();
    options.use_clamav = false;
    options.clamav_db.reset();
    options.yara_rules = std::move(*files);
    options.memo_dir.reset();
    auto set = SignatureSet::load(options);
    if (!set) {
        return std::unexpected(set.error());
    }
    return std::optional<SignatureSet>(std::move(*set));
}

Expected<AddedLineSets> build(const SignatureSet& current, const SetChange& change) {
    auto folder = TempDir::create("coldscan-added-lines");
    if (!folder) {
        return std::unexpected(folder.error());
    }
    AddedLineSets sets;
    sets.folder.emplace(std::move(*folder));
    auto clamav = added_clamav(current, change, sets.folder->path());
    if (!clamav) {
        return make_error(clamav.error().code, "ClamAV: " + clamav.error().message);
    }
    sets.clamav = std::move(*clamav);
    auto yara = added_yara(current, change);
    if (!yara) {
        return make_error(yara.error().code, "YARA: " + yara.error().message);
    }
    sets.yara = std::move(*yara);
    return sets;
}

} // namespace

std::shared_ptr<const AddedLineSets> AddedLineEngines::for_set(const std::string& made_with,
                                                               const SetChange& change) {
    std::lock_guard lock(m_mutex);
    if (auto found = m_built.find(made_with); found != m_built.end()) {
        return found->second;
    }
    const auto start = std::chrono::steady_clock::now();
    auto built = build(m_current, change);
    std::shared_ptr<const AddedLineSets> sets;
    if (built) {
        sets = std::make_shared<const AddedLineSets>(std::move(*built));
        spdlog::debug("signature update: {} added lines since set {} loaded as their own engines in {:.2f} s",
                      change.delta.added.size(), made_with.substr(0, 12),
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    } else {
        spdlog::warn("signature update: the engines of the lines added since set {} could not be built ({}); "
                     "its verdicts are scanned again in full",
                     made_with.substr(0, 12), built.error().message);
    }
    m_built.emplace(made_with, sets);
    return sets;
}

} // namespace coldscan::scanner
