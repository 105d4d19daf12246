// The HTTP API's request and answer bodies: POST /v1/scans (the server reads it), the job and job-list
// answers and error bodies (the client commands read them), ISO 8601 times and the names of priorities and
// job states. The first byte picks the parser, the rest is the body. Oracles are round trips: what a parser
// accepts, written back by its writer and read again, gives the same values; accepted scan bodies name
// 1..k_max_targets non-empty targets without NUL bytes.
#include "coldscan/scheduler/api_json.hpp"
#include "fuzz_support.hpp"

#include <cmath>

namespace api = coldscan::scheduler::api;
namespace scheduler = coldscan::scheduler;

namespace {

void check_scan_body(std::string_view body) {
    const auto requests = api::parse_scan_body(body);
    if (!requests) {
        FUZZ_CHECK(requests.error().code == coldscan::Errc::invalid_argument);
        return;
    }
    FUZZ_CHECK(!requests->empty() && requests->size() <= api::k_max_targets);
    api::ScanSubmission submission;
    const scheduler::ScanRequest& first = requests->front();
    submission.priority = first.priority;
    submission.snapshot = first.snapshot;
    submission.host = first.host;
    submission.requested_by = first.requested_by;
    submission.max_age = first.max_age;
    for (const auto& request : *requests) {
        FUZZ_CHECK(!request.target.empty() && request.target.find('\0') == std::string::npos);
        FUZZ_CHECK(request.priority == first.priority && request.snapshot == first.snapshot &&
                   request.host == first.host && request.requested_by == first.requested_by &&
                   request.max_age == first.max_age);
        FUZZ_CHECK(!request.max_age || request.max_age->count() >= 0);
        submission.targets.push_back(request.target);
    }
    const auto again = api::parse_scan_body(api::scan_body(submission));
    FUZZ_CHECK(again.has_value() && again->size() == requests->size());
    for (std::size_t i = 0; i < again->size(); ++i) {
        const auto& a = (*again)[i];
        const auto& b = (*requests)[i];
        FUZZ_CHECK(a.target == b.target && a.priority == b.priority && a.snapshot == b.snapshot &&
                   a.host == b.host && a.requested_by == b.requested_by && a.max_age == b.max_age);
    }
}

void check_same_job(const scheduler::JobView& a, const scheduler::JobView& b) {
    FUZZ_CHECK(a.record.id == b.record.id && a.record.status == b.record.status);
    FUZZ_CHECK(a.record.request.target == b.record.request.target);
    FUZZ_CHECK(a.record.request.snapshot == b.record.request.snapshot);
    FUZZ_CHECK(a.record.request.priority == b.record.request.priority);
    FUZZ_CHECK(a.record.request.requested_by == b.record.request.requested_by);
    FUZZ_CHECK(a.record.request.host == b.record.request.host && a.host == b.host);
    FUZZ_CHECK(a.record.signature_set == b.record.signature_set && a.record.attempts == b.record.attempts);
    FUZZ_CHECK(a.record.last_error == b.record.last_error && a.datastore == b.datastore);
    FUZZ_CHECK(a.record.submitted_at == b.record.submitted_at && a.record.updated_at == b.record.updated_at);
    FUZZ_CHECK(a.progress.has_value() == b.progress.has_value());
    if (a.progress) {
        FUZZ_CHECK(a.progress->phase == b.progress->phase &&
                   a.progress->files_done == b.progress->files_done &&
                   a.progress->bytes_done == b.progress->bytes_done);
        FUZZ_CHECK(!std::isfinite(a.progress->seconds) || a.progress->seconds == b.progress->seconds);
    }
    FUZZ_CHECK(a.verdict.has_value() == b.verdict.has_value());
    if (a.verdict) {
        FUZZ_CHECK(a.verdict->status == b.verdict->status &&
                   a.verdict->exit_status == b.verdict->exit_status && a.verdict->files == b.verdict->files &&
                   a.verdict->detections == b.verdict->detections &&
                   a.verdict->not_fully_scanned == b.verdict->not_fully_scanned &&
                   a.verdict->signature_set == b.verdict->signature_set);
    }
}

void check_job_body(std::string_view body) {
    const auto job = api::parse_job_body(body);
    if (!job) {
        FUZZ_CHECK(job.error().code == coldscan::Errc::invalid_argument);
        return;
    }
    FUZZ_CHECK(!job->record.id.empty());
    const auto again = api::parse_job_body(api::job_body(*job));
    FUZZ_CHECK(again.has_value());
    check_same_job(*job, *again);
}

void check_jobs_body(std::string_view body) {
    const auto jobs = api::parse_jobs_body(body);
    if (!jobs) {
        return;
    }
    const auto again = api::parse_jobs_body(api::jobs_body(*jobs));
    FUZZ_CHECK(again.has_value() && again->size() == jobs->size());
    for (std::size_t i = 0; i < jobs->size(); ++i) {
        check_same_job((*jobs)[i], (*again)[i]);
    }
    (void)api::exit_status_of(*jobs);
}

void check_names(std::string_view text) {
    if (const auto message = api::error_message(text)) {
        FUZZ_CHECK(api::error_message(api::error_body(*message)) == message);
    }
    if (const auto seconds = api::parse_iso8601(text)) {
        FUZZ_CHECK(api::format_iso8601(*seconds) == text);
    }
    if (const auto priority = scheduler::parse_priority(text)) {
        FUZZ_CHECK(scheduler::parse_priority(api::priority_name(*priority)) == priority);
    }
    if (const auto status = scheduler::parse_job_status(text)) {
        FUZZ_CHECK(scheduler::to_string(*status) == text);
    }
    const std::string escaped = api::escape_label_value(text);
    FUZZ_CHECK(escaped.find('\n') == std::string::npos);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
    switch (data[0] % 4) {
    case 0:
        check_scan_body(body);
        break;
    case 1:
        check_job_body(body);
        break;
    case 2:
        check_jobs_body(body);
        break;
    default:
        check_names(body);
        break;
    }
    return 0;
}
