// VMDK descriptors read exactly as qemu's vmdk driver reads them, so the image safety gate can check every
// extent a descriptor names before qemu-img opens it. Hostile input: every read is bounded.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace coldscan::disk::detail {

// The descriptor qemu's vmdk driver would parse in this file, if any. as_vmdk: the file is opened as vmdk
// for sure (explicit format, or an extent); otherwise only when qemu's probe would pick vmdk. A text
// descriptor, or the one embedded in a sparse (KDMV) header.
[[nodiscard]] std::optional<std::string> vmdk_descriptor(const std::filesystem::path& file, bool as_vmdk);
// The extent file names a descriptor lists, parsed as qemu's vmdk_parse_extents() does.
[[nodiscard]] std::vector<std::string> vmdk_extent_names(std::string_view descriptor);

} // namespace coldscan::disk::detail
