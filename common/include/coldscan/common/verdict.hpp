// The vocabulary every layer shares: what an engine found, and the one outcome each file gets.
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
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

// One layer as a hash signature matches it: its size and digests.
struct LayerDigest {
    std::uint64_t size = 0;
    std::array<std::byte, 16> md5{};
    std::array<std::byte, 20> sha1{};
    std::array<std::byte, 32> sha256{};
    auto operator<=>(const LayerDigest&) const = default;
};

// What libclamav scanned inside a file (the file itself, archive members, unpacked executables), kept with
// its verdict so that a signature update can be checked against it without reading the file again
// (docs/signature-updates.md): a hash signature matches a layer's size and digest, a section hash needs a PE.
struct ScannedLayers {
    static constexpr std::size_t k_max_sizes = 4096; // more distinct sizes: not kept (complete = false)
    std::vector<std::uint64_t> sizes;                // sorted, unique
    std::vector<std::string> types; // libclamav's type names (CL_TYPE_MSEXE, ...), sorted, unique
    bool complete = false;          // false: not recorded (no ClamAV, a verdict made before them) or too many
    std::vector<LayerDigest> digests; // sorted, unique: every layer's, when digests_complete
    bool digests_complete = false;    // false: not recorded, or a layer's bytes were not there to digest
    bool operator==(const ScannedLayers&) const = default;
};

// "SIZE:MD5:SHA1:SHA256" (hex), and back (nullopt for text that is not one).
[[nodiscard]] std::string to_text(const LayerDigest& layer);
[[nodiscard]] std::optional<LayerDigest> layer_digest_from_text(std::string_view text);
// The digests of a layer's bytes (MD5, SHA-1 and SHA-256 as libclamav computes them for hash signatures).
[[nodiscard]] LayerDigest digest_layer(std::span<const std::byte> bytes);

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
