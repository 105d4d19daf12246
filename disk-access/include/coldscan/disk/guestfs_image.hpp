// A disk image opened read-only in a libguestfs appliance (guestfs.h stays private to guestfs_image.cpp).
// Guest filesystems are mounted read-only inside the appliance, never on the host kernel.
#pragma once

#include "coldscan/common/error.hpp"
#include "coldscan/disk/file_source.hpp"
#include "coldscan/disk/filesystem_info.hpp"
#include "coldscan/disk/image_probe.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace coldscan::disk {

enum class Accel {
    automatic, // try KVM when /dev/kvm exists; if that launch fails, retry under TCG (said once per process)
    kvm,
    tcg,
};

// Thread rule: one per worker (one guestfs_h); one call at a time, and while a FileSource from
// open_filesystem() lives, no other call on this object.
class GuestfsImage {
public:
    // Adds every layer's top image read-only with its explicit format and launches the appliance. Any later
    // call on it that runs longer than stall_timeout (zero: no limit) gets the appliance killed, so it fails
    // instead of hanging; open_filesystem() replaces the limit with its SourceOptions::stall_timeout.
    // Errors: engine (appliance failed to launch, with libguestfs' message), cancelled.
    static Expected<GuestfsImage> launch(const ImageInfo& image, Accel accel,
                                         std::chrono::seconds stall_timeout);
    GuestfsImage(GuestfsImage&&) noexcept;
    GuestfsImage& operator=(GuestfsImage&&) noexcept;
    ~GuestfsImage();

    // OS inspection; empty when no OS is found (a data disk).
    [[nodiscard]] Expected<std::vector<OsInfo>> inspect();
    // Every filesystem: partitions, LVM logical volumes, whole-disk filesystems.
    [[nodiscard]] Expected<std::vector<FilesystemInfo>> filesystems();
    // Mounts fs read-only at / in the appliance and delivers its regular files. Without want, every file is
    // streamed (tar-out). With want, the filesystem is first listed with identities, files want turns down
    // come back withheld (nothing transferred) and the rest are read one by one. Errors: the mount failed.
    [[nodiscard]] Expected<std::unique_ptr<FileSource>>
    open_filesystem(const FilesystemInfo& fs, const SourceOptions& options, WantBytes want = {});
    // "kvm" or "tcg": how the appliance actually runs.
    [[nodiscard]] const std::string& accel_used() const noexcept;

private:
    struct Impl;
    explicit GuestfsImage(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> m_impl;
};

} // namespace coldscan::disk
