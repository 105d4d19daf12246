#include "client.hpp"

#include "coldscan/common/log.hpp"
#include "coldscan/common/text.hpp"

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <pwd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace coldscan::cli {
namespace {

using scheduler::JobStatus;
using scheduler::JobView;
using Clock = std::chrono::steady_clock;

constexpr std::string_view k_default_server = "http://127.0.0.1:8731";
constexpr std::string_view k_unreachable_prefix = "cannot reach the scan service at ";
constexpr std::size_t k_max_token_bytes = 4096;

std::string env_or(const char* name, std::string_view fallback) {
    const char* value = std::getenv(name);
    return value != nullptr && *value != '\0' ? std::string(value) : std::string(fallback);
}

std::string trimmed(std::string text) {
    const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
    while (!text.empty() && is_space(text.back())) {
        text.pop_back();
    }
    std::size_t start = 0;
    while (start < text.size() && is_space(text[start])) {
        ++start;
    }
    return text.substr(start);
}

Expected<std::optional<std::string>> read_token(const ClientOptions& options) {
    std::string file = options.token_file.empty() ? env_or("COLDSCAN_TOKEN_FILE", "") : options.token_file;
    if (file.empty()) {
        const std::string token = trimmed(env_or("COLDSCAN_TOKEN", ""));
        return token.empty() ? std::nullopt : std::optional<std::string>(token);
    }
    struct stat info {};
    if (::stat(file.c_str(), &info) != 0) {
        return make_error(Errc::io, errno_message("token file " + file));
    }
    if ((info.st_mode & S_IROTH) != 0) {
        spdlog::warn("the token file {} is readable by other users (chmod o-r {})", file, file);
    }
    std::ifstream in(file, std::ios::binary);
    std::string token(k_max_token_bytes, '\0');
    in.read(token.data(), static_cast<std::streamsize>(token.size()));
    if (in.bad()) {
        return make_error(Errc::io, "cannot read the token file " + file);
    }
    token.resize(static_cast<std::size_t>(in.gcount()));
    token = trimmed(std::move(token));
    if (token.empty()) {
        return make_error(Errc::io, "the token file " + file + " is empty");
    }
    return std::optional<std::string>(std::move(token));
}

Errc code_for(int status) {
    switch (status) {
    case 400:
    case 409:
    case 413:
    case 415:
        return Errc::invalid_argument;
    case 401:
    case 403:
        return Errc::forbidden;
    case 404:
        return Errc::not_found;
    case 422:
        return Errc::unsafe_image;
    case 503:
        return Errc::cancelled;
    default:
        return Errc::internal;
    }
}

bool sleep_unless_stopped(Clock::duration how_long, const std::atomic<bool>& stop) {
    const auto until = Clock::now() + how_long;
    while (Clock::now() < until) {
        if (stop.load()) {
            return false;
        }
        std::this_thread::sleep_for(
            std::min<Clock::duration>(until - Clock::now(), std::chrono::milliseconds(100)));
    }
    return !stop.load();
}

std::size_t terminal_width() {
    winsize size{};
    if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 10) {
        return size.ws_col;
    }
    return 80;
}

} // namespace

void add_client_options(CLI::App& command, ClientOptions& options) {
    command.add_option(
        "--server", options.server,
        "The scan service: HOST:PORT, http://HOST:PORT, https://HOST:PORT or unix:/path (default: "
        "$COLDSCAN_SERVER, else http://127.0.0.1:8731)");
    command.add_option(
        "--token-file", options.token_file,
        "File holding the API's bearer token (default: $COLDSCAN_TOKEN_FILE; $COLDSCAN_TOKEN may "
        "hold the token itself)");
}

ApiClient::ApiClient(std::string url, std::unique_ptr<httplib::Client> client)
    : m_url(std::move(url)), m_client(std::move(client)) {}
ApiClient::ApiClient(ApiClient&&) noexcept = default;
ApiClient& ApiClient::operator=(ApiClient&&) noexcept = default;
ApiClient::~ApiClient() = default;

Expected<ApiClient> ApiClient::create(const ClientOptions& options) {
    std::string url = options.server.empty() ? env_or("COLDSCAN_SERVER", k_default_server) : options.server;
    if (!url.starts_with("unix:") && url.find("://") == std::string::npos &&
        url.find('/') == std::string::npos && url.find(':') != std::string::npos) {
        url = "http://" + url; // HOST:PORT, as the service's `listen` takes it
    }
    std::unique_ptr<httplib::Client> client;
    try {
        if (url.starts_with("unix:")) {
            const std::string path = url.substr(5);
            if (!path.starts_with('/')) {
                return make_error(Errc::invalid_argument, "--server: " + url + " is not unix:/ABSOLUTE/PATH");
            }
            client = std::make_unique<httplib::Client>(path, 80);
            client->set_address_family(AF_UNIX);
        } else if (url.starts_with("http://") || url.starts_with("https://")) {
            while (url.ends_with('/')) {
                url.pop_back();
            }
            const std::size_t host_start = url.find("://") + 3;
            if (url.size() == host_start || url.find('/', host_start) != std::string::npos) {
                return make_error(Errc::invalid_argument,
                                  "--server: " + url + " must be http(s)://HOST[:PORT], without a path");
            }
            client = std::make_unique<httplib::Client>(url);
            if (!client->is_valid()) {
                return make_error(Errc::invalid_argument, "--server: " + url + " is not a usable URL");
            }
        } else {
            return make_error(Errc::invalid_argument,
                              "--server: " + url +
                                  " is not HOST:PORT, http://HOST:PORT, https://HOST:PORT or unix:/path");
        }
    } catch (const std::exception& e) {
        return make_error(Errc::invalid_argument, "--server: " + url + ": " + e.what());
    }
    auto token = read_token(options);
    if (!token) {
        return std::unexpected(token.error());
    }
    if (*token) {
        client->set_bearer_token_auth(**token);
    }
    client->set_connection_timeout(5);
    client->set_read_timeout(600); // submitting many images runs the safety gate on each
    client->set_write_timeout(60);
    return ApiClient(std::move(url), std::move(client));
}

bool ApiClient::unreachable(const Error& error) {
    return error.code == Errc::io && error.message.starts_with(k_unreachable_prefix);
}

Expected<std::string> ApiClient::call(std::string_view method, const std::string& path,
                                      const std::string* body) {
    for (int attempt = 0;; ++attempt) {
        httplib::Result result{nullptr, httplib::Error::Unknown};
        try {
            if (method == "GET") {
                result = m_client->Get(path);
            } else if (method == "POST") {
                result =
                    m_client->Post(path, body != nullptr ? *body : std::string("{}"), "application/json");
            } else {
                result = m_client->Delete(path);
            }
        } catch (const std::exception& e) {
            return make_error(Errc::io, "no answer from the scan service at " + m_url + ": " + e.what());
        }
        if (!result) {
            const httplib::Error error = result.error();
            if (error == httplib::Error::Connection || error == httplib::Error::ConnectionTimeout ||
                error == httplib::Error::BindIPAddress) {
                return make_error(Errc::io, std::string(k_unreachable_prefix) + m_url +
                                                " (is `coldscan serve` running?)");
            }
            return make_error(Errc::io, "no answer from the scan service at " + m_url + ": " +
                                            httplib::to_string(error));
        }
        const int status = result->status;
        if (status == 429 && attempt < 5) {
            std::uint32_t seconds = 1;
            const std::string retry_after = result->get_header_value("Retry-After");
            (void)std::from_chars(retry_after.data(), retry_after.data() + retry_after.size(), seconds);
            std::this_thread::sleep_for(std::chrono::seconds(std::clamp<std::uint32_t>(seconds, 1, 30)));
            continue;
        }
        if (status >= 200 && status < 300) {
            return std::move(result->body);
        }
        std::string message =
            scheduler::api::error_message(result->body)
                .value_or("the scan service at " + m_url + " answered HTTP " + std::to_string(status));
        if (status == 401) {
            message += " (give it with --token-file FILE, $COLDSCAN_TOKEN_FILE or $COLDSCAN_TOKEN)";
        }
        return make_error(code_for(status), std::move(message));
    }
}

Expected<std::string> ApiClient::get(const std::string& path) {
    return call("GET", path, nullptr);
}

Expected<std::string> ApiClient::post(const std::string& path, const std::string& body) {
    return call("POST", path, &body);
}

Expected<std::string> ApiClient::remove(const std::string& path) {
    return call("DELETE", path, nullptr);
}

void print_client_error(const Error& error) {
    if (ApiClient::unreachable(error)) {
        std::fprintf(stderr, "coldscan: %s\n", printable(error.message).c_str());
        return;
    }
    spdlog::error("{}", printable(error.message));
}

std::string absolute_target(const std::string& target) {
    if (target.starts_with("libvirt:") || target.find("://") != std::string::npos) {
        return target;
    }
    const std::filesystem::path path(target);
    if (path.is_absolute()) {
        return target;
    }
    std::error_code ec;
    const auto absolute = std::filesystem::absolute(path, ec);
    return ec ? target : absolute.string();
}

std::string requester() {
    std::string user = "uid " + std::to_string(::geteuid());
    std::string buffer(16384, '\0');
    passwd entry{};
    passwd* found = nullptr;
    if (::getpwuid_r(::geteuid(), &entry, buffer.data(), buffer.size(), &found) == 0 && found != nullptr) {
        user = found->pw_name;
    }
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0) {
        return user;
    }
    return user + "@" + host;
}

Expected<Submitted> submit(ApiClient& client, const scheduler::api::ScanSubmission& submission) {
    auto body = client.post("/v1/scans", scheduler::api::scan_body(submission));
    if (!body) {
        return std::unexpected(body.error());
    }
    auto jobs = scheduler::api::parse_jobs_body(*body);
    if (!jobs) {
        return make_error(Errc::internal, "the scan service's answer is not a list of jobs");
    }
    return Submitted{std::move(*jobs), std::move(*body)};
}

std::string job_summary(const JobView& job) {
    const auto& record = job.record;
    std::string text;
    switch (record.status) {
    case JobStatus::queued:
        text = record.attempts == 0 ? "queued"
                                    : "queued again after " + std::to_string(record.attempts) +
                                          " failed attempt(s): " + record.last_error;
        break;
    case JobStatus::running:
    case JobStatus::paused:
        text = std::string(to_string(record.status));
        if (job.progress) {
            text += ": " + (job.progress->phase.empty() ? std::string("starting") : job.progress->phase) +
                    ", " + std::to_string(job.progress->files_done) + " files, " +
                    format_bytes(job.progress->bytes_done) + ", " +
                    format_duration(std::chrono::duration<double>(job.progress->seconds));
        }
        break;
    case JobStatus::succeeded:
        if (!job.verdict) {
            text = "succeeded";
        } else if (job.verdict->detections > 0 || job.verdict->exit_status == 1) {
            text = std::to_string(job.verdict->detections) +
                   (job.verdict->detections == 1 ? " detection, " : " detections, ") +
                   std::to_string(job.verdict->files) + " files";
        } else if (job.verdict->exit_status == 0) {
            text = "clean, " + std::to_string(job.verdict->files) + " files";
            if (job.verdict->limit_exceeded > 0) {
                text += "; warning: " + std::to_string(job.verdict->limit_exceeded) +
                        " not scanned in full (limits)";
            }
        } else {
            text = "not fully scanned: " + std::to_string(job.verdict->not_fully_scanned) + " of " +
                   std::to_string(job.verdict->files) + " files (" + job.verdict->status + ")";
        }
        break;
    case JobStatus::failed:
        text = "failed: " + record.last_error;
        break;
    case JobStatus::dead_letter:
        text =
            "dead letter after " + std::to_string(record.attempts) + " failed attempts: " + record.last_error;
        break;
    case JobStatus::cancelled:
        text = "cancelled";
        break;
    }
    return printable(text);
}

Expected<WaitResult> wait_for_jobs(ApiClient& client, const std::vector<std::string>& ids,
                                   std::vector<JobView> known, std::optional<std::chrono::seconds> timeout,
                                   const std::atomic<bool>& stop) {
    WaitResult out;
    // What the service said about each job so far (known: the answer to the submission).
    std::vector<bool> seen(ids.size(), known.size() == ids.size());
    if (known.size() == ids.size()) {
        out.jobs = std::move(known);
    } else {
        out.jobs.resize(ids.size());
        for (std::size_t i = 0; i < ids.size(); ++i) {
            out.jobs[i].record.id = ids[i];
        }
    }
    out.bodies.resize(out.jobs.size());
    for (std::size_t i = 0; i < out.jobs.size(); ++i) {
        out.bodies[i] = scheduler::api::job_body(out.jobs[i]);
    }
    const auto done = [&](std::size_t i) {
        return seen[i] && scheduler::is_finished(out.jobs[i].record.status);
    };
    const bool show_progress = ::isatty(STDERR_FILENO) == 1;
    bool progress_shown = false;
    const auto clear_progress = [&] {
        if (progress_shown) {
            std::fputs("\r\033[K", stderr);
            progress_shown = false;
        }
    };
    const auto start = Clock::now();
    bool unreachable = false; // since unreachable_since
    Clock::time_point unreachable_since{};
    bool asked = false;
    for (;;) {
        std::size_t finished = 0;
        for (std::size_t i = 0; i < out.jobs.size(); ++i) {
            finished += done(i) ? 1 : 0;
        }
        if (finished == out.jobs.size()) {
            break;
        }
        if (timeout && Clock::now() - start >= *timeout) {
            out.timed_out = true;
            break;
        }
        // Once a second, never faster; jobs nobody has asked about yet are asked at once.
        const bool ask_now = !asked && std::ranges::find(seen, false) != seen.end();
        if ((!ask_now && !sleep_unless_stopped(std::chrono::seconds(1), stop)) || stop.load()) {
            out.interrupted = true;
            break;
        }
        asked = true;
        for (std::size_t i = 0; i < out.jobs.size(); ++i) {
            if (done(i)) {
                continue;
            }
            auto body = client.get("/v1/scans/" + out.jobs[i].record.id);
            if (!body) {
                if (!ApiClient::unreachable(body.error())) {
                    clear_progress();
                    return std::unexpected(body.error());
                }
                if (std::ranges::find(seen, true) == seen.end()) {
                    clear_progress();
                    return std::unexpected(body.error()); // never reached: no service is there
                }
                if (!unreachable) {
                    unreachable = true;
                    unreachable_since = Clock::now();
                    clear_progress();
                    spdlog::warn("{}; trying again for a minute", body.error().message);
                } else if (Clock::now() - unreachable_since > std::chrono::minutes(1)) {
                    clear_progress();
                    return std::unexpected(body.error());
                }
                break; // the rest of this round
            }
            unreachable = false;
            auto job = scheduler::api::parse_job_body(*body);
            if (!job) {
                clear_progress();
                return make_error(Errc::internal,
                                  "the scan service's answer is not a job: " + job.error().message);
            }
            out.jobs[i] = std::move(*job);
            out.bodies[i] = std::move(*body);
            seen[i] = true;
        }
        if (show_progress) {
            const JobView* current = nullptr;
            for (std::size_t i = 0; i < out.jobs.size(); ++i) {
                if (!done(i) && (current == nullptr || (current->record.status != JobStatus::running &&
                                                        out.jobs[i].record.status == JobStatus::running))) {
                    current = &out.jobs[i];
                }
            }
            std::size_t now_finished = 0;
            for (std::size_t i = 0; i < out.jobs.size(); ++i) {
                now_finished += done(i) ? 1 : 0;
            }
            std::string line = "waiting: " + std::to_string(now_finished) + "/" +
                               std::to_string(out.jobs.size()) + " finished";
            if (current != nullptr) {
                line += "; " + current->record.id + " " + job_summary(*current);
            }
            const std::size_t width = terminal_width() - 1;
            if (line.size() > width) {
                line.resize(width);
            }
            std::fprintf(stderr, "\r\033[K%s", line.c_str());
            std::fflush(stderr);
            progress_shown = true;
        }
    }
    clear_progress();
    return out;
}

void print_table(const std::vector<std::vector<std::string>>& rows) {
    std::vector<std::size_t> widths;
    for (const auto& row : rows) {
        widths.resize(std::max(widths.size(), row.size()), 0);
        for (std::size_t i = 0; i + 1 < row.size(); ++i) {
            widths[i] = std::max(widths[i], row[i].size());
        }
    }
    for (const auto& row : rows) {
        std::string line;
        for (std::size_t i = 0; i < row.size(); ++i) {
            line += row[i];
            if (i + 1 < row.size()) {
                line.append(widths[i] - row[i].size() + 2, ' ');
            }
        }
        std::printf("%s\n", line.c_str());
    }
}

void print_json_text(const std::string& text) {
    const auto parsed = nlohmann::ordered_json::parse(text, nullptr, false);
    std::printf("%s\n",
                parsed.is_discarded()
                    ? text.c_str()
                    : parsed.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace).c_str());
}

} // namespace coldscan::cli
