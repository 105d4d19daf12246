// Scanning one file with the shared compiled libclamav engine.
//
// Options are clamscan's defaults (every parser on, general heuristics on) plus all-match, so every
// signature that matches is reported, "alert on exceeded limits", so a limit hit is never silently clean,
// and the encrypted-archive and encrypted-document alerts: content libclamav cannot decrypt was not scanned,
// so such a file is a limit hit (LIMIT_EXCEEDED, "not fully scanned"), never clean, and never a detection
// either (a password-protected zip is not malware; a real match in the rest of the file still wins).
// All per-scan state lives in a ClamavScanState on the caller's stack, handed to libclamav as the scan
// context: the engine itself is never written, so any number of threads may scan at once.
// Content in memory is scanned in place; content in a file is scanned through its descriptor; anything else
// is read on demand through Content::read_at (an fmap over a pread callback).
//
// Files over MaxFileSize: libclamav alone does not scan such a file at all (it only raises the
// Heuristics.Limits.Exceeded.MaxFileSize alert), so malware at the start of a huge file went unseen. The
// first MaxFileSize bytes are scanned instead, through a map of exactly that length (libclamav sees a file
// at the limit, not over it): a detection there makes the file INFECTED, and the result always carries the
// MaxFileSize limit reason, so a file over the limit is never clean.
//
// Why not a pread-callback map for every file: libclamav 1.4 marks every handle map as a descriptor, and when
// it reads a page again after paging it out (a zip parser going back to a member after the whole file was
// scanned) it fstat()s the handle pointer, fails, skips the member and may answer clean. Descriptor maps
// do that check on a real descriptor; callback maps get no paging (aging off), which costs memory only for
// the rare content that has neither bytes in memory nor a descriptor.
#include "clamav_engine_impl.hpp"
#include "clamav_log.hpp"
#include "coldscan/common/text.hpp"
#include "engine_result_builder.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <sys/mman.h>
#include <sys/stat.h>

namespace coldscan::signatures {
namespace {

constexpr std::string_view k_limit_alert_prefix = "Heuristics.Limits.Exceeded.";
constexpr std::string_view k_scan_time_alert = "Heuristics.Limits.Exceeded.MaxScanTime";
constexpr std::string_view k_file_size_alert = "Heuristics.Limits.Exceeded.MaxFileSize";
constexpr std::string_view k_encrypted_alert_prefix = "Heuristics.Encrypted.";

using FmapHandle = CHandle<cl_fmap_t, cl_fmap_close>;

// libclamav's zip reader inflates in BUFSIZ chunks and stops before the chunk that would pass MaxFileSize:
// a member it cut is at most this much short of the limit.
constexpr std::uint64_t k_unzip_chunk = BUFSIZ;

struct DeclaredMember {
    std::string name;
    std::uint64_t declared_size = 0;
};

struct ClamavScanState {
    std::vector<std::string> names; // every alert, in order, without repeats
    bool callback_failed = false;
    std::uint64_t max_file_size = 0; // the engine's MaxFileSize (0: none)
    // The archive member announced last, when its header declares more than MaxFileSize: cut, if libclamav
    // extracts it at all (headers found inside .pyc or .so files declare gigabytes and extract nothing).
    std::optional<DeclaredMember> declared_over_limit;
    // The layers libclamav is in (type, name), outermost first, from the inspection callback: where a limit
    // alert was raised.
    std::vector<std::pair<std::string, std::string>> layers;
    std::map<std::string, std::string, std::less<>> limit_details; // alert -> which object hit it
    // Every layer scanned, for re-checks after signature updates (common/verdict.hpp).
    std::set<std::uint64_t> layer_sizes;
    std::set<std::string, std::less<>> layer_types;
    std::set<LayerDigest> layer_digests;
    bool digest_missing = false; // a layer's bytes were not there to digest
};

ScannedLayers scanned_layers(const ClamavScanState& state) {
    ScannedLayers out;
    out.complete = !state.callback_failed && !state.layer_sizes.empty() &&
                   state.layer_sizes.size() <= ScannedLayers::k_max_sizes;
    if (out.complete) {
        out.sizes.assign(state.layer_sizes.begin(), state.layer_sizes.end());
        out.types.assign(state.layer_types.begin(), state.layer_types.end());
        out.digests_complete =
            !state.digest_missing && state.layer_digests.size() <= ScannedLayers::k_max_sizes;
    }
    if (out.digests_complete) {
        out.digests.assign(state.layer_digests.begin(), state.layer_digests.end());
    }
    return out;
}

// Where libclamav is now, for a limit alert's reason: the file itself, or the member at the innermost layer.
std::string current_object(const ClamavScanState& state) {
    if (state.layers.empty()) {
        return {};
    }
    const auto& [type, name] = state.layers.back();
    const std::size_t depth = state.layers.size() - 1;
    if (depth == 0) {
        return "raised in the file itself (" + type + ")";
    }
    return "raised in a " + state.layers[depth - 1].first + " at depth " + std::to_string(depth - 1) +
           ", after its member \"" + printable(name) + "\" (" + type + ")";
}

// Adds an alert name unless it is there already.
void add_name(ClamavScanState& state, std::string_view name) {
    if (std::ranges::find(state.names, name) == state.names.end()) {
        state.names.emplace_back(name);
    }
}

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
    options.heuristic =
        CL_SCAN_HEURISTIC_EXCEEDS_MAX | CL_SCAN_HEURISTIC_ENCRYPTED_ARCHIVE | CL_SCAN_HEURISTIC_ENCRYPTED_DOC;
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

bool is_encrypted_alert(std::string_view name) {
    return name.starts_with(k_encrypted_alert_prefix);
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

// Only the first bytes of the file were scanned (it is over MaxFileSize): the result says so.
enum class Coverage { whole_file, prefix };

EngineResult make_result(cl_error_t rc, const char* virname, ClamavScanState& state,
                         const ContentHandle& source, const detail::ClamavLogScope& scope,
                         Coverage coverage = Coverage::whole_file) {
    if (rc == CL_VIRUS && state.names.empty() && virname != nullptr) {
        state.names.emplace_back(virname); // the callback never fired: take the scan's own answer
    }
    if (coverage == Coverage::prefix) {
        add_name(state, k_file_size_alert);
    }
    std::vector<Detection> detections;
    std::string limit_reason;
    bool timed_out = rc == CL_ETIMEOUT;
    for (auto& name : state.names) {
        if (is_limit_alert(name)) {
            timed_out = timed_out || name == k_scan_time_alert;
            const auto detail = state.limit_details.find(name);
            append_reason(limit_reason,
                          "ClamAV: " + name +
                              (detail != state.limit_details.end() ? " (" + detail->second + ")" : ""));
        } else if (is_encrypted_alert(name)) {
            append_reason(limit_reason, "ClamAV: " + name + " (encrypted content, not scanned)");
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
    result.layers = scanned_layers(state);
    return result;
}

// A read-only mapping of a descriptor's first bytes; unmapped on destruction.
struct MappedPrefix {
    void* data = nullptr;
    std::size_t size = 0;

    MappedPrefix() = default;
    MappedPrefix(const MappedPrefix&) = delete;
    MappedPrefix& operator=(const MappedPrefix&) = delete;
    ~MappedPrefix() {
        if (data != nullptr) {
            ::munmap(data, size);
        }
    }
    // Maps the first length bytes; false when the descriptor holds fewer (a mapping past the end of a
    // file faults) or cannot be mapped.
    bool map(int fd, std::size_t length) {
        struct stat st {};
        if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
            static_cast<std::uint64_t>(st.st_size) < length) {
            return false;
        }
        void* mapped = ::mmap(nullptr, length, PROT_READ, MAP_PRIVATE, fd, 0);
        if (mapped == MAP_FAILED) {
            return false;
        }
        data = mapped;
        size = length;
        return true;
    }
};

} // namespace

namespace detail {

void on_clamav_virus_found(int /*fd*/, const char* virname, void* context) noexcept {
    auto* state = static_cast<ClamavScanState*>(context);
    if (state == nullptr || virname == nullptr) {
        return;
    }
    try {
        add_name(*state, virname);
        const std::string_view name(virname);
        if (is_limit_alert(name) && !state->limit_details.contains(name)) {
            state->limit_details.emplace(name, current_object(*state));
        }
    } catch (...) {
        state->callback_failed = true;
    }
}

cl_error_t on_clamav_archive_member(const char* /*container_type*/, unsigned long /*container_size*/,
                                    const char* member_name, unsigned long member_size, int /*is_encrypted*/,
                                    unsigned int /*member_index*/, void* context) noexcept {
    auto* state = static_cast<ClamavScanState*>(context);
    if (state == nullptr) {
        return CL_CLEAN;
    }
    state->declared_over_limit.reset();
    if (state->max_file_size == 0 || member_size <= state->max_file_size) {
        return CL_CLEAN;
    }
    try {
        state->declared_over_limit = DeclaredMember{member_name != nullptr ? member_name : "", member_size};
    } catch (...) {
        state->callback_failed = true;
    }
    return CL_CLEAN;
}

cl_error_t on_clamav_layer(int /*fd*/, const char* type, const char** /*ancestors*/,
                           size_t /*parent_file_size*/, const char* file_name, size_t file_size,
                           const char* file_buffer, uint32_t recursion_level, uint32_t /*layer_attributes*/,
                           void* context) noexcept {
    auto* state = static_cast<ClamavScanState*>(context);
    if (state == nullptr) {
        return CL_CLEAN;
    }
    try {
        state->layers.resize(std::min<std::size_t>(recursion_level, state->layers.size()));
        state->layers.emplace_back(type != nullptr ? type : "?", file_name != nullptr ? file_name : "");
        if (state->layer_sizes.size() <= ScannedLayers::k_max_sizes) {
            state->layer_sizes.insert(file_size);
            state->layer_types.emplace(type != nullptr ? type : "?");
            // libclamav maps the whole layer for this callback; a hash signature matches exactly these bytes.
            if (file_buffer != nullptr || file_size == 0) {
                state->layer_digests.insert(digest_layer(
                    std::span<const std::byte>(reinterpret_cast<const std::byte*>(file_buffer), file_size)));
            } else {
                state->digest_missing = true;
            }
        }
    } catch (...) {
        state->callback_failed = true;
    }
    if (!state->declared_over_limit) {
        return CL_CLEAN;
    }
    const DeclaredMember member = std::move(*state->declared_over_limit);
    state->declared_over_limit.reset();
    if (file_size + k_unzip_chunk <= state->max_file_size) {
        return CL_CLEAN; // it extracted to less than the limit: nothing was cut
    }
    try {
        // libclamav's zip reader cut this member at MaxFileSize and said nothing: the rest is unscanned.
        add_name(*state, k_file_size_alert);
        state->limit_details.try_emplace(std::string(k_file_size_alert),
                                         "archive member \"" + printable(member.name) + "\" declares " +
                                             std::to_string(member.declared_size) + " bytes; its first " +
                                             std::to_string(file_size) + " were scanned");
    } catch (...) {
        state->callback_failed = true;
    }
    return CL_CLEAN;
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
    const cl_engine* engine = m_impl->engine.get();

    int get_error = CL_SUCCESS;
    const long long max_file_size = cl_engine_get_num(engine, CL_ENGINE_MAX_FILESIZE, &get_error);
    state.max_file_size =
        get_error == CL_SUCCESS && max_file_size > 0 ? static_cast<std::uint64_t>(max_file_size) : 0;
    const bool over_limit = state.max_file_size > 0 && content.size() > state.max_file_size;
    if (over_limit) {
        state.limit_details.emplace(k_file_size_alert,
                                    "the file has " + std::to_string(content.size()) + " bytes; its first " +
                                        std::to_string(state.max_file_size) + " were scanned");
    }
    const Coverage coverage = over_limit ? Coverage::prefix : Coverage::whole_file;
    const std::uint64_t length = over_limit ? state.max_file_size : content.size();

    if (!over_limit && whole_file_descriptor(content)) {
        const cl_error_t rc = cl_scandesc_callback(content.fd(), filename.c_str(), &virname, &scanned, engine,
                                                   &options, &state);
        return make_result(rc, virname, state, source, scope);
    }
    FmapHandle map;
    MappedPrefix prefix;
    if (const auto memory = content.memory()) {
        map.reset(cl_fmap_open_memory(memory->data(), static_cast<size_t>(length)));
    } else if (over_limit && content.fd() >= 0 && prefix.map(content.fd(), static_cast<size_t>(length))) {
        // The descriptor's first bytes, paged in by the kernel (a descriptor scan would read it all).
        map.reset(cl_fmap_open_memory(prefix.data, prefix.size));
    } else {
        map.reset(cl_fmap_open_handle(&source, 0, static_cast<size_t>(length), &read_content, 0));
    }
    if (!map) {
        return EngineResult{EngineResult::Status::error, {}, "ClamAV: cannot map the file for scanning"};
    }
    const cl_error_t rc =
        cl_scanmap_callback(map.get(), filename.c_str(), &virname, &scanned, engine, &options, &state);
    map.reset(); // close the map before the source it reads from goes away
    return make_result(rc, virname, state, source, scope, coverage);
}

} // namespace coldscan::signatures
