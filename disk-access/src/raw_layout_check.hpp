// Whether a file that qemu-img calls "raw" starts like a disk or a filesystem. qemu-img reports any file it
// cannot identify as raw, so without this a text file or an archive would cost an appliance launch and
// pass as an empty disk; with it, a wrong target gets one clear error instead.
#pragma once

#include "coldscan/common/error.hpp"

#include <cstddef>
#include <filesystem>
#include <span>

namespace coldscan::disk {

// True when the bytes (the file's first 72 KiB or less) hold a partition table, a filesystem superblock, an
// LVM/LUKS header, a swap signature or an ISO9660 descriptor at its usual place.
[[nodiscard]] bool starts_like_a_disk(std::span<const std::byte> head);
// Reads the head of the file and applies starts_like_a_disk(). Error: io.
[[nodiscard]] Expected<bool> file_starts_like_a_disk(const std::filesystem::path& path);

} // namespace coldscan::disk
