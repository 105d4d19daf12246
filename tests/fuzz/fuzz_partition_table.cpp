// MBR (with chains of logical partitions) and GPT (primary and backup, 512- and 4096-byte sectors) read from
// a disk whose bytes are the input. The first bit of byte 0 (MBR boot code, which nothing parses) asks the
// target to make the GPT checksums right first, so the fuzzer gets past them. Oracles: every partition lies
// inside the disk and is not empty, numbers are unique and sorted, MBR numbers are 1-4 and logicals from 5.
#include "coldscan/disk/partition_table.hpp"
#include "fuzz_support.hpp"

#include <array>
#include <cstring>
#include <set>
#include <vector>

namespace {

using coldscan::Errc;
using coldscan::Expected;

class MemoryDevice final : public coldscan::disk::BlockDevice {
public:
    explicit MemoryDevice(std::vector<std::byte> bytes) : m_bytes(std::move(bytes)) {}
    [[nodiscard]] std::uint64_t size() const noexcept override { return m_bytes.size(); }
    [[nodiscard]] Expected<void> read(std::uint64_t offset, std::span<std::byte> out) override {
        if (offset > m_bytes.size() || out.size() > m_bytes.size() - offset) {
            return coldscan::make_error(Errc::invalid_argument, "read past the end");
        }
        if (!out.empty()) {
            std::memcpy(out.data(), m_bytes.data() + offset, out.size());
        }
        return {};
    }

private:
    std::vector<std::byte> m_bytes;
};

std::uint32_t crc32(const std::byte* data, std::size_t size) {
    std::uint32_t crc = 0xFFFFFFFFU;
    for (std::size_t i = 0; i < size; ++i) {
        crc ^= std::to_integer<std::uint32_t>(data[i]);
        for (int k = 0; k < 8; ++k) {
            crc = (crc & 1U) != 0 ? 0xEDB88320U ^ (crc >> 1U) : crc >> 1U;
        }
    }
    return crc ^ 0xFFFFFFFFU;
}

std::uint32_t le32(const std::vector<std::byte>& b, std::size_t at) {
    std::uint32_t v = 0;
    for (std::size_t i = 0; i < 4; ++i) {
        v |= std::to_integer<std::uint32_t>(b[at + i]) << (8 * i);
    }
    return v;
}

std::uint64_t le64(const std::vector<std::byte>& b, std::size_t at) {
    return le32(b, at) | (static_cast<std::uint64_t>(le32(b, at + 4)) << 32U);
}

void put_le32(std::vector<std::byte>& b, std::size_t at, std::uint32_t v) {
    for (std::size_t i = 0; i < 4; ++i) {
        b[at + i] = static_cast<std::byte>((v >> (8 * i)) & 0xFFU);
    }
}

// Makes the entry array's and the header's CRC of a GPT header at byte `at` right, when they can be.
void fix_gpt(std::vector<std::byte>& disk, std::size_t at, std::size_t sector_size) {
    if (at + sector_size > disk.size() || std::memcmp(disk.data() + at, "EFI PART", 8) != 0) {
        return;
    }
    const std::uint32_t header_size = le32(disk, at + 12);
    if (header_size < 92 || header_size > sector_size) {
        return;
    }
    const std::uint64_t entries_lba = le64(disk, at + 72);
    const std::uint64_t entries_bytes = static_cast<std::uint64_t>(le32(disk, at + 80)) * le32(disk, at + 84);
    if (entries_lba < disk.size() / sector_size && entries_bytes <= disk.size() - entries_lba * sector_size) {
        put_le32(disk, at + 88, crc32(disk.data() + entries_lba * sector_size, entries_bytes));
    }
    put_le32(disk, at + 16, 0);
    put_le32(disk, at + 16, crc32(disk.data() + at, header_size));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::vector<std::byte> disk(size);
    if (size > 0) {
        std::memcpy(disk.data(), data, size);
    }
    if (size > 0 && (data[0] & 1U) != 0) {
        for (const std::size_t ss : {512U, 4096U}) {
            fix_gpt(disk, ss, ss);
            if (disk.size() >= 2 * ss) {
                fix_gpt(disk, (disk.size() / ss - 1) * ss, ss);
            }
        }
    }
    MemoryDevice device(std::move(disk));
    auto table = coldscan::disk::read_partition_table(device);
    if (!table) {
        FUZZ_CHECK(table.error().code == Errc::corrupt);
        FUZZ_CHECK(!table.error().message.empty());
        return 0;
    }
    FUZZ_CHECK(table->kind != coldscan::disk::TableKind::none || table->partitions.empty());
    FUZZ_CHECK(table->sector_size == 512 || table->sector_size == 4096);
    std::set<unsigned> numbers;
    unsigned previous = 0;
    for (const auto& p : table->partitions) {
        FUZZ_CHECK(p.size > 0);
        FUZZ_CHECK(p.offset < size);
        FUZZ_CHECK(p.size <= size - p.offset);
        FUZZ_CHECK(p.number > previous);
        FUZZ_CHECK(numbers.insert(p.number).second);
        previous = p.number;
        if (table->kind == coldscan::disk::TableKind::mbr) {
            FUZZ_CHECK(p.type.size() == 4 && p.type.starts_with("0x"));
            FUZZ_CHECK(p.number <= 4 || !p.extended);
        } else {
            FUZZ_CHECK(p.type.size() == 36 && !p.extended);
        }
    }
    return 0;
}
