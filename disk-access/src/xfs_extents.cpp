#include "xfs_extents.hpp"

#include <spdlog/fmt/fmt.h>
#include <unordered_set>

namespace coldscan::disk::detail::xfs {

namespace {

constexpr std::size_t k_bmdr_header = 4;   // struct xfs_bmdr_block: level, numrecs
constexpr std::size_t k_key_bytes = 8;     // struct xfs_bmbt_key: startoff
constexpr std::size_t k_pointer_bytes = 8; // fs block number
constexpr std::size_t k_bb_level = 4;      // in a long-form btree block
constexpr std::size_t k_bb_numrecs = 6;
constexpr std::size_t k_bb_blkno = 24;               // v5: the block's own address, in 512-byte units
constexpr std::size_t k_bb_owner = 56;               // v5: the inode owning the block
constexpr std::size_t k_records_per_node_entry = 16; // a key and a pointer, or one record

// A bmap btree walked from its root in the inode: each block read once, the records no more than the inode
// counts, the levels going down by one.
class BtreeWalk {
public:
    BtreeWalk(const Inode& inode, const Superblock& sb, const ReadAt& read_at)
        : m_inode(inode), m_sb(sb), m_read_at(read_at),
          m_record_limit(std::min(inode.extents, k_max_extents)) {}

    Expected<std::vector<Extent>> run() {
        const Bytes root(m_inode.fork);
        if (root.size() < k_bmdr_header + k_records_per_node_entry) {
            return corrupt("btree root too small");
        }
        const unsigned level = be16(root, 0);
        const std::size_t records = be16(root, 2);
        const std::size_t max_records = (root.size() - k_bmdr_header) / k_records_per_node_entry;
        if (level == 0 || level > k_max_btree_levels || records == 0 || records > max_records) {
            return corrupt(fmt::format("btree root of level {} with {} records", level, records));
        }
        // Keys, then pointers after room for max_records keys (xfs_bmdr_maxrecs).
        const std::size_t pointers = k_bmdr_header + max_records * k_key_bytes;
        for (std::size_t i = 0; i < records; ++i) {
            if (auto ok = visit(be64(root, pointers + i * k_pointer_bytes), level - 1); !ok) {
                return std::unexpected(ok.error());
            }
        }
        return std::move(m_extents);
    }

private:
    std::unexpected<Error> corrupt(std::string_view what) const {
        return make_error(Errc::corrupt, fmt::format("inode {}: {}", m_inode.number, what));
    }

    Expected<void> visit(std::uint64_t block, unsigned level) {
        const auto at = m_sb.block_offset(block, 1);
        if (!at) {
            return corrupt(fmt::format("btree block {} lies outside the filesystem", block));
        }
        if (!m_seen.insert(block).second) {
            return corrupt(fmt::format("btree block {} reached twice", block));
        }
        std::vector<std::byte> bytes(m_sb.block_size);
        if (auto ok = m_read_at(*at, bytes); !ok) {
            return ok;
        }
        const Bytes b(bytes);
        const bool v5 = m_sb.version == 5;
        if (be32(b, 0) != (v5 ? k_bmap_magic_v5 : k_bmap_magic_v4) || be16(b, k_bb_level) != level) {
            return corrupt(fmt::format("btree block {} is not a level {} block", block, level));
        }
        if (v5 && (be64(b, k_bb_owner) != m_inode.number || be64(b, k_bb_blkno) != *at >> 9U)) {
            return corrupt(fmt::format("btree block {} belongs elsewhere", block));
        }
        const std::size_t header = bmap_header_bytes(m_sb);
        const std::size_t records = be16(b, k_bb_numrecs);
        const std::size_t max_records = (b.size() - header) / k_records_per_node_entry;
        if (records == 0 || records > max_records) {
            return corrupt(fmt::format("btree block {} with {} records", block, records));
        }
        if (level == 0) {
            if (records > m_record_limit - m_extents.size()) {
                return m_inode.extents > k_max_extents
                           ? make_error(Errc::unsupported, fmt::format("inode {}: more than {} extents",
                                                                       m_inode.number, k_max_extents))
                           : corrupt("more extent records than the inode counts");
            }
            for (std::size_t i = 0; i < records; ++i) {
                m_extents.push_back(decode_extent(b.subspan(header + i * k_extent_bytes, k_extent_bytes)));
            }
            return {};
        }
        const std::size_t pointers = header + max_records * k_key_bytes;
        std::vector<std::uint64_t> children(records);
        for (std::size_t i = 0; i < records; ++i) {
            children[i] = be64(b, pointers + i * k_pointer_bytes);
        }
        bytes = {}; // not held while the children are read
        for (const std::uint64_t child : children) {
            if (auto ok = visit(child, level - 1); !ok) {
                return ok;
            }
        }
        return {};
    }

    const Inode& m_inode;
    const Superblock& m_sb;
    const ReadAt& m_read_at;
    std::uint64_t m_record_limit;
    std::unordered_set<std::uint64_t> m_seen;
    std::vector<Extent> m_extents;
};

} // namespace

Expected<std::vector<Extent>> data_extents(const Inode& inode, const Superblock& sb, const ReadAt& read_at) {
    std::vector<Extent> extents;
    if (inode.format == ForkFormat::extents) {
        if (inode.extents > inode.fork.size() / k_extent_bytes) {
            return make_error(Errc::corrupt, fmt::format("inode {}: {} extents do not fit its fork",
                                                         inode.number, inode.extents));
        }
        const Bytes fork(inode.fork);
        for (std::size_t i = 0; i < inode.extents; ++i) {
            extents.push_back(decode_extent(fork.subspan(i * k_extent_bytes, k_extent_bytes)));
        }
    } else if (inode.format == ForkFormat::btree) {
        auto walked = BtreeWalk(inode, sb, read_at).run();
        if (!walked) {
            return std::unexpected(walked.error());
        }
        extents = std::move(*walked);
    } else {
        return make_error(Errc::corrupt, fmt::format("inode {}: data fork format {} holds no extents",
                                                     inode.number, static_cast<unsigned>(inode.format)));
    }
    std::uint64_t next = 0; // the first file block the next extent may start at
    for (const auto& e : extents) {
        if (e.file_block < next || !sb.block_offset(e.fs_block, e.count)) {
            return make_error(Errc::corrupt,
                              fmt::format("inode {}: extent of {} blocks at file block {}, fs block {} "
                                          "overlaps another or lies outside the filesystem",
                                          inode.number, e.count, e.file_block, e.fs_block));
        }
        next = e.file_block + e.count; // < 2^55: no overflow
    }
    return extents;
}

std::vector<DataRun> file_runs(const std::vector<Extent>& extents, std::uint64_t size, const Superblock& sb) {
    std::vector<DataRun> runs;
    const auto add = [&runs](DataRun run) {
        if (!runs.empty()) {
            DataRun& last = runs.back();
            if (run.sparse && last.sparse) {
                last.length += run.length;
                return;
            }
            if (!run.sparse && !last.sparse && last.fs_offset + last.length == run.fs_offset) {
                last.length += run.length;
                return;
            }
        }
        runs.push_back(run);
    };
    const std::uint64_t size_blocks = (size + sb.block_size - 1) >> sb.block_log;
    std::uint64_t covered = 0;
    for (const auto& e : extents) {
        if (e.file_block >= size_blocks) {
            break; // preallocated past the end of the file
        }
        const std::uint64_t start = e.file_block << sb.block_log;
        if (start > covered) {
            add(DataRun{covered, 0, start - covered, true});
        }
        const std::uint64_t length = std::min(e.count << sb.block_log, size - start);
        if (e.unwritten) {
            add(DataRun{start, 0, length, true});
        } else {
            add(DataRun{start, *sb.block_offset(e.fs_block, e.count), length, false});
        }
        covered = start + length;
    }
    if (covered < size) {
        add(DataRun{covered, 0, size - covered, true});
    }
    return runs;
}

} // namespace coldscan::disk::detail::xfs
