// Engines of only the lines a signature update added since a cached verdict was made: a CLEAN verdict stands
// when they find nothing in the bytes, so after a daily update a content is scanned for ~1,000 new lines
// instead of the whole set (docs/signature-updates.md). The ClamAV engine also holds what keeps typing,
// parsing and allow-listing identical (write_subset_databases); the YARA rules are the added rule files.
// Built once per older set, in a temporary folder, with the current set's options (limits, isolation).
// Thread rule: shared; every member is thread-safe (engines are built under a mutex, once).
#pragma once

#include "coldscan/common/temp_dir.hpp"
#include "coldscan/scanner/set_lineage.hpp"
#include "coldscan/signatures/signature_set.hpp"

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace coldscan::scanner {

struct AddedLineSets {
    std::optional<TempDir> folder;                  // first: the engines go before their folder
    std::optional<signatures::SignatureSet> clamav; // nullopt: no ClamAV line was added
    std::optional<signatures::SignatureSet> yara;   // nullopt: no YARA rule file was added
};

class AddedLineEngines {
public:
    explicit AddedLineEngines(const signatures::SignatureSet& current) : m_current(current) {}

    // The engines of the lines `change` added since `made_with`; nullptr when they cannot be built (warned
    // once: the verdicts of that set are then scanned in full).
    [[nodiscard]] std::shared_ptr<const AddedLineSets> for_set(const std::string& made_with,
                                                               const SetChange& change);

private:
    const signatures::SignatureSet& m_current;
    std::mutex m_mutex; // m_built; held while a set is built, so each is built once
    std::map<std::string, std::shared_ptr<const AddedLineSets>> m_built;
};

} // namespace coldscan::scanner
