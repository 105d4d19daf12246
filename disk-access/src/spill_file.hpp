// Unlinked temporary files for file contents too big to hold in memory (the appliance paths spill them).
#pragma once

#include "coldscan/common/content.hpp"
#include "coldscan/common/unique_fd.hpp"

#include <span>
#include <string>

namespace coldscan::disk::detail {

// Creates an unlinked 0600 temporary file in dir (O_TMPFILE, else mkstemp + unlink). Error: io.
[[nodiscard]] Expected<UniqueFd> create_spill_file(const std::string& dir);
// Writes all of bytes at the descriptor's position. Error: io.
[[nodiscard]] Expected<void> write_all(int fd, std::span<const std::byte> bytes);
// The first size bytes of a filled spill file as Content, through a read-only descriptor when /proc allows
// reopening the unlinked file.
[[nodiscard]] Content spilled_content(UniqueFd fd, std::uint64_t size);

} // namespace coldscan::disk::detail
