#include "extent_map.hpp"

#include <algorithm>
#include <limits>

namespace coldscan::disk::detail {

std::uint64_t append_block_status(std::vector<BlockExtent>& out, std::uint64_t offset,
                                  std::span<const std::uint32_t> entries) {
    std::uint64_t covered = 0;
    for (std::size_t i = 0; i + 1 < entries.size(); i += 2) {
        const std::uint64_t length = entries[i];
        const std::uint32_t value = entries[i + 1];
        if (!out.empty() && out.back().value == value && out.back().offset + out.back().length == offset) {
            out.back().length += length;
        } else {
            out.push_back(BlockExtent{offset, length, value});
        }
        offset += length;
        covered += length;
    }
    return covered;
}

void clip_extents(std::vector<BlockExtent>& extents, std::uint64_t end) {
    while (!extents.empty() && extents.back().offset >= end) {
        extents.pop_back();
    }
    if (!extents.empty() && extents.back().offset + extents.back().length > end) {
        extents.back().length = end - extents.back().offset;
    }
}

std::uint32_t shallowest_layer(const std::vector<BlockExtent>& map, std::uint64_t offset,
                               std::uint64_t length) {
    // Only extents that hold a byte of the range count: not an empty extent (a server may send one), not
    // the last extent before a range past the end of the map, nothing for an empty range. The end saturates
    // (a hostile filesystem's data run may point anywhere).
    if (length == 0) {
        return 0;
    }
    const std::uint64_t end = length > std::numeric_limits<std::uint64_t>::max() - offset
                                  ? std::numeric_limits<std::uint64_t>::max()
                                  : offset + length;
    auto it = std::upper_bound(map.begin(), map.end(), offset,
                               [](std::uint64_t at, const BlockExtent& e) { return at < e.offset; });
    if (it != map.begin()) {
        --it;
    }
    std::uint32_t shallowest = 0;
    for (; it != map.end() && it->offset < end; ++it) {
        const bool holds_a_byte = it->length > 0 && it->offset + it->length > offset;
        if (holds_a_byte && it->value != 0 && (shallowest == 0 || it->value < shallowest)) {
            shallowest = it->value;
        }
    }
    return shallowest;
}

} // namespace coldscan::disk::detail
