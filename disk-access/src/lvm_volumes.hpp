// LVM2 volume groups found on a VM's disks: PV labels, every metadata area of every PV (checksums checked,
// the highest sequence number wins, disagreeing copies reported), and each visible logical volume mapped
// onto the disks (linear and striped segments; thin volumes, snapshots, mirrors and RAID are named with a
// reason and left to the appliance). Parses guest bytes: run it in the partition-table worker.
#pragma once

#include "coldscan/disk/block_device.hpp"
#include "volume_device.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace coldscan::disk::detail {

// A stretch of a disk that may be an LVM physical volume (a partition, or a whole disk without a table).
struct PvCandidate {
    unsigned disk = 0;
    std::uint64_t offset = 0;
    std::uint64_t size = 0;
};

// A physical volume found, and the group it belongs to ("" when its metadata could not be read).
struct FoundPv {
    unsigned disk = 0;
    std::uint64_t offset = 0;
    std::string group;
};

struct VolumeLayout {
    std::vector<FoundPv> pvs;
    std::vector<LogicalVolume> volumes; // visible LVs of every group found, mapped or with unsupported set
    std::vector<std::string> warnings;  // stale or disagreeing metadata copies, missing PVs, ...
};

// Reads every candidate's PV label and metadata. disks: the VM's disks by index. A candidate without an
// LVM label is skipped; damaged metadata is a warning (and its group's volumes are not listed), never an
// error for the other groups. Errors: io (a disk could not be read).
[[nodiscard]] Expected<VolumeLayout> find_logical_volumes(const std::vector<BlockDevice*>& disks,
                                                          const std::vector<PvCandidate>& candidates);

// Whether name is one LVM itself would accept for a VG or LV (so /dev/GROUP/NAME is a safe path).
[[nodiscard]] bool valid_lvm_name(const std::string& name);

} // namespace coldscan::disk::detail
