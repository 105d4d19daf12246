#include "xfs_directory.hpp"

#include <spdlog/fmt/fmt.h>

namespace coldscan::disk::detail::xfs {

namespace {

constexpr std::uint32_t k_block_magic_v4 = 0x58443242; // "XD2B": the single block of a block directory
constexpr std::uint32_t k_data_magic_v4 = 0x58443244;  // "XD2D"
constexpr std::uint32_t k_block_magic_v5 = 0x58444233; // "XDB3"
constexpr std::uint32_t k_data_magic_v5 = 0x58444433;  // "XDD3"
constexpr std::size_t k_data_header_v4 = 16;           // magic + 3 bestfree
constexpr std::size_t k_data_header_v5 = 64;           // xfs_dir3_blk_hdr + 3 bestfree + pad
constexpr std::size_t k_block_tail = 8;                // count, stale
constexpr std::size_t k_leaf_entry = 8;                // hashval, address
constexpr std::uint16_t k_free_tag = 0xFFFF;

bool dot_or_dotdot(std::string_view name) {
    return name == "." || name == "..";
}

std::string_view name_at(Bytes bytes, std::size_t at, std::size_t length) {
    return {reinterpret_cast<const char*>(bytes.data() + at), length};
}

} // namespace

Expected<Visit> shortform_entries(Bytes fork, std::uint64_t size, const Superblock& sb,
                                  const EntryVisitor& visit) {
    if (size < 6 || size > fork.size()) {
        return make_error(
            Errc::corrupt,
            fmt::format("short-form directory of {} bytes in an inode fork of {}", size, fork.size()));
    }
    fork = fork.first(static_cast<std::size_t>(size));
    const unsigned count = u8(fork, 0);
    const std::size_t ino_bytes = u8(fork, 1) != 0 ? 8 : 4; // i8count: all numbers are 8 bytes
    const std::size_t ftype = sb.has_ftype ? 1 : 0;
    std::size_t at = 2 + ino_bytes; // count, i8count, parent
    for (unsigned i = 0; i < count; ++i) {
        // namelen, offset (2), name, [ftype], inumber
        if (at + 3 > fork.size()) {
            return make_error(Errc::corrupt, "short-form directory entry past its end");
        }
        const std::size_t length = u8(fork, at);
        const std::size_t entry = 3 + length + ftype + ino_bytes;
        if (length == 0 || entry > fork.size() - at) {
            return make_error(Errc::corrupt, "short-form directory entry past its end");
        }
        const std::string_view name = name_at(fork, at + 3, length);
        const std::uint64_t ino = be(fork, at + 3 + length + ftype, ino_bytes);
        at += entry;
        if (!dot_or_dotdot(name) && visit(name, ino) == Visit::stop) {
            return Visit::stop;
        }
    }
    return Visit::go_on;
}

Expected<Visit> data_block_entries(Bytes block, const Superblock& sb, const EntryVisitor& visit) {
    const std::size_t size = sb.dir_block_size();
    if (block.size() != size) {
        return make_error(Errc::internal, "directory block of the wrong size");
    }
    const std::uint32_t magic = be32(block, 0);
    const bool v5 = sb.version == 5;
    const bool single = magic == (v5 ? k_block_magic_v5 : k_block_magic_v4);
    if (!single && magic != (v5 ? k_data_magic_v5 : k_data_magic_v4)) {
        return make_error(Errc::corrupt, fmt::format("directory block with magic {:#x}", magic));
    }
    const std::size_t header = v5 ? k_data_header_v5 : k_data_header_v4;
    std::size_t end = size;
    if (single) {
        // The single block ends with the hash index (count entries of 8 bytes) and its tail.
        const std::uint64_t leaves = be32(block, size - k_block_tail);
        if (leaves > (size - header - k_block_tail) / k_leaf_entry) {
            return make_error(Errc::corrupt, fmt::format("directory block with {} index entries", leaves));
        }
        end = size - k_block_tail - static_cast<std::size_t>(leaves) * k_leaf_entry;
    }
    const std::size_t ftype = sb.has_ftype ? 1 : 0;
    std::size_t at = header;
    while (at < end) {
        // Entries and free space tile the block in multiples of 8 bytes: a free stretch starts with the
        // tag 0xFFFF and its length; an entry with its inode number, name length, name, [ftype], tag.
        if (end - at >= 4 && be16(block, at) == k_free_tag) {
            const std::size_t length = be16(block, at + 2);
            if (length < 8 || length % 8 != 0 || length > end - at) {
                return make_error(Errc::corrupt, fmt::format("free directory space of {} bytes", length));
            }
            at += length;
            continue;
        }
        if (end - at < 16) { // the smallest entry: a one-byte name
            return make_error(Errc::corrupt, "directory entry past the end of its block");
        }
        const std::size_t length = u8(block, at + 8);
        const std::size_t entry = (8 + 1 + length + ftype + 2 + 7) / 8 * 8;
        if (length == 0 || entry > end - at) {
            return make_error(Errc::corrupt, "directory entry past the end of its block");
        }
        const std::uint64_t ino = be64(block, at);
        const std::string_view name = name_at(block, at + 9, length);
        at += entry;
        if (!dot_or_dotdot(name) && visit(name, ino) == Visit::stop) {
            return Visit::stop;
        }
    }
    return Visit::go_on;
}

} // namespace coldscan::disk::detail::xfs
