// Database folders of only some detection lines of a set, for engines that check cached verdicts against
// what a signature update added (docs/signature-updates.md): such an engine must type, parse and
// allow-list every file exactly as the whole set does, and match only the wanted lines.
// Thread rule: free functions.
#pragma once

#include "coldscan/common/error.hpp"
#include "coldscan/signatures/signature_catalogue.hpp"

#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

namespace coldscan::signatures {

struct SubsetWritten {
    std::uint64_t lines = 0; // wanted detection lines written (allow-list and icon lines not counted)
};

// Writes into `folder` (existing, empty) the wanted lines (sorted) of these ClamAV database files, each into
// a file named as the one it came from (a container's members as plain files), together with every
// engine-part file (file types, dynamic configuration, trust rules), every allow-list line and every icon
// line (logical signatures name icon groups). A container that holds only engine-part files (bytecode.cvd)
// is copied whole, so its signed bytecode stays signed. Errors: as read_catalogue; unsupported
// when bytecode shares a container with detection lines (it would load as unsigned bytecode); io when
// `folder` cannot be written.
[[nodiscard]] Expected<SubsetWritten> write_subset_databases(const std::vector<std::filesystem::path>& files,
                                                             std::span<const CatalogueLine> wanted,
                                                             const std::filesystem::path& folder);

// The YARA rule files (as given) whose line (each file is one) is among the wanted ones (sorted).
// Error: io (a file cannot be read).
[[nodiscard]] Expected<std::vector<std::filesystem::path>>
wanted_rule_files(const std::vector<std::filesystem::path>& files, std::span<const CatalogueLine> wanted);

} // namespace coldscan::signatures
