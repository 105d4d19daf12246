// The image safety gate: what an image file is, and whether every file it pulls in is allowed.
//
// Probing runs `qemu-img info` under CPU-time, memory and wall-clock limits, one layer at a time and without
// following backing references, so nothing outside the allowed roots is opened before it has been checked.
#pragma once

#include "coldscan/common/error.hpp"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace coldscan::disk {

struct ImageLayer {
    std::filesystem::path path; // canonical (symlinks resolved)
    std::string format;         // qcow2, vmdk, vhdx, vdi, raw, ...
    std::uint64_t virtual_size = 0;
    std::uint64_t file_size = 0;   // bytes on the host
    std::string backing_reference; // as written in the image, empty for the last layer
    // A disk inside a package (an OVA member): its bytes are [offset, offset + length) of path. length 0:
    // the whole file.
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
};

struct ImageInfo {
    std::filesystem::path path; // as the user gave it
    std::string format;         // of the top layer
    std::uint64_t virtual_size = 0;
    std::vector<ImageLayer> chain; // [0] is the image itself, then each backing file in order
    // Canonical folders every file of the chain lies in (the top image's own folder and each allowed root):
    // all that the qemu programs reading this image may see of the host besides their own files.
    std::vector<std::filesystem::path> allowed_roots;
};

// The folders a qemu program reading image may read: its allowed roots, or, for an ImageInfo made without
// a probe, each layer's folder.
[[nodiscard]] std::vector<std::filesystem::path> image_read_roots(const ImageInfo& image);

struct ProbeOptions {
    std::optional<std::string> format;                // explicit format of the top layer (--format)
    std::vector<std::filesystem::path> allowed_roots; // besides the image's own folder
    // The image is [offset, offset + length) of the file (a disk inside an OVA); length 0: the whole file.
    // Such a slice must be self-contained: no backing file, external data file or VMDK extent file.
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
};

inline constexpr std::size_t k_max_backing_depth = 64;

// Errors: not_found (no such file), invalid_argument (not a disk image, unknown --format), unsafe_image (a
// backing/data file escapes the allowed roots, a loop, a chain too deep, a missing layer), timeout.
[[nodiscard]] Expected<ImageInfo> probe_image(const std::filesystem::path& image,
                                              const ProbeOptions& options);

// Formats coldscan opens: qcow2, vmdk, vhdx, vdi, vpc, qed, raw.
[[nodiscard]] bool is_supported_format(std::string_view format);

} // namespace coldscan::disk
