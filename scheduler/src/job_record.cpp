#include "coldscan/scheduler/job_record.hpp"

#include <nlohmann/json.hpp>

namespace coldscan::scheduler {

using json = nlohmann::json;

std::string request_json(const JobRequest& request) {
    json disks = json::array();
    for (const auto& disk : request.disks) {
        disks.push_back(json{{"path", disk.path}, {"format", disk.format}});
    }
    const json value{{"target", request.target},
                     {"snapshot", request.snapshot},
                     {"priority", to_string(request.priority)},
                     {"requested_by", request.requested_by},
                     {"host", request.host},
                     {"format", request.format},
                     {"disks", std::move(disks)}};
    return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::optional<JobRequest> request_from_json(std::string_view text) {
    try {
        const json j = json::parse(text);
        JobRequest request;
        request.target = j.at("target").get<std::string>();
        request.snapshot = j.at("snapshot").get<std::string>();
        const auto priority = parse_priority(j.at("priority").get<std::string>());
        if (!priority) {
            return std::nullopt;
        }
        request.priority = *priority;
        request.requested_by = j.at("requested_by").get<std::string>();
        request.host = j.at("host").get<std::string>();
        request.format = j.at("format").get<std::string>();
        for (const auto& disk : j.at("disks")) {
            request.disks.push_back(
                JobDisk{disk.at("path").get<std::string>(), disk.at("format").get<std::string>()});
        }
        return request;
    } catch (const json::exception&) {
        return std::nullopt;
    }
}

} // namespace coldscan::scheduler
