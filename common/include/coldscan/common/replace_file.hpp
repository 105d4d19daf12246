// Writing a small file whole: readers see the old content or all of the new one, never a part.
// Thread rule: free function; concurrent writers of one path each leave a whole file (the last rename wins).
#pragma once

#include "coldscan/common/error.hpp"

#include <filesystem>
#include <string_view>

namespace coldscan {

// Writes text to a temporary file next to path, then renames it over path. Errors: io.
[[nodiscard]] Expected<void> replace_file(const std::filesystem::path& path, std::string_view text);

} // namespace coldscan
