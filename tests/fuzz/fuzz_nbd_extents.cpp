// NBD block status replies (qemu:allocation-depth, dirty bitmaps) -> the extent map -> shallowest_layer,
// as NbdDevice::Impl::status() and DirectImage's block keys use them. The input plays the server: a range
// asked for, then replies of (length, value) pairs. Oracles: the map is contiguous from the start of the
// range, ends at or before its end, covers what the replies covered, never holds two neighbours with the
// same value; shallowest_layer agrees with a brute-force answer over the bytes of any range.
#include "extent_map.hpp"
#include "fuzz_support.hpp"

#include <limits>
#include <vector>

using coldscan::disk::BlockExtent;
using coldscan::fuzz::FuzzInput;

namespace {

// The smallest value >= 1 of the extents holding any byte of [offset, offset + length), by definition.
std::uint32_t brute_force_shallowest(const std::vector<BlockExtent>& map, std::uint64_t offset,
                                     std::uint64_t length) {
    if (length == 0) {
        return 0; // an empty range holds no byte
    }
    const std::uint64_t end = length > std::numeric_limits<std::uint64_t>::max() - offset
                                  ? std::numeric_limits<std::uint64_t>::max()
                                  : offset + length;
    std::uint32_t shallowest = 0;
    for (const auto& e : map) {
        const bool overlaps = e.length > 0 && e.offset < end && e.offset + e.length > offset;
        if (overlaps && e.value != 0 && (shallowest == 0 || e.value < shallowest)) {
            shallowest = e.value;
        }
    }
    return shallowest;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzInput in(data, size);
    // Offsets and lengths as libnbd gives them: int64 offsets, 32-bit lengths per extent.
    const std::uint64_t start = in.integer<std::uint64_t>() % (1ULL << 62);
    const std::uint64_t length = in.integer<std::uint64_t>() % (1ULL << 40);
    const std::uint64_t end = start + length;

    std::vector<BlockExtent> extents;
    std::uint64_t position = start;
    for (int reply = 0; reply < 64 && position < end && !in.empty(); ++reply) {
        std::vector<std::uint32_t> entries(2U * (in.integer<std::uint8_t>() % 16U));
        for (std::size_t i = 0; i < entries.size(); i += 2) {
            entries[i] = in.integer<std::uint32_t>();
            entries[i + 1] = in.integer<std::uint8_t>() % 5U; // few values: neighbours merge
        }
        const std::uint64_t covered = coldscan::disk::detail::append_block_status(extents, position, entries);
        if (covered == 0) {
            break; // status() fails: "the export answered nothing"
        }
        position += covered;
    }
    coldscan::disk::detail::clip_extents(extents, end);

    std::uint64_t total = 0;
    for (std::size_t i = 0; i < extents.size(); ++i) {
        FUZZ_CHECK(extents[i].offset + extents[i].length <= end);
        if (i == 0) {
            FUZZ_CHECK(extents[i].offset == start);
        } else {
            FUZZ_CHECK(extents[i - 1].offset + extents[i - 1].length == extents[i].offset);
            FUZZ_CHECK(extents[i - 1].value != extents[i].value);
        }
        total += extents[i].length;
    }
    FUZZ_CHECK(total == std::min(position, end) - start);

    for (int query = 0; query < 16 && !in.empty(); ++query) {
        // Mostly ranges near the map; sometimes anything at all (hostile data runs).
        const std::uint8_t mode = in.integer<std::uint8_t>();
        std::uint64_t offset = in.integer<std::uint64_t>();
        std::uint64_t query_length = in.integer<std::uint64_t>();
        if (mode % 4 != 0) {
            offset = start + offset % (length + 2);
            query_length %= length + 2;
        }
        FUZZ_CHECK(coldscan::disk::detail::shallowest_layer(extents, offset, query_length) ==
                   brute_force_shallowest(extents, offset, query_length));
    }
    return 0;
}
