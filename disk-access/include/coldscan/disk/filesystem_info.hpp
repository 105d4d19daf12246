// What a disk holds, as both readers (the libguestfs appliance and the direct path) describe it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

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

// Why a volume of this type is not scanned when it is encrypted (crypto_LUKS and the other crypto_ types
// blkid names, BitLocker): "encrypted (LUKS), no key". nullopt for any other type. Both readers name
// encrypted volumes this way, and the scan reports them failed, never skipped: they hold unscanned files.
[[nodiscard]] inline std::optional<std::string> encrypted_reason(std::string_view type) {
    if (type == "BitLocker") {
        return "encrypted (BitLocker), no key";
    }
    if (type.starts_with("crypto_")) {
        return "encrypted (" + std::string(type.substr(7)) + "), no key";
    }
    return std::nullopt;
}

struct OsInfo {
    std::string root; // the inspection root device
    std::string type; // linux, windows, ...
    std::string distro;
    std::string product_name;
    std::string version; // "major.minor"
    std::string hostname;
};

} // namespace coldscan::disk
