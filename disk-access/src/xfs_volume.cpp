#include "xfs_volume.hpp"

#include "xfs_extents.hpp"

#include <algorithm>
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

namespace coldscan::disk::detail::xfs {

namespace {

constexpr std::uint64_t k_cluster_inodes = 64;        // an inode chunk, read at once
constexpr std::size_t k_cached_clusters = 32;         // 2 MiB with 1 KiB inodes
constexpr std::uint64_t k_directory_batch = 1U << 20; // directory blocks read at once, at most

} // namespace

const std::vector<std::byte>* InodeCache::find(std::uint64_t first) {
    for (auto& cluster : m_clusters) {
        if (cluster.first == first) {
            cluster.used = ++m_clock;
            return &cluster.bytes;
        }
    }
    return nullptr;
}

const std::vector<std::byte>& InodeCache::put(std::uint64_t first, std::vector<std::byte> bytes) {
    if (m_clusters.size() < k_cached_clusters) {
        m_clusters.push_back(Cluster{first, ++m_clock, std::move(bytes)});
        return m_clusters.back().bytes;
    }
    auto& oldest = *std::ranges::min_element(m_clusters, {}, &Cluster::used);
    oldest = Cluster{first, ++m_clock, std::move(bytes)};
    return oldest.bytes;
}

Expected<void> Volume::read_at(std::uint64_t fs_offset, std::span<std::byte> out) const {
    if (fs_offset > m_sb.size_bytes() || out.size() > m_sb.size_bytes() - fs_offset) {
        return make_error(Errc::corrupt, "a read past the end of the filesystem");
    }
    return m_device->read(m_base + fs_offset, out);
}

Expected<Inode> Volume::inode(std::uint64_t ino) {
    const auto at = m_sb.inode_offset(ino);
    if (!at) {
        return make_error(Errc::corrupt, fmt::format("inode number {} lies outside the filesystem", ino));
    }
    // The cluster's first inode lies in the same allocation group, at or before ino's block.
    const std::uint64_t first = ino & ~(k_cluster_inodes - 1);
    const std::uint64_t first_at = *m_sb.inode_offset(first);
    const std::uint64_t ag = ino >> (m_sb.ag_block_log + m_sb.inodes_per_block_log);
    const std::uint64_t ag_end = (ag * m_sb.ag_blocks + m_sb.ag_length(ag)) << m_sb.block_log;
    const std::vector<std::byte>* cluster = m_inodes.find(first);
    if (cluster == nullptr) {
        std::vector<std::byte> bytes(std::min(k_cluster_inodes << m_sb.inode_log, ag_end - first_at));
        if (auto ok = read_at(first_at, bytes); !ok) {
            return std::unexpected(ok.error());
        }
        cluster = &m_inodes.put(first, std::move(bytes));
    }
    assert(*at - first_at + m_sb.inode_size <= cluster->size());
    return parse_inode(Bytes(*cluster).subspan(*at - first_at, m_sb.inode_size), m_sb, ino);
}

Expected<std::vector<Extent>> Volume::extents(const Inode& inode) const {
    return data_extents(inode, m_sb,
                        [this](std::uint64_t at, std::span<std::byte> out) { return read_at(at, out); });
}

// File blocks [first, first + count) of a fork, each mapped by a written extent, into out.
Expected<void> Volume::read_blocks(const std::vector<Extent>& mapped, std::uint64_t first,
                                   std::uint64_t count, std::span<std::byte> out) const {
    std::uint64_t block = first;
    while (block < first + count) {
        auto extent = std::ranges::upper_bound(mapped, block, {}, &Extent::file_block);
        if (extent == mapped.begin() || block >= std::prev(extent)->file_block + std::prev(extent)->count ||
            std::prev(extent)->unwritten) {
            return make_error(Errc::corrupt, fmt::format("directory block {} is not written", block));
        }
        --extent;
        const std::uint64_t n = std::min(extent->file_block + extent->count, first + count) - block;
        const std::uint64_t at = *m_sb.block_offset(extent->fs_block, extent->count) +
                                 ((block - extent->file_block) << m_sb.block_log);
        if (auto ok = read_at(at, out.subspan((block - first) << m_sb.block_log, n << m_sb.block_log)); !ok) {
            return ok;
        }
        block += n;
    }
    return {};
}

Expected<Visit> Volume::entries(const Inode& dir, const EntryVisitor& visit, std::uint64_t& budget) const {
    if (dir.format == ForkFormat::local) {
        return shortform_entries(dir.fork, dir.size, m_sb, visit);
    }
    auto mapped = extents(dir);
    if (!mapped) {
        return std::unexpected(mapped.error());
    }
    const std::uint64_t per_block = std::uint64_t{1} << m_sb.dir_block_log; // fs blocks per directory block
    const std::uint64_t leaf_block = k_dir_leaf_offset >> m_sb.block_log;
    const std::uint64_t batch =
        std::max(per_block, (k_directory_batch >> m_sb.block_log) / per_block * per_block);
    std::optional<Error> damage;
    std::vector<std::byte> buffer;
    std::uint64_t next = 0; // directory blocks before this one were read
    for (const Extent& e : *mapped) {
        const std::uint64_t extent_end = e.file_block + e.count;
        const std::uint64_t to = std::min(extent_end, leaf_block);
        std::uint64_t d = std::max(next, e.file_block / per_block * per_block);
        while (d < to) {
            // Whole directory blocks inside this extent go in one read; one that starts before it or runs
            // past its end is pieced together from the extents around.
            std::uint64_t n = per_block;
            if (d >= e.file_block && extent_end - d >= per_block) {
                n = std::min({batch, (extent_end - d) / per_block * per_block,
                              (to - d + per_block - 1) / per_block * per_block});
            }
            const std::uint64_t bytes = n << m_sb.block_log;
            if (bytes > budget) {
                return make_error(Errc::corrupt, "the folders hold more blocks than the filesystem has "
                                                 "(cross-linked folders?)");
            }
            budget -= bytes;
            buffer.resize(bytes);
            if (auto ok = read_blocks(*mapped, d, n, buffer); !ok) {
                if (ok.error().code != Errc::corrupt) {
                    return std::unexpected(ok.error());
                }
                damage = damage.value_or(ok.error());
            } else {
                for (std::uint64_t i = 0; i < n / per_block; ++i) {
                    const auto one = Bytes(buffer).subspan(i * m_sb.dir_block_size(), m_sb.dir_block_size());
                    auto visited = data_block_entries(one, m_sb, visit);
                    if (!visited) {
                        damage = damage.value_or(visited.error());
                    } else if (*visited == Visit::stop) {
                        return Visit::stop;
                    }
                }
            }
            d += n;
            next = d;
        }
    }
    if (damage) {
        return std::unexpected(*damage);
    }
    return Visit::go_on;
}

Expected<FsFile> Volume::describe(const Inode& inode, std::string path) const {
    FsFile file;
    file.path = std::move(path);
    file.size = inode.size;
    file.initialized = inode.size;
    file.inode = inode.number;
    file.mtime = inode.mtime;
    file.links = std::max<std::uint32_t>(inode.links, 1);
    file.stamp = FileStamp{inode.number, inode.generation, inode.mtime_ns, inode.ctime_ns};
    if ((inode.flags & k_flag_realtime) != 0) {
        file.problem = Error{Errc::unsupported, "its data lies on the XFS realtime device, which the direct "
                                                "reader does not read"};
        return file;
    }
    auto mapped = extents(inode);
    if (!mapped) {
        if (mapped.error().code == Errc::io) {
            return std::unexpected(mapped.error());
        }
        file.problem = Error{mapped.error().code,
                             "the filesystem reader cannot map its data: " + mapped.error().message};
        return file;
    }
    file.runs = file_runs(*mapped, inode.size, m_sb);
    return file;
}

std::optional<Inode> Volume::resolve(const std::string& path) {
    auto root = inode(m_sb.root_inode);
    if (!root) {
        return std::nullopt;
    }
    std::vector<Inode> trail{std::move(*root)}; // the folders down to here, for ".."
    std::size_t at = 0;
    while (at <= path.size()) {
        const std::size_t end = std::min(path.find('/', at), path.size());
        const std::string_view name = std::string_view(path).substr(at, end - at);
        at = end + 1;
        if (name.empty() || name == ".") {
            continue;
        }
        if (name == "..") {
            if (trail.size() > 1) {
                trail.pop_back();
            }
            continue;
        }
        if (!trail.back().is_directory()) {
            return std::nullopt;
        }
        std::optional<std::uint64_t> found;
        std::uint64_t budget = m_sb.size_bytes();
        auto looked = entries(
            trail.back(),
            [&](std::string_view entry, std::uint64_t ino) {
                if (entry == name) {
                    found = ino;
                    return Visit::stop;
                }
                return Visit::go_on;
            },
            budget);
        if (!found) {
            if (!looked) {
                spdlog::debug("xfs: looking up {}: {}", path, looked.error().message);
            }
            return std::nullopt;
        }
        auto next = inode(*found);
        if (!next) {
            spdlog::debug("xfs: looking up {}: {}", path, next.error().message);
            return std::nullopt;
        }
        trail.push_back(std::move(*next));
    }
    return std::move(trail.back());
}

} // namespace coldscan::disk::detail::xfs
