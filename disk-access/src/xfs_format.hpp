// XFS on-disk structures, decoded from untrusted bytes into plain values (xfs_filesystem.cpp reads, this
// decodes). Offsets follow the kernel's fs/xfs/libxfs/xfs_format.h and xfs_da_format.h (Linux 6.x); every
// field is checked against sane ranges before anything is computed from it. Pure functions: the fuzz target
// (tests/fuzz/fuzz_xfs_filesystem.cpp) links them without libtsk or libnbd.
#pragma once

#include "coldscan/common/error.hpp"

#include <array>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace coldscan::disk::detail::xfs {

using Bytes = std::span<const std::byte>;

[[nodiscard]] inline std::uint64_t be(Bytes bytes, std::size_t at, std::size_t width) {
    assert(at <= bytes.size() && width <= bytes.size() - at);
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < width; ++i) {
        value = (value << 8U) | std::to_integer<std::uint64_t>(bytes[at + i]);
    }
    return value;
}
[[nodiscard]] inline std::uint8_t u8(Bytes b, std::size_t at) {
    return static_cast<std::uint8_t>(be(b, at, 1));
}
[[nodiscard]] inline std::uint16_t be16(Bytes b, std::size_t at) {
    return static_cast<std::uint16_t>(be(b, at, 2));
}
[[nodiscard]] inline std::uint32_t be32(Bytes b, std::size_t at) {
    return static_cast<std::uint32_t>(be(b, at, 4));
}
[[nodiscard]] inline std::uint64_t be64(Bytes b, std::size_t at) {
    return be(b, at, 8);
}

inline constexpr std::uint32_t k_superblock_magic = 0x58465342; // "XFSB"
inline constexpr std::size_t k_superblock_bytes = 512;          // the fields read lie in the first sector

// Incompatible features (sb_features_incompat, v5) this reader knows. Any other bit: unsupported.
inline constexpr std::uint32_t k_incompat_ftype = 0x1;        // file type byte in directory entries
inline constexpr std::uint32_t k_incompat_spinodes = 0x2;     // sparse inode chunks (inode btrees only)
inline constexpr std::uint32_t k_incompat_meta_uuid = 0x4;    // metadata stamped with another UUID
inline constexpr std::uint32_t k_incompat_bigtime = 0x8;      // 64-bit nanosecond timestamps
inline constexpr std::uint32_t k_incompat_needsrepair = 0x10; // xfs_repair was interrupted: read anyway
inline constexpr std::uint32_t k_incompat_nrext64 = 0x20;     // 64-bit data fork extent counters
inline constexpr std::uint32_t k_incompat_exchrange = 0x40;   // log items only
inline constexpr std::uint32_t k_incompat_parent = 0x80;      // parent pointers (extended attributes only)
inline constexpr std::uint32_t k_incompat_metadir =
    0x100; // metadata inodes in their own tree, not the root's
inline constexpr std::uint32_t k_incompat_known =
    k_incompat_ftype | k_incompat_spinodes | k_incompat_meta_uuid | k_incompat_bigtime |
    k_incompat_needsrepair | k_incompat_nrext64 | k_incompat_exchrange | k_incompat_parent |
    k_incompat_metadir;

// The superblock's geometry, validated.
struct Superblock {
    unsigned version = 0; // 4 or 5 (CRC)
    std::uint32_t block_size = 0;
    unsigned block_log = 0;
    std::uint64_t data_blocks = 0;
    std::uint64_t root_inode = 0;
    std::uint32_t ag_blocks = 0;
    std::uint32_t ag_count = 0;
    unsigned ag_block_log = 0;
    std::uint32_t inode_size = 0;
    unsigned inode_log = 0;
    unsigned inodes_per_block_log = 0;
    unsigned dir_block_log = 0; // a directory block is block_size << dir_block_log bytes
    bool has_ftype = false;     // directory entries carry a file type byte
    std::uint32_t incompat = 0;
    std::array<std::uint8_t, 16> uuid{};
    std::string label;

    [[nodiscard]] std::uint64_t size_bytes() const noexcept { return data_blocks << block_log; }
    [[nodiscard]] std::uint32_t dir_block_size() const noexcept { return block_size << dir_block_log; }
    // Blocks in allocation group ag (the last one may be short).
    [[nodiscard]] std::uint64_t ag_length(std::uint64_t ag) const noexcept;
    // The byte offset in the filesystem of count blocks from fs block number block (AG << ag_block_log |
    // AG block), or nullopt when they do not lie inside one allocation group.
    [[nodiscard]] std::optional<std::uint64_t> block_offset(std::uint64_t block, std::uint64_t count) const;
    // The byte offset in the filesystem of inode number ino, or nullopt when no inode can be there.
    [[nodiscard]] std::optional<std::uint64_t> inode_offset(std::uint64_t ino) const;
};

// The superblock in the first k_superblock_bytes of a filesystem of window_size bytes. Errors: unsupported
// (not XFS, or a version or feature this reader does not handle), corrupt (a field out of range; a filesystem
// larger than its window).
[[nodiscard]] Expected<Superblock> parse_superblock(Bytes sector, std::uint64_t window_size);

// The UUID as blkid prints it: 8-4-4-4-12 lower-case hex.
[[nodiscard]] std::string uuid_text(const std::array<std::uint8_t, 16>& uuid);

enum class ForkFormat : std::uint8_t { device = 0, local = 1, extents = 2, btree = 3 };

inline constexpr std::uint16_t k_type_mask = 0170000;
inline constexpr std::uint16_t k_type_regular = 0100000;
inline constexpr std::uint16_t k_type_directory = 0040000;
inline constexpr std::uint16_t k_type_symlink = 0120000;
inline constexpr std::uint16_t k_flag_realtime = 0x1; // di_flags: the data lies on the realtime device

// An inode's core fields and its data fork's bytes.
struct Inode {
    std::uint64_t number = 0;
    std::uint16_t mode = 0;
    ForkFormat format = ForkFormat::device;
    std::uint32_t links = 0;
    std::int64_t mtime = 0;    // seconds since the epoch
    std::int64_t mtime_ns = 0; // the same in nanoseconds (saturated)
    std::int64_t ctime_ns = 0;
    std::uint64_t size = 0;
    std::uint64_t blocks = 0;  // di_nblocks: data, btree and attribute blocks
    std::uint64_t extents = 0; // data fork extent records
    std::uint16_t flags = 0;
    std::uint32_t generation = 0;
    std::vector<std::byte> fork; // the data fork's literal area

    [[nodiscard]] bool is_regular() const noexcept { return (mode & k_type_mask) == k_type_regular; }
    [[nodiscard]] bool is_directory() const noexcept { return (mode & k_type_mask) == k_type_directory; }
};

// The inode numbered ino from its inode_size bytes. Errors: corrupt (bad magic, version, number, fork
// offsets; a free inode).
[[nodiscard]] Expected<Inode> parse_inode(Bytes bytes, const Superblock& sb, std::uint64_t ino);

// One extent record (struct xfs_bmbt_rec): count blocks at file block file_block lie at fs block fs_block.
struct Extent {
    std::uint64_t file_block = 0;
    std::uint64_t fs_block = 0;
    std::uint64_t count = 0;
    bool unwritten = false; // allocated, never written: reads as zeros
};
inline constexpr std::size_t k_extent_bytes = 16;
[[nodiscard]] Extent decode_extent(Bytes record);

// Long-form btree blocks of a data fork (struct xfs_btree_block): the header ends at 72 bytes (v5) or 24.
inline constexpr std::uint32_t k_bmap_magic_v4 = 0x424d4150; // "BMAP"
inline constexpr std::uint32_t k_bmap_magic_v5 = 0x424d4133; // "BMA3"
[[nodiscard]] inline std::size_t bmap_header_bytes(const Superblock& sb) {
    return sb.version == 5 ? 72 : 24;
}

} // namespace coldscan::disk::detail::xfs
