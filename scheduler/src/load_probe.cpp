#include "coldscan/scheduler/load_probe.hpp"

#include "coldscan/common/subprocess.hpp"
#include "coldscan/common/unique_fd.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <exception>
#include <fcntl.h>
#include <httplib.h>
#include <optional>
#include <unistd.h>

namespace coldscan::scheduler {
namespace {

// A load is a short number; /proc/pressure files are under 200 bytes.
constexpr std::size_t k_max_answer_bytes = 4096;

constexpr std::string_view k_blanks = " \t\r\n";

std::string_view trim(std::string_view text) {
    const auto first = text.find_first_not_of(k_blanks);
    if (first == std::string_view::npos) {
        return {};
    }
    return text.substr(first, text.find_last_not_of(k_blanks) - first + 1);
}

// The whole of text as a finite number; nullopt for anything else.
std::optional<double> parse_number(std::string_view text) {
    double value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || error != std::errc() || end != text.data() + text.size() || !std::isfinite(value)) {
        return std::nullopt;
    }
    return value;
}

// Quoted and cut short, for error messages about text a probe sent.
std::string shown(std::string_view text) {
    constexpr std::size_t k_shown = 40;
    std::string result = "\"";
    for (const char c : text.substr(0, k_shown)) {
        result += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
    }
    result += text.size() > k_shown ? "...\"" : "\"";
    return result;
}

// A small file's text (at most k_max_answer_bytes); nullopt when it does not exist.
Expected<std::optional<std::string>> read_small_file(const std::filesystem::path& path) {
    const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        if (errno == ENOENT) {
            return std::nullopt;
        }
        return make_error(Errc::io, errno_message("cannot open " + path.string()));
    }
    std::string text;
    std::array<char, 512> buffer{};
    while (text.size() < k_max_answer_bytes) {
        const ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return make_error(Errc::io, errno_message("cannot read " + path.string()));
        }
        if (n == 0) {
            break;
        }
        text.append(buffer.data(), static_cast<std::size_t>(n));
    }
    return text;
}

Expected<double> read_psi(const std::filesystem::path& pressure_dir) {
    double load = 0;
    // io is required (it says whether this kernel has PSI at all); cpu is older kernels' gap.
    for (const char* name : {"io", "cpu"}) {
        const auto path = pressure_dir / name;
        auto text = read_small_file(path);
        if (!text) {
            return std::unexpected(std::move(text.error()));
        }
        if (!*text) {
            if (std::string_view(name) == "io") {
                return make_error(Errc::io, path.string() +
                                                " does not exist (pressure stall information needs "
                                                "Linux 4.20 or later with CONFIG_PSI, and psi=1)");
            }
            continue;
        }
        auto value = parse_psi(**text);
        if (!value) {
            return make_error(Errc::invalid_argument, path.string() + ": " + value.error().message);
        }
        load = std::max(load, *value);
    }
    return load;
}

// "http://host:port/path?query" -> {"http://host:port", "/path?query"}.
std::pair<std::string, std::string> split_url(const std::string& url) {
    const auto authority = url.find("://");
    const auto path =
        authority == std::string::npos ? std::string::npos : url.find_first_of("/?#", authority + 3);
    if (path == std::string::npos) {
        return {url, "/"};
    }
    const std::string_view rest = std::string_view(url).substr(path);
    std::string target;
    if (!rest.starts_with('/')) {
        target = '/'; // "http://host?query"
    }
    target += rest.substr(0, rest.find('#'));
    return {url.substr(0, path), std::move(target)};
}

Expected<double> read_http(const HttpProbe& probe, std::chrono::seconds timeout) {
#ifndef CPPHTTPLIB_OPENSSL_SUPPORT
    if (probe.url.starts_with("https://")) {
        return make_error(Errc::unsupported,
                          "load probe " + probe.url +
                              ": this build's cpp-httplib has no TLS support (OpenSSL); use "
                              "http:// or a command probe");
    }
#endif
    const auto [scheme_host_port, path] = split_url(probe.url);
    try {
        httplib::Client client(scheme_host_port);
        if (!client.is_valid()) {
            return make_error(Errc::invalid_argument,
                              "load probe " + probe.url + ": not a URL cpp-httplib can use");
        }
        client.set_connection_timeout(timeout);
        client.set_read_timeout(timeout);
        client.set_write_timeout(timeout);
        client.set_follow_location(false);
        // Each socket call has its own timeout; the deadline also bounds a server that trickles its body.
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        std::string body;
        bool too_long = false;
        bool too_slow = false;
        auto result = client.Get(path, [&](const char* data, std::size_t size) {
            if (body.size() + size > k_max_answer_bytes) {
                too_long = true;
                return false;
            }
            if (std::chrono::steady_clock::now() > deadline) {
                too_slow = true;
                return false;
            }
            body.append(data, size);
            return true;
        });
        if (too_long) {
            return make_error(Errc::invalid_argument,
                              "load probe " + probe.url + ": the answer is longer than " +
                                  std::to_string(k_max_answer_bytes) + " bytes, not a load");
        }
        if (too_slow) {
            return make_error(Errc::timeout, "load probe " + probe.url + ": no complete answer within " +
                                                 std::to_string(timeout.count()) + " s");
        }
        if (!result) {
            // A read that timed out comes back as Error::Read; the clock tells it from a broken connection.
            const auto error = result.error();
            const bool out_of_time = std::chrono::steady_clock::now() >= deadline;
            const Errc code =
                error == httplib::Error::ConnectionTimeout || out_of_time ? Errc::timeout : Errc::io;
            return make_error(code, "load probe " + probe.url + ": " + httplib::to_string(error));
        }
        if (result->status != 200) {
            return make_error(Errc::io,
                              "load probe " + probe.url + ": HTTP status " + std::to_string(result->status));
        }
        auto load = parse_load(body);
        if (!load) {
            return make_error(Errc::invalid_argument,
                              "load probe " + probe.url + ": " + load.error().message);
        }
        return *load;
    } catch (const std::exception& e) {
        return make_error(Errc::io, "load probe " + probe.url + ": " + e.what());
    } catch (...) {
        return make_error(Errc::io, "load probe " + probe.url + ": cpp-httplib failed");
    }
}

Expected<double> read_command(const CommandProbe& probe, std::chrono::seconds timeout) {
    if (probe.argv.empty()) {
        return make_error(Errc::invalid_argument, "load probe: an empty command");
    }
    const std::string& program = probe.argv.front();
    ProcessLimits limits;
    limits.wall_time = timeout;
    limits.cpu_time = std::max(timeout, std::chrono::seconds(1));
    limits.max_output_bytes = 64U << 10;
    auto result = run_bounded(probe.argv, limits);
    if (!result) {
        return make_error(result.error().code, "load probe " + program + ": " + result.error().message);
    }
    if (result->term_signal != 0) {
        return make_error(Errc::io, "load probe " + program + ": killed by signal " +
                                        std::to_string(result->term_signal));
    }
    if (result->exit_code != 0) {
        const std::string_view err = result->err;
        const auto first_line = trim(err.substr(0, err.find('\n')));
        return make_error(Errc::io, "load probe " + program + ": exited with status " +
                                        std::to_string(result->exit_code) +
                                        (first_line.empty() ? "" : ": " + std::string(first_line)));
    }
    auto load = parse_load(result->out);
    if (!load) {
        return make_error(Errc::invalid_argument, "load probe " + program + ": " + load.error().message);
    }
    return *load;
}

} // namespace

Expected<double> parse_psi(std::string_view text) {
    while (!text.empty()) {
        const auto end = text.find('\n');
        const std::string_view line = text.substr(0, end);
        text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
        if (!line.starts_with("some ")) {
            continue;
        }
        constexpr std::string_view k_avg10 = " avg10=";
        const auto at = line.find(k_avg10);
        if (at == std::string_view::npos) {
            break;
        }
        const auto field = line.substr(at + k_avg10.size());
        const auto percent = parse_number(field.substr(0, field.find(' ')));
        if (!percent || *percent < 0 || *percent > 100) {
            return make_error(Errc::invalid_argument,
                              "pressure: avg10 is not a percentage in " + shown(line));
        }
        return *percent / 100;
    }
    return make_error(Errc::invalid_argument, "pressure: no \"some avg10=\" line");
}

Expected<double> parse_load(std::string_view text) {
    const auto value = parse_number(trim(text));
    if (!value || *value < 0 || *value > 1) {
        return make_error(Errc::invalid_argument, shown(text) + " is not a load (a number from 0 to 1)");
    }
    return *value + 0.0; // -0 reads as 0
}

Expected<double> read_load(const LoadProbe& probe, std::chrono::seconds timeout,
                           const std::filesystem::path& pressure_dir) {
    return std::visit(
        [&](const auto& which) -> Expected<double> {
            using Probe = std::decay_t<decltype(which)>;
            if constexpr (std::is_same_v<Probe, PsiProbe>) {
                return read_psi(pressure_dir);
            } else if constexpr (std::is_same_v<Probe, HttpProbe>) {
                return read_http(which, timeout);
            } else {
                return read_command(which, timeout);
            }
        },
        probe);
}

} // namespace coldscan::scheduler
