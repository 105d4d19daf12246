#include "xfs_format.hpp"

#include "fs_names.hpp"

#include <algorithm>
#include <bit>
#include <climits>
#include <spdlog/fmt/fmt.h>

namespace coldscan::disk::detail::xfs {

namespace {

// Superblock fields (struct xfs_dsb).
constexpr std::size_t k_sb_blocksize = 4;
constexpr std::size_t k_sb_dblocks = 8;
constexpr std::size_t k_sb_uuid = 32;
constexpr std::size_t k_sb_rootino = 56;
constexpr std::size_t k_sb_agblocks = 84;
constexpr std::size_t k_sb_agcount = 88;
constexpr std::size_t k_sb_versionnum = 100;
constexpr std::size_t k_sb_sectsize = 102;
constexpr std::size_t k_sb_inodesize = 104;
constexpr std::size_t k_sb_inopblock = 106;
constexpr std::size_t k_sb_fname = 108;
constexpr std::size_t k_sb_fname_bytes = 12;
constexpr std::size_t k_sb_blocklog = 120;
constexpr std::size_t k_sb_sectlog = 121;
constexpr std::size_t k_sb_inodelog = 122;
constexpr std::size_t k_sb_inopblog = 123;
constexpr std::size_t k_sb_agblklog = 124;
constexpr std::size_t k_sb_inprogress = 126;
constexpr std::size_t k_sb_dirblklog = 192;
constexpr std::size_t k_sb_features2 = 200;
constexpr std::size_t k_sb_bad_features2 = 204;
constexpr std::size_t k_sb_features_incompat = 216;

// sb_versionnum bits of a v4 superblock, and its sb_features2 bits.
constexpr std::uint16_t k_version_shared = 0x0200;
constexpr std::uint16_t k_version_dirv2 = 0x2000;
constexpr std::uint16_t k_version_morebits = 0x8000;
constexpr std::uint32_t k_features2_ftype = 0x0200;

constexpr std::uint32_t k_min_ag_blocks = 64; // XFS_MIN_AG_BLOCKS
constexpr unsigned k_max_block_log = 16;      // XFS_MAX_BLOCKSIZE_LOG: 64 KiB blocks and directory blocks

// Inode core fields (struct xfs_dinode).
constexpr std::uint16_t k_inode_magic = 0x494e; // "IN"
constexpr std::size_t k_di_mode = 2;
constexpr std::size_t k_di_version = 4;
constexpr std::size_t k_di_format = 5;
constexpr std::size_t k_di_onlink = 6;
constexpr std::size_t k_di_nlink = 16;
constexpr std::size_t k_di_big_nextents = 24;
constexpr std::size_t k_di_mtime = 40;
constexpr std::size_t k_di_ctime = 48;
constexpr std::size_t k_di_size = 56;
constexpr std::size_t k_di_nblocks = 64;
constexpr std::size_t k_di_nextents = 76;
constexpr std::size_t k_di_forkoff = 82;
constexpr std::size_t k_di_flags = 90;
constexpr std::size_t k_di_gen = 92;
constexpr std::size_t k_di_flags2 = 120;
constexpr std::size_t k_di_ino = 152;
constexpr std::size_t k_core_v2 = 100; // xfs_dinode_size(1 or 2)
constexpr std::size_t k_core_v3 = 176; // xfs_dinode_size(3)
constexpr std::uint64_t k_flag2_bigtime = 0x8;
constexpr std::uint64_t k_flag2_nrext64 = 0x10;

constexpr std::int64_t k_ns_per_second = 1'000'000'000;
constexpr std::int64_t k_bigtime_epoch_offset = std::int64_t{1} << 31; // bigtime counts from 1901-12-13

bool power_of_two_in(std::uint64_t value, std::uint64_t low, std::uint64_t high) {
    return value >= low && value <= high && std::has_single_bit(value);
}

std::unexpected<Error> bad_field(std::string_view what, std::uint64_t value) {
    return make_error(Errc::corrupt, fmt::format("XFS superblock: {} {} is out of range", what, value));
}

// Seconds and nanoseconds since the epoch of an inode timestamp, as nanoseconds (saturated), and seconds.
struct Time {
    std::int64_t seconds = 0;
    std::int64_t ns = 0;
};

Time decode_time(Bytes inode, std::size_t at, bool bigtime) {
    std::int64_t seconds = 0;
    std::int64_t nanos = 0;
    if (bigtime) {
        // One u64 of nanoseconds since 1901-12-13T20:45:52Z (-2^31 s).
        const std::uint64_t raw = be64(inode, at);
        seconds = static_cast<std::int64_t>(raw / k_ns_per_second) - k_bigtime_epoch_offset;
        nanos = static_cast<std::int64_t>(raw % k_ns_per_second);
    } else {
        seconds = static_cast<std::int32_t>(be32(inode, at)); // signed seconds, then nanoseconds
        nanos = std::min<std::int64_t>(be32(inode, at + 4), k_ns_per_second - 1);
    }
    constexpr std::int64_t k_limit = INT64_MAX / k_ns_per_second - 1;
    const std::int64_t clamped = std::clamp<std::int64_t>(seconds, -k_limit, k_limit);
    return Time{seconds, clamped * k_ns_per_second + nanos};
}

} // namespace

std::uint64_t Superblock::ag_length(std::uint64_t ag) const noexcept {
    return ag + 1 < ag_count ? ag_blocks : data_blocks - std::uint64_t{ag_count - 1} * ag_blocks;
}

std::optional<std::uint64_t> Superblock::block_offset(std::uint64_t block, std::uint64_t count) const {
    const std::uint64_t ag = block >> ag_block_log;
    const std::uint64_t ag_block = block & ((std::uint64_t{1} << ag_block_log) - 1);
    if (ag >= ag_count || count == 0) {
        return std::nullopt;
    }
    const std::uint64_t length = ag_length(ag);
    if (ag_block >= length || count > length - ag_block) {
        return std::nullopt;
    }
    return (ag * ag_blocks + ag_block) << block_log;
}

std::optional<std::uint64_t> Superblock::inode_offset(std::uint64_t ino) const {
    const unsigned shift = ag_block_log + inodes_per_block_log; // < 64, checked by parse_superblock
    const std::uint64_t ag = ino >> shift;
    const std::uint64_t ag_inode = ino & ((std::uint64_t{1} << shift) - 1);
    const std::uint64_t ag_block = ag_inode >> inodes_per_block_log;
    const std::uint64_t index = ag_inode & ((std::uint64_t{1} << inodes_per_block_log) - 1);
    if (ag >= ag_count || ag_block >= ag_length(ag)) {
        return std::nullopt;
    }
    return ((ag * ag_blocks + ag_block) << block_log) + (index << inode_log);
}

Expected<Superblock> parse_superblock(Bytes s, std::uint64_t window_size) {
    if (s.size() < k_superblock_bytes || be32(s, 0) != k_superblock_magic) {
        return make_error(Errc::unsupported, "no XFS superblock");
    }
    Superblock sb;
    const std::uint16_t versionnum = be16(s, k_sb_versionnum);
    sb.version = versionnum & 0xFU;
    if (sb.version == 5) {
        sb.incompat = be32(s, k_sb_features_incompat);
        if ((sb.incompat & ~k_incompat_known) != 0) {
            return make_error(Errc::unsupported, fmt::format("XFS with unknown incompatible features {:#x}",
                                                             sb.incompat & ~k_incompat_known));
        }
        sb.has_ftype = (sb.incompat & k_incompat_ftype) != 0;
    } else if (sb.version == 4) {
        if ((versionnum & k_version_dirv2) == 0 || (versionnum & k_version_shared) != 0) {
            return make_error(
                Errc::unsupported,
                fmt::format("XFS v4 with version bits {:#x} (v1 directories or shared)", versionnum));
        }
        // Old kernels wrote features2 one word too far: the kernel reads both.
        const std::uint32_t features2 = (versionnum & k_version_morebits) != 0
                                            ? be32(s, k_sb_features2) | be32(s, k_sb_bad_features2)
                                            : 0;
        sb.has_ftype = (features2 & k_features2_ftype) != 0;
    } else {
        return make_error(Errc::unsupported, fmt::format("XFS superblock version {}", sb.version));
    }

    sb.block_size = be32(s, k_sb_blocksize);
    sb.block_log = u8(s, k_sb_blocklog);
    if (!power_of_two_in(sb.block_size, 512, 65536) || (1U << std::min(sb.block_log, 31U)) != sb.block_size) {
        return bad_field("block size", sb.block_size);
    }
    const std::uint32_t sector_size = be16(s, k_sb_sectsize);
    const unsigned sector_log = u8(s, k_sb_sectlog);
    if (!power_of_two_in(sector_size, 512, 32768) || (1U << std::min(sector_log, 31U)) != sector_size) {
        return bad_field("sector size", sector_size);
    }
    sb.inode_size = be16(s, k_sb_inodesize);
    sb.inode_log = u8(s, k_sb_inodelog);
    if (!power_of_two_in(sb.inode_size, 256, 2048) || (1U << std::min(sb.inode_log, 31U)) != sb.inode_size ||
        sb.inode_size > sb.block_size) {
        return bad_field("inode size", sb.inode_size);
    }
    sb.inodes_per_block_log = u8(s, k_sb_inopblog);
    if (be16(s, k_sb_inopblock) != sb.block_size / sb.inode_size ||
        sb.inodes_per_block_log != sb.block_log - sb.inode_log) {
        return bad_field("inodes per block", be16(s, k_sb_inopblock));
    }
    sb.ag_blocks = be32(s, k_sb_agblocks);
    sb.ag_count = be32(s, k_sb_agcount);
    sb.ag_block_log = u8(s, k_sb_agblklog);
    if (sb.ag_blocks < k_min_ag_blocks || sb.ag_blocks > INT32_MAX ||
        sb.ag_block_log != static_cast<unsigned>(std::bit_width(sb.ag_blocks - 1))) {
        return bad_field("allocation group size", sb.ag_blocks);
    }
    // Inode numbers are AG | AG block | index: the AG number must fit the bits left.
    const unsigned inode_bits = sb.ag_block_log + sb.inodes_per_block_log;
    if (sb.ag_count == 0 || static_cast<unsigned>(std::bit_width(sb.ag_count - 1)) > 64 - inode_bits) {
        return bad_field("allocation group count", sb.ag_count);
    }
    sb.data_blocks = be64(s, k_sb_dblocks);
    const std::uint64_t full_ags = std::uint64_t{sb.ag_count - 1} * sb.ag_blocks;
    if (sb.data_blocks <= full_ags || sb.data_blocks - full_ags > sb.ag_blocks ||
        sb.data_blocks > (UINT64_MAX >> sb.block_log)) {
        return bad_field("block count", sb.data_blocks);
    }
    if (sb.size_bytes() > window_size) {
        return make_error(Errc::corrupt,
                          fmt::format("the XFS filesystem ({} bytes) is larger than its partition "
                                      "({} bytes): a truncated image?",
                                      sb.size_bytes(), window_size));
    }
    sb.dir_block_log = u8(s, k_sb_dirblklog);
    if (sb.block_log + sb.dir_block_log > k_max_block_log) {
        return bad_field("directory block size log", sb.dir_block_log);
    }
    if (u8(s, k_sb_inprogress) != 0) {
        return make_error(Errc::corrupt, "the XFS filesystem was never finished (mkfs in progress)");
    }
    sb.root_inode = be64(s, k_sb_rootino);
    if (!sb.inode_offset(sb.root_inode)) {
        return bad_field("root inode", sb.root_inode);
    }
    for (std::size_t i = 0; i < sb.uuid.size(); ++i) {
        sb.uuid[i] = u8(s, k_sb_uuid + i);
    }
    std::string name(k_sb_fname_bytes, '\0');
    for (std::size_t i = 0; i < k_sb_fname_bytes; ++i) {
        name[i] = static_cast<char>(u8(s, k_sb_fname + i));
    }
    sb.label = trimmed(std::move(name));
    return sb;
}

std::string uuid_text(const std::array<std::uint8_t, 16>& uuid) {
    std::string text;
    for (std::size_t i = 0; i < uuid.size(); ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            text += '-';
        }
        text += fmt::format("{:02x}", uuid[i]);
    }
    return text;
}

Expected<Inode> parse_inode(Bytes bytes, const Superblock& sb, std::uint64_t ino) {
    if (bytes.size() < sb.inode_size || be16(bytes, 0) != k_inode_magic) {
        return make_error(Errc::corrupt, fmt::format("inode {}: no inode there (bad magic)", ino));
    }
    const unsigned version = u8(bytes, k_di_version);
    if (sb.version == 5 ? version != 3 : (version != 1 && version != 2)) {
        return make_error(Errc::corrupt, fmt::format("inode {}: inode version {}", ino, version));
    }
    if (version == 3 && be64(bytes, k_di_ino) != ino) {
        return make_error(Errc::corrupt,
                          fmt::format("inode {} says it is inode {}", ino, be64(bytes, k_di_ino)));
    }
    Inode inode;
    inode.number = ino;
    inode.mode = be16(bytes, k_di_mode);
    if (inode.mode == 0) {
        return make_error(Errc::corrupt, fmt::format("inode {} is free", ino));
    }
    const unsigned format = u8(bytes, k_di_format);
    if (format > static_cast<unsigned>(ForkFormat::btree)) {
        return make_error(Errc::corrupt, fmt::format("inode {}: data fork format {}", ino, format));
    }
    inode.format = static_cast<ForkFormat>(format);
    inode.links = version == 1 ? be16(bytes, k_di_onlink) : be32(bytes, k_di_nlink);
    const std::uint64_t flags2 = version == 3 ? be64(bytes, k_di_flags2) : 0;
    const bool bigtime = (flags2 & k_flag2_bigtime) != 0;
    const Time mtime = decode_time(bytes, k_di_mtime, bigtime);
    inode.mtime = mtime.seconds;
    inode.mtime_ns = mtime.ns;
    inode.ctime_ns = decode_time(bytes, k_di_ctime, bigtime).ns;
    inode.size = be64(bytes, k_di_size);
    if (inode.size > INT64_MAX) {
        return make_error(Errc::corrupt, fmt::format("inode {}: size {}", ino, inode.size));
    }
    inode.blocks = be64(bytes, k_di_nblocks);
    inode.extents =
        (flags2 & k_flag2_nrext64) != 0 ? be64(bytes, k_di_big_nextents) : be32(bytes, k_di_nextents);
    inode.flags = be16(bytes, k_di_flags);
    inode.generation = be32(bytes, k_di_gen);
    const std::size_t core = version == 3 ? k_core_v3 : k_core_v2;
    const std::size_t literal = sb.inode_size - core;
    const std::size_t attr_offset = std::size_t{u8(bytes, k_di_forkoff)} * 8;
    if (attr_offset >= literal) {
        return make_error(Errc::corrupt, fmt::format("inode {}: attribute fork offset {}", ino, attr_offset));
    }
    const std::size_t fork_size = attr_offset != 0 ? attr_offset : literal;
    inode.fork.assign(bytes.begin() + static_cast<std::ptrdiff_t>(core),
                      bytes.begin() + static_cast<std::ptrdiff_t>(core + fork_size));
    return inode;
}

Extent decode_extent(Bytes record) {
    const std::uint64_t l0 = be64(record, 0);
    const std::uint64_t l1 = be64(record, 8);
    Extent extent;
    extent.unwritten = (l0 >> 63U) != 0;
    extent.file_block = (l0 >> 9U) & ((std::uint64_t{1} << 54U) - 1);
    extent.fs_block = ((l0 & 0x1FFU) << 43U) | (l1 >> 21U);
    extent.count = l1 & ((std::uint64_t{1} << 21U) - 1);
    return extent;
}

} // namespace coldscan::disk::detail::xfs
