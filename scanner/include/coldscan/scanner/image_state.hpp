// What an image's files look like on the host, taken before and after a scan to tell whether the image
// changed while it was read (a running VM writing to it, a backup tool rewriting it, a copy still arriving).
// A changed image gives a report that mixes two states of the disk: its target is `inconsistent`, and
// nothing the scan learnt from it is cached.
// Thread rule: plain data and free functions.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace coldscan::scanner {

struct LayerState {
    std::filesystem::path path;
    int error = 0; // errno of a failed stat(), else 0
    std::uint64_t device = 0;
    std::uint64_t inode = 0;
    std::uint64_t size = 0;
    std::int64_t mtime_ns = 0;
    std::int64_t ctime_ns = 0;

    friend bool operator==(const LayerState&, const LayerState&) = default;
};

struct ImageState {
    std::vector<LayerState> layers; // the chain, top first
    // SHA-256 (hex) of the top layer's first MiB (its header, and for qcow2 the tables near it): catches a
    // rewrite that kept the size and times (a copy with preserved times onto the same inode is rare, but
    // cheap to catch). "" when it could not be read.
    std::string top_fingerprint;
};

inline constexpr std::size_t k_fingerprint_bytes = 1U << 20;

// stat() of every layer (following symlinks, as qemu opens them) and the top layer's fingerprint.
[[nodiscard]] ImageState capture_image_state(const std::vector<std::filesystem::path>& layers);

// What differs between two states of the same chain, in words ("/img/top.qcow2: size 100 -> 200, mtime
// changed"), layer by layer; std::nullopt when nothing does.
[[nodiscard]] std::optional<std::string> describe_change(const ImageState& before, const ImageState& after);

} // namespace coldscan::scanner
