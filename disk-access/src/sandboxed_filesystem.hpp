// A filesystem parsed by The Sleuth Kit in a confined worker process (see filesystem_worker.hpp).
//
// The worker connects to the same export (a qemu-nbd Unix socket or an NBD URI; a raw file in tests), opens
// the filesystem and walks it, then confines itself: no sockets, no exec, no signals to others, memory and
// CPU limits. What it sends back is only data: the filesystem's type and ids, and each file's record with
// its data runs, which this process checks (well_formed) before it reads anything along them. The file
// data itself is read here, straight from the export along those runs; only data TSK must decode (NTFS
// compressed or encrypted) is read by the worker. A worker that crashes or hangs fails the filesystem
// (listing) or the file (a read); it never takes coldscan with it.
#pragma once

#include "coldscan/common/read_throttle.hpp"
#include "coldscan/disk/block_device.hpp"
#include "coldscan/disk/partition_table.hpp"
#include "disk_layout.hpp"
#include "filesystem_reader.hpp"

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

namespace coldscan::disk::detail {

// Where the worker finds the disk: exactly one of the three.
struct WorkerDisk {
    std::string nbd_socket; // qemu-nbd's Unix socket (the export's default name)
    std::string nbd_uri;    // nbd://, nbd+unix://, nbds://
    std::string raw_file;   // a raw image file (tests)
};

struct WorkerLimits {
    std::uint64_t address_space_bytes = 4ULL << 30;
    std::chrono::seconds cpu_time{3600};
    // Silence longer than this (no answer, no batch, no progress report during a walk, which comes every
    // second while the walk reads) is a hung worker: it is killed.
    std::chrono::seconds answer_within{600};
    // During a walk the worker reports (and waits until they are charged to the read budget) every this many
    // bytes it reads, and at least every second while it reads.
    std::uint64_t report_bytes = 4U << 20;
};

// The disks' partition tables and LVM volumes (read_disk_layout), read by a confined worker (MBR, GPT and LVM
// metadata are guest bytes too) and checked here (table_from_wire, volumes_from_wire).
// disks and disk_sizes: the VM's disks, in order. A disk whose table cannot be used is an error in tables,
// as read_disk_layout says; errors here: io (the worker failed or hung), corrupt (its answer cannot be).
[[nodiscard]] Expected<DiskLayout> read_disk_layout_in_worker(const std::vector<WorkerDisk>& disks,
                                                              const std::vector<std::uint64_t>& disk_sizes,
                                                              const WorkerLimits& limits = {});

// Thread rule: as FilesystemReader; calls to the worker are serialised inside.
class SandboxedFilesystem final : public FilesystemReader {
public:
    // Starts a worker on [offset, offset + size) of disks[disk], or of the logical volume when one is given;
    // device is this process's view of the same bytes (the disk, or the volume), for reads along runs.
    // Errors: unsupported (no filesystem a reader knows there), io (the worker failed).
    static Expected<std::unique_ptr<SandboxedFilesystem>>
    open(const std::vector<WorkerDisk>& disks, unsigned disk, std::shared_ptr<BlockDevice> device,
         std::uint64_t offset, std::uint64_t size, std::shared_ptr<ReadThrottle> throttle,
         const WorkerLimits& limits, const LogicalVolume* volume);
    // One disk, no volume.
    static Expected<std::unique_ptr<SandboxedFilesystem>>
    open(const WorkerDisk& disk, std::shared_ptr<BlockDevice> device, std::uint64_t offset,
         std::uint64_t size, std::shared_ptr<ReadThrottle> throttle = nullptr,
         const WorkerLimits& limits = {});
    ~SandboxedFilesystem() override;
    SandboxedFilesystem(const SandboxedFilesystem&) = delete;
    SandboxedFilesystem& operator=(const SandboxedFilesystem&) = delete;

    [[nodiscard]] const std::string& type() const noexcept override { return m_type; }
    [[nodiscard]] const std::string& uuid() const noexcept override { return m_uuid; }
    [[nodiscard]] const std::string& label() const noexcept override { return m_label; }
    [[nodiscard]] Expected<std::vector<FsFile>> list(std::vector<FsFile>* partial = nullptr) override;
    [[nodiscard]] std::optional<std::string> read_small_file(const std::string& path,
                                                             std::size_t limit) override;
    [[nodiscard]] bool is_folder(const std::string& path) override;
    [[nodiscard]] Expected<std::size_t> read(const FsFile& file, std::uint64_t offset,
                                             std::span<std::byte> out) override;
    [[nodiscard]] pid_t worker_pid() const noexcept { return m_pid; }

private:
    SandboxedFilesystem() = default;
    // One request and its first answer; the worker is killed and forgotten when it fails.
    Expected<std::string> ask(const std::string& request, std::chrono::milliseconds within);
    Expected<std::string> next_answer(std::chrono::milliseconds within);
    Error lost(const Error& why);

    std::mutex m_mutex;
    UniqueFd m_socket;
    pid_t m_pid = -1;
    std::shared_ptr<BlockDevice> m_device;
    std::shared_ptr<ReadThrottle> m_throttle; // the worker's own reads are charged here, as it reports them
    std::uint64_t m_offset = 0;
    std::uint64_t m_size = 0;
    WorkerLimits m_limits;
    std::string m_type;
    std::string m_uuid;
    std::string m_label;
};

} // namespace coldscan::disk::detail
