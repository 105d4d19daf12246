#include "clamav_log.hpp"

#include "coldscan/common/log.hpp"
#include "coldscan/common/text.hpp"

#include <clamav.h>

namespace coldscan::signatures::detail {
namespace {

thread_local ClamavLogScope* t_scope = nullptr;

std::string_view trimmed(const char* message) {
    std::string_view text = message != nullptr ? message : "";
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) {
        text.remove_suffix(1);
    }
    return text;
}

void on_clamav_message(enum cl_msg severity, const char* /*fullmsg*/, const char* msg,
                       void* /*context*/) noexcept {
    log_clamav_message(static_cast<int>(severity), msg);
}

} // namespace

void log_clamav_message(int severity, const char* message) noexcept {
    try {
        ClamavLogScope* scope = t_scope;
        const std::string_view text = trimmed(message);
        if (scope != nullptr && scope->m_read_failure.empty() && severity >= CL_MSG_WARN &&
            text.starts_with("fmap_readpage:")) {
            scope->m_read_failure = text;
        }
        auto level = spdlog::level::debug;
        if (severity == CL_MSG_WARN) {
            level = spdlog::level::warn;
        } else if (severity == CL_MSG_ERROR) {
            if (scope != nullptr) {
                scope->m_errors.emplace_back(text);
            }
            // A scan's errors concern one untrusted file and end up in its outcome. A load's are collected:
            // a failed load reports them in its one error line, a load that succeeds anyway warns of them.
            if (scope == nullptr) {
                level = spdlog::level::err;
            } else {
                level =
                    scope->m_kind == ClamavLogScope::Kind::scan ? spdlog::level::warn : spdlog::level::debug;
            }
        }
        auto* logger = spdlog::default_logger_raw();
        if (logger == nullptr || !logger->should_log(level)) {
            return;
        }
        if (scope != nullptr && !scope->m_subject.empty()) {
            logger->log(level, "libclamav: {}: {}", printable(scope->m_subject), printable(text));
        } else {
            logger->log(level, "libclamav: {}", printable(text));
        }
    } catch (...) {
        // Logging must never unwind into libclamav.
    }
}

ClamavLogScope::ClamavLogScope(Kind kind, std::string_view subject) noexcept
    : m_kind(kind), m_subject(subject), m_outer(t_scope) {
    t_scope = this;
}

ClamavLogScope::~ClamavLogScope() {
    t_scope = m_outer;
}

std::string ClamavLogScope::joined_errors() const {
    std::string out;
    for (const auto& error : m_errors) {
        if (!out.empty()) {
            out += "; ";
        }
        out += error;
    }
    return out;
}

void install_clamav_log() noexcept {
    cl_set_clcb_msg(&on_clamav_message);
}

} // namespace coldscan::signatures::detail
