// The vocabulary every layer shares: what an engine found, and the one outcome each file gets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace coldscan {

enum class Engine { clamav, yara };

struct Detection {
    Engine engine = Engine::clamav;
    std::string signature; // ClamAV virus name, or the YARA rule identifier
    std::string yara_namespace;
    std::vector<std::string> tags;
    std::vector<std::pair<std::string, std::string>> meta;
};

// What libclamav scanned inside a file (the file itself, archive members, unpacked executables), kept with
// its verdict so that a signature update can be checked against it without reading the file again
// (docs/signature-updates.md): a hash signature names the size it matches, a section hash needs a PE.
struct ScannedLayers {
    static constexpr std::size_t k_max_sizes = 4096; // more distinct sizes: not kept (complete = false)
    std::vector<std::uint64_t> sizes;                // sorted, unique
    std::vector<std::string> types; // libclamav's type names (CL_TYPE_MSEXE, ...), sorted, unique
    bool complete = false;          // false: not recorded (no ClamAV, a verdict made before them) or too many
    bool operator==(const ScannedLayers&) const = default;
};

// Every file gets exactly one. CLEAN only when both engines scanned all of it.
enum class OutcomeKind { clean, infected, limit_exceeded, error, skipped };

struct Outcome {
    OutcomeKind kind = OutcomeKind::error;
    std::string reason; // why for limit_exceeded / error / skipped; empty otherwise
    std::vector<Detection> detections;
    // An error or a time limit cut an engine short: the same bytes may scan differently next time. Size,
    // count and depth limits are not transient: they stop the same bytes at the same place every time.
    bool transient = false;
    ScannedLayers layers{}; // ClamAV's, when it scanned the file
};

[[nodiscard]] std::string_view to_string(Engine engine);
[[nodiscard]] std::string_view to_string(OutcomeKind kind); // "CLEAN", "INFECTED", "LIMIT_EXCEEDED", ...
// How a detection prints: ClamAV names as they are, YARA hits as "YARA.<rule>".
[[nodiscard]] std::string display_name(const Detection& detection);

} // namespace coldscan
