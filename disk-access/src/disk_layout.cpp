#include "disk_layout.hpp"

namespace coldscan::disk::detail {

std::vector<PvCandidate> pv_candidates(const PartitionTable& table, unsigned disk, std::uint64_t disk_size) {
    std::vector<PvCandidate> candidates;
    if (table.kind == TableKind::none) {
        candidates.push_back(PvCandidate{disk, 0, disk_size});
    }
    for (const auto& p : table.partitions) {
        if (!p.extended) {
            candidates.push_back(PvCandidate{disk, p.offset, p.size});
        }
    }
    return candidates;
}

Expected<DiskLayout> read_disk_layout(BlockDevice& disk) {
    auto table = read_partition_table(disk);
    if (!table) {
        return std::unexpected(table.error());
    }
    DiskLayout layout;
    layout.table = std::move(*table);
    auto volumes = find_logical_volumes({&disk}, pv_candidates(layout.table, 0, disk.size()));
    if (volumes) {
        layout.volumes = std::move(*volumes);
    } else {
        layout.volumes.warnings.push_back("cannot look for LVM volumes: " + volumes.error().message);
    }
    return layout;
}

} // namespace coldscan::disk::detail
