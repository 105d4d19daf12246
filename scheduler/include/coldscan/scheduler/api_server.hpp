// The scan service's HTTP API (issue 5): JSON over HTTP/1.1 on cpp-httplib, on an IP address and port or a
// Unix socket. Bodies are JSON (`Content-Type: application/json`); every error is {"error": "message"}.
//
//   POST   /v1/scans               {"targets": [...], "priority", "snapshot", "format", "host",
//                                  "max_age_seconds", "requested_by"} -> 202 {"jobs": [JOB...]}; or, for
//                                  one VM of several disks, "vm": {"name", "disks": [{"path", "format"}]}
//                                  instead of targets -> one job "vm:NAME"
//   GET    /v1/scans[?status=S&priority=P&host=H&datastore=D&image=SUBSTRING&offset=N&limit=N]
//                                  -> {"total", "offset", "limit", "jobs": [JOB...]}, newest first
//   GET    /v1/scans/ID            -> JOB
//   DELETE /v1/scans/ID            -> JOB, cancelled (409 when it had already finished)
//   GET    /v1/scans/ID/report     -> the report's JSON as written
//   GET    /v1/hosts               -> {"hosts": [...], "datastores": [...]}
//   GET    /v1/plan                -> {"now", "all_done", "windows": [{"start", "end", "days"}], "jobs":
//   [...]} GET    /v1/signatures          -> the loaded set: "signature_set", "loaded_at", the engines,
//   databases
//                                  and rule files (as a report's "signatures"), "last_retro_hunt" (or null)
//   POST   /v1/signatures/reload   -> {"signature_set": FINGERPRINT} (a retro-hunt follows)
//   POST   /v1/retro-hunt          -> the hunt (scanner/retro_hunt.hpp) + "alerts_raised", "reports_updated"
//   GET    /v1/healthz, /healthz   -> {"status": "ok"|"draining", "accepting", "signature_set", ...}
//   GET    /v1/metrics, /metrics   -> Prometheus text exposition 0.0.4
// (api_json.hpp has the exact shapes.) An unknown path is 404, a known path with another method 405.
//
// Before anything is read, each request goes through the RequestGuard (401 with WWW-Authenticate: Bearer,
// 413, 429 with Retry-After). cpp-httplib 0.11.4 calls its pre-routing handler before it reads the body, so
// the guard sees the declared Content-Length and a too big body is answered 413 unread; an
// `Expect: 100-continue` request is refused before the client sends its body at all. That version does not
// bound chunked bodies, so a body without a Content-Length is refused (411). Requests that carry an Origin
// header must come from the service's own origin (the console; browser_policy.hpp): no other web page may
// submit or cancel scans, even on a loopback service without a token. A GET or HEAD of a view's URL or of
// /static/ serves the web console (console/assets.hpp).
//
// A Unix socket is bound inside a fresh 0700 folder next to its path, set to mode 0660 and then renamed into
// place, so it is never reachable with wider permissions; a stale socket left by a crash is replaced, a live
// one (another service answers) is not. stop() removes it.
// Thread rule: start() and stop() from one owner thread; the server answers on its own threads (cpp-httplib's
// pool), calling the backend concurrently. Stop it before the service it serves is destroyed.
#pragma once

#include "coldscan/common/error.hpp"
#include "coldscan/scheduler/scan_service.hpp"
#include "coldscan/scheduler/service_config.hpp"

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace coldscan::scheduler {

// What the API asks of the service: ScanService's members of the same names (an interface so that the
// server can be tested over HTTP with a fake service; a real ScanService loads the engines).
// Thread rule: shared; implementations are thread-safe.
class ApiBackend {
public:
    virtual ~ApiBackend() = default;
    [[nodiscard]] virtual Expected<std::vector<SubmittedJob>>
    submit(const std::vector<ScanRequest>& requests) = 0;
    [[nodiscard]] virtual Expected<JobView> job(std::string_view id) const = 0;
    [[nodiscard]] virtual Expected<std::vector<JobView>> jobs(std::optional<JobStatus> status) const = 0;
    [[nodiscard]] virtual Expected<JobView> cancel(std::string_view id) = 0;
    [[nodiscard]] virtual Expected<std::string> report(std::string_view id) const = 0;
    [[nodiscard]] virtual std::vector<HostView> hosts() const = 0;
    [[nodiscard]] virtual std::vector<DatastoreView> datastores() const = 0;
    [[nodiscard]] virtual Expected<std::vector<NodeView>> nodes() const = 0;
    [[nodiscard]] virtual Expected<FindingPage> findings(const FindingQuery& query) const = 0;
    [[nodiscard]] virtual Expected<FindingStats> finding_stats(const FindingQuery& query) const = 0;
    [[nodiscard]] virtual Plan plan() const = 0;
    [[nodiscard]] virtual ServiceCounters counters() const = 0;
    [[nodiscard]] virtual ServiceHealth health() const = 0;
    [[nodiscard]] virtual std::map<JobStatus, std::size_t> job_counts() const = 0;
    [[nodiscard]] virtual Expected<std::string> reload_signatures() = 0;
    [[nodiscard]] virtual Expected<std::string> retro_hunt() = 0;
    [[nodiscard]] virtual std::string signatures() const = 0;
};

class ApiServer {
public:
    // Binds config.listen and starts answering. Errors: io (the address is in use or cannot be bound, the
    // socket's folder is not writable, a live service already answers on the socket), invalid_argument (a
    // socket path too long for sockaddr_un).
    [[nodiscard]] static Expected<std::unique_ptr<ApiServer>> start(ScanService& service,
                                                                    const ApiConfig& config);
    [[nodiscard]] static Expected<std::unique_ptr<ApiServer>> start(std::shared_ptr<ApiBackend> backend,
                                                                    const ApiConfig& config);
    ~ApiServer(); // stop()
    ApiServer(const ApiServer&) = delete;
    ApiServer& operator=(const ApiServer&) = delete;

    // Stops accepting, finishes the requests in flight, removes the Unix socket. Idempotent.
    void stop();
    // Where it listens, with the port actually bound: "127.0.0.1:8731", "[::1]:8731", "unix:/run/x.sock".
    [[nodiscard]] std::string address() const;

    struct Impl;

private:
    explicit ApiServer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> m_impl;
};

} // namespace coldscan::scheduler
