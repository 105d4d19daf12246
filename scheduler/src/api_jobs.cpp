// GET /v1/scans: the job list's filters and paging (api_json.hpp).
#include "coldscan/scheduler/api_json.hpp"

#include <algorithm>
#include <tuple>

namespace coldscan::scheduler::api {
namespace {

bool matches(const JobView& job, const JobListQuery& query) {
    return (!query.priority || job.record.request.priority == *query.priority) &&
           (query.host.empty() || job.host == query.host) &&
           (query.datastore.empty() || job.datastore == query.datastore) &&
           (query.image.empty() || job.record.request.target.find(query.image) != std::string::npos);
}

} // namespace

Expected<JobListQuery> job_list_query(const std::multimap<std::string, std::string>& params) {
    JobListQuery query;
    for (const auto& [name, value] : params) {
        if (name == "status") {
            query.status = parse_job_status(value);
            if (!query.status) {
                return make_error(
                    Errc::invalid_argument,
                    "unknown status \"" + value +
                        "\" (queued, running, paused, succeeded, failed, cancelled, dead_letter)");
            }
        } else if (name == "priority") {
            query.priority = parse_priority(value);
            if (!query.priority) {
                return make_error(Errc::invalid_argument,
                                  "unknown priority \"" + value + "\" (gate, on-demand, nightly)");
            }
        } else if (name == "host" || name == "datastore" || name == "image") {
            (name == "host" ? query.host : name == "datastore" ? query.datastore : query.image) = value;
        } else if (name == "offset" || name == "limit") {
            auto number = count_parameter(name, value);
            if (!number) {
                return std::unexpected(number.error());
            }
            if (name == "offset") {
                query.offset = *number;
            } else {
                query.limit = *number;
            }
        } else {
            return make_error(Errc::invalid_argument,
                              "unknown parameter \"" + name +
                                  "\" (status, priority, host, datastore, image, offset, limit)");
        }
    }
    return query;
}

std::string job_list_body(std::vector<JobView> jobs, const JobListQuery& query) {
    std::erase_if(jobs, [&](const JobView& job) { return !matches(job, query); });
    std::ranges::sort(jobs, [](const JobView& a, const JobView& b) {
        return std::tie(b.record.submitted_at, a.record.id) < std::tie(a.record.submitted_at, b.record.id);
    });
    const std::size_t total = jobs.size();
    const std::size_t begin = std::min(query.offset, total);
    const std::size_t end = query.limit ? std::min(total, begin + *query.limit) : total;
    std::vector<JobView> page(std::make_move_iterator(jobs.begin() + static_cast<std::ptrdiff_t>(begin)),
                              std::make_move_iterator(jobs.begin() + static_cast<std::ptrdiff_t>(end)));
    return jobs_page_body(page, total, query.offset, query.limit);
}

} // namespace coldscan::scheduler::api
