// A job as the job stores keep it (job_store.hpp): the request, its identity, its state in the lifecycle.
#pragma once

#include "coldscan/scheduler/job.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace coldscan::scheduler {

enum class JobStatus {
    queued,
    running,
    paused,
    succeeded,
    failed, // a failure retrying cannot fix (mark_failed with Retry::never)
    cancelled,
    dead_letter, // failed max_attempts times; a new submission queues it again
};

[[nodiscard]] std::string_view to_string(JobStatus status);
// The names to_string gives; nullopt otherwise.
[[nodiscard]] std::optional<JobStatus> parse_job_status(std::string_view text);
// succeeded, failed, cancelled, dead_letter: nothing more happens to the job unless it is submitted again.
[[nodiscard]] bool is_finished(JobStatus status);

// One disk of a VM job, in the order the VM sees its disks.
struct JobDisk {
    std::string path;   // absolute, inside a datastore root
    std::string format; // empty: the safety gate detects it
    bool operator==(const JobDisk&) const = default;
};

struct JobRequest {
    std::string target;   // what the user named: an image path, an NBD URI, a VM
    std::string snapshot; // empty: the target as it is
    Priority priority = Priority::nightly;
    std::string requested_by; // optional: who asked (API token name, user)
    std::string host; // optional: the inventory host whose budget the scan uses (else the service's pick)
    // optional: the image's format (--format, the API's "format", libvirt's <driver type=...>); empty: the
    // safety gate detects it. Not hashed here: the caller's target identity says how the image is read.
    std::string format;
    // A VM named by its disks (the gate's --domain-xml, the API's "vm"): target is "vm:NAME" and these are
    // what is scanned, as one target. Empty for an image path and for libvirt:DOMAIN (libvirt says).
    std::vector<JobDisk> disks;
};

struct JobRecord {
    std::string id;
    JobRequest request;
    std::string target_identity; // as submitted: the daemon may compare it with the target's identity now
    std::string signature_set;   // the fingerprint the scan must use
    JobStatus status = JobStatus::queued;
    unsigned attempts = 0;                  // failed attempts so far (a crash is not one)
    std::string last_error;                 // the last failure's message; kept when the job is queued again
    std::int64_t submitted_at = 0;          // unix seconds; a new submission of a finished job sets it again
    std::int64_t updated_at = 0;            // unix seconds of the last change
    std::optional<std::string> report_path; // once succeeded
    std::string node;                       // fleet mode: the node that runs or ran it last (empty: this one)
};

struct SubmitResult {
    JobRecord record;
    bool created = false; // false: the id was known (the job is returned, or queued again if it had ended)
};

// When a known job that succeeded counts as stale and is scanned again (the gate's --max-age).
struct Rescan {
    // Unix seconds: a success last updated at or before it is stale (whole seconds: a max age of 0 must
    // rescan even a verdict of this very second).
    std::optional<std::int64_t> succeeded_before;
};

enum class Retry {
    allowed, // queued again while attempts < max_attempts, then dead_letter
    never,   // failed at once (an image the safety gate refused does not get better)
};

// "j-" + 24 hex digits of SHA-256 over a schema tag and the three fields (length-prefixed, so no two
// triples collide by shifting bytes). target_identity comes from the caller (for an image: its path plus the
// host file's identity, and how its top layer is read); it is hashed, never parsed.
[[nodiscard]] std::string job_id(std::string_view target_identity, std::string_view snapshot,
                                 std::string_view signature_set);

[[nodiscard]] std::int64_t unix_seconds();

// A request as one JSON object (for stores that keep it as a column); nullopt when the text is not one.
[[nodiscard]] std::string request_json(const JobRequest& request);
[[nodiscard]] std::optional<JobRequest> request_from_json(std::string_view text);

} // namespace coldscan::scheduler
