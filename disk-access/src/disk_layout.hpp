// What a disk holds before any filesystem is opened: its partition table and the LVM logical volumes on its
// partitions (or on the bare disk). Guest bytes: read in the partition-table worker when sandboxed.
#pragma once

#include "coldscan/disk/partition_table.hpp"
#include "lvm_volumes.hpp"

#include <vector>

namespace coldscan::disk::detail {

// The disks of one VM, by index: each disk's table (or why it could not be used), then the volumes on all
// of them (a volume group may span disks).
struct DiskLayout {
    std::vector<Expected<PartitionTable>> tables;
    VolumeLayout volumes;
};

// Where a physical volume may start on disk number `disk`: every partition that is not an extended one, or
// the whole disk when it has no table.
[[nodiscard]] std::vector<PvCandidate> pv_candidates(const PartitionTable& table, unsigned disk,
                                                     std::uint64_t disk_size);

// Each disk's table (read_partition_table's result), then the volumes on the partitions of all of them. A
// volume group that cannot be read is a warning in volumes, never an error.
[[nodiscard]] DiskLayout read_disk_layout(const std::vector<BlockDevice*>& disks);

} // namespace coldscan::disk::detail
