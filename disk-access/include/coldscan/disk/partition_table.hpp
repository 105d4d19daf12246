// MBR and GPT partition tables, parsed from a BlockDevice (untrusted bytes: every field is bounds-checked,
// chains of extended partitions are bounded and loop-checked, GPT checksums verified). The direct path calls
// this inside a confined worker when sandboxed (read_partition_table_in_worker).
#pragma once

#include "coldscan/common/error.hpp"
#include "coldscan/disk/block_device.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace coldscan::disk {

struct Partition {
    unsigned number = 0;      // as Linux numbers it: MBR primaries 1-4, logicals from 5; GPT entry index + 1
    std::uint64_t offset = 0; // bytes from the start of the disk
    std::uint64_t size = 0;   // bytes
    std::string type;         // "0x83" (MBR type byte) or the GPT type GUID, lower case
    bool extended = false;    // an MBR extended partition: a container, not a filesystem
};

enum class TableKind { none, mbr, gpt };

struct PartitionTable {
    TableKind kind = TableKind::none;
    unsigned sector_size = 512;
    std::vector<Partition> partitions; // by number; for none: empty (the whole disk may hold a filesystem)
    std::vector<std::string> warnings; // a damaged primary GPT read from its backup, skipped entries, ...
};

// Errors: io (the device could not be read), corrupt (a table that claims to be there but cannot be used,
// e.g. a protective MBR with neither GPT copy intact). A disk without any table is kind none, not an error.
[[nodiscard]] Expected<PartitionTable> read_partition_table(BlockDevice& device);

// "mbr", "gpt" or "none".
[[nodiscard]] const char* to_string(TableKind kind) noexcept;

} // namespace coldscan::disk
