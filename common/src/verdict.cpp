#include "coldscan/common/verdict.hpp"

namespace coldscan {

std::string_view to_string(Engine engine) {
    return engine == Engine::clamav ? "clamav" : "yara";
}

std::string_view to_string(OutcomeKind kind) {
    switch (kind) {
    case OutcomeKind::clean:
        return "CLEAN";
    case OutcomeKind::infected:
        return "INFECTED";
    case OutcomeKind::limit_exceeded:
        return "LIMIT_EXCEEDED";
    case OutcomeKind::error:
        return "ERROR";
    case OutcomeKind::skipped:
        return "SKIPPED";
    }
    return "ERROR";
}

std::string display_name(const Detection& detection) {
    if (detection.engine == Engine::yara) {
        return "YARA." + detection.signature;
    }
    return detection.signature;
}

} // namespace coldscan
