// A disk read in process over NBD (libnbd): an export of our own qemu-nbd (Unix socket) or one made by the
// hypervisor or backup software (nbd:// and nbd+unix:// URIs). Also answers which layer of a backing
// chain holds each block (qemu:allocation-depth) and which blocks a dirty bitmap marks.
#pragma once

#include "coldscan/common/read_throttle.hpp"
#include "coldscan/disk/block_device.hpp"

#include <memory>
#include <string>
#include <vector>

namespace coldscan::disk {

struct NbdOptions {
    unsigned connections = 4;               // parallel connections for parallel reads (each read takes one)
    std::string dirty_bitmap;               // NAME of qemu:dirty-bitmap:NAME to ask for; empty: none
    std::shared_ptr<ReadThrottle> throttle; // asked before every data read; none: full speed
};

// One run of blocks with the same status.
struct BlockExtent {
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
    std::uint32_t value = 0; // allocation depth, or 1 = dirty / 0 = clean for a bitmap
};

// Thread rule: every member from any thread (reads are spread over the connections).
class NbdDevice final : public BlockDevice {
public:
    // Errors: invalid_argument (a malformed URI), io (cannot connect within 30 s: libnbd's message),
    // unsupported (the export lacks the named dirty bitmap).
    static Expected<std::unique_ptr<NbdDevice>> connect_unix(const std::string& socket,
                                                             const NbdOptions& options);
    static Expected<std::unique_ptr<NbdDevice>> connect_uri(const std::string& uri,
                                                            const NbdOptions& options);
    ~NbdDevice() override;
    NbdDevice(const NbdDevice&) = delete;
    NbdDevice& operator=(const NbdDevice&) = delete;

    [[nodiscard]] std::uint64_t size() const noexcept override;
    [[nodiscard]] Expected<void> read(std::uint64_t offset, std::span<std::byte> out) override;

    // Whether the export reports qemu:allocation-depth (qemu-nbd --allocation-depth does).
    [[nodiscard]] bool has_allocation_depth() const noexcept;
    // Over [offset, offset + length): depth 0 = allocated in no layer (reads as zeros), 1 = the top image,
    // n = the (n-1)th backing file. Extents are contiguous and cover the range. Errors: unsupported, io.
    [[nodiscard]] Expected<std::vector<BlockExtent>> allocation_depth(std::uint64_t offset,
                                                                      std::uint64_t length);
    // The same for the dirty bitmap named in NbdOptions: value 1 = written since the bitmap started.
    [[nodiscard]] Expected<std::vector<BlockExtent>> dirty_blocks(std::uint64_t offset, std::uint64_t length);

    struct Impl;

private:
    explicit NbdDevice(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> m_impl;
};

} // namespace coldscan::disk
