// A read-only disk seen as bytes: what the direct filesystem reader parses. Implementations: an NBD export
// read through libnbd, and memory (tests).
#pragma once

#include "coldscan/common/error.hpp"

#include <cstddef>
#include <cstdint>
#include <span>

namespace coldscan::disk {

// Thread rule: every member may be called from any thread at once.
class BlockDevice {
public:
    virtual ~BlockDevice() = default;
    [[nodiscard]] virtual std::uint64_t size() const noexcept = 0;
    // Fills out with the bytes at offset; the range must lie inside size(). Errors: io, invalid_argument.
    [[nodiscard]] virtual Expected<void> read(std::uint64_t offset, std::span<std::byte> out) = 0;
};

} // namespace coldscan::disk
