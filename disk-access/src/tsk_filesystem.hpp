// A filesystem read in process with The Sleuth Kit over a BlockDevice window (the direct path): ext2/3/4,
// NTFS (with alternate data streams), FAT, exFAT, HFS+, ISO 9660. One FilesystemReader backend.
//
// The tree is walked once (one thread) into plain records: each regular file's identity and where its
// bytes lie (data runs in the filesystem). Reading a file then goes straight to the block device along
// those runs, from any thread and without TSK; only data TSK must decode (NTFS compressed or encrypted,
// resident in the metadata, runs TSK could not place) is read through TSK, one call at a time.
#pragma once

#include "filesystem_reader.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace coldscan::disk::detail {

// Thread rule: list() from one thread; read() from any thread (TSK reads are serialised inside).
class TskFilesystem final : public FilesystemReader {
public:
    // The filesystem at [offset, offset + size) of the device. Errors: unsupported (TSK recognises no
    // filesystem there), io.
    static Expected<std::unique_ptr<TskFilesystem>> open(std::shared_ptr<BlockDevice> device,
                                                         std::uint64_t offset, std::uint64_t size);
    ~TskFilesystem() override;
    TskFilesystem(const TskFilesystem&) = delete;
    TskFilesystem& operator=(const TskFilesystem&) = delete;

    [[nodiscard]] const std::string& type() const noexcept override;  // ext4, ntfs, vfat, ...
    [[nodiscard]] const std::string& uuid() const noexcept override;  // hex of the filesystem id, or ""
    [[nodiscard]] const std::string& label() const noexcept override; // the volume label, or ""
    // Every allocated regular file and alternate data stream, in walk order. Hidden NTFS metadata files
    // ($MFT, $Extend/...) are left out, as ntfs-3g hides them. Error: io or corrupt (the walk failed; the
    // files listed so far are in partial).
    [[nodiscard]] Expected<std::vector<FsFile>> list(std::vector<FsFile>* partial = nullptr) override;
    // A small file by path (for inspection: /etc/os-release), up to limit bytes; std::nullopt when there is
    // no regular file there. A symbolic link is not followed.
    [[nodiscard]] std::optional<std::string> read_small_file(const std::string& path,
                                                             std::size_t limit) override;
    // Whether path names a folder.
    [[nodiscard]] bool is_folder(const std::string& path) override;
    // Up to out.size() bytes of file at offset; 0 at the end. Errors: io.
    [[nodiscard]] Expected<std::size_t> read(const FsFile& file, std::uint64_t offset,
                                             std::span<std::byte> out) override;

    struct Impl;

private:
    explicit TskFilesystem(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> m_impl;
};

} // namespace coldscan::disk::detail
