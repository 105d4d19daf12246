// Block keys: a file of the direct path named by where its bytes lie on the VM's disks and by the layer of
// each disk's image chain they come from (qemu:allocation-depth), or by a dirty bitmap's point in time. A
// file of a linked clone that lies wholly in its template's blocks thus gets the key it had when the template
// was scanned, and keeps its verdict without a read. Files in a logical volume are named by the disk offsets
// their runs map to. Pure functions over plain data.
#pragma once

#include "coldscan/disk/nbd_device.hpp"
#include "filesystem_reader.hpp"
#include "volume_device.hpp"

#include <optional>
#include <string>
#include <vector>

namespace coldscan::disk::detail {

// Where a filesystem's bytes lie: a window of one disk, or a logical volume over the disks.
struct FilesystemPlace {
    unsigned disk = 0;
    std::uint64_t offset = 0; // of the filesystem in the disk (0 in a volume)
    const LogicalVolume* volume = nullptr;
};

// One disk's map (allocation depth, or dirty extents; nullptr: nothing allocated anywhere) and the identities
// of its layers, top first (empty: no keys for data on this disk).
struct DiskBlockMap {
    const std::vector<BlockExtent>* map = nullptr;
    std::vector<std::string> layers;
};

// "blocks|<identities of the layers holding the data>|<sha256 of the runs as disk offsets>"; "blocks|empty"
// for an empty file; nullopt when the file has no plain blocks to name (resident, decoded by TSK, a problem)
// or its data lies on a disk without layer identities.
[[nodiscard]] std::optional<std::string> block_key(const FsFile& file, const FilesystemPlace& place,
                                                   const std::vector<DiskBlockMap>& disks);

// Whether any byte of the file's data lies in a block a disk's dirty map marks (or cannot be placed).
[[nodiscard]] bool touches_dirty_blocks(const FsFile& file, const FilesystemPlace& place,
                                        const std::vector<DiskBlockMap>& disks);

} // namespace coldscan::disk::detail
