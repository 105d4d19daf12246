// The HTTP API's wire format (the endpoints are listed in api_server.hpp): request bodies in, JSON and
// Prometheus text out, and the way back from JSON to the same structs for the client commands. Pure
// functions, so the server's handlers and the client commands stay thin over them and the unit tests need
// no server and no ScanService.
//
// Every string that came from a user or a guest (targets, errors, names) goes out through nlohmann::json,
// never by concatenation; invalid UTF-8 becomes U+FFFD.
// Thread rule: free functions.
#pragma once

#include "coldscan/common/error.hpp"
#include "coldscan/scheduler/job_queue.hpp"
#include "coldscan/scheduler/plan.hpp"
#include "coldscan/scheduler/scan_service.hpp"

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace coldscan::scheduler::api {

// The most targets one POST /v1/scans may name.
inline constexpr std::size_t k_max_targets = 1000;
// The most disks one VM ("vm" in a POST /v1/scans) may have.
inline constexpr std::size_t k_max_vm_disks = 64;

inline constexpr std::array<JobStatus, 7> k_job_statuses = {
    JobStatus::queued, JobStatus::running,   JobStatus::paused,      JobStatus::succeeded,
    JobStatus::failed, JobStatus::cancelled, JobStatus::dead_letter,
};

// Jobs per status (a missing status counts 0).
using JobCounts = std::map<JobStatus, std::size_t>;

// "gate", "on-demand", "nightly": the API's spelling (parse_priority reads both on-demand and on_demand).
[[nodiscard]] std::string_view priority_name(Priority priority);
// Unix seconds <-> "2026-11-23T10:00:00Z". parse_iso8601: nullopt unless exactly that shape.
[[nodiscard]] std::string format_iso8601(std::int64_t unix_seconds);
[[nodiscard]] std::string format_iso8601(TimePoint time); // whole seconds, rounded down
[[nodiscard]] std::optional<std::int64_t> parse_iso8601(std::string_view text);

// What a client asks in one POST /v1/scans: the targets and what they share, or one VM of several disks.
struct ScanSubmission {
    std::vector<std::string> targets;
    std::string vm_name;           // with vm_disks: the job's target is "vm:NAME"
    std::vector<JobDisk> vm_disks; // non-empty: one job of these disks instead of targets
    Priority priority = Priority::on_demand;
    std::string snapshot;
    std::string format; // of every target; empty: detected (libvirt:DOMAIN disks: the XML's)
    std::string host;
    std::string requested_by;
    std::optional<std::chrono::seconds> max_age;
};

// A POST /v1/scans body -> one ScanRequest per target, or one for its "vm" ({"name", "disks": [{"path",
// "format"}]}: target "vm:NAME"). Errc::invalid_argument, naming the key: not a JSON object, an unknown key,
// a wrong type, no targets and no vm, both, more than k_max_targets or k_max_vm_disks, an empty target or
// one with a NUL byte, an unknown priority, a format coldscan does not open, a negative max_age_seconds.
[[nodiscard]] Expected<std::vector<ScanRequest>> parse_scan_body(std::string_view body);
// The body parse_scan_body reads (what `coldscan submit` and `coldscan gate` send).
[[nodiscard]] std::string scan_body(const ScanSubmission& submission);

// {"error": message}
[[nodiscard]] std::string error_body(std::string_view message);
// The "error" of an error body; nullopt when the body is not one.
[[nodiscard]] std::optional<std::string> error_message(std::string_view body);
// The HTTP status for a service error: invalid_argument 400, not_found 404, forbidden 403, unsafe_image 422,
// cancelled 503 (shutting down), anything else 500.
[[nodiscard]] int http_status(Errc code);

// One job (JOB in api_server.hpp) and {"jobs": [JOB...]}.
[[nodiscard]] std::string job_body(const JobView& job);
[[nodiscard]] std::string jobs_body(const std::vector<JobView>& jobs);
[[nodiscard]] std::string submitted_body(const std::vector<SubmittedJob>& jobs);
// {"total", "offset", "limit", "jobs": [JOB...]}: one page of a job list of total jobs.
[[nodiscard]] std::string jobs_page_body(const std::vector<JobView>& jobs, std::size_t total,
                                         std::size_t offset, std::optional<std::size_t> limit);
// Back from JSON (the client's side). Unknown keys are ignored; id and status are required. Errors:
// invalid_argument (not JSON, not that shape).
[[nodiscard]] Expected<JobView> parse_job_body(std::string_view body);
[[nodiscard]] Expected<std::vector<JobView>> parse_jobs_body(std::string_view body);

// GET /v1/nodes: {"nodes": [{name, version, signature_set, started, heartbeat, running_jobs, datastores,
// alive}]}.
[[nodiscard]] std::string nodes_body(const std::vector<NodeView>& nodes);
// GET /v1/findings and /v1/stats take the same filters as query parameters: signature, image, host, path
// (substring), kind, since, until (ISO 8601 UTC, "2026-11-23T10:00:00Z"), and for findings offset and limit
// (default 100, at most 1000). Errors: invalid_argument (a bad time or number, an unknown parameter).
[[nodiscard]] Expected<FindingQuery> finding_query(const std::multimap<std::string, std::string>& params);
// A query parameter that must be a whole number. Errc::invalid_argument naming it.
[[nodiscard]] Expected<std::size_t> count_parameter(std::string_view name, const std::string& text);

// GET /v1/scans filters (query parameters): status, priority, host, datastore, image (a substring of the
// target), offset, limit (default: every job). Errors: invalid_argument (an unknown status or priority, a
// bad number, an unknown parameter).
struct JobListQuery {
    std::optional<JobStatus> status;
    std::optional<Priority> priority;
    std::string host;
    std::string datastore;
    std::string image;
    std::size_t offset = 0;
    std::optional<std::size_t> limit;
};
[[nodiscard]] Expected<JobListQuery> job_list_query(const std::multimap<std::string, std::string>& params);
// {"total", "offset", "limit", "jobs": [JOB...]}: the jobs that match, newest submission first (then id),
// the page asked for; total counts every match.
[[nodiscard]] std::string job_list_body(std::vector<JobView> jobs, const JobListQuery& query);
// The same filters as the query string the client sends ("?signature=...&limit=..."; "" when none).
[[nodiscard]] std::string finding_query_string(const FindingQuery& query);
// {"total", "offset", "limit", "findings": [{kind, image, host, datastore, device, path, sha256, signature,
// engine, signature_set, job, node, at (ISO 8601)}]}.
[[nodiscard]] std::string findings_body(const FindingPage& page, const FindingQuery& query);
[[nodiscard]] Expected<FindingPage> parse_findings_body(std::string_view body);
// {"total", "per_day": [{"day", "count"}], "per_signature": [{"signature", "count"}], "per_host": [{"host",
// "count"}]}.
[[nodiscard]] std::string stats_body(const FindingStats& stats);
[[nodiscard]] Expected<FindingStats> parse_stats_body(std::string_view body);
[[nodiscard]] std::string hosts_body(const std::vector<HostView>& hosts,
                                     const std::vector<DatastoreView>& datastores);
[[nodiscard]] std::string plan_body(const Plan& plan);
[[nodiscard]] std::string reload_body(std::string_view signature_set);
[[nodiscard]] std::string health_body(const ServiceHealth& health, const JobCounts& counts);

// The Prometheus text exposition (format 0.0.4) of everything /metrics shows.
// The job gauges count what the queue holds: the fleet's jobs in fleet mode; the counters are this node's.
// nodes: every node of the fleet (coldscan_node_running_jobs per node, coldscan_nodes by alive/silent, and
// coldscan_fleet_running_jobs, the fleet's total).
[[nodiscard]] std::string metrics_text(const ServiceCounters& counters, const std::vector<HostView>& hosts,
                                       const std::vector<DatastoreView>& datastores, const JobCounts& counts,
                                       const std::vector<NodeView>& nodes = {});
// A label value escaped for the exposition format: backslash, double quote and newline.
[[nodiscard]] std::string escape_label_value(std::string_view value);

// What finished jobs add up to, by clamscan's convention (as `coldscan scan` exits): 1 if any verdict has a
// detection; else 2 if any job did not succeed, has no verdict or was not fully scanned; else 0 (also 2 for
// no jobs at all: nothing was shown clean).
[[nodiscard]] int exit_status_of(const std::vector<JobView>& jobs);

} // namespace coldscan::scheduler::api
