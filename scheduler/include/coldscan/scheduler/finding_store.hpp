// Findings: every detection, file not fully scanned and failed target of the service's scans, one row each,
// to search and count (GET /v1/findings, GET /v1/stats, `coldscan findings`). LocalFindingStore keeps one
// node's in STATE/findings.jsonl; fleet/pg_finding_store.hpp keeps a fleet's in PostgreSQL. A scan's findings
// are recorded once per run (its alert id: job and submission), so a rerun after a crash adds nothing twice.
// Thread rule: implementations are shared; every member is thread-safe.
#pragma once

#include "coldscan/common/error.hpp"
#include "coldscan/reports/report.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace coldscan::scheduler {

inline constexpr std::string_view k_detection_kind = "DETECTION";

struct Finding {
    std::string kind;  // k_detection_kind, or the outcome (LIMIT_EXCEEDED, ERROR, TARGET_FAILED, ...)
    std::string image; // the job's target
    std::string host;  // inventory names
    std::string datastore; //
    std::string device;    // the filesystem ("/dev/sda1"), "" for a whole target
    std::string path;      // inside it; UTF-8 (invalid bytes escaped as the report escapes them)
    std::string sha256;    // of the content (detections), "" when unknown
    std::string signature; // detections: the signature; others: the reason
    std::string engine;    // "clamav" or "yara" for detections, "" otherwise
    std::string signature_set;
    std::string job;
    std::string node;
    std::int64_t at = 0; // unix seconds: when the scan finished
    bool operator==(const Finding&) const = default;
};

// Every field is optional; a finding must match all that are given.
struct FindingQuery {
    std::optional<std::string> signature;     // exact
    std::optional<std::string> image;         // exact
    std::optional<std::string> host;          // exact
    std::optional<std::string> path_contains; // substring of the path
    std::optional<std::string> kind;          // exact: DETECTION, LIMIT_EXCEEDED, ...
    std::optional<std::int64_t> since;        // at >= since
    std::optional<std::int64_t> until;        // at < until
    std::size_t offset = 0;
    std::size_t limit = 100; // at most k_max_limit
    static constexpr std::size_t k_max_limit = 1000;
};

struct FindingPage {
    std::vector<Finding> findings; // newest first, then by image and path
    std::size_t total = 0;         // matching findings, all pages
};

struct FindingCount {
    std::string key;
    std::size_t count = 0;
    bool operator==(const FindingCount&) const = default;
};

// Matching findings counted per UTC day ("2026-12-07", oldest first), per signature and per host (most
// first; detections only for signatures).
struct FindingStats {
    std::size_t total = 0;
    std::vector<FindingCount> per_day;
    std::vector<FindingCount> per_signature;
    std::vector<FindingCount> per_host;
};

// Where a scan's findings come from.
struct FindingContext {
    std::string image;
    std::string host;
    std::string datastore;
    std::string job;
    std::string node;
    std::int64_t at = 0;
};

// One finding per detection (per signature of a file) and per issue of the report.
[[nodiscard]] std::vector<Finding> findings_of(const reports::Report& report, const FindingContext& context);
[[nodiscard]] bool matches(const Finding& finding, const FindingQuery& query);
// Findings as a JSON array of objects with the fields above ("at" in unix seconds): STATE/findings.jsonl's
// rows, and what PostgreSQL's jsonb_to_recordset reads.
[[nodiscard]] std::string findings_json(const std::vector<Finding>& findings);
// The day of a unix time in UTC, "YYYY-MM-DD".
[[nodiscard]] std::string utc_day(std::int64_t unix_seconds);

class FindingStore {
public:
    virtual ~FindingStore() = default;
    // Records a run's findings unless that run was recorded before: true when this call recorded them.
    // Errc::io: the store failed; Errc::conflict (fleet): the job's lease is lost.
    [[nodiscard]] virtual Expected<bool> record(std::string_view run_id,
                                                const std::vector<Finding>& findings) = 0;
    [[nodiscard]] virtual Expected<FindingPage> search(const FindingQuery& query) const = 0;
    [[nodiscard]] virtual Expected<FindingStats> stats(const FindingQuery& query) const = 0;
};

// One node's findings: STATE/findings.jsonl, one line per run (fsync'd before record() returns), all of it
// kept in memory (a finding is a few hundred bytes: 100,000 are tens of MB). A damaged last line (a crash
// during an append) is cut at load.
class LocalFindingStore final : public FindingStore {
public:
    // Loads the file if it exists. Errc::io: it cannot be read.
    [[nodiscard]] static Expected<std::unique_ptr<LocalFindingStore>> open(std::string path);
    Expected<bool> record(std::string_view run_id, const std::vector<Finding>& findings) override;
    Expected<FindingPage> search(const FindingQuery& query) const override;
    Expected<FindingStats> stats(const FindingQuery& query) const override;

private:
    explicit LocalFindingStore(std::string path) : m_path(std::move(path)) {}
    mutable std::mutex m_mutex;
    std::string m_path;
    std::vector<Finding> m_findings; // in recording order
    std::set<std::string, std::less<>> m_runs;
};

} // namespace coldscan::scheduler
