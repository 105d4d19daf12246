// XFS read by our own parser over a BlockDevice window (the direct path): v5 (CRC) filesystems, and v4 ones
// with version 2 directories. One FilesystemReader backend ([docs/xfs-reader.md](../../docs/xfs-reader.md)).
//
// Why our own: libfsxfs (the only packaged reader) has no extent API, so reads could not go along data runs
// from any thread, and it misreads bigtime timestamps. XFS is regular enough that a reader of its
// directories and data forks is small: superblock -> inode (by number: AG, block, index) -> data fork
// (inline, extent records, or a btree of them) -> directory entries or data runs. Like the TSK backend, the
// tree is walked once into plain records, and files are then read along their runs from any thread. The log
// is never replayed (no offline reader does): a guest that crashed may have its last writes missing.
//
// Everything read is untrusted: each field is range-checked before use, each walk bounded (btree height,
// blocks seen once, directories walked once, a budget of directory blocks and of listing memory), and a file
// or folder that does not hold together is listed with a problem instead of being skipped.
#pragma once

#include "filesystem_reader.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace coldscan::disk::detail {

// Thread rule: list(), read_small_file() and is_folder() from one thread; read() from any thread.
class XfsFilesystem final : public FilesystemReader {
public:
    // The filesystem at [offset, offset + size) of the device. Errors: invalid_argument (the window lies
    // outside the device), unsupported (no XFS superblock there; a version or incompatible feature this
    // reader does not handle), corrupt (a superblock or root folder that does not hold together), io.
    static Expected<std::unique_ptr<XfsFilesystem>> open(std::shared_ptr<BlockDevice> device,
                                                         std::uint64_t offset, std::uint64_t size);
    ~XfsFilesystem() override;
    XfsFilesystem(const XfsFilesystem&) = delete;
    XfsFilesystem& operator=(const XfsFilesystem&) = delete;

    [[nodiscard]] const std::string& type() const noexcept override;  // "xfs"
    [[nodiscard]] const std::string& uuid() const noexcept override;  // sb_uuid, as blkid prints it
    [[nodiscard]] const std::string& label() const noexcept override; // sb_fname
    // Every regular file, in walk order; a file or folder the reader cannot describe is listed with a
    // problem (realtime files: unsupported). Error: io, or corrupt (an unreadable root; a listing past its
    // memory budget); the files listed so far are in partial.
    [[nodiscard]] Expected<std::vector<FsFile>> list(std::vector<FsFile>* partial = nullptr) override;
    // A small regular file by path, up to limit bytes; std::nullopt when there is none or it cannot be read.
    // A symbolic link is not followed.
    [[nodiscard]] std::optional<std::string> read_small_file(const std::string& path,
                                                             std::size_t limit) override;
    // Whether path names a folder.
    [[nodiscard]] bool is_folder(const std::string& path) override;
    // Up to out.size() bytes of a listed file at offset, along its runs; 0 at the end. Errors: io, the
    // file's problem.
    [[nodiscard]] Expected<std::size_t> read(const FsFile& file, std::uint64_t offset,
                                             std::span<std::byte> out) override;

    struct Impl;

private:
    explicit XfsFilesystem(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> m_impl;
};

} // namespace coldscan::disk::detail
