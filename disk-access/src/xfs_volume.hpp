// An opened XFS filesystem's read primitives over a BlockDevice window: inodes by number (through a cache of
// inode clusters), data fork extents, folder entries, regular files' records, paths. xfs_filesystem.cpp
// walks the tree with them.
#pragma once

#include "filesystem_reader.hpp"
#include "xfs_directory.hpp"
#include "xfs_format.hpp"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace coldscan::disk::detail::xfs {

// The last inode clusters read (64 inodes each): the inodes of one folder's entries are mostly neighbours,
// so a walk reads each cluster about once instead of each inode.
class InodeCache {
public:
    // The bytes of the cluster that starts at inode number first, or nullptr.
    [[nodiscard]] const std::vector<std::byte>* find(std::uint64_t first);
    // Keeps bytes as the cluster starting at first, in place of the least recently used one.
    const std::vector<std::byte>& put(std::uint64_t first, std::vector<std::byte> bytes);

private:
    struct Cluster {
        std::uint64_t first = 0;
        std::uint64_t used = 0;
        std::vector<std::byte> bytes;
    };
    std::vector<Cluster> m_clusters;
    std::uint64_t m_clock = 0;
};

// Thread rule: one thread (the inode cache); read_at() from any thread.
class Volume {
public:
    Volume(std::shared_ptr<BlockDevice> device, std::uint64_t base, Superblock sb)
        : m_device(std::move(device)), m_base(base), m_sb(std::move(sb)) {}

    [[nodiscard]] const Superblock& sb() const noexcept { return m_sb; }
    [[nodiscard]] BlockDevice& device() const noexcept { return *m_device; }
    [[nodiscard]] std::uint64_t base() const noexcept { return m_base; }

    // Bytes at an offset inside the filesystem. Errors: corrupt (past its end), io.
    [[nodiscard]] Expected<void> read_at(std::uint64_t fs_offset, std::span<std::byte> out) const;
    // The inode numbered ino. Errors: corrupt, io.
    [[nodiscard]] Expected<Inode> inode(std::uint64_t ino);
    // Calls visit for every entry of folder dir but "." and "..", reading at most budget bytes of directory
    // blocks (less what it reads). Entries of blocks that hold together are visited even when others do not:
    // the error (corrupt) comes after. Errors: corrupt, io.
    [[nodiscard]] Expected<Visit> entries(const Inode& dir, const EntryVisitor& visit,
                                          std::uint64_t& budget) const;
    // A regular file's record at path. A data fork that is corrupt or unsupported (realtime) becomes the
    // file's problem. Error: io.
    [[nodiscard]] Expected<FsFile> describe(const Inode& inode, std::string path) const;
    // The inode at path from the root, without following symbolic links; nullopt when there is none.
    [[nodiscard]] std::optional<Inode> resolve(const std::string& path);

private:
    [[nodiscard]] Expected<std::vector<Extent>> extents(const Inode& inode) const;
    [[nodiscard]] Expected<void> read_blocks(const std::vector<Extent>& mapped, std::uint64_t first,
                                             std::uint64_t count, std::span<std::byte> out) const;

    std::shared_ptr<BlockDevice> m_device;
    std::uint64_t m_base;
    Superblock m_sb;
    InodeCache m_inodes;
};

} // namespace coldscan::disk::detail::xfs
