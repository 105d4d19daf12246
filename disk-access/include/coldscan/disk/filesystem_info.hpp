// What a disk holds, as both readers (the libguestfs appliance and the direct path) describe it.
#pragma once

#include <string>

namespace coldscan::disk {

struct FilesystemInfo {
    std::string device; // /dev/sda1, /dev/vg0/root, ...
    std::string type;   // ext4, ntfs, vfat, xfs, btrfs, swap, unknown, crypto_LUKS, ...
    std::string label;
    std::string uuid;
    // Not mountable by design (swap, unknown, encrypted without a key): why it is not scanned. Empty when it
    // should be scanned.
    std::string not_scannable_reason;
};

struct OsInfo {
    std::string root; // the inspection root device
    std::string type; // linux, windows, ...
    std::string distro;
    std::string product_name;
    std::string version; // "major.minor"
    std::string hostname;
};

} // namespace coldscan::disk
