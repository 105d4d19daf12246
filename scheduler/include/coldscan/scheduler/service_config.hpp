// The configuration of the scan service (`coldscan serve --config FILE`), read from a TOML file.
// scheduler/dist/coldscan.toml.example documents every key, its meaning and its default; in short:
//   [service]          state_dir (required), threads, max_scans, max_attempts, shutdown_grace
//   [api]              listen, auth_token, max_request_bytes, requests_per_second, request_burst
//   [signatures]       clamav_db, yara_rules, sandbox
//   [limits]           max_file_size, max_scan_size, max_recursion, max_files, max_scan_time, yara_timeout
//   [libvirt]          uri
//   [fleet]            database, password_file, node, lease_seconds (several nodes share PostgreSQL)
//   [[host]]           name, max_concurrent_scans, max_read_per_second, pressure_threshold, load_probe
//   [[datastore]]      name, roots, hosts, max_concurrent_scans, max_read_per_second, images
//   [[nightly_window]] time ("22:00-06:00", UTC), days (["mon-fri"], ["sat", "sun"]; default every day)
//
// Loading is strict, because a typo that is silently ignored is a scan storm or an open API later: unknown
// keys, wrong types, zero or negative caps, relative paths, unknown hosts, bad times and days and sizes are
// all refused. Every problem in the file is reported (not only the first), one line each, as
// "FILE:LINE: ..." naming the section and the key, sorted by line.
// Thread rule: plain data, immutable after loading.
#pragma once

#include "coldscan/common/error.hpp"
#include "coldscan/reports/report.hpp"
#include "coldscan/scheduler/inventory.hpp"
#include "coldscan/scheduler/window.hpp"
#include "coldscan/signatures/scan_limits.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace coldscan::scheduler {

// Where the HTTP API listens: an IP address and a port, or a Unix socket.
struct ListenAddress {
    std::string address = "127.0.0.1"; // an IPv4 or IPv6 literal (no brackets); empty for a Unix socket
    std::uint16_t port = 8731;
    std::filesystem::path unix_socket; // absolute; set only for "unix:/path"

    // A Unix socket, 127.0.0.0/8, ::1 or ::ffff:127.x.x.x.
    [[nodiscard]] bool loopback() const;
    // "127.0.0.1:8731", "[::1]:8731", "unix:/run/coldscan/api.sock".
    [[nodiscard]] std::string to_string() const;
};

// "127.0.0.1:8731", "[::1]:8731", "0.0.0.0:8731", "unix:/run/coldscan/api.sock" (IP literals only, port
// 1..65535, an absolute socket path); nullopt otherwise.
[[nodiscard]] std::optional<ListenAddress> parse_listen_address(std::string_view text);

// How the service reads a host's load (0..1; above the host's pressure_threshold it starts no new scans).
struct PsiProbe {}; // "psi": this machine's /proc/pressure (for the host coldscan itself runs on)
struct HttpProbe {  // "http://..." or "https://...": a GET answers the load as text
    std::string url;
};
struct CommandProbe { // a command (absolute program path) that prints the load on stdout; run without a shell
    std::vector<std::string> argv;
};
using LoadProbe = std::variant<PsiProbe, HttpProbe, CommandProbe>;

// The HTTP API: where it listens, who may ask, how much and how often.
struct ApiConfig {
    ListenAddress listen;
    // Clients send "Authorization: Bearer TOKEN". Required when listen is not loopback; when set, required
    // on loopback too. At least 16 visible ASCII characters.
    std::optional<std::string> auth_token;
    std::uint64_t max_request_bytes = 1ULL << 20; // larger request bodies are refused (413)
    std::uint32_t requests_per_second = 20;       // per client address (429 beyond it)
    std::uint32_t request_burst = 40;             // requests a client may send at once
};

// [fleet]: this node is one of several that share their queue, caps, verdicts and findings through one
// PostgreSQL database (docs/fleet.md). Absent: the node keeps everything in its own state_dir.
struct FleetConfig {
    // A libpq connection URI ("postgresql://user@db.example/coldscan?sslmode=verify-full"), never holding a
    // password: that comes from password_file, or from libpq's own PGPASSWORD / PGPASSFILE.
    std::string database;
    std::optional<std::filesystem::path> password_file; // absolute; other users must not read it
    std::string node;                                   // unique in the fleet; default: this host's name
    std::chrono::seconds lease{30}; // a running job's lease, renewed by heartbeat well before it runs out
};

struct ServiceConfig {
    // parse_service_config() builds one; an Inventory is only ever made by Inventory::create.
    explicit ServiceConfig(Inventory hosts_and_datastores) : inventory(std::move(hosts_and_datastores)) {}

    // [service]
    std::filesystem::path state_dir; // absolute: job queue, verdict cache; created by the service
    unsigned threads = 0;            // scan threads; 0 = all cores
    unsigned max_scans = 0;          // scans this node runs at once (gate scans aside); 0 = the caps'

    unsigned max_attempts = 3;               // a job that failed this many times is dead-lettered
    std::chrono::seconds shutdown_grace{60}; // on SIGTERM, running scans get this long to finish
    // [api]
    ApiConfig api;
    // [signatures]
    std::optional<std::filesystem::path> clamav_db; // none: /var/lib/clamav when it holds databases
    std::vector<std::filesystem::path> yara_rules;  // files or folders
    bool sandbox = true; // the engines in confined worker processes (signatures/engine_sandbox.hpp)
    // [limits]: the defaults are `coldscan scan`'s.
    signatures::ScanLimits limits;
    // [limits] policy: limit hits are warnings (the gate allows) or failures (the gate denies).
    reports::LimitPolicy limit_policy = reports::LimitPolicy::warn;
    // [libvirt]: list domains and their disks, read-only ("qemu:///system", "test:///path/file.xml").
    std::optional<std::string> libvirt_uri;
    // [fleet]
    std::optional<FleetConfig> fleet;
    // [[host]] and [[datastore]], validated by Inventory::create.
    Inventory inventory;
    std::map<std::string, LoadProbe, std::less<>> load_probes; // by host name; hosts without one are absent
    // By datastore name: glob patterns (fnmatch, '*' stays within one folder) relative to each of its roots;
    // datastores without patterns are absent.
    std::map<std::string, std::vector<std::string>, std::less<>> image_patterns;
    // By datastore name: the format of the images its patterns find (images_format); absent: detected.
    std::map<std::string, std::string, std::less<>> image_formats;
    // [[nightly_window]]; empty: nightly jobs may start at any time (SchedulerOptions::nightly_windows).
    std::vector<Window> nightly_windows;
};

// This host's name when it is a good node name ([fleet] node's rules), else "node".
[[nodiscard]] std::string default_node_name();

// Parses toml_text; source_name (usually the file's path) starts every error line.
// Errc::invalid_argument: malformed TOML ("NAME:LINE:COLUMN: ...") or any value the file must not hold
// ("NAME:LINE: ..."; every problem found, one per line).
[[nodiscard]] Expected<ServiceConfig> parse_service_config(std::string_view toml_text,
                                                           std::string_view source_name);
// Reads and parses file. Errc::io: it cannot be read; Errc::invalid_argument: as parse_service_config, or
// the file sets [api] auth_token and other users may read it (chmod o-r).
[[nodiscard]] Expected<ServiceConfig> load_service_config(const std::filesystem::path& file);

} // namespace coldscan::scheduler
