// A read-bandwidth budget that disk readers ask before they read: the scan service gives each job one that
// charges its host's and datastore's budgets, so the bytes a scan pulls from shared storage are what is
// limited, not a guess from outside. Readers without one read at full speed.
// Thread rule: shared; acquire() is called from any reader thread at once.
#pragma once

#include <cstdint>

namespace coldscan {

class ReadThrottle {
public:
    virtual ~ReadThrottle() = default;
    // Blocks until bytes may be read; returns early when the job is being stopped (the read then fails or
    // is discarded by the stopping pipeline, never reported as scanned).
    virtual void acquire(std::uint64_t bytes) = 0;
};

} // namespace coldscan
