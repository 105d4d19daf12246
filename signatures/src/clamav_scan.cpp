// Scanning one file with the shared compiled libclamav engine.
//
// Options are clamscan's defaults (every parser on, general heuristics on) plus all-match, so every
// signature that matches is reported, and "alert on exceeded limits", so a limit hit is never silently clean.
// All per-scan state lives in a ClamavScanState on the caller's stack, handed to libclamav as the scan
// context: the engine itself is never written, so any number of threads may scan at once.
// Content in memory is scanned in place; content in a file is scanned through its descriptor; anything else
// is read on demand through Content::read_at (an fmap over a pread callback).
//
// Why not a pread-callback map for every file: libclamav 1.4 marks every handle map as a descriptor, and when
// it reads a page again after paging it out (a zip parser going back to a member after the whole file was
// scanned) it fstat()s the handle pointer, fails, skips the member and may answer clean. Descriptor maps
// do that check on a real descriptor; callback maps get no paging (aging off), which costs memory only for
// the rare content that has neither bytes in memory nor a descriptor.
#include "clamav_engine_impl.hpp"
#include "clamav_log.hpp"
#include "engine_result_builder.hpp"

#include <algorithm>
#include <cerrno>
#include <span>
#include <sys/stat.h>

namespace coldscan::signatures {
namespace {

constexpr std::string_view k_limit_alert_prefix = "Heuristics.Limits.Exceeded.";
constexpr std::string_view k_scan_time_alert = "Heuristics.Limits.Exceeded.MaxScanTime";

using FmapHandle = CHandle<cl_fmap_t, cl_fmap_close>;

struct ClamavScanState {
    std::vector<std::string> names; // every alert, in order, without repeats
    bool callback_failed = false;
};

struct ContentHandle {
    const Content* content = nullptr;
    std::string read_error; // the first read failure, for the result's reason
};

// The clcb_pread for cl_fmap_open_handle. libclamav runs at most one read per handle at a time.
off_t read_content(void* handle, void* buffer, size_t count, off_t offset) noexcept {
    auto* source = static_cast<ContentHandle*>(handle);
    try {
        if (offset < 0) {
            errno = EINVAL;
            return -1;
        }
        auto n = source->content->read_at(static_cast<std::uint64_t>(offset),
                                          std::span<std::byte>(static_cast<std::byte*>(buffer), count));
        if (!n) {
            if (source->read_error.empty()) {
                source->read_error = n.error().message;
            }
            errno = EIO;
            return -1;
        }
        return static_cast<off_t>(*n);
    } catch (...) {
        errno = EIO;
        return -1;
    }
}

cl_scan_options clamscan_options() {
    cl_scan_options options{};
    options.general = CL_SCAN_GENERAL_ALLMATCHES | CL_SCAN_GENERAL_HEURISTICS;
    options.parse = ~0U;
    options.heuristic = CL_SCAN_HEURISTIC_EXCEEDS_MAX;
    options.mail = 0;
    options.dev = 0;
    return options;
}

// The content is exactly a whole file behind its descriptor (libclamav's descriptor scan reads it all).
bool whole_file_descriptor(const Content& content) {
    if (content.memory() || content.fd() < 0) {
        return false;
    }
    struct stat st {};
    return ::fstat(content.fd(), &st) == 0 && S_ISREG(st.st_mode) &&
           static_cast<std::uint64_t>(st.st_size) == content.size();
}

bool is_limit_alert(std::string_view name) {
    return name.starts_with(k_limit_alert_prefix);
}

bool is_limit_error(cl_error_t rc) {
    return rc == CL_EMAXREC || rc == CL_EMAXSIZE || rc == CL_EMAXFILES || rc == CL_ETIMEOUT;
}

void append_reason(std::string& reason, std::string_view part) {
    if (!reason.empty()) {
        reason += "; ";
    }
    reason += part;
}

EngineResult make_result(cl_error_t rc, const char* virname, ClamavScanState& state,
                         const ContentHandle& source, const detail::ClamavLogScope& scope) {
    if (rc == CL_VIRUS && state.names.empty() && virname != nullptr) {
        state.names.emplace_back(virname); // the callback never fired: take the scan's own answer
    }
    std::vector<Detection> detections;
    std::string limit_reason;
    bool timed_out = rc == CL_ETIMEOUT;
    for (auto& name : state.names) {
        if (is_limit_alert(name)) {
            timed_out = timed_out || name == k_scan_time_alert;
            append_reason(limit_reason, "ClamAV: " + name);
        } else {
            detections.push_back(Detection{Engine::clamav, std::move(name), {}, {}, {}});
        }
    }

    std::string error_reason;
    if (state.callback_failed) {
        error_reason = "ClamAV: could not record a match (out of memory)";
    } else if (!source.read_error.empty()) {
        // libclamav may skip what it could not read and still answer CL_CLEAN.
        error_reason = "ClamAV: cannot read the file: " + source.read_error;
    } else if (!scope.read_failure().empty()) {
        error_reason = "ClamAV: could not read all of the file (" + scope.read_failure() + ")";
    } else if (rc != CL_CLEAN && rc != CL_VIRUS) {
        if (is_limit_error(rc)) {
            append_reason(limit_reason, std::string("ClamAV: ") + cl_strerror(rc));
        } else {
            error_reason = std::string("ClamAV: ") + cl_strerror(rc);
            if (const std::string details = scope.joined_errors(); !details.empty()) {
                error_reason += " (" + details + ")";
            }
        }
    } else if (rc == CL_VIRUS && detections.empty() && limit_reason.empty()) {
        error_reason = "ClamAV: reported a match without a name";
    }

    auto result =
        detail::finish_result(std::move(detections), std::move(error_reason), std::move(limit_reason));
    result.timed_out = timed_out;
    return result;
}

} // namespace

namespace detail {

void on_clamav_virus_found(int /*fd*/, const char* virname, void* context) noexcept {
    auto* state = static_cast<ClamavScanState*>(context);
    if (state == nullptr || virname == nullptr) {
        return;
    }
    try {
        const std::string_view name(virname);
        if (std::ranges::find(state->names, name) == state->names.end()) {
            state->names.emplace_back(name);
        }
    } catch (...) {
        state->callback_failed = true;
    }
}

} // namespace detail

EngineResult ClamavEngine::scan(const Content& content, std::string_view name) const {
    const detail::ClamavLogScope scope(detail::ClamavLogScope::Kind::scan, name);
    ContentHandle source{&content, {}};
    ClamavScanState state;
    cl_scan_options options = clamscan_options();
    const char* virname = nullptr;
    unsigned long scanned = 0;
    const std::string filename(name);

    if (whole_file_descriptor(content)) {
        const cl_error_t rc = cl_scandesc_callback(content.fd(), filename.c_str(), &virname, &scanned,
                                                   m_impl->engine.get(), &options, &state);
        return make_result(rc, virname, state, source, scope);
    }
    FmapHandle map;
    if (const auto memory = content.memory()) {
        map.reset(cl_fmap_open_memory(memory->data(), memory->size()));
    } else {
        map.reset(cl_fmap_open_handle(&source, 0, static_cast<size_t>(content.size()), &read_content, 0));
    }
    if (!map) {
        return EngineResult{EngineResult::Status::error, {}, "ClamAV: cannot map the file for scanning"};
    }
    const cl_error_t rc = cl_scanmap_callback(map.get(), filename.c_str(), &virname, &scanned,
                                              m_impl->engine.get(), &options, &state);
    map.reset(); // close the map before the source it reads from goes away
    return make_result(rc, virname, state, source, scope);
}

} // namespace coldscan::signatures
