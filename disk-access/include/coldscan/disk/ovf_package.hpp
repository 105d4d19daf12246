// OVF packages, as VMware (ovftool) and VirtualBox export VMs: an .ovf descriptor (XML) naming the disk
// files, either beside it or, in an .ova, all in one tar whose first member is the descriptor. The disks
// inside an .ova are read in place, as slices of the tar (offset and length), never extracted. The descriptor
// and the tar are guest-made bytes: the XML is parsed without network or entities, the tar by our hardened
// reader.
#pragma once

#include "coldscan/common/error.hpp"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace coldscan::disk {

// One of the VM's disks in a package.
struct PackageDisk {
    std::string name;                  // as the OVF names it (its href): "web01-disk1.vmdk"
    std::filesystem::path file;        // the .ova itself, or the disk file beside the .ovf
    std::uint64_t offset = 0;          // where the disk's bytes start in file
    std::uint64_t length = 0;          // how many; 0: the whole file
    std::optional<std::string> format; // what the OVF says it is ("vmdk"); nullopt: detected
};

// Whether path is an OVF package: a .ovf descriptor, or a tar whose first member is one (an .ova, whatever
// its name). False for anything else, and for what cannot be read.
[[nodiscard]] bool is_ovf_package(const std::filesystem::path& path);

// The VM's disks in the order its virtual hardware attaches them (disks it does not attach follow, in the
// descriptor's order). Errors: invalid_argument (not a package, a malformed descriptor, a disk file missing
// from the package, or compressed or chunked as the OVF allows), io.
[[nodiscard]] Expected<std::vector<PackageDisk>> package_disks(const std::filesystem::path& path);

namespace detail {

// A disk as an OVF descriptor names it.
struct OvfDisk {
    std::string href;
    std::optional<std::string> format;
};

// The disks of a descriptor, in the hardware's order (pure; tests/fuzz/fuzz_ovf_descriptor.cpp). Errors:
// invalid_argument (not well-formed, a DOCTYPE, not an OVF envelope, a compressed or chunked disk file, an
// href that is not a plain file name).
[[nodiscard]] Expected<std::vector<OvfDisk>> ovf_disks(std::string_view xml);

} // namespace detail

} // namespace coldscan::disk
