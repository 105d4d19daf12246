// Scan limits, set explicitly on both engines. A limit hit is reported, never passed as clean.
#pragma once

#include <chrono>
#include <cstdint>

namespace coldscan::signatures {

struct ScanLimits {
    std::uint64_t max_file_size = 256ULL << 20;       // ClamAV: larger files are not scanned (reported)
    std::uint64_t max_scan_size = 1024ULL << 20;      // ClamAV: bytes scanned per file incl. archive members
    std::uint32_t max_recursion = 17;                 // ClamAV: archive/container nesting
    std::uint32_t max_files = 10'000;                 // ClamAV: members per archive
    std::chrono::milliseconds max_scan_time{120'000}; // ClamAV: per file
    std::chrono::seconds yara_timeout{60};            // YARA: per file
};

} // namespace coldscan::signatures
