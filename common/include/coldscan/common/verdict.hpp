// The vocabulary every layer shares: what an engine found, and the one outcome each file gets.
#pragma once

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

// Every file gets exactly one. CLEAN only when both engines scanned all of it.
enum class OutcomeKind { clean, infected, limit_exceeded, error, skipped };

struct Outcome {
    OutcomeKind kind = OutcomeKind::error;
    std::string reason; // why for limit_exceeded / error / skipped; empty otherwise
    std::vector<Detection> detections;
    // An error or a time limit cut an engine short: the same bytes may scan differently next time. Size,
    // count and depth limits are not transient: they stop the same bytes at the same place every time.
    bool transient = false;
};

[[nodiscard]] std::string_view to_string(Engine engine);
[[nodiscard]] std::string_view to_string(OutcomeKind kind); // "CLEAN", "INFECTED", "LIMIT_EXCEEDED", ...
// How a detection prints: ClamAV names as they are, YARA hits as "YARA.<rule>".
[[nodiscard]] std::string display_name(const Detection& detection);

} // namespace coldscan
