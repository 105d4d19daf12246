// Logging to stderr. Log lines often carry guest-derived text (file names, inspection data, library messages
// about archive members); callers escape what they know is guest data with printable(), and the sink
// escapes whatever control character or invalid UTF-8 is left, so no log line can drive a terminal or forge
// another line, whatever a caller forgot. The sink wraps the real one, so a later set_pattern() keeps it.
#include "coldscan/common/log.hpp"

#include "coldscan/common/text.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace coldscan {
namespace {

bool has_controls(std::string_view text) {
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c >= 0x7F) {
            return true; // a control byte, or a non-ASCII one that may be invalid UTF-8 or a C1 control
        }
    }
    return false;
}

class EscapingSink final : public spdlog::sinks::sink {
public:
    explicit EscapingSink(std::shared_ptr<spdlog::sinks::sink> inner) : m_inner(std::move(inner)) {}

    void log(const spdlog::details::log_msg& msg) override {
        const std::string_view payload(msg.payload.data(), msg.payload.size());
        if (!has_controls(payload)) {
            m_inner->log(msg);
            return;
        }
        const std::string safe = without_controls(payload);
        spdlog::details::log_msg copy = msg;
        copy.payload = spdlog::string_view_t(safe.data(), safe.size());
        m_inner->log(copy);
    }
    void flush() override { m_inner->flush(); }
    void set_pattern(const std::string& pattern) override { m_inner->set_pattern(pattern); }
    void set_formatter(std::unique_ptr<spdlog::formatter> formatter) override {
        m_inner->set_formatter(std::move(formatter));
    }

private:
    std::shared_ptr<spdlog::sinks::sink> m_inner;
};

} // namespace

void setup_logging(LogLevel level) {
    auto sink = std::make_shared<EscapingSink>(std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
    auto logger = std::make_shared<spdlog::logger>("coldscan", std::move(sink));
    logger->set_pattern("coldscan: %^%l%$: %v");
    switch (level) {
    case LogLevel::quiet:
        logger->set_level(spdlog::level::err);
        break;
    case LogLevel::normal:
        logger->set_level(spdlog::level::warn);
        break;
    case LogLevel::verbose:
        logger->set_level(spdlog::level::info);
        break;
    case LogLevel::debug:
        logger->set_level(spdlog::level::debug);
        break;
    }
    spdlog::set_default_logger(std::move(logger));
}

} // namespace coldscan
