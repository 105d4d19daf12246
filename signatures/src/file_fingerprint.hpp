// Private: the fingerprint of a set of signature files, shared by the ClamAV and YARA loaders.
#pragma once

#include "coldscan/common/error.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace coldscan::signatures::detail {

// A file and the sha256 (hex) of the content that was loaded from it.
struct FileDigest {
    std::filesystem::path file;
    std::string sha256;
};

// sha256 (hex) over "<file name> NUL <sha256 of content> LF" for each file, in the given (sorted) order.
// File names, not full paths, so a database folder copied elsewhere keeps its fingerprint.
[[nodiscard]] std::string fingerprint_digests(const std::vector<FileDigest>& digests);

// fingerprint_digests of the files' current contents. Error: io.
[[nodiscard]] Expected<std::string> fingerprint_files(const std::vector<std::filesystem::path>& files);

// ASCII lowercase of s (file extensions, case-insensitive suffix checks).
[[nodiscard]] std::string ascii_lower(std::string s);

} // namespace coldscan::signatures::detail
