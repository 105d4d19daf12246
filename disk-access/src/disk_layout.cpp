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

DiskLayout read_disk_layout(const std::vector<BlockDevice*>& disks) {
    DiskLayout layout;
    std::vector<PvCandidate> candidates;
    for (unsigned i = 0; i < disks.size(); ++i) {
        layout.tables.push_back(read_partition_table(*disks[i]));
        if (layout.tables.back()) {
            std::ranges::copy(pv_candidates(*layout.tables.back(), i, disks[i]->size()),
                              std::back_inserter(candidates));
        }
    }
    auto volumes = find_logical_volumes(disks, candidates);
    if (volumes) {
        layout.volumes = std::move(*volumes);
    } else {
        layout.volumes.warnings.push_back("cannot look for LVM volumes: " + volumes.error().message);
    }
    return layout;
}

} // namespace coldscan::disk::detail
