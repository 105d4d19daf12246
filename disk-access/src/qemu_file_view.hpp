// The file view (common/file_view.hpp) of each qemu program coldscan starts: the system's own folders, the
// image's allowed roots to read, and its private folder to write. Nothing else of the host: not the other
// datastores, not the home folders, not the other tenants' images next to an allowed root.
#pragma once

#include "coldscan/common/file_view.hpp"

#include <filesystem>
#include <vector>

namespace coldscan::disk::detail {

// qemu-img and qemu-nbd: read the roots, write (and make sockets in) the private folders.
[[nodiscard]] FileView qemu_file_view(const std::vector<std::filesystem::path>& read_roots,
                                      const std::vector<std::filesystem::path>& private_folders);

} // namespace coldscan::disk::detail
