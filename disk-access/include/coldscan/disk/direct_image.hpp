// A disk read without the appliance: the image exported read-only by our own qemu-nbd (or an NBD export
// the hypervisor or backup software made), its partition table parsed in process, and each filesystem read
// with the in-process reader (The Sleuth Kit) straight from the export, from many threads at once.
#pragma once

#include "coldscan/common/error.hpp"
#include "coldscan/disk/file_source.hpp"
#include "coldscan/disk/filesystem_info.hpp"
#include "coldscan/disk/image_probe.hpp"
#include "coldscan/disk/nbd_device.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace coldscan::disk {

struct DirectOptions {
    unsigned connections = 4;               // NBD connections: reads in flight at once
    std::string snapshot;                   // a qcow2 internal snapshot to read instead of the current state
    std::string dirty_bitmap;               // an export's qemu:dirty-bitmap:NAME (NBD URIs)
    std::shared_ptr<ReadThrottle> throttle; // the job's read budget (the scan service); none: full speed
    bool sandbox = false; // parse each filesystem in a confined worker process (sandboxed_filesystem.hpp)
    // A filesystem worker silent this long (no answer, no progress while it walks) is stopped as hung.
    std::chrono::seconds stall_timeout{600};
};

struct DirectFilesystem {
    FilesystemInfo
        info; // device named as libguestfs names it (/dev/sda1, /dev/sdb for a bare disk, /dev/VG/LV)
    unsigned disk = 0;        // which of the VM's disks (0 for a logical volume, which may span several)
    std::uint64_t offset = 0; // bytes from the start of the disk (of the volume for a logical volume)
    std::uint64_t size = 0;
    bool readable = false; // the direct reader opened it
    // Not readable here, but the appliance may read it (LVM, XFS, btrfs, a type nobody recognised): with
    // --backend auto it goes to libguestfs.
    bool for_appliance = false;
};

// Thread rule: one owner; sources from open_filesystem() may be read from many threads and must end before
// the DirectImage does.
class DirectImage {
public:
    // Serves the validated image with qemu-nbd. Errors: as QemuNbdServer and NbdDevice.
    static Expected<std::unique_ptr<DirectImage>> serve(const ImageInfo& image, const DirectOptions& options);
    // The disks of one VM, in the order the VM sees them (/dev/sda, /dev/sdb, ...), each served as above: a
    // volume group may span them. Errors: as serve, naming the disk.
    static Expected<std::unique_ptr<DirectImage>> serve(const std::vector<ImageInfo>& disks,
                                                        const DirectOptions& options);
    // An existing export: nbd://HOST[:PORT]/EXPORT or nbd+unix:///EXPORT?socket=PATH.
    static Expected<std::unique_ptr<DirectImage>> connect(const std::string& uri,
                                                          const DirectOptions& options);
    ~DirectImage();
    DirectImage(const DirectImage&) = delete;
    DirectImage& operator=(const DirectImage&) = delete;

    [[nodiscard]] std::uint64_t size() const noexcept; // of the first disk
    [[nodiscard]] std::size_t disk_count() const noexcept;
    // Every partition (or bare disk) of every disk, every LVM logical volume on them, and what the direct
    // reader makes of each. Errors: io, corrupt (of a single disk's table; with several disks a disk whose
    // table cannot be used is an entry of its own and the others are read).
    [[nodiscard]] Expected<std::vector<DirectFilesystem>> filesystems();
    // The table's complaints (a damaged primary GPT read from its backup, ...), after filesystems().
    [[nodiscard]] const std::vector<std::string>& warnings() const noexcept;
    // OS identity from the filesystems' own files (/etc/os-release, /etc/hostname; a Windows folder tree),
    // without the appliance. Empty when nothing is recognised.
    [[nodiscard]] std::vector<OsInfo> inspect(const std::vector<DirectFilesystem>& filesystems);
    // The filesystem's regular files (and NTFS alternate data streams as PATH:STREAM), listed first with
    // identities; want decides which are read; reads may come from any thread. With disk_layers (per disk,
    // one identity per layer of its chain, top first: the identity of the chain from that layer down), each
    // file whose data lies in blocks gets a block key (block_keys.hpp): the identity of the shallowest layer
    // its blocks come from (qemu:allocation-depth) plus its runs as disk offsets. A file of a linked clone
    // that lies wholly in the template's blocks thus has the key it had when the template was scanned.
    // Errors: unsupported, io.
    [[nodiscard]] Expected<std::unique_ptr<FileSource>>
    open_filesystem(const DirectFilesystem& fs, const SourceOptions& options, WantBytes want = {},
                    const std::vector<std::vector<std::string>>& disk_layers = {});

    struct Impl;

private:
    explicit DirectImage(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> m_impl;
};

} // namespace coldscan::disk
