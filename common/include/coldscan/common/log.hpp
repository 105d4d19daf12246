// Logging: spdlog to stderr. Call setup_logging() once from main; modules use spdlog's free functions.
#pragma once

#include <spdlog/spdlog.h>

namespace coldscan {

enum class LogLevel { quiet, normal, verbose, debug };

void setup_logging(LogLevel level);

} // namespace coldscan
