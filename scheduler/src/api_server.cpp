// The HTTP API over cpp-httplib 0.11.4 (Debian 12). What this file knows about that version, each checked
// by tests/unit/test_scheduler_api.cpp over real sockets:
//  - The pre-routing handler runs before the body is read, so the RequestGuard sees the declared
//    Content-Length and a refusal leaves the body unread. The refusal says `Connection: close`; httplib keeps
//    the connection open all the same and would read the unread body as the next request, which then meets
//    the guard like any other.
//  - It bounds a body with a Content-Length by set_payload_max_length (413), but reads a chunked body of any
//    size: such bodies are refused before they are read (411).
//  - For `Expect: 100-continue` the expect handler can answer before the body is sent; httplib then writes
//    the answer without a Content-Length, so the handler sets it.
//  - Its default socket options set SO_REUSEPORT, which lets a second service bind the same port and share
//    the connections silently; only SO_REUSEADDR is set here, so a port in use is a bind failure.
//  - AF_UNIX works (set_address_family); the socket gets the umask's mode and, with port 0, bind_to_port
//    tries to read the port back and fails, so a dummy port is passed.
//  - stop() does nothing before the listening thread set is_running(); start() waits for that.
#include "coldscan/scheduler/api_server.hpp"

#include "coldscan/common/log.hpp"
#include "coldscan/common/text.hpp"
#include "coldscan/console/assets.hpp"
#include "coldscan/scheduler/api_json.hpp"
#include "coldscan/scheduler/browser_policy.hpp"
#include "coldscan/scheduler/request_guard.hpp"

#include <arpa/inet.h>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <httplib.h>
#include <mutex>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

namespace coldscan::scheduler {

// cpp-httplib's server with access to its listening socket (to read the bound port back, and to close a
// socket that was bound but never listened on).
class ApiHttpServer : public httplib::Server {
public:
    [[nodiscard]] int socket_fd() const { return svr_sock_; }
    void close_unused_socket() {
        const int fd = svr_sock_.exchange(INVALID_SOCKET);
        if (fd != INVALID_SOCKET) {
            ::close(fd);
        }
    }
};

namespace {

constexpr const char* k_json = "application/json";

enum class Endpoint {
    scans,
    job,
    report,
    hosts,
    nodes,
    findings,
    stats,
    plan,
    signatures,
    reload,
    retro_hunt,
    health,
    metrics
};

struct Route {
    Endpoint endpoint;
    std::string id; // job and report
};

// The endpoint a path names; nullopt: none (404).
std::optional<Route> match_route(std::string_view path) {
    static constexpr std::pair<std::string_view, Endpoint> k_fixed[] = {
        {"/v1/scans", Endpoint::scans},           {"/v1/hosts", Endpoint::hosts},
        {"/v1/nodes", Endpoint::nodes},           {"/v1/findings", Endpoint::findings},
        {"/v1/stats", Endpoint::stats},           {"/v1/plan", Endpoint::plan},
        {"/v1/signatures", Endpoint::signatures}, {"/v1/signatures/reload", Endpoint::reload},
        {"/v1/retro-hunt", Endpoint::retro_hunt}, {"/v1/healthz", Endpoint::health},
        {"/healthz", Endpoint::health},           {"/v1/metrics", Endpoint::metrics},
        {"/metrics", Endpoint::metrics},
    };
    for (const auto& [fixed, endpoint] : k_fixed) {
        if (path == fixed) {
            return Route{endpoint, {}};
        }
    }
    constexpr std::string_view k_scans = "/v1/scans/";
    if (!path.starts_with(k_scans)) {
        return std::nullopt;
    }
    std::string_view rest = path.substr(k_scans.size());
    const std::size_t slash = rest.find('/');
    const std::string_view id = rest.substr(0, slash);
    if (id.empty()) {
        return std::nullopt;
    }
    if (slash == std::string_view::npos) {
        return Route{Endpoint::job, std::string(id)};
    }
    if (rest.substr(slash) == "/report") {
        return Route{Endpoint::report, std::string(id)};
    }
    return std::nullopt;
}

// The methods an endpoint answers (HEAD counts as GET), as an Allow header lists them.
std::string_view allowed_methods(Endpoint endpoint) {
    switch (endpoint) {
    case Endpoint::scans:
        return "GET, POST";
    case Endpoint::job:
        return "GET, DELETE";
    case Endpoint::reload:
    case Endpoint::retro_hunt:
        return "POST";
    default:
        return "GET";
    }
}

bool allows(Endpoint endpoint, std::string_view method) {
    const std::string_view allowed = allowed_methods(endpoint);
    std::size_t at = 0;
    while (at < allowed.size()) {
        const std::size_t comma = allowed.find(',', at);
        const std::string_view name =
            allowed.substr(at, comma == std::string_view::npos ? allowed.npos : comma - at);
        if (name == method) {
            return true;
        }
        if (comma == std::string_view::npos) {
            break;
        }
        at = comma + 2;
    }
    return false;
}

void respond_error(httplib::Response& res, int status, std::string_view message) {
    res.status = status;
    res.set_content(api::error_body(message), k_json);
}

std::string_view reason(int status) {
    switch (status) {
    case 400:
        return "bad request";
    case 404:
        return "not found";
    case 405:
        return "method not allowed";
    case 413:
        return "the request body is too large";
    case 414:
        return "the request URI is too long";
    case 416:
        return "range not satisfiable";
    case 503:
        return "service unavailable";
    default:
        return status >= 500 ? "internal error" : "the request was refused";
    }
}

// "Content-Type: application/json" (parameters such as charset allowed, case-insensitive).
bool is_json_content_type(std::string_view value) {
    const std::string_view type = value.substr(0, value.find(';'));
    constexpr std::string_view k_expected = "application/json";
    std::string_view trimmed = type;
    while (!trimmed.empty() && trimmed.back() == ' ') {
        trimmed.remove_suffix(1);
    }
    if (trimmed.size() != k_expected.size()) {
        return false;
    }
    for (std::size_t i = 0; i < trimmed.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(trimmed[i])) != k_expected[i]) {
            return false;
        }
    }
    return true;
}

// A refusal the guard or the framing checks decided before the body is read.
struct Refusal {
    int status = 400;
    std::string message;
    std::optional<std::uint32_t> retry_after;
};

// The console's page or static file a GET or HEAD names; nullopt: an API path (or another method).
std::optional<console::Asset> console_file_of(const httplib::Request& req) {
    if (req.method != "GET" && req.method != "HEAD") {
        return std::nullopt;
    }
    if (auto asset = console::find_asset(req.path)) {
        return asset;
    }
    return console::page_for(req.path);
}

std::optional<std::string> header_of(const httplib::Request& req, const char* name) {
    return req.has_header(name) ? std::optional<std::string>(req.get_header_value(name)) : std::nullopt;
}

// Checks that need no state: browsers (browser_policy.hpp), a Content-Length that can be believed. Sets
// declared_bytes.
std::optional<Refusal> check_framing(const httplib::Request& req, bool token_configured,
                                     std::uint64_t& declared_bytes) {
    const BrowserFacts browser{
        header_of(req, "Origin"),         header_of(req, "Host"), header_of(req, "Sec-Fetch-Site"),
        console_file_of(req).has_value(), token_configured,       req.remote_addr.empty()};
    if (auto refused = browser_refusal(browser)) {
        return Refusal{403, std::move(*refused), std::nullopt};
    }
    declared_bytes = 0;
    const std::size_t lengths = req.get_header_value_count("Content-Length");
    if (lengths > 1) {
        return Refusal{400, "more than one Content-Length", std::nullopt};
    }
    if (lengths == 1) {
        const std::string value = req.get_header_value("Content-Length");
        const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), declared_bytes);
        if (value.empty() || ec != std::errc() || end != value.data() + value.size()) {
            return Refusal{400, "the Content-Length is not a number", std::nullopt};
        }
    }
    return std::nullopt;
}

// After the guard: httplib 0.11.4 does not bound chunked bodies.
std::optional<Refusal> check_transfer_encoding(const httplib::Request& req) {
    if (req.has_header("Transfer-Encoding")) {
        return Refusal{411, "send the body with a Content-Length (chunked bodies are not accepted)",
                       std::nullopt};
    }
    return std::nullopt;
}

std::string describe_errno(int err) {
    return std::strerror(err);
}

// Why binding address:port fails, for the error message (httplib only says that it did).
std::string why_tcp_bind_fails(const ListenAddress& listen) {
    const bool v6 = listen.address.find(':') != std::string::npos;
    const int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return describe_errno(errno);
    }
    int yes = 1;
    (void)::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    int result = -1;
    if (v6) {
        sockaddr_in6 address{};
        address.sin6_family = AF_INET6;
        address.sin6_port = htons(listen.port);
        if (::inet_pton(AF_INET6, listen.address.c_str(), &address.sin6_addr) == 1) {
            result = ::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address);
        }
    } else {
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(listen.port);
        if (::inet_pton(AF_INET, listen.address.c_str(), &address.sin_addr) == 1) {
            result = ::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address);
        }
    }
    const int err = errno;
    ::close(fd);
    if (result == 0) {
        return "the address could not be bound";
    }
    return err == EADDRINUSE ? "the address is already in use (is another coldscan serve running?)"
                             : describe_errno(err);
}

// Whether something accepts connections on the Unix socket at path.
bool unix_socket_answers(const std::string& path) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return false;
    }
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, path.c_str(), std::min(path.size(), sizeof address.sun_path - 1));
    const bool answers = ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
    ::close(fd);
    return answers;
}

TimePoint now() {
    return std::chrono::time_point_cast<Duration>(std::chrono::system_clock::now());
}

} // namespace

struct ApiServer::Impl {
    Impl(std::shared_ptr<ApiBackend> service, const ApiConfig& api_config)
        : backend(std::move(service)), config(api_config),
          guard(GuardOptions{config.auth_token, static_cast<std::size_t>(config.max_request_bytes),
                             config.requests_per_second, config.request_burst, 4096}),
          precheck(
              GuardOptions{config.auth_token, static_cast<std::size_t>(config.max_request_bytes), 0, 0, 1}) {}

    Expected<void> bind();
    Expected<void> bind_tcp();
    Expected<void> bind_unix();
    void install_handlers();
    httplib::Server::HandlerResponse admit(const httplib::Request& req, httplib::Response& res);
    int admit_before_body(const httplib::Request& req, httplib::Response& res);
    void handle(const httplib::Request& req, httplib::Response& res);
    void serve(const httplib::Request& req, httplib::Response& res);
    void stop();

    std::shared_ptr<ApiBackend> backend;
    ApiConfig config;
    ApiHttpServer server;
    std::mutex guard_mutex;
    RequestGuard guard;    // under guard_mutex
    RequestGuard precheck; // token and size only, no state: for Expect: 100-continue
    ListenAddress bound;
    std::thread thread;
    std::mutex stop_mutex;
    bool stopped = false;
    // The Unix socket this server created (removed at stop if it is still that file).
    std::optional<std::pair<dev_t, ino_t>> socket_identity;
};

namespace {

std::string client_of(const httplib::Request& req) {
    return req.remote_addr.empty() ? std::string("unix") : req.remote_addr;
}

RequestFacts facts_of(const httplib::Request& req, std::uint64_t declared_bytes) {
    RequestFacts facts;
    facts.client = client_of(req);
    if (req.has_header("Authorization")) {
        facts.authorization = req.get_header_value("Authorization");
    }
    facts.body_bytes = std::max<std::uint64_t>(declared_bytes, req.body.size());
    facts.public_file = console_file_of(req).has_value();
    return facts;
}

void respond_refusal(const httplib::Request& req, httplib::Response& res, const Refusal& refusal,
                     std::uint64_t declared_bytes) {
    respond_error(res, refusal.status, refusal.message);
    if (refusal.status == 401) {
        res.set_header("WWW-Authenticate", "Bearer");
    }
    if (refusal.retry_after) {
        res.set_header("Retry-After", std::to_string(*refusal.retry_after));
    }
    // The body stays unread. (httplib adds the header itself when the request asked to close.)
    if ((declared_bytes > 0 || req.has_header("Transfer-Encoding")) &&
        req.get_header_value("Connection") != "close") {
        res.set_header("Connection", "close");
    }
}

Refusal refusal_of(const GuardAnswer& answer) {
    return Refusal{answer.status, answer.message, answer.retry_after_seconds};
}

} // namespace

httplib::Server::HandlerResponse ApiServer::Impl::admit(const httplib::Request& req, httplib::Response& res) {
    try {
        std::uint64_t declared = 0;
        std::optional<Refusal> refusal = check_framing(req, config.auth_token.has_value(), declared);
        if (!refusal) {
            std::lock_guard lock(guard_mutex);
            const GuardAnswer answer = guard.check(facts_of(req, declared), now());
            if (!answer.admitted()) {
                refusal = refusal_of(answer);
            }
        }
        if (!refusal) {
            refusal = check_transfer_encoding(req);
        }
        if (!refusal) {
            return httplib::Server::HandlerResponse::Unhandled;
        }
        respond_refusal(req, res, *refusal, declared);
    } catch (const std::exception& e) {
        spdlog::error("api: {}", e.what());
        respond_error(res, 500, "internal error");
    }
    return httplib::Server::HandlerResponse::Handled;
}

int ApiServer::Impl::admit_before_body(const httplib::Request& req, httplib::Response& res) {
    try {
        std::uint64_t declared = 0;
        std::optional<Refusal> refusal = check_framing(req, config.auth_token.has_value(), declared);
        if (!refusal) {
            // The stateless guard: the request is counted against its client's rate once, in admit().
            const GuardAnswer answer = precheck.check(facts_of(req, declared), now());
            if (!answer.admitted()) {
                refusal = refusal_of(answer);
            }
        }
        if (!refusal) {
            refusal = check_transfer_encoding(req);
        }
        if (!refusal) {
            return 100;
        }
        respond_refusal(req, res, *refusal, declared);
        res.set_header("Content-Length", std::to_string(res.body.size())); // httplib leaves it out here
        return refusal->status;
    } catch (const std::exception& e) {
        spdlog::error("api: {}", e.what());
        return 417;
    }
}

void ApiServer::Impl::handle(const httplib::Request& req, httplib::Response& res) {
    try {
        serve(req, res);
    } catch (const std::exception& e) {
        spdlog::error("api: {} {}: {}", req.method, printable(req.path), e.what());
        respond_error(res, 500, "internal error");
    } catch (...) {
        respond_error(res, 500, "internal error");
    }
}

namespace {

// A console file: its security headers, revalidated by its ETag at every load (no stale app after an
// upgrade).
void respond_console_file(const httplib::Request& req, httplib::Response& res, const console::Asset& asset) {
    for (const auto& [name, value] : console::security_headers()) {
        res.set_header(std::string(name), std::string(value));
    }
    res.set_header("Cache-Control", "no-cache");
    res.set_header("ETag", std::string(asset.etag));
    if (req.get_header_value("If-None-Match") == asset.etag) {
        res.status = 304;
        return;
    }
    res.set_content(std::string(asset.body), std::string(asset.content_type));
}

} // namespace

void ApiServer::Impl::serve(const httplib::Request& req, httplib::Response& res) {
    if (const auto file = console_file_of(req)) {
        respond_console_file(req, res, *file);
        return;
    }
    // API answers are data of the moment: never cached, never sniffed into something else.
    res.set_header("Cache-Control", "no-store");
    res.set_header("X-Content-Type-Options", "nosniff");
    const auto route = match_route(req.path);
    if (!route) {
        respond_error(res, 404, "no such endpoint: " + req.path);
        return;
    }
    const std::string_view method =
        req.method == "HEAD" ? std::string_view("GET") : std::string_view(req.method);
    if (!allows(route->endpoint, method)) {
        respond_error(res, 405, req.method + " is not allowed on " + req.path);
        res.set_header("Allow", std::string(allowed_methods(route->endpoint)));
        return;
    }
    const auto fail = [&](const Error& error, int status) {
        respond_error(res, status, error.message);
        if (status == 503) {
            res.set_header("Retry-After", "60");
        }
    };
    switch (route->endpoint) {
    case Endpoint::scans:
        if (method == "POST") {
            if (!is_json_content_type(req.get_header_value("Content-Type"))) {
                respond_error(res, 415, "send the body as Content-Type: application/json");
                return;
            }
            auto requests = api::parse_scan_body(req.body);
            if (!requests) {
                fail(requests.error(), 400);
                return;
            }
            auto submitted = backend->submit(*requests);
            if (!submitted) {
                fail(submitted.error(), api::http_status(submitted.error().code));
                return;
            }
            res.status = 202;
            res.set_content(api::submitted_body(*submitted), k_json);
        } else {
            auto query = api::job_list_query(req.params);
            if (!query) {
                fail(query.error(), 400);
                return;
            }
            auto jobs = backend->jobs(query->status);
            if (!jobs) {
                fail(jobs.error(), api::http_status(jobs.error().code));
                return;
            }
            res.set_content(api::job_list_body(std::move(*jobs), *query), k_json);
        }
        return;
    case Endpoint::job:
        if (method == "DELETE") {
            auto job = backend->cancel(route->id);
            if (!job) {
                // invalid_argument: the job had finished already.
                fail(job.error(),
                     job.error().code == Errc::invalid_argument ? 409 : api::http_status(job.error().code));
                return;
            }
            res.set_content(api::job_body(*job), k_json);
        } else {
            auto job = backend->job(route->id);
            if (!job) {
                fail(job.error(), api::http_status(job.error().code));
                return;
            }
            res.set_content(api::job_body(*job), k_json);
        }
        return;
    case Endpoint::report: {
        auto report = backend->report(route->id);
        if (!report) {
            fail(report.error(), api::http_status(report.error().code));
            return;
        }
        res.set_content(std::move(*report), k_json);
        return;
    }
    case Endpoint::hosts:
        res.set_content(api::hosts_body(backend->hosts(), backend->datastores()), k_json);
        return;
    case Endpoint::nodes: {
        auto nodes = backend->nodes();
        if (!nodes) {
            fail(nodes.error(), api::http_status(nodes.error().code));
            return;
        }
        res.set_content(api::nodes_body(*nodes), k_json);
        return;
    }
    case Endpoint::findings:
    case Endpoint::stats: {
        auto query = api::finding_query(req.params);
        if (!query) {
            fail(query.error(), 400);
            return;
        }
        if (route->endpoint == Endpoint::findings) {
            auto page = backend->findings(*query);
            if (!page) {
                fail(page.error(), api::http_status(page.error().code));
                return;
            }
            res.set_content(api::findings_body(*page, *query), k_json);
        } else {
            auto stats = backend->finding_stats(*query);
            if (!stats) {
                fail(stats.error(), api::http_status(stats.error().code));
                return;
            }
            res.set_content(api::stats_body(*stats), k_json);
        }
        return;
    }
    case Endpoint::plan:
        res.set_content(api::plan_body(backend->plan()), k_json);
        return;
    case Endpoint::signatures:
        res.set_content(backend->signatures(), k_json);
        return;
    case Endpoint::reload: {
        auto fingerprint = backend->reload_signatures();
        if (!fingerprint) {
            fail(fingerprint.error(), api::http_status(fingerprint.error().code));
            return;
        }
        res.set_content(api::reload_body(*fingerprint), k_json);
        return;
    }
    case Endpoint::retro_hunt: {
        auto hunt = backend->retro_hunt();
        if (!hunt) {
            fail(hunt.error(), api::http_status(hunt.error().code));
            return;
        }
        res.set_content(std::move(*hunt), k_json);
        return;
    }
    case Endpoint::health: {
        const api::JobCounts counts = backend->job_counts();
        res.set_content(api::health_body(backend->health(), counts), k_json);
        return;
    }
    case Endpoint::metrics: {
        const api::JobCounts counts = backend->job_counts();
        const auto nodes = backend->nodes(); // without the fleet's database: the rest still answers
        res.set_content(api::metrics_text(backend->counters(), backend->hosts(), backend->datastores(),
                                          counts, nodes ? *nodes : std::vector<NodeView>{}),
                        "text/plain; version=0.0.4; charset=utf-8");
        return;
    }
    }
}

void ApiServer::Impl::install_handlers() {
    server.set_payload_max_length(static_cast<std::size_t>(config.max_request_bytes));
    server.set_keep_alive_timeout(2); // idle connections hold up stop() this long
    server.set_pre_routing_handler(
        [this](const httplib::Request& req, httplib::Response& res) { return admit(req, res); });
    server.set_expect_100_continue_handler(
        [this](const httplib::Request& req, httplib::Response& res) { return admit_before_body(req, res); });
    const auto handler = [this](const httplib::Request& req, httplib::Response& res) { handle(req, res); };
    // One catch-all per method: routing (404 against 405) is ours.
    server.Get(".*", handler);
    server.Post(".*", handler);
    server.Put(".*", handler);
    server.Patch(".*", handler);
    server.Delete(".*", handler);
    server.Options(".*", handler);
    // Errors httplib answers itself (a malformed request, a body over the payload limit): a JSON body too.
    server.set_error_handler(
        httplib::Server::HandlerWithResponse([](const httplib::Request& /*req*/, httplib::Response& res) {
            if (!res.body.empty()) {
                return httplib::Server::HandlerResponse::Unhandled;
            }
            res.set_content(api::error_body(reason(res.status)), k_json);
            return httplib::Server::HandlerResponse::Handled;
        }));
    server.set_exception_handler(
        [](const httplib::Request& /*req*/, httplib::Response& res, std::exception_ptr /*error*/) {
            respond_error(res, 500, "internal error");
        });
    server.set_logger([](const httplib::Request& req, const httplib::Response& res) {
        spdlog::debug("api: {} {} -> {} ({})", req.method, printable(req.path), res.status,
                      printable(client_of(req)));
    });
}

Expected<void> ApiServer::Impl::bind() {
    return config.listen.unix_socket.empty() ? bind_tcp() : bind_unix();
}

Expected<void> ApiServer::Impl::bind_tcp() {
    const ListenAddress& listen = config.listen;
    server.set_address_family(listen.address.find(':') != std::string::npos ? AF_INET6 : AF_INET);
    server.set_socket_options([](socket_t fd) {
        int yes = 1;
        (void)::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    const bool bound_ok = listen.port == 0 ? server.bind_to_any_port(listen.address) > 0
                                           : server.bind_to_port(listen.address, listen.port);
    if (!bound_ok) {
        return make_error(Errc::io,
                          "cannot listen on " + listen.to_string() + ": " + why_tcp_bind_fails(listen));
    }
    bound = listen;
    sockaddr_storage address{};
    socklen_t length = sizeof address;
    if (::getsockname(server.socket_fd(), reinterpret_cast<sockaddr*>(&address), &length) == 0) {
        if (address.ss_family == AF_INET) {
            bound.port = ntohs(reinterpret_cast<const sockaddr_in*>(&address)->sin_port);
        } else if (address.ss_family == AF_INET6) {
            bound.port = ntohs(reinterpret_cast<const sockaddr_in6*>(&address)->sin6_port);
        }
    }
    return {};
}

Expected<void> ApiServer::Impl::bind_unix() {
    const std::string path = config.listen.unix_socket.string();
    const std::string where = "unix:" + path;
    constexpr std::size_t k_max_path = sizeof(sockaddr_un::sun_path) - 1;
    const std::string folder = config.listen.unix_socket.parent_path().string();
    // The socket is bound as FOLDER/.coldscan-api-XXXXXX/s first.
    if (path.size() > k_max_path || folder.size() + 22 > k_max_path) {
        return make_error(Errc::invalid_argument, "cannot listen on " + where + ": the path is longer than " +
                                                      std::to_string(k_max_path - 22) + " bytes");
    }
    struct stat existing {};
    if (::lstat(path.c_str(), &existing) == 0) {
        if (!S_ISSOCK(existing.st_mode)) {
            return make_error(Errc::io, "cannot listen on " + where + ": it exists and is not a socket");
        }
        if (unix_socket_answers(path)) {
            return make_error(Errc::io,
                              "cannot listen on " + where +
                                  ": another service answers there (is another coldscan serve running?)");
        }
        // A stale socket (a crash left it): the rename below replaces it.
    } else if (errno != ENOENT) {
        return make_error(Errc::io, errno_message("cannot listen on " + where));
    }
    std::string private_folder = folder + "/.coldscan-api-XXXXXX";
    if (::mkdtemp(private_folder.data()) == nullptr) {
        return make_error(
            Errc::io, errno_message("cannot listen on " + where + ": cannot create a folder in " + folder));
    }
    const std::string temporary = private_folder + "/s";
    const auto fail = [&](std::string message) -> Expected<void> {
        server.close_unused_socket();
        (void)::unlink(temporary.c_str());
        (void)::rmdir(private_folder.c_str());
        return make_error(Errc::io, "cannot listen on " + where + ": " + std::move(message));
    };
    server.set_address_family(AF_UNIX);
    // Any port but 0: with 0, httplib asks the socket for its port, which a Unix socket does not have.
    if (!server.bind_to_port(temporary, 1)) {
        return fail("cannot bind a socket in " + folder);
    }
    if (::chmod(temporary.c_str(), 0660) != 0) {
        return fail(errno_message("chmod"));
    }
    if (::rename(temporary.c_str(), path.c_str()) != 0) {
        return fail(errno_message("rename"));
    }
    (void)::rmdir(private_folder.c_str());
    struct stat created {};
    if (::lstat(path.c_str(), &created) == 0) {
        socket_identity = std::make_pair(created.st_dev, created.st_ino);
    }
    bound = config.listen;
    return {};
}

void ApiServer::Impl::stop() {
    std::lock_guard lock(stop_mutex);
    if (stopped) {
        return;
    }
    stopped = true;
    server.stop();
    if (thread.joinable()) {
        thread.join();
    }
    if (socket_identity) {
        struct stat current {};
        const std::string path = config.listen.unix_socket.string();
        if (::lstat(path.c_str(), &current) == 0 && current.st_dev == socket_identity->first &&
            current.st_ino == socket_identity->second) {
            (void)::unlink(path.c_str());
        }
    }
}

ApiServer::ApiServer(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}

ApiServer::~ApiServer() {
    stop();
}

Expected<std::unique_ptr<ApiServer>> ApiServer::start(std::shared_ptr<ApiBackend> backend,
                                                      const ApiConfig& config) {
    if (!backend) {
        return make_error(Errc::internal, "ApiServer::start without a backend");
    }
    auto impl = std::make_unique<Impl>(std::move(backend), config);
    impl->install_handlers();
    if (auto bound = impl->bind(); !bound) {
        return std::unexpected(bound.error());
    }
    Impl* serving = impl.get();
    serving->thread = std::thread([serving] {
        if (!serving->server.listen_after_bind()) {
            spdlog::debug("api: the listening loop ended with an error");
        }
    });
    // stop() only works once the loop runs.
    for (int i = 0; i < 5000 && !serving->server.is_running(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    spdlog::info("api: listening on {}", serving->bound.to_string());
    return std::unique_ptr<ApiServer>(new ApiServer(std::move(impl)));
}

void ApiServer::stop() {
    if (m_impl) {
        m_impl->stop();
    }
}

std::string ApiServer::address() const {
    return m_impl->bound.to_string();
}

} // namespace coldscan::scheduler
