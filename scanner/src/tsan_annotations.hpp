// Happens-before edges for ThreadSanitizer where a library that is not built with -fsanitize=thread orders
// our threads: oneTBB hands pipeline items from stage to stage and starts and joins the stages with its own
// atomics and futex waits, which TSan cannot see, so every hand-off would look like a race. These
// annotations state the orderings oneTBB documents, nothing more; outside a TSan build (the
// COLDSCAN_TSAN stage of scripts/test.sh) they compile to nothing.
#pragma once

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
// libtsan's dynamic annotations (tsan_interface_ann.cpp); no header declares them.
extern "C" void AnnotateIgnoreReadsBegin(const char* file, int line);
extern "C" void AnnotateIgnoreReadsEnd(const char* file, int line);
#endif

namespace coldscan::scanner::detail {

// What the calling thread did before happens before whatever a later tsan_acquire(sync) is followed by.
inline void tsan_release([[maybe_unused]] const void* sync) noexcept {
#if defined(__SANITIZE_THREAD__)
    if (sync != nullptr) {
        __tsan_release(const_cast<void*>(sync));
    }
#endif
}

inline void tsan_acquire([[maybe_unused]] const void* sync) noexcept {
#if defined(__SANITIZE_THREAD__)
    if (sync != nullptr) {
        __tsan_acquire(const_cast<void*>(sync));
    }
#endif
}

// While it lives, TSan ignores this thread's reads. For a stage that must read its own captures (written by
// the thread that built the pipeline) to find the address it acquires: the acquire orders everything after.
class TsanIgnoreReads {
public:
    TsanIgnoreReads() noexcept {
#if defined(__SANITIZE_THREAD__)
        AnnotateIgnoreReadsBegin(__FILE__, __LINE__);
#endif
    }
    ~TsanIgnoreReads() {
#if defined(__SANITIZE_THREAD__)
        AnnotateIgnoreReadsEnd(__FILE__, __LINE__);
#endif
    }
    TsanIgnoreReads(const TsanIgnoreReads&) = delete;
    TsanIgnoreReads& operator=(const TsanIgnoreReads&) = delete;
};

} // namespace coldscan::scanner::detail
