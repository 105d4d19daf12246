// The filesystem worker's records as JSON. Both ends are the same binary; the parent still parses every
// answer as untrusted (the worker parses hostile bytes and may be compromised).
#pragma once

#include "coldscan/common/error.hpp"
#include "coldscan/disk/partition_table.hpp"
#include "lvm_volumes.hpp"
#include "sandboxed_filesystem.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace coldscan::disk::detail {

struct WorkerStart {
    std::vector<WorkerDisk> disks; // the VM's disks, in order (the worker connects to each)
    unsigned disk = 0;             // the one the filesystem lies on (unless in a volume)
    std::uint64_t offset = 0;
    std::uint64_t size = 0;
    WorkerLimits limits;
    bool partition_table = false; // read the disk's partition table, answer it and exit (no filesystem)
    std::optional<LogicalVolume> volume; // the filesystem lies in this volume of the disk: offset, size in it
};

[[nodiscard]] std::string start_to_wire(const WorkerStart& start);
[[nodiscard]] Expected<WorkerStart> start_from_wire(std::string_view text);

// A batch of listed files, possibly the last ("end") and possibly ending in the walk's error.
struct FileBatch {
    std::vector<FsFile> files;
    bool end = false;
    std::optional<Error> error;   // with end: the walk failed after these files
    std::uint64_t bytes_read = 0; // what the worker read from the disk for this batch (the read budget)
};
[[nodiscard]] std::string batch_to_wire(const FileBatch& batch);
[[nodiscard]] Expected<FileBatch> batch_from_wire(std::string_view text);

// During a walk the worker reports what it has read ("progress BYTES") and waits for "go": the parent charges
// the bytes to the read budget first, so a listing keeps to the budget and a slow walk of a big filesystem is
// told apart from a hung one.
inline constexpr std::string_view k_walk_go = "go";
[[nodiscard]] std::string progress_to_wire(std::uint64_t bytes_read);
// The bytes of a progress report; nullopt when text is not one (or is malformed).
[[nodiscard]] std::optional<std::uint64_t> progress_from_wire(std::string_view text);

// The partition table a worker read. The parent checks it as table_from_wire says before it uses it.
[[nodiscard]] std::string table_to_wire(const PartitionTable& table);
// Errors: corrupt when the text is no table, or describes one that cannot be a disk of disk_size bytes
// (a partition empty or outside the disk, numbers repeated or out of order, an unknown kind or sector size).
[[nodiscard]] Expected<PartitionTable> table_from_wire(std::string_view text, std::uint64_t disk_size);

// The logical volumes a worker found after the partition table. Errors: corrupt when the text is none, or
// describes volumes that do not fit disks of these sizes (volume_fits), invalid names, too many of anything.
[[nodiscard]] std::string volumes_to_wire(const VolumeLayout& layout);
[[nodiscard]] Expected<VolumeLayout> volumes_from_wire(std::string_view text,
                                                       const std::vector<std::uint64_t>& disk_sizes);

[[nodiscard]] std::string error_to_wire(const Error& error);
// An {"error": ...} answer as an Error; nullopt when text is not one.
[[nodiscard]] std::optional<Error> error_from_wire(std::string_view text);

} // namespace coldscan::disk::detail
