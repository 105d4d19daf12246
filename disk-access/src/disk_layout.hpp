// What a disk holds before any filesystem is opened: its partition table and the LVM logical volumes on its
// partitions (or on the bare disk). Guest bytes: read in the partition-table worker when sandboxed.
#pragma once

#include "coldscan/disk/partition_table.hpp"
#include "lvm_volumes.hpp"

#include <vector>

namespace coldscan::disk::detail {

struct DiskLayout {
    PartitionTable table;
    VolumeLayout volumes;
};

// Where a physical volume may start on disk number `disk`: every partition that is not an extended one, or
// the whole disk when it has no table.
[[nodiscard]] std::vector<PvCandidate> pv_candidates(const PartitionTable& table, unsigned disk,
                                                     std::uint64_t disk_size);

// The table, then the volumes on it. A volume group that cannot be read is a warning in volumes, not an
// error. Errors: those of read_partition_table.
[[nodiscard]] Expected<DiskLayout> read_disk_layout(BlockDevice& disk);

} // namespace coldscan::disk::detail
