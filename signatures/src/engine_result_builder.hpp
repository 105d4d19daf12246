// How both engine adapters turn what they saw into an EngineResult: detections win, then errors, then limits.
#pragma once

#include "coldscan/signatures/engine_result.hpp"

#include <string>
#include <vector>

namespace coldscan::signatures::detail {

// error_reason / limit_reason: empty when there was none; both are kept in the result's reason.
[[nodiscard]] EngineResult finish_result(std::vector<Detection> detections, std::string error_reason,
                                         std::string limit_reason);

} // namespace coldscan::signatures::detail
