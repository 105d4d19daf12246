// Private: the fingerprint of a set of signature files, shared by the ClamAV and YARA loaders.
#pragma once

#include "coldscan/common/error.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace coldscan::signatures::detail {

// sha256 (hex) over "<file name> NUL <sha256 of content> LF" for each file, in the given (sorted) order.
// File names, not full paths, so a database folder copied elsewhere keeps its fingerprint. Error: io.
[[nodiscard]] Expected<std::string> fingerprint_files(const std::vector<std::filesystem::path>& files);

// ASCII lowercase of s (file extensions, case-insensitive suffix checks).
[[nodiscard]] std::string ascii_lower(std::string s);

} // namespace coldscan::signatures::detail
