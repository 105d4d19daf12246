// Allocation maps from NBD block status replies (qemu:allocation-depth, qemu:dirty-bitmap:NAME). The replies
// come from the export's server, so building the map and asking it are pure functions over plain data,
// driven by the fuzzer (tests/fuzz/fuzz_nbd_extents.cpp) without a server.
#pragma once

#include "coldscan/disk/nbd_device.hpp"

#include <cstdint>
#include <span>
#include <vector>

namespace coldscan::disk::detail {

// Appends one block-status reply (entries: pairs of length and value, as libnbd hands them over) that
// starts at offset, merging each extent into the last one when it continues it with the same value.
// Returns the bytes the reply covered.
std::uint64_t append_block_status(std::vector<BlockExtent>& out, std::uint64_t offset,
                                  std::span<const std::uint32_t> entries);
// Drops the extents that start at or past end and shortens the last one to end (a server may describe a
// little more than it was asked).
void clip_extents(std::vector<BlockExtent>& extents, std::uint64_t end);
// The smallest value (>= 1) of any extent that holds a byte of [offset, offset + length); 0 when none does.
// map: sorted by offset, as append_block_status builds it.
[[nodiscard]] std::uint32_t shallowest_layer(const std::vector<BlockExtent>& map, std::uint64_t offset,
                                             std::uint64_t length);

} // namespace coldscan::disk::detail
