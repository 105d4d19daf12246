// What one engine says about one file. The scanner combines both engines into the file's Outcome.
#pragma once

#include "coldscan/common/verdict.hpp"

#include <string>
#include <vector>

namespace coldscan::signatures {

struct EngineResult {
    // clean: the engine read all of the file and matched nothing.
    // detected: at least one real detection (limit alerts are not detections).
    // limit_exceeded: a scan limit, timeout or match cap stopped it before the end (reason says which).
    // error: the engine failed on this file (reason says why).
    enum class Status { clean, detected, limit_exceeded, error };

    Status status = Status::error;
    std::vector<Detection> detections; // may be non-empty with limit_exceeded/error too: detections win
    std::string reason;
    bool timed_out = false; // a time limit stopped it (a limit a less busy machine may not hit)
    ScannedLayers layers{}; // ClamAV: every layer it scanned (YARA: none)
};

} // namespace coldscan::signatures
