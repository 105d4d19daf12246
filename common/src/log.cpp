#include "coldscan/common/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace coldscan {

void setup_logging(LogLevel level) {
    auto logger = spdlog::stderr_color_mt("coldscan");
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
