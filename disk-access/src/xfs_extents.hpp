// Where an XFS inode's data lies: its data fork's extent records, held in the inode (extents format) or in a
// btree whose root is in the inode (btree format, "BMA3"/"BMAP" blocks), turned into the file's data runs.
// Every walk over untrusted bytes is bounded: btree height, blocks visited once each, records no more than
// the inode says, extents checked against the allocation groups and against each other.
#pragma once

#include "filesystem_reader.hpp"
#include "xfs_format.hpp"

#include <functional>

namespace coldscan::disk::detail::xfs {

// Reads bytes at an offset in the filesystem (a btree block). Errors: io, corrupt.
using ReadAt = std::function<Expected<void>(std::uint64_t fs_offset, std::span<std::byte> out)>;

inline constexpr std::uint64_t k_max_extents = std::uint64_t{1} << 24; // per fork: 512 MiB of records
inline constexpr unsigned k_max_btree_levels = 9;                      // the root's level, at most

// The data fork's extents of an extents- or btree-format inode, by file block: each inside one allocation
// group, none overlapping another. Errors: corrupt (a bad record or btree block), unsupported (more than
// k_max_extents), io.
[[nodiscard]] Expected<std::vector<Extent>> data_extents(const Inode& inode, const Superblock& sb,
                                                         const ReadAt& read_at);

// The runs of a file of size bytes that data_extents gave: from offset 0, contiguous, holes and unwritten
// extents sparse, the last run ending at size.
[[nodiscard]] std::vector<DataRun> file_runs(const std::vector<Extent>& extents, std::uint64_t size,
                                             const Superblock& sb);

} // namespace coldscan::disk::detail::xfs
