// A disk image opened read-only in a libguestfs appliance (guestfs.h stays private to guestfs_image.cpp).
// Guest filesystems are mounted read-only inside the appliance, never on the host kernel.
#pragma once

#include "coldscan/common/error.hpp"
#include "coldscan/disk/file_source.hpp"
#include "coldscan/disk/filesystem_info.hpp"
#include "coldscan/disk/image_probe.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace coldscan::disk {

enum class Accel {
    automatic, // try KVM when /dev/kvm exists; if that launch fails, retry under TCG (said once per process)
    kvm,
    tcg,
};

struct ApplianceOptions {
    Accel accel = Accel::automatic;
    // Any call that runs longer gets the appliance killed (zero: no limit); open_filesystem() replaces it
    // with its SourceOptions::stall_timeout.
    std::chrono::seconds stall_timeout{0};
    std::string snapshot; // a qcow2 internal snapshot to read instead of the current state
};

// Thread rule: one per worker (one guestfs_h); one call at a time, and while a FileSource from
// open_filesystem() lives, no other call on this object.
class GuestfsImage {
public:
    // Serves the image read-only with qemu-nbd (every layer's format explicit) and launches the appliance on
    // an overlay of that export, its qemu confined to a file view. Errors: engine (the appliance failed to
    // launch, with libguestfs' message; qemu-nbd refused the image), io, not_found (qemu-nbd missing).
    static Expected<GuestfsImage> launch(const ImageInfo& image, const ApplianceOptions& options);
    // The disks of one VM as the appliance's drives, in order (/dev/sda, /dev/sdb, ...): a volume group may
    // span them. Errors: as above.
    static Expected<GuestfsImage> launch(const std::vector<ImageInfo>& disks,
                                         const ApplianceOptions& options);
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

// When this process was started as the appliance's confined qemu (libguestfs runs coldscan under that name,
// see guestfs_image.cpp): confines itself and execs qemu; returns only on failure, with the exit status.
// nullopt otherwise. Called first thing in main().
[[nodiscard]] std::optional<int> run_confined_hypervisor_if_asked(int argc, char** argv);

} // namespace coldscan::disk
