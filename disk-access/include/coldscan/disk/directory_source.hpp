// A host directory tree as a file source (a mounted filesystem, an extracted backup). Symlinks are never
// followed; hard links are read once; special files are not files to scan and are passed over.
#pragma once

#include "coldscan/disk/file_source.hpp"

#include <filesystem>
#include <memory>

namespace coldscan::disk {

// Errors: not_found, invalid_argument (not a directory). Per-file problems (permission denied, vanished)
// become entries with a problem.
[[nodiscard]] Expected<std::unique_ptr<FileSource>> open_directory(const std::filesystem::path& root);

} // namespace coldscan::disk
