// Private: libclamav's log messages, routed into our log.
//
// libclamav has one process-wide message callback and no per-call context for loads. A ClamavLogScope on
// the calling thread (a load or a scan runs synchronously on it) names the subject in each message and keeps
// the error messages, so a failed load can say why (cl_strerror alone says only "Malformed database").
// Thread rule: a scope belongs to the thread that created it; scopes nest.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace coldscan::signatures::detail {

// Logs one libclamav message (severity: enum cl_msg) and records errors in the thread's scope.
void log_clamav_message(int severity, const char* message) noexcept;

class ClamavLogScope {
public:
    enum class Kind { load, scan };
    ClamavLogScope(Kind kind, std::string_view subject) noexcept;
    ~ClamavLogScope();
    ClamavLogScope(const ClamavLogScope&) = delete;
    ClamavLogScope& operator=(const ClamavLogScope&) = delete;

    // libclamav's error messages seen on this thread while the scope was innermost.
    [[nodiscard]] const std::vector<std::string>& errors() const noexcept { return m_errors; }
    // The errors joined with "; ", or empty.
    [[nodiscard]] std::string joined_errors() const;
    // The first message saying libclamav could not read part of the subject (fmap_readpage: ...), or
    // empty. libclamav logs such failures, skips what it could not read, and may still answer clean.
    [[nodiscard]] const std::string& read_failure() const noexcept { return m_read_failure; }

private:
    friend void log_clamav_message(int severity, const char* message) noexcept;
    Kind m_kind;
    std::string_view m_subject;
    ClamavLogScope* m_outer;
    std::vector<std::string> m_errors;
    std::string m_read_failure;
};

// Installs the cl_set_clcb_msg callback; call once, before cl_init.
void install_clamav_log() noexcept;

} // namespace coldscan::signatures::detail
