// A small client of the scan service's HTTP API (scheduler/include/coldscan/scheduler/api_server.hpp), shared
// by `coldscan submit|status|wait|cancel|plan` and `coldscan gate`.
// Thread rule: one ApiClient per thread.
#pragma once

#include "coldscan/common/error.hpp"
#include "coldscan/scheduler/api_json.hpp"

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace httplib {
class Client;
}

namespace coldscan::cli {

// --server and --token-file, on every client subcommand.
struct ClientOptions {
    std::string server;     // "": $COLDSCAN_SERVER, else http://127.0.0.1:8731
    std::string token_file; // "": $COLDSCAN_TOKEN_FILE, else $COLDSCAN_TOKEN holds the token itself
};
void add_client_options(CLI::App& command, ClientOptions& options);

class ApiClient {
public:
    // Resolves the server URL (http://HOST[:PORT], https://..., unix:/path) and the token. Errors:
    // invalid_argument (another kind of URL), io (the token file cannot be read or is empty). A token file
    // other users may read is warned about.
    [[nodiscard]] static Expected<ApiClient> create(const ClientOptions& options);
    ApiClient(ApiClient&&) noexcept;
    ApiClient& operator=(ApiClient&&) noexcept;
    ~ApiClient();

    // The body of a 2xx answer. Errors: io "cannot reach the scan service at URL ..." (see unreachable());
    // otherwise the service's "error" message, with the Errc its status stands for (404 not_found, 403 and
    // 401 forbidden, 409 and 400 invalid_argument, 422 unsafe_image, 503 cancelled, else internal). A 429 is
    // retried after its Retry-After (a few times).
    [[nodiscard]] Expected<std::string> get(const std::string& path);
    [[nodiscard]] Expected<std::string> post(const std::string& path, const std::string& body);
    [[nodiscard]] Expected<std::string> remove(const std::string& path);

    [[nodiscard]] const std::string& url() const noexcept { return m_url; }
    // Whether error says the service could not be reached at all.
    [[nodiscard]] static bool unreachable(const Error& error);

private:
    ApiClient(std::string url, std::unique_ptr<httplib::Client> client);
    Expected<std::string> call(std::string_view method, const std::string& path, const std::string* body);

    std::string m_url;
    std::unique_ptr<httplib::Client> m_client;
};

// Prints a client error: "coldscan: cannot reach the scan service at URL (is `coldscan serve` running?)" as
// it is, anything else as a "coldscan: error:" line.
void print_client_error(const Error& error);
// Columns separated by two spaces; the last one is not padded.
void print_table(const std::vector<std::vector<std::string>>& rows);
// The service's JSON, indented (as it came when it does not parse).
void print_json_text(const std::string& text);

// An image path as the service needs it (absolute; libvirt:DOMAIN and URIs as they are).
[[nodiscard]] std::string absolute_target(const std::string& target);
// "user@host", for requested_by.
[[nodiscard]] std::string requester();

// POST /v1/scans. Returns the jobs and the answer's JSON text.
struct Submitted {
    std::vector<scheduler::JobView> jobs;
    std::string body;
};
[[nodiscard]] Expected<Submitted> submit(ApiClient& client, const scheduler::api::ScanSubmission& submission);

struct WaitResult {
    std::vector<scheduler::JobView> jobs; // in the order asked, as last seen
    std::vector<std::string> bodies;      // each job's JSON as last seen
    bool timed_out = false;
    bool interrupted = false;
};
// Polls GET /v1/scans/ID once a second (never faster) until every job has finished, timeout has passed or
// stop is set; jobs already known finished are not asked again. Shows progress on stderr when it is a
// terminal. A service that answered once and then cannot be reached (a restart) is waited for up to a minute.
// Errors: from the client (not_found: no such job). known: the jobs as the submission answered them (then the
// first look is a second later), or empty.
[[nodiscard]] Expected<WaitResult> wait_for_jobs(ApiClient& client, const std::vector<std::string>& ids,
                                                 std::vector<scheduler::JobView> known,
                                                 std::optional<std::chrono::seconds> timeout,
                                                 const std::atomic<bool>& stop);

// One line about a job's state: "scanning, 1200 files, 1.2 GiB, 30.0s", "clean, 312 files", "2 detections,
// 312 files", "failed: REASON" (printable).
[[nodiscard]] std::string job_summary(const scheduler::JobView& job);

} // namespace coldscan::cli
