// LVM2 metadata as found on a disk: the input is the text metadata, which the target wraps in a valid PV
// (label, PV header, metadata area header, checksums right) at the start of a 4 MiB disk so the fuzzer works
// on the text and the maps it describes, not on CRCs. The PV's UUID is all 'A's (seeds name it). Oracles:
// each volume is either mapped or has a reason (never both), names are safe device names, every mapped map
// fits the disk (volume_fits) and reads at both ends, and the wire form the parent checks accepts it.
#include "filesystem_wire.hpp"
#include "fuzz_support.hpp"
#include "lvm_metadata.hpp"
#include "lvm_volumes.hpp"
#include "volume_device.hpp"

#include <cstring>
#include <memory>
#include <string>

namespace {

using namespace coldscan;
using namespace coldscan::disk::detail;

constexpr std::size_t k_disk = 4U << 20;
constexpr std::size_t k_mda_at = 4096;
constexpr std::size_t k_mda_size = (1U << 20) - k_mda_at;

class MemoryDevice final : public disk::BlockDevice {
public:
    explicit MemoryDevice(std::string bytes) : m_bytes(std::move(bytes)) {}
    [[nodiscard]] std::uint64_t size() const noexcept override { return m_bytes.size(); }
    [[nodiscard]] Expected<void> read(std::uint64_t offset, std::span<std::byte> out) override {
        if (offset > m_bytes.size() || out.size() > m_bytes.size() - offset) {
            return make_error(Errc::invalid_argument, "read past the end");
        }
        if (!out.empty()) {
            std::memcpy(out.data(), m_bytes.data() + offset, out.size());
        }
        return {};
    }

private:
    std::string m_bytes;
};

void put_le(std::string& bytes, std::size_t at, std::uint64_t value, std::size_t width) {
    for (std::size_t i = 0; i < width; ++i) {
        bytes[at + i] = static_cast<char>((value >> (8 * i)) & 0xFFU);
    }
}

std::string disk_with(std::string_view text) {
    std::string disk(k_disk, '\0');
    std::string label(512, '\0');
    label.replace(0, 8, "LABELONE");
    put_le(label, 8, 1, 8);
    put_le(label, 20, 32, 4);
    label.replace(24, 8, "LVM2 001");
    label.replace(32, 32, std::string(32, 'A'));
    put_le(label, 64, k_disk, 8);
    put_le(label, 72, 1U << 20, 8);
    put_le(label, 104, k_mda_at, 8);
    put_le(label, 112, k_mda_size, 8);
    put_le(label, 16, lvm_crc(k_lvm_initial_crc, std::string_view(label).substr(20)), 4);
    disk.replace(512, 512, label);
    std::string header(512, '\0');
    header.replace(4, 16, " LVM2 x[5A%r0N*>");
    put_le(header, 20, 1, 4);
    put_le(header, 24, k_mda_at, 8);
    put_le(header, 32, k_mda_size, 8);
    put_le(header, 40, 512, 8);
    put_le(header, 48, text.size(), 8);
    put_le(header, 56, lvm_crc(k_lvm_initial_crc, text), 4);
    put_le(header, 0, lvm_crc(k_lvm_initial_crc, std::string_view(header).substr(4)), 4);
    disk.replace(k_mda_at, 512, header);
    disk.replace(k_mda_at + 512, text.size(), text);
    return disk;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size > k_mda_size - 512) {
        return 0;
    }
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    (void)parse_lvm_metadata(text);
    MemoryDevice disk(disk_with(text));
    auto layout = find_logical_volumes({&disk}, {PvCandidate{0, 0, k_disk}});
    FUZZ_CHECK(layout.has_value()); // a memory disk never fails to read
    for (const auto& volume : layout->volumes) {
        FUZZ_CHECK(valid_lvm_name(volume.group) && valid_lvm_name(volume.name));
        FUZZ_CHECK(volume.segments.empty() != volume.unsupported.empty());
        if (!volume.unsupported.empty()) {
            continue;
        }
        FUZZ_CHECK(volume_fits(volume, {k_disk}).has_value());
        VolumeDevice device({std::shared_ptr<disk::BlockDevice>(&disk, [](disk::BlockDevice*) {})}, volume);
        std::byte byte{};
        FUZZ_CHECK(device.read(0, std::span(&byte, 1)).has_value());
        FUZZ_CHECK(device.read(volume.size - 1, std::span(&byte, 1)).has_value());
    }
    FUZZ_CHECK(volumes_from_wire(volumes_to_wire(*layout), {k_disk}).has_value());
    return 0;
}
