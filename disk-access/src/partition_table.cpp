#include "coldscan/disk/partition_table.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <optional>
#include <set>
#include <vector>

namespace coldscan::disk {

namespace {

constexpr std::size_t k_mbr_entries_at = 446;
constexpr std::size_t k_mbr_entry_size = 16;
constexpr unsigned k_max_logical_partitions = 256; // EBR chains longer than this are damaged or hostile
constexpr std::uint32_t k_max_gpt_entries = 4096;
constexpr std::uint32_t k_max_gpt_entry_size = 4096;

std::uint16_t le16(std::span<const std::byte> b, std::size_t at) {
    return static_cast<std::uint16_t>(std::to_integer<unsigned>(b[at]) |
                                      (std::to_integer<unsigned>(b[at + 1]) << 8U));
}

std::uint32_t le32(std::span<const std::byte> b, std::size_t at) {
    return static_cast<std::uint32_t>(le16(b, at)) | (static_cast<std::uint32_t>(le16(b, at + 2)) << 16U);
}

std::uint64_t le64(std::span<const std::byte> b, std::size_t at) {
    return static_cast<std::uint64_t>(le32(b, at)) | (static_cast<std::uint64_t>(le32(b, at + 4)) << 32U);
}

// CRC-32 (IEEE 802.3, reflected), as GPT uses it.
std::uint32_t crc32(std::span<const std::byte> data) {
    static const auto table = [] {
        std::array<std::uint32_t, 256> t{};
        for (std::uint32_t i = 0; i < 256; ++i) {
            std::uint32_t c = i;
            for (int k = 0; k < 8; ++k) {
                c = (c & 1U) != 0 ? 0xEDB88320U ^ (c >> 1U) : c >> 1U;
            }
            t[i] = c;
        }
        return t;
    }();
    std::uint32_t crc = 0xFFFFFFFFU;
    for (const std::byte b : data) {
        crc = table[(crc ^ std::to_integer<std::uint32_t>(b)) & 0xFFU] ^ (crc >> 8U);
    }
    return crc ^ 0xFFFFFFFFU;
}

Expected<std::vector<std::byte>> read_bytes(BlockDevice& device, std::uint64_t offset, std::size_t length) {
    if (offset > device.size() || length > device.size() - offset) {
        return make_error(Errc::corrupt, "a partition table points past the end of the disk");
    }
    std::vector<std::byte> bytes(length);
    if (auto ok = device.read(offset, bytes); !ok) {
        return std::unexpected(ok.error());
    }
    return bytes;
}

std::string hex_byte(unsigned value) {
    char text[8];
    std::snprintf(text, sizeof text, "0x%02x", value & 0xFFU);
    return text;
}

// GPT GUIDs store their first three fields little-endian.
std::string guid_text(std::span<const std::byte> b) {
    char text[40];
    std::snprintf(text, sizeof text, "%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x", le32(b, 0),
                  le16(b, 4), le16(b, 6), std::to_integer<unsigned>(b[8]), std::to_integer<unsigned>(b[9]),
                  std::to_integer<unsigned>(b[10]), std::to_integer<unsigned>(b[11]),
                  std::to_integer<unsigned>(b[12]), std::to_integer<unsigned>(b[13]),
                  std::to_integer<unsigned>(b[14]), std::to_integer<unsigned>(b[15]));
    return text;
}

bool has_boot_signature(std::span<const std::byte> sector) {
    return sector.size() >= 512 && sector[510] == std::byte{0x55} && sector[511] == std::byte{0xAA};
}

bool is_extended_type(unsigned type) {
    return type == 0x05 || type == 0x0F || type == 0x85;
}

struct MbrEntry {
    unsigned status = 0;
    unsigned type = 0;
    std::uint64_t start_lba = 0;
    std::uint64_t sectors = 0;
};

MbrEntry mbr_entry(std::span<const std::byte> sector, unsigned index) {
    const std::size_t at = k_mbr_entries_at + index * k_mbr_entry_size;
    return MbrEntry{std::to_integer<unsigned>(sector[at]), std::to_integer<unsigned>(sector[at + 4]),
                    le32(sector, at + 8), le32(sector, at + 12)};
}

// A filesystem written to the whole disk (no table) also ends its first sector with 55 AA: such a sector
// is an MBR only if every entry is well formed and at least one is used.
bool looks_like_mbr(std::span<const std::byte> sector, std::uint64_t disk_sectors) {
    if (!has_boot_signature(sector)) {
        return false;
    }
    bool any_used = false;
    for (unsigned i = 0; i < 4; ++i) {
        const MbrEntry e = mbr_entry(sector, i);
        if (e.status != 0x00 && e.status != 0x80) {
            return false;
        }
        if (e.type == 0) {
            continue;
        }
        if (e.start_lba == 0 || e.sectors == 0 || (e.type != 0xEE && e.start_lba >= disk_sectors)) {
            return false;
        }
        any_used = true;
    }
    return any_used;
}

// Adds a partition, clipped to the disk (a truncated image keeps what it has, with a warning).
void add_partition(PartitionTable& table, std::uint64_t disk_size, Partition p) {
    if (p.offset >= disk_size) {
        table.warnings.push_back("partition " + std::to_string(p.number) +
                                 " starts past the end of the disk");
        return;
    }
    if (p.size > disk_size - p.offset) {
        table.warnings.push_back("partition " + std::to_string(p.number) +
                                 " runs past the end of the disk (truncated image?)");
        p.size = disk_size - p.offset;
    }
    table.partitions.push_back(std::move(p));
}

// Logical partitions are numbered from 5 on across every extended partition (as Linux numbers them), so a
// table with two extended entries still gives each partition its own number.
Expected<void> read_logical_partitions(BlockDevice& device, PartitionTable& table, std::uint64_t extended_lba,
                                       unsigned& number) {
    constexpr std::uint64_t ss = 512;
    std::set<std::uint64_t> visited;
    std::uint64_t ebr_lba = extended_lba;
    while (number < 5 + k_max_logical_partitions) {
        if (!visited.insert(ebr_lba).second) {
            table.warnings.push_back("the chain of logical partitions loops; stopped following it");
            return {};
        }
        auto sector = read_bytes(device, ebr_lba * ss, ss);
        if (!sector) {
            if (sector.error().code == Errc::io) {
                return std::unexpected(sector.error());
            }
            table.warnings.push_back("a logical partition record lies past the end of the disk");
            return {};
        }
        if (!has_boot_signature(*sector)) {
            table.warnings.push_back(
                "a logical partition record is damaged; later logical partitions skipped");
            return {};
        }
        const MbrEntry logical = mbr_entry(*sector, 0);
        if (logical.type != 0 && logical.sectors != 0) {
            add_partition(table, device.size(),
                          Partition{number, (ebr_lba + logical.start_lba) * ss, logical.sectors * ss,
                                    hex_byte(logical.type), false});
        }
        ++number;
        const MbrEntry next = mbr_entry(*sector, 1);
        if (!is_extended_type(next.type) || next.start_lba == 0) {
            return {};
        }
        ebr_lba = extended_lba + next.start_lba;
    }
    table.warnings.push_back("more than " + std::to_string(k_max_logical_partitions) +
                             " logical partitions; the rest skipped");
    return {};
}

Expected<PartitionTable> read_mbr(BlockDevice& device, std::span<const std::byte> sector) {
    PartitionTable table;
    table.kind = TableKind::mbr;
    unsigned next_logical = 5;
    for (unsigned i = 0; i < 4; ++i) {
        const MbrEntry e = mbr_entry(sector, i);
        if (e.type == 0) {
            continue;
        }
        const bool extended = is_extended_type(e.type);
        add_partition(table, device.size(),
                      Partition{i + 1, e.start_lba * 512, e.sectors * 512, hex_byte(e.type), extended});
        if (extended) {
            if (auto logical = read_logical_partitions(device, table, e.start_lba, next_logical); !logical) {
                return std::unexpected(logical.error());
            }
        }
    }
    std::ranges::sort(table.partitions, {}, &Partition::number);
    return table;
}

struct GptHeader {
    std::uint64_t entries_lba = 0;
    std::uint32_t entry_count = 0;
    std::uint32_t entry_size = 0;
    std::uint32_t entries_crc = 0;
};

// The header at lba, checked (signature, size, checksum, entry geometry); std::nullopt when unusable.
Expected<std::optional<GptHeader>> read_gpt_header(BlockDevice& device, unsigned ss, std::uint64_t lba) {
    auto sector = read_bytes(device, lba * ss, ss);
    if (!sector) {
        if (sector.error().code == Errc::io) {
            return std::unexpected(sector.error());
        }
        return std::nullopt;
    }
    const std::span<std::byte> b(*sector);
    static constexpr char k_signature[] = "EFI PART";
    if (!std::equal(b.begin(), b.begin() + 8, reinterpret_cast<const std::byte*>(k_signature))) {
        return std::nullopt;
    }
    const std::uint32_t header_size = le32(b, 12);
    if (header_size < 92 || header_size > ss) {
        return std::nullopt;
    }
    const std::uint32_t stored_crc = le32(b, 16);
    std::vector<std::byte> header(b.begin(), b.begin() + header_size);
    std::fill(header.begin() + 16, header.begin() + 20, std::byte{0});
    if (crc32(header) != stored_crc) {
        return std::nullopt;
    }
    GptHeader h{le64(b, 72), le32(b, 80), le32(b, 84), le32(b, 88)};
    if (h.entry_size < 128 || h.entry_size > k_max_gpt_entry_size || h.entry_size % 8 != 0 ||
        h.entry_count > k_max_gpt_entries) {
        return std::nullopt;
    }
    return h;
}

// The partitions of a GPT whose header and entry array both check out; std::nullopt when they do not.
Expected<std::optional<std::vector<Partition>>> read_gpt_at(BlockDevice& device, unsigned ss,
                                                            std::uint64_t lba) {
    auto header = read_gpt_header(device, ss, lba);
    if (!header || !*header) {
        return header ? Expected<std::optional<std::vector<Partition>>>(std::nullopt)
                      : std::unexpected(header.error());
    }
    const GptHeader& h = **header;
    const std::size_t bytes = static_cast<std::size_t>(h.entry_count) * h.entry_size;
    if (h.entries_lba > device.size() / ss) {
        return std::nullopt;
    }
    auto entries = read_bytes(device, h.entries_lba * ss, bytes);
    if (!entries) {
        if (entries.error().code == Errc::io) {
            return std::unexpected(entries.error());
        }
        return std::nullopt;
    }
    if (crc32(*entries) != h.entries_crc) {
        return std::nullopt;
    }
    std::vector<Partition> partitions;
    for (std::uint32_t i = 0; i < h.entry_count; ++i) {
        const std::span<const std::byte> e = std::span<const std::byte>(*entries).subspan(
            static_cast<std::size_t>(i) * h.entry_size, h.entry_size);
        const bool unused = std::ranges::all_of(e.first(16), [](std::byte x) { return x == std::byte{0}; });
        if (unused) {
            continue;
        }
        const std::uint64_t first = le64(e, 32);
        const std::uint64_t last = le64(e, 40);
        if (last < first || last >= (~std::uint64_t{0}) / ss) {
            continue;
        }
        partitions.push_back(
            Partition{i + 1, first * ss, (last - first + 1) * ss, guid_text(e.first(16)), false});
    }
    return partitions;
}

// Primary GPT at LBA 1, else the backup at the last LBA.
Expected<std::optional<PartitionTable>> read_gpt(BlockDevice& device, unsigned ss) {
    PartitionTable table;
    table.kind = TableKind::gpt;
    table.sector_size = ss;
    auto primary = read_gpt_at(device, ss, 1);
    if (!primary) {
        return std::unexpected(primary.error());
    }
    std::optional<std::vector<Partition>> found = std::move(*primary);
    if (!found && device.size() / ss >= 2) {
        auto backup = read_gpt_at(device, ss, device.size() / ss - 1);
        if (!backup) {
            return std::unexpected(backup.error());
        }
        if (*backup) {
            table.warnings.emplace_back(
                "the primary GPT is damaged; the backup GPT at the end of the disk was used");
            found = std::move(*backup);
        }
    }
    if (!found) {
        return std::nullopt;
    }
    for (auto& p : *found) {
        add_partition(table, device.size(), std::move(p));
    }
    return table;
}

} // namespace

const char* to_string(TableKind kind) noexcept {
    switch (kind) {
    case TableKind::mbr:
        return "mbr";
    case TableKind::gpt:
        return "gpt";
    case TableKind::none:
        break;
    }
    return "none";
}

Expected<PartitionTable> read_partition_table(BlockDevice& device) {
    if (device.size() < 512) {
        return PartitionTable{};
    }
    auto sector = read_bytes(device, 0, 512);
    if (!sector) {
        return std::unexpected(sector.error());
    }
    const std::uint64_t disk_sectors = device.size() / 512;
    const bool mbr = looks_like_mbr(*sector, disk_sectors);
    const bool protective = mbr && [&] {
        for (unsigned i = 0; i < 4; ++i) {
            if (mbr_entry(*sector, i).type == 0xEE) {
                return true;
            }
        }
        return false;
    }();
    // A GPT disk is recognised by its header even behind a damaged protective MBR; 4 KiB-sector disks
    // keep it at byte 4096.
    for (const unsigned ss : {512U, 4096U}) {
        auto gpt = read_gpt(device, ss);
        if (!gpt) {
            return std::unexpected(gpt.error());
        }
        if (*gpt) {
            return std::move(**gpt);
        }
    }
    if (protective) {
        return make_error(Errc::corrupt, "the disk has a GPT protective MBR but neither GPT copy is intact");
    }
    if (mbr) {
        return read_mbr(device, *sector);
    }
    return PartitionTable{};
}

} // namespace coldscan::disk
