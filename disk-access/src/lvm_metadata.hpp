// LVM2's text metadata: the volume group as lvm writes it into each PV's metadata area ("realvg { seqno = 3
// ... physical_volumes { pv0 { ... } } logical_volumes { root { segment1 { ... } } } }"). Parsed from guest
// bytes, so every count, depth and number is bounded; pure functions, driven by
// tests/fuzz/fuzz_lvm_metadata.cpp.
#pragma once

#include "coldscan/common/error.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace coldscan::disk::detail {

struct LvmPvEntry {
    std::string name;           // "pv0": how segments name it
    std::string id;             // the PV UUID without dashes (as the label holds it)
    std::uint64_t pe_start = 0; // sectors from the PV's start to its first extent
    std::uint64_t pe_count = 0;
};

struct LvmStripe {
    std::string pv;                 // a name from physical_volumes
    std::uint64_t start_extent = 0; // on that PV
};

struct LvmSegment {
    std::uint64_t start_extent = 0; // in the LV
    std::uint64_t extent_count = 0;
    std::string type;               // "striped" (linear is one stripe), "thin", "mirror", "raid1", ...
    std::uint64_t stripe_size = 0;  // sectors; with more than one stripe
    std::vector<LvmStripe> stripes; // striped segments only
    std::string cow_store;          // "snapshot" segments: the LV that holds the snapshot's data
};

struct LvmLvEntry {
    std::string name;
    bool visible = false; // hidden LVs are parts of others (thin pool data, mirror legs, ...)
    std::vector<LvmSegment> segments;
};

struct LvmVolumeGroup {
    std::string name;
    std::string id;
    std::uint64_t seqno = 0;
    std::uint64_t extent_size = 0; // sectors
    std::vector<LvmPvEntry> pvs;
    std::vector<LvmLvEntry> lvs;
};

// The volume group the metadata text describes. Errors: corrupt (not LVM2 text metadata, a syntax error,
// a missing or out-of-range field, too deep or too big).
[[nodiscard]] Expected<LvmVolumeGroup> parse_lvm_metadata(std::string_view text);

// LVM's checksum of metadata areas and labels: CRC-32 (reflected, 0xEDB88320) from 0xF597A6CF, no final xor.
[[nodiscard]] std::uint32_t lvm_crc(std::uint32_t initial, std::string_view bytes) noexcept;
inline constexpr std::uint32_t k_lvm_initial_crc = 0xF597A6CFU;

} // namespace coldscan::disk::detail
