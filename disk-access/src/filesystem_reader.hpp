// The role every filesystem reader of the direct path plays, whatever parses the bytes (The Sleuth Kit
// today; XFS and others next): list the files once into plain records that say where each file's bytes lie
// in the filesystem, then read them along those runs from any thread. open_filesystem_reader() picks the
// backend that recognises the filesystem, in this one place.
#pragma once

#include "coldscan/disk/block_device.hpp"
#include "coldscan/disk/file_source.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace coldscan::disk::detail {

// Bytes [file_offset, file_offset + length) of a file lie at fs_offset in the filesystem; sparse: zeros.
struct DataRun {
    std::uint64_t file_offset = 0;
    std::uint64_t fs_offset = 0;
    std::uint64_t length = 0;
    bool sparse = false;
};

struct FsFile {
    std::string path; // "/dir/name"; an NTFS alternate data stream is "/dir/name:stream"
    std::uint64_t size = 0;
    std::uint64_t inode = 0;
    FileStamp stamp;        // generation: the NTFS sequence number, else 0
    std::int64_t mtime = 0; // seconds
    std::uint32_t links = 1;
    std::vector<DataRun> runs;       // by file_offset; empty with through_tsk or resident
    std::uint64_t initialized = 0;   // bytes past this read as zeros (NTFS initialised size)
    std::vector<std::byte> resident; // data held in the metadata record itself
    bool through_tsk = false;        // read with TSK (compressed, encrypted, or runs TSK could not place)
    std::uint32_t attr_type = 0;     // to find the attribute again for a TSK read
    std::uint16_t attr_id = 0;
    std::optional<Error> problem; // TSK could not describe the file: it is reported ERROR
};

// A parsed filesystem: a backend (TskFilesystem) in this process, or SandboxedFilesystem, which runs one in a
// confined worker.
// Thread rule: list(), read_small_file() and is_folder() from one thread; read() from any thread.
class FilesystemReader {
public:
    virtual ~FilesystemReader() = default;
    [[nodiscard]] virtual const std::string& type() const noexcept = 0;  // as libguestfs names it: ext4, ...
    [[nodiscard]] virtual const std::string& uuid() const noexcept = 0;  // hex of the filesystem id, or ""
    [[nodiscard]] virtual const std::string& label() const noexcept = 0; // the volume label, or ""
    // Every allocated regular file and alternate data stream, in walk order. Error: io or corrupt (the walk
    // failed; the files listed so far are in partial).
    [[nodiscard]] virtual Expected<std::vector<FsFile>> list(std::vector<FsFile>* partial = nullptr) = 0;
    // A small file by path (inspection: /etc/os-release), up to limit bytes; nullopt when there is none.
    [[nodiscard]] virtual std::optional<std::string> read_small_file(const std::string& path,
                                                                     std::size_t limit) = 0;
    [[nodiscard]] virtual bool is_folder(const std::string& path) = 0;
    // Up to out.size() bytes of a listed file at offset; 0 at the end. Errors: io.
    [[nodiscard]] virtual Expected<std::size_t> read(const FsFile& file, std::uint64_t offset,
                                                     std::span<std::byte> out) = 0;
};

// Reads a listed file that needs no TSK (data runs, sparse runs, resident data) straight from the filesystem
// window of device that starts at base. Error: io.
[[nodiscard]] Expected<std::size_t> read_along_runs(BlockDevice& device, std::uint64_t base,
                                                    const FsFile& file, std::uint64_t offset,
                                                    std::span<std::byte> out);

// Whether a listed file's description holds together for a filesystem of fs_size bytes: runs from offset 0,
// contiguous, covering its size, inside the filesystem; resident data as long as the file. A worker's list
// is checked with it before anything is read along it.
[[nodiscard]] bool well_formed(const FsFile& file, std::uint64_t fs_size);

// The reader for the filesystem at [offset, offset + size) of device: the first backend that recognises it.
// Errors: unsupported (no backend does), io.
[[nodiscard]] Expected<std::unique_ptr<FilesystemReader>>
open_filesystem_reader(std::shared_ptr<BlockDevice> device, std::uint64_t offset, std::uint64_t size);

} // namespace coldscan::disk::detail
