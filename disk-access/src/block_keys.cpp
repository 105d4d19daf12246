#include "block_keys.hpp"

#include "coldscan/common/sha256.hpp"
#include "extent_map.hpp"

#include <algorithm>
#include <map>

namespace coldscan::disk::detail {

namespace {

const std::vector<BlockExtent> k_nothing;

const std::vector<BlockExtent>& map_of(const std::vector<DiskBlockMap>& disks, unsigned disk) {
    return disk < disks.size() && disks[disk].map != nullptr ? *disks[disk].map : k_nothing;
}

// Calls range(disk, offset, length) for each stretch of a disk that holds the run's bytes. False when the
// run cannot be placed (outside its volume).
template <typename F> bool for_each_disk_range(const DataRun& run, const FilesystemPlace& place, F&& range) {
    if (place.volume == nullptr) {
        range(place.disk, place.offset + run.fs_offset, run.length);
        return true;
    }
    return for_each_piece(*place.volume, run.fs_offset, run.length,
                          [&](unsigned disk, std::uint64_t at, std::uint64_t length) -> Expected<void> {
                              range(disk, at, length);
                              return {};
                          })
        .has_value();
}

} // namespace

bool touches_dirty_blocks(const FsFile& file, const FilesystemPlace& place,
                          const std::vector<DiskBlockMap>& disks) {
    bool touched = false;
    for (const auto& run : file.runs) {
        const bool placed =
            run.sparse ||
            for_each_disk_range(run, place, [&](unsigned disk, std::uint64_t at, std::uint64_t length) {
                touched = touched || shallowest_layer(map_of(disks, disk), at, length) != 0;
            });
        if (!placed) {
            return true;
        }
    }
    return touched;
}

std::optional<std::string> block_key(const FsFile& file, const FilesystemPlace& place,
                                     const std::vector<DiskBlockMap>& disks) {
    if (!file.problem && file.size == 0) {
        return "blocks|empty"; // no bytes at all, in any image
    }
    if (file.problem || file.through_tsk || !file.resident.empty() || file.runs.empty()) {
        return std::nullopt; // data inside metadata records or decoded by TSK: no plain blocks to name
    }
    std::string runs = std::to_string(file.size) + ":" + std::to_string(file.initialized);
    std::map<unsigned, std::uint32_t> shallowest; // per disk holding data; 0: unallocated in every layer
    for (const auto& run : file.runs) {
        if (run.sparse) {
            runs += "|s" + std::to_string(run.length);
            continue;
        }
        const bool placed =
            for_each_disk_range(run, place, [&](unsigned disk, std::uint64_t at, std::uint64_t length) {
                runs += "|" + (disk == 0 ? std::string() : "d" + std::to_string(disk) + ":") +
                        std::to_string(at) + "+" + std::to_string(length);
                const std::uint32_t layer = shallowest_layer(map_of(disks, disk), at, length);
                auto& best = shallowest[disk];
                if (layer != 0 && (best == 0 || layer < best)) {
                    best = layer;
                }
            });
        if (!placed) {
            return std::nullopt;
        }
    }
    if (shallowest.empty()) {
        shallowest[place.volume == nullptr ? place.disk : 0] = 0; // only holes: named by their sizes
    }
    // Depth n is layer n-1 (top = 1); unallocated everywhere reads as zeros in any layer: the bottom one.
    std::string identities;
    for (const auto& [disk, layer] : shallowest) {
        if (disk >= disks.size() || disks[disk].layers.empty()) {
            return std::nullopt;
        }
        const auto& layers = disks[disk].layers;
        const std::size_t index =
            layer == 0 ? layers.size() - 1 : std::min<std::size_t>(layer - 1, layers.size() - 1);
        identities += (identities.empty() ? "" : "+") + layers[index];
    }
    return "blocks|" + identities + "|" + sha256_hex(runs);
}

} // namespace coldscan::disk::detail
