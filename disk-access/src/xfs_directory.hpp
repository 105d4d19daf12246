// XFS directory entries decoded from untrusted bytes: the short-form directory held in the inode, and the
// data blocks of block, leaf and node directories (xfs_da_format.h). The leaf, node and free-space blocks
// (hash indexes for lookups) are never needed to list a directory and are not read. Pure functions.
#pragma once

#include "xfs_format.hpp"

#include <functional>
#include <string_view>

namespace coldscan::disk::detail::xfs {

enum class Visit { go_on, stop };
// Called for every entry but "." and "..", in the order stored; Visit::stop ends the walk.
using EntryVisitor = std::function<Visit(std::string_view name, std::uint64_t ino)>;

// Directory blocks live in the first 32 GiB of a directory's address space (XFS_DIR2_LEAF_OFFSET); the
// leaf and free-space indexes lie above.
inline constexpr std::uint64_t k_dir_leaf_offset = std::uint64_t{1} << 35;

// The entries of a short-form directory: the first size bytes of the inode's data fork. Returns
// Visit::stop when the visitor stopped. Error: corrupt.
[[nodiscard]] Expected<Visit> shortform_entries(Bytes fork, std::uint64_t size, const Superblock& sb,
                                                const EntryVisitor& visit);

// The entries of one directory data block of sb.dir_block_size() bytes: a single-block directory
// ("XDB3", v4 "XD2B") or a data block of a bigger one ("XDD3", "XD2D"). Error: corrupt.
[[nodiscard]] Expected<Visit> data_block_entries(Bytes block, const Superblock& sb,
                                                 const EntryVisitor& visit);

} // namespace coldscan::disk::detail::xfs
