// pread() until the buffer is full, the file ends, or a read fails: the one loop every reader here needs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace coldscan {

// Reads up to out.size() bytes at offset, retrying short reads and EINTR. Returns the bytes read; error is
// set to the errno of a failed read (0 when the buffer filled or the file ended). On a failure the bytes read
// before it are still counted.
[[nodiscard]] std::size_t read_fully(int fd, std::uint64_t offset, std::span<std::byte> out,
                                     int& error) noexcept;

} // namespace coldscan
