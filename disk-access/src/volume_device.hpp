// A logical volume (LVM2 today) as plain data: its segments, each striped over one or more places on the
// VM's disks, and the block device that reads it. The map comes from guest metadata, so it is checked
// (volume_fits) before anything is read through it; mapping is pure arithmetic, shared by reads and by the
// block keys that name a file's bytes by their disk offsets.
#pragma once

#include "coldscan/disk/block_device.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace coldscan::disk::detail {

// Where one stripe of a segment starts: a disk of the VM and a byte offset on it.
struct VolumePlace {
    unsigned disk = 0;
    std::uint64_t offset = 0;
};

// Bytes [lv_offset, lv_offset + length) of the volume. One place: linear. Several: striped in chunks of
// stripe_bytes, chunk i on place i % places, each place holding length / places bytes.
struct VolumeSegment {
    std::uint64_t lv_offset = 0;
    std::uint64_t length = 0;
    std::uint64_t stripe_bytes = 0; // with more than one place
    std::vector<VolumePlace> places;
};

struct LogicalVolume {
    std::string group; // the volume group's name
    std::string name;
    std::uint64_t size = 0;
    std::vector<VolumeSegment> segments; // empty when unsupported is set
    std::string unsupported;             // why the direct path does not read it (thin, snapshot, ...)
    bool container = false;              // holds volumes, not a filesystem (a thin pool): nothing to read

    // As libguestfs names it: /dev/GROUP/NAME.
    [[nodiscard]] std::string device() const { return "/dev/" + group + "/" + name; }
};

// Whether the map holds together for disks of these sizes: segments contiguous from 0 and covering size,
// each place's share inside its disk, stripes that divide their segment. Error: corrupt, saying what.
[[nodiscard]] Expected<void> volume_fits(const LogicalVolume& volume,
                                         const std::vector<std::uint64_t>& disk_sizes);

// Calls piece(disk, disk_offset, length) for each contiguous piece of [offset, offset + length) of the
// volume, in order. The range must lie inside the volume (checked: invalid_argument).
[[nodiscard]] Expected<void>
for_each_piece(const LogicalVolume& volume, std::uint64_t offset, std::uint64_t length,
               const std::function<Expected<void>(unsigned, std::uint64_t, std::uint64_t)>& piece);

// The volume's bytes, read from the disks it lies on. Thread rule: as BlockDevice (any thread).
class VolumeDevice final : public BlockDevice {
public:
    // volume: checked with volume_fits against the disks' sizes by the caller.
    VolumeDevice(std::vector<std::shared_ptr<BlockDevice>> disks, LogicalVolume volume);
    [[nodiscard]] std::uint64_t size() const noexcept override { return m_volume.size; }
    [[nodiscard]] Expected<void> read(std::uint64_t offset, std::span<std::byte> out) override;

private:
    std::vector<std::shared_ptr<BlockDevice>> m_disks;
    LogicalVolume m_volume;
};

} // namespace coldscan::disk::detail
