#include "engine_result_builder.hpp"

namespace coldscan::signatures::detail {

EngineResult finish_result(std::vector<Detection> detections, std::string error_reason,
                           std::string limit_reason) {
    EngineResult result;
    result.detections = std::move(detections);
    if (!error_reason.empty()) {
        result.status = EngineResult::Status::error;
        result.reason = limit_reason.empty() ? std::move(error_reason) : error_reason + "; " + limit_reason;
    } else if (!limit_reason.empty()) {
        result.status = EngineResult::Status::limit_exceeded;
        result.reason = std::move(limit_reason);
    } else {
        result.status = EngineResult::Status::clean;
    }
    if (!result.detections.empty()) {
        result.status = EngineResult::Status::detected; // real detections win; the reason still says the rest
    }
    return result;
}

} // namespace coldscan::signatures::detail
