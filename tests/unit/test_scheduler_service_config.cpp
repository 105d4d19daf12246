#include "coldscan/common/temp_dir.hpp"
#include "coldscan/scheduler/service_config.hpp"
#include "test_scheduler_support.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

using namespace coldscan;
using namespace coldscan::scheduler;
using namespace std::chrono_literals;
using coldscan::test::at;

namespace {

// Ten lines: the smallest config the service accepts. Text appended to it starts on line 11, inside the
// [[datastore]] table unless it opens a section of its own.
constexpr std::string_view k_minimal = R"([service]
state_dir = "/var/lib/coldscan"

[[host]]
name = "esx1"

[[datastore]]
name = "ds1"
roots = ["/vmfs/ds1"]
hosts = ["esx1"]
)";

std::string with(std::string_view extra) {
    std::string text(k_minimal);
    text += extra;
    return text;
}

// text with line inserted after the first occurrence of after (a whole line).
std::string inserted(std::string text, std::string_view after, std::string_view line) {
    const auto at = text.find(after);
    REQUIRE(at != std::string::npos);
    return text.insert(at + after.size(), line);
}

// k_minimal with line as line 3, in [service].
std::string in_service(std::string_view line) {
    return inserted(std::string(k_minimal), "state_dir = \"/var/lib/coldscan\"\n", line);
}

// k_minimal with line as line 6, in the [[host]] esx1.
std::string in_host(std::string_view line) {
    return inserted(std::string(k_minimal), "name = \"esx1\"\n", line);
}

// k_minimal with the datastore's hosts line (line 10) replaced.
std::string with_hosts(std::string_view hosts_line) {
    std::string text(k_minimal);
    const std::string_view old = "hosts = [\"esx1\"]";
    return text.replace(text.find(old), old.size(), hosts_line);
}

std::vector<std::string> strings_of(const std::vector<std::filesystem::path>& paths) {
    std::vector<std::string> strings;
    for (const auto& path : paths) {
        strings.push_back(path.string());
    }
    return strings;
}

ServiceConfig accepted(std::string_view text) {
    auto config = parse_service_config(text, "test.toml");
    INFO((config ? std::string() : config.error().message));
    REQUIRE(config.has_value());
    return std::move(*config);
}

// The message of a refused config; fails the test when it was accepted.
std::string refusal(std::string_view text) {
    auto config = parse_service_config(text, "test.toml");
    REQUIRE_FALSE(config.has_value());
    CHECK(config.error().code == Errc::invalid_argument);
    return config.error().message;
}

std::filesystem::path example_path() {
    return std::filesystem::path(COLDSCAN_SOURCE_DIR) / "scheduler/dist/coldscan.toml.example";
}

void write_config(const std::filesystem::path& path, std::string_view text, std::filesystem::perms perms) {
    {
        std::ofstream out(path, std::ios::binary);
        out << text;
        REQUIRE(out.good());
    }
    std::filesystem::permissions(path, perms);
}

} // namespace

TEST_CASE("load_service_config", "[scheduler]") {
    SECTION("the shipped example describes its fleet") {
        auto loaded = load_service_config(example_path());
        INFO((loaded ? std::string() : loaded.error().message));
        REQUIRE(loaded.has_value());
        const ServiceConfig& config = *loaded;

        CHECK(config.state_dir.string() == "/var/lib/coldscan");
        CHECK(config.threads == 0);
        CHECK(config.max_attempts == 3);
        CHECK(config.shutdown_grace == 60s);
        CHECK(config.api.listen.to_string() == "127.0.0.1:8731");
        CHECK(config.api.listen.loopback());
        CHECK_FALSE(config.api.auth_token.has_value());
        CHECK(config.api.max_request_bytes == 1ULL << 20);
        CHECK(config.api.requests_per_second == 20);
        CHECK(config.api.request_burst == 40);
        REQUIRE(config.clamav_db.has_value());
        CHECK(config.clamav_db->string() == "/var/lib/clamav");
        CHECK(strings_of(config.yara_rules) ==
              std::vector<std::string>{"/etc/coldscan/yara/webshells.yar", "/etc/coldscan/yara/ransomware"});
        CHECK_FALSE(config.libvirt_uri.has_value());

        // The limits it spells out are `coldscan scan`'s defaults.
        const signatures::ScanLimits defaults;
        CHECK(config.limits.max_file_size == 256ULL << 20);
        CHECK(config.limits.max_file_size == defaults.max_file_size);
        CHECK(config.limits.max_scan_size == 1ULL << 30);
        CHECK(config.limits.max_scan_size == defaults.max_scan_size);
        CHECK(config.limits.max_recursion == 17);
        CHECK(config.limits.max_files == 10'000);
        CHECK(config.limits.max_scan_time == 120s);
        CHECK(config.limits.yara_timeout == 60s);

        const auto& hosts = config.inventory.hosts();
        REQUIRE(hosts.size() == 3);
        CHECK(hosts[0].name == "kvm01");
        CHECK(hosts[0].max_concurrent_scans == 2);
        CHECK(hosts[0].max_read_bytes_per_second == 200ULL << 20);
        CHECK(hosts[0].pressure_threshold == 0.7);
        CHECK(hosts[1].name == "kvm02");
        CHECK(hosts[1].pressure_threshold == 0.6);
        CHECK(hosts[2].name == "backup01");
        CHECK(hosts[2].max_concurrent_scans == 3);
        CHECK(hosts[2].max_read_bytes_per_second == 0);
        CHECK(hosts[2].pressure_threshold == 0.8);

        REQUIRE(config.load_probes.size() == 3);
        const auto* http = std::get_if<HttpProbe>(&config.load_probes.at("kvm01"));
        REQUIRE(http != nullptr);
        CHECK(http->url == "http://kvm01.example.internal:9273/load");
        const auto* command = std::get_if<CommandProbe>(&config.load_probes.at("kvm02"));
        REQUIRE(command != nullptr);
        CHECK(command->argv ==
              std::vector<std::string>{"/usr/local/libexec/coldscan/ssh-load", "kvm02.example.internal"});
        CHECK(std::holds_alternative<PsiProbe>(config.load_probes.at("backup01")));

        const auto& datastores = config.inventory.datastores();
        REQUIRE(datastores.size() == 2);
        CHECK(datastores[0].name == "nfs-vmstore");
        CHECK(datastores[0].roots == std::vector<std::string>{"/mnt/nfs/vmstore"});
        CHECK(datastores[0].hosts == std::vector<std::string>{"kvm01", "kvm02"});
        CHECK(datastores[0].max_concurrent_scans == 3);
        CHECK(datastores[0].max_read_bytes_per_second == 300ULL << 20);
        CHECK(datastores[1].name == "backup01-local");
        CHECK(datastores[1].roots == std::vector<std::string>{"/srv/backups/vm"});
        CHECK(datastores[1].hosts == std::vector<std::string>{"backup01"});
        CHECK(datastores[1].max_concurrent_scans == 2);
        CHECK(datastores[1].max_read_bytes_per_second == 0);
        CHECK(config.inventory.mounts(0, 0));
        CHECK(config.inventory.mounts(1, 0));
        CHECK_FALSE(config.inventory.mounts(2, 0));
        CHECK(config.inventory.mounts(2, 1));
        CHECK(config.inventory.datastore_of("/mnt/nfs/vmstore/templates/web.qcow2") == 0);
        CHECK(config.image_patterns.at("nfs-vmstore") ==
              std::vector<std::string>{"templates/*.qcow2", "templates/*.vmdk"});
        CHECK(config.image_patterns.at("backup01-local") == std::vector<std::string>{"*/*.qcow2"});

        REQUIRE(config.nightly_windows.size() == 2);
        const Window& weeknights = config.nightly_windows[0];
        CHECK(weeknights.start() == 22h);
        CHECK(weeknights.end() == 6h);
        CHECK(weeknights.days().contains(std::chrono::Monday));
        CHECK(weeknights.days().contains(std::chrono::Friday));
        CHECK_FALSE(weeknights.days().contains(std::chrono::Saturday));
        CHECK_FALSE(weeknights.days().contains(std::chrono::Sunday));
        CHECK(weeknights.contains(at(4, 23)));       // Friday 23:00
        CHECK(weeknights.contains(at(5, 5, 59)));    // Saturday 05:59, Friday's night
        CHECK_FALSE(weeknights.contains(at(0, 12))); // Monday noon
        const Window& weekend = config.nightly_windows[1];
        CHECK(weekend.length() == 24h);
        CHECK(weekend.days().contains(std::chrono::Saturday));
        CHECK(weekend.days().contains(std::chrono::Sunday));
        CHECK_FALSE(weekend.days().contains(std::chrono::Monday));
        CHECK(weekend.contains(at(5, 12))); // Saturday noon
        CHECK(weekend.contains(at(6, 23, 59)));
        CHECK_FALSE(weekend.contains(at(7, 0, 30))); // Monday 00:30
    }
    SECTION("a file that cannot be opened") {
        auto config = load_service_config("/nonexistent/coldscan.toml");
        REQUIRE_FALSE(config.has_value());
        CHECK(config.error().code == Errc::io);
        CHECK(config.error().message == "cannot open /nonexistent/coldscan.toml: No such file or directory");
    }
    SECTION("errors name the file") {
        auto dir = TempDir::create("coldscan-test-config");
        REQUIRE(dir.has_value());
        const auto path = dir->path() / "bad.toml";
        write_config(path, with("max_concurrent_scans = 0\n"), std::filesystem::perms::owner_read);
        auto config = load_service_config(path);
        REQUIRE_FALSE(config.has_value());
        CHECK(config.error().code == Errc::invalid_argument);
        CHECK(config.error().message ==
              path.string() + ":11: [[datastore]] 'ds1' max_concurrent_scans: must be more than 0 (got 0)");
    }
    SECTION("a token in a file other users can read is refused") {
        auto dir = TempDir::create("coldscan-test-config");
        REQUIRE(dir.has_value());
        const auto path = dir->path() / "token.toml";
        const std::string text = with("[api]\nauth_token = \"0123456789abcdef0123\"\n");
        using std::filesystem::perms;
        write_config(path, text,
                     perms::owner_read | perms::owner_write | perms::group_read | perms::others_read);
        auto config = load_service_config(path);
        REQUIRE_FALSE(config.has_value());
        CHECK(config.error().code == Errc::invalid_argument);
        CHECK(config.error().message ==
              path.string() + ": holds [api] auth_token but other users can read it (chmod o-r " +
                  path.string() + ")");
        std::filesystem::permissions(path, perms::owner_read | perms::owner_write | perms::group_read);
        auto readable_by_group = load_service_config(path);
        REQUIRE(readable_by_group.has_value());
        CHECK(readable_by_group->api.auth_token == "0123456789abcdef0123");
    }
}

TEST_CASE("parse_service_config", "[scheduler]") {
    SECTION("defaults") {
        const ServiceConfig config = accepted(k_minimal);
        CHECK(config.state_dir.string() == "/var/lib/coldscan");
        CHECK(config.threads == 0);
        CHECK(config.max_attempts == 3);
        CHECK(config.shutdown_grace == 60s);
        CHECK(config.api.listen.address == "127.0.0.1");
        CHECK(config.api.listen.port == 8731);
        CHECK(config.api.listen.unix_socket.empty());
        CHECK_FALSE(config.api.auth_token.has_value());
        CHECK(config.api.max_request_bytes == 1ULL << 20);
        CHECK(config.api.requests_per_second == 20);
        CHECK(config.api.request_burst == 40);
        CHECK_FALSE(config.clamav_db.has_value());
        CHECK(config.yara_rules.empty());
        CHECK(config.limits.max_file_size == 256ULL << 20);
        CHECK(config.limits.max_scan_size == 1ULL << 30);
        CHECK(config.limits.max_recursion == 17);
        CHECK(config.limits.max_files == 10'000);
        CHECK(config.limits.max_scan_time == 120s);
        CHECK(config.limits.yara_timeout == 60s);
        CHECK_FALSE(config.libvirt_uri.has_value());
        REQUIRE(config.inventory.hosts().size() == 1);
        CHECK(config.inventory.hosts()[0].name == "esx1");
        CHECK(config.inventory.hosts()[0].max_concurrent_scans == 2);
        CHECK(config.inventory.hosts()[0].max_read_bytes_per_second == 0);
        CHECK(config.inventory.hosts()[0].pressure_threshold == 0.7);
        REQUIRE(config.inventory.datastores().size() == 1);
        CHECK(config.inventory.datastores()[0].max_concurrent_scans == 6);
        CHECK(config.inventory.datastores()[0].max_read_bytes_per_second == 0);
        CHECK(config.load_probes.empty());
        CHECK(config.image_patterns.empty());
        CHECK(config.nightly_windows.empty());
    }
    SECTION("every value can be set") {
        const ServiceConfig config = accepted(R"toml([service]
state_dir = "/srv/coldscan/state"
threads = 4
max_scans = 2
max_attempts = 5
shutdown_grace = "2m"

[api]
listen = "[::1]:9000"
max_request_bytes = 65536
requests_per_second = 5
request_burst = 10

[signatures]
clamav_db = "/opt/clamav/main.cvd"
yara_rules = []

[limits]
max_file_size = "64MiB"
max_scan_size = 1073741824
max_recursion = 8
max_files = 500
max_scan_time = "5m"
yara_timeout = 30
policy = "fail"

[libvirt]
uri = "test:///usr/share/libvirt/test-node.xml"

[[host]]
name = "esx1"
max_concurrent_scans = 4
max_read_per_second = "1G"
pressure_threshold = 1
load_probe = "/usr/local/bin/load esx1 --json"

[[datastore]]
name = "datastore1 (2)"
roots = ["/vmfs/volumes/ds1/", "/vmfs/volumes/ds1-archive"]
hosts = ["esx1"]
max_concurrent_scans = 1
max_read_per_second = "50M"

[[nightly_window]]
time = "1:30-24:00"
days = ["FRI-mon", "wed"]
)toml");
        CHECK(config.state_dir.string() == "/srv/coldscan/state");
        CHECK(config.threads == 4);
        CHECK(config.max_scans == 2);
        CHECK(config.max_attempts == 5);
        CHECK(config.shutdown_grace == 120s);
        CHECK(config.api.listen.address == "::1");
        CHECK(config.api.listen.port == 9000);
        CHECK(config.api.listen.loopback());
        CHECK(config.api.max_request_bytes == 65536);
        CHECK(config.api.requests_per_second == 5);
        CHECK(config.api.request_burst == 10);
        REQUIRE(config.clamav_db.has_value());
        CHECK(config.clamav_db->string() == "/opt/clamav/main.cvd");
        CHECK(config.yara_rules.empty());
        CHECK(config.limits.max_file_size == 64ULL << 20);
        CHECK(config.limits.max_scan_size == 1ULL << 30);
        CHECK(config.limits.max_recursion == 8);
        CHECK(config.limits.max_files == 500);
        CHECK(config.limits.max_scan_time == 300s);
        CHECK(config.limits.yara_timeout == 30s);
        CHECK(config.limit_policy == coldscan::reports::LimitPolicy::fail);
        CHECK(accepted(k_minimal).limit_policy == coldscan::reports::LimitPolicy::warn);
        CHECK(config.libvirt_uri == "test:///usr/share/libvirt/test-node.xml");
        const HostSpec& host = config.inventory.hosts().at(0);
        CHECK(host.max_concurrent_scans == 4);
        CHECK(host.max_read_bytes_per_second == 1ULL << 30);
        CHECK(host.pressure_threshold == 1.0);
        const auto* command = std::get_if<CommandProbe>(&config.load_probes.at("esx1"));
        REQUIRE(command != nullptr);
        CHECK(command->argv == std::vector<std::string>{"/usr/local/bin/load", "esx1", "--json"});
        const DatastoreSpec& datastore = config.inventory.datastores().at(0);
        CHECK(datastore.name == "datastore1 (2)");
        CHECK(datastore.roots == std::vector<std::string>{"/vmfs/volumes/ds1", "/vmfs/volumes/ds1-archive"});
        CHECK(datastore.max_concurrent_scans == 1);
        CHECK(datastore.max_read_bytes_per_second == 50ULL << 20);
        REQUIRE(config.nightly_windows.size() == 1);
        const Window& window = config.nightly_windows[0];
        CHECK(window.start() == 90min);
        CHECK(window.length() == 22h + 30min);
        CHECK(window.days().contains(std::chrono::Friday));
        CHECK(window.days().contains(std::chrono::Saturday));
        CHECK(window.days().contains(std::chrono::Sunday));
        CHECK(window.days().contains(std::chrono::Monday));
        CHECK(window.days().contains(std::chrono::Wednesday));
        CHECK_FALSE(window.days().contains(std::chrono::Tuesday));
        CHECK_FALSE(window.days().contains(std::chrono::Thursday));
    }
    SECTION("unknown keys are refused, with the closest known key") {
        CHECK(refusal(with("hots = [\"esx1\"]\n")) ==
              "test.toml:11: unknown key 'hots' in [[datastore]] 'ds1' (did you mean 'hosts'?)");
        CHECK(refusal(with("[[hosts]]\nname = \"esx2\"\n")) ==
              "test.toml:11: unknown key 'hosts' in the top level (did you mean 'host'?)");
        CHECK(refusal(with("[limits]\nmax_filesize = \"1G\"\n")) ==
              "test.toml:12: unknown key 'max_filesize' in [limits] (did you mean 'max_file_size'?)");
        CHECK(refusal(with("[api]\ntoken = \"0123456789abcdef\"\n")) ==
              "test.toml:12: unknown key 'token' in [api]");
        CHECK(refusal(with("[[nightly_window]]\ntime = \"22:00-06:00\"\nday = [\"mon\"]\n")) ==
              "test.toml:13: unknown key 'day' in [[nightly_window]] #1 (did you mean 'days'?)");
    }
    SECTION("wrong types") {
        CHECK(refusal(with("max_concurrent_scans = \"4\"\n")) ==
              "test.toml:11: [[datastore]] 'ds1' max_concurrent_scans: expected an integer, got a string");
        CHECK(refusal(with("[limits]\nmax_files = 1.5\n")) ==
              "test.toml:12: [limits] max_files: expected an integer, got a float");
        CHECK(refusal(with("[signatures]\nyara_rules = \"/etc/rules.yar\"\n")) ==
              "test.toml:12: [signatures] yara_rules: expected an array of strings, got a string");
        CHECK(refusal(with_hosts("hosts = [\"esx1\", 2]")) ==
              "test.toml:10: [[datastore]] 'ds1' hosts: expected a string, got an integer");
        CHECK(
            refusal(with("[limits]\nmax_file_size = true\n")) ==
            "test.toml:12: [limits] max_file_size: expected a size like \"256M\" or a number of bytes, got a "
            "boolean");
        CHECK(refusal(with("[service]\n")).starts_with("test.toml:11:")); // TOML allows one [service]
        CHECK(refusal("api = 3\n" + with("")) ==
              "test.toml:1: api: expected a section [api], got an integer");
        CHECK(refusal(with("[host]\nname = \"esx2\"\n")).starts_with("test.toml:11:"));
    }
    SECTION("zero and negative caps") {
        CHECK(refusal(with("max_concurrent_scans = 0\n")) ==
              "test.toml:11: [[datastore]] 'ds1' max_concurrent_scans: must be more than 0 (got 0)");
        CHECK(refusal(with("max_read_per_second = 0\n")) ==
              "test.toml:11: [[datastore]] 'ds1' max_read_per_second: must be more than 0");
        CHECK(refusal(with("max_read_per_second = -100\n")) ==
              "test.toml:11: [[datastore]] 'ds1' max_read_per_second: must be more than 0 (got -100)");
        CHECK(refusal(with("[limits]\nmax_scan_time = 0\n")) ==
              "test.toml:12: [limits] max_scan_time: must be more than 0 seconds (got 0)");
        CHECK(refusal(with("[limits]\nyara_timeout = 100000\n")) ==
              "test.toml:12: [limits] yara_timeout: must be at most 86400 seconds (got 100000)");
        CHECK(refusal(with("[limits]\nmax_recursion = -1\n")) ==
              "test.toml:12: [limits] max_recursion: must be more than 0 (got -1)");
        CHECK(refusal(with("[api]\nrequests_per_second = 0\n")) ==
              "test.toml:12: [api] requests_per_second: must be more than 0 (got 0)");
        CHECK(refusal(in_service("max_attempts = 0\n")) ==
              "test.toml:3: [service] max_attempts: must be more than 0 (got 0)");
        CHECK(refusal(in_service("threads = -2\n")) ==
              "test.toml:3: [service] threads: must be at least 0 (got -2)");
        CHECK(refusal(in_service("max_scans = -1\n")) ==
              "test.toml:3: [service] max_scans: must be at least 0 (got -1)");
        CHECK(refusal(R"([service]
state_dir = "/s"
[[host]]
name = "esx1"
max_concurrent_scans = 0
pressure_threshold = 1.5
[[datastore]]
name = "ds1"
roots = ["/vmfs/ds1"]
hosts = ["esx1"]
)") == "test.toml:5: [[host]] 'esx1' max_concurrent_scans: must be more than 0 (got 0)\n"
       "test.toml:6: [[host]] 'esx1' pressure_threshold: must lie in 0..1 (got 1.5)");
    }
    SECTION("relative paths") {
        CHECK(refusal(R"([service]
state_dir = "var/lib/coldscan"
[[host]]
name = "esx1"
[[datastore]]
name = "ds1"
roots = ["vmfs/ds1", "/vmfs/../etc", "/vmfs//ds2", "/vmfs/ds3/"]
hosts = ["esx1"]
images = ["/vmfs/ds1/*.qcow2", "../*.qcow2", "templates/*.qcow2"]
[signatures]
clamav_db = "clamav"
yara_rules = ["/etc/a.yar", "rules/b.yar"]
)") == "test.toml:2: [service] state_dir: 'var/lib/coldscan' is not an absolute path\n"
       "test.toml:7: [[datastore]] 'ds1' roots: 'vmfs/ds1' is not an absolute path without '.', '..' or "
       "'//'\n"
       "test.toml:7: [[datastore]] 'ds1' roots: '/vmfs/../etc' is not an absolute path without '.', '..' or "
       "'//'\n"
       "test.toml:7: [[datastore]] 'ds1' roots: '/vmfs//ds2' is not an absolute path without '.', '..' or "
       "'//'\n"
       "test.toml:9: [[datastore]] 'ds1' images: '/vmfs/ds1/*.qcow2' must be relative to the datastore's "
       "roots, without '.', '..' or '//'\n"
       "test.toml:9: [[datastore]] 'ds1' images: '../*.qcow2' must be relative to the datastore's roots, "
       "without '.', '..' or '//'\n"
       "test.toml:11: [signatures] clamav_db: 'clamav' is not an absolute path\n"
       "test.toml:12: [signatures] yara_rules: 'rules/b.yar' is not an absolute path");
    }
    SECTION("datastores name known hosts, each once, and own their roots alone") {
        CHECK(refusal(with_hosts("hosts = [\"esx1\", \"esx9\"]")) ==
              "test.toml:10: [[datastore]] 'ds1' hosts: unknown host 'esx9' (not a [[host]] name)");
        CHECK(refusal(with_hosts("hosts = [\"esx1\", \"esx1\"]")) ==
              "test.toml:10: [[datastore]] 'ds1' hosts: 'esx1' is listed twice");
        CHECK(refusal(with_hosts("hosts = []")) ==
              "test.toml:10: [[datastore]] 'ds1' hosts: must name at least one host");
        CHECK(
            refusal(with("[[datastore]]\nname = \"ds2\"\nroots = [\"/vmfs/ds1/\"]\nhosts = [\"esx1\"]\n")) ==
            "test.toml:13: [[datastore]] 'ds2' roots: '/vmfs/ds1/' already belongs to datastore 'ds1' (line "
            "9)");
        CHECK(refusal(with("[[datastore]]\nname = \"ds1\"\nroots = [\"/vmfs/ds2\"]\nhosts = [\"esx1\"]\n")) ==
              "test.toml:12: [[datastore]] 'ds1' name: already used by the [[datastore]] on line 8");
        CHECK(refusal(with("[[host]]\nname = \"esx1\"\n")) ==
              "test.toml:12: [[host]] 'esx1' name: already used by the [[host]] on line 5");
        CHECK(refusal(with("[[datastore]]\nroots = [\"/vmfs/ds2\"]\nhosts = [\"esx1\"]\n")) ==
              "test.toml:11: missing required key 'name' in [[datastore]] #2");
        CHECK(refusal(with("[[datastore]]\nname = \"ds2\"\n")) ==
              "test.toml:11: missing required key 'roots' in [[datastore]] 'ds2'\n"
              "test.toml:11: missing required key 'hosts' in [[datastore]] 'ds2'");
    }
    SECTION("required sections and keys") {
        CHECK(refusal("") ==
              "test.toml: missing required key 'state_dir' in [service]\n"
              "test.toml: no [[host]]: the service needs at least one host and one [[datastore]]\n"
              "test.toml: no [[datastore]]: the service needs at least one datastore its hosts "
              "mount");
        std::string without_state_dir(k_minimal);
        without_state_dir.erase(without_state_dir.find("state_dir"), 32);
        CHECK(refusal(without_state_dir) == "test.toml:1: missing required key 'state_dir' in [service]");
    }
    SECTION("bad times and days") {
        CHECK(refusal(with("[[nightly_window]]\ntime = \"25:00-06:00\"\n")) ==
              "test.toml:12: [[nightly_window]] #1 time: '25:00-06:00' is not a time range like "
              "\"22:00-06:00\" "
              "(HH:MM, UTC; the end may be 24:00)");
        for (const char* bad :
             {"22:00", "22:00-6", "22:60-06:00", "24:00-06:00", "22h-06h", "-22:00-06:00"}) {
            INFO(bad);
            CHECK(refusal(with("[[nightly_window]]\ntime = \"" + std::string(bad) + "\"\n"))
                      .starts_with("test.toml:12: [[nightly_window]] #1 time: '" + std::string(bad) +
                                   "' is not a time range"));
        }
        CHECK(refusal(with("[[nightly_window]]\ntime = \"22:00-06:00\"\ndays = [\"mon\", \"mo\"]\n")) ==
              "test.toml:13: [[nightly_window]] #1 days: 'mo' is not a day (mon, tue, wed, thu, fri, sat, "
              "sun) or a "
              "range like mon-fri");
        CHECK(
            refusal(with("[[nightly_window]]\ntime = \"22:00-06:00\"\ndays = [\"mon-fry\"]\n")) ==
            "test.toml:13: [[nightly_window]] #1 days: 'mon-fry' is not a day (mon, tue, wed, thu, fri, sat, "
            "sun) or a range like mon-fri");
        CHECK(refusal(with("[[nightly_window]]\ntime = \"22:00-06:00\"\ndays = []\n")) ==
              "test.toml:13: [[nightly_window]] #1 days: no day (omit the key for every day)");
        CHECK(refusal(with("[[nightly_window]]\ndays = [\"sat\"]\n")) ==
              "test.toml:11: missing required key 'time' in [[nightly_window]] #1");
        CHECK(refusal(with("[[nightly_window]]\ntime = 22:00:00\n")) ==
              "test.toml:12: [[nightly_window]] #1 time: expected a string, got a time");
    }
    SECTION("sizes that do not parse") {
        CHECK(refusal(with("[limits]\nmax_file_size = \"256Q\"\n")) ==
              "test.toml:12: [limits] max_file_size: '256Q' is not a size (like 256M, 1G or 4096)");
        CHECK(refusal(with("[api]\nmax_request_bytes = \"one meg\"\n")) ==
              "test.toml:12: [api] max_request_bytes: 'one meg' is not a size (like 256M, 1G or 4096)");
        CHECK(refusal(with("max_read_per_second = \"-5M\"\n")) ==
              "test.toml:11: [[datastore]] 'ds1' max_read_per_second: '-5M' is not a size (like 256M, 1G or "
              "4096)");
        CHECK(refusal(with("[limits]\nmax_scan_time = \"2 minutes\"\n")) ==
              "test.toml:12: [limits] max_scan_time: '2 minutes' is not a duration (seconds, or like 90s, "
              "2m, 1h)");
    }
    SECTION("every problem is reported, in line order") {
        const std::string message = refusal(R"([service]
state_dir = "relative"
[[host]]
name = "esx1"
max_concurrent_scans = -1
[[datastore]]
name = "ds1"
roots = ["/vmfs/ds1"]
hosts = ["esx2"]
[limits]
max_files = 0
)");
        CHECK(message == "test.toml:2: [service] state_dir: 'relative' is not an absolute path\n"
                         "test.toml:5: [[host]] 'esx1' max_concurrent_scans: must be more than 0 (got -1)\n"
                         "test.toml:9: [[datastore]] 'ds1' hosts: unknown host 'esx2' (not a [[host]] name)\n"
                         "test.toml:11: [limits] max_files: must be more than 0 (got 0)");
    }
    SECTION("malformed TOML names the line and column") {
        CHECK(refusal("[service]\nstate_dir = \n").starts_with("test.toml:2:"));
        CHECK(refusal(with("name = \"again\"\n")).starts_with("test.toml:11:"));
        // toml++ quotes the character it stopped at: a line break stays one escaped line (found by
        // tests/fuzz/fuzz_service_config.cpp).
        CHECK(refusal("[service]\nthreads = i\n") ==
              "test.toml:2:12: Error while parsing floating-point: expected 'inf', saw 'i\\x0A'");
    }
    SECTION("libvirt") {
        CHECK(accepted(with("[libvirt]\nuri = \"qemu:///system\"\n")).libvirt_uri == "qemu:///system");
        CHECK(accepted(with("[libvirt]\nuri = \"qemu+ssh://root@kvm01/system\"\n")).libvirt_uri ==
              "qemu+ssh://root@kvm01/system");
        CHECK(refusal(with("[libvirt]\nuri = \"/var/run/libvirt\"\n")) ==
              "test.toml:12: [libvirt] uri: '/var/run/libvirt' is not a libvirt URI like qemu:///system or "
              "test:///path/node.xml");
        CHECK(refusal(with("[libvirt]\n")) == "test.toml:11: missing required key 'uri' in [libvirt]");
    }
}

TEST_CASE("parse_service_config: images_format", "[scheduler]") {
    SECTION("the format of the images a datastore's patterns find") {
        const ServiceConfig config = accepted(with("images = [\"*.img\"]\nimages_format = \"raw\"\n"));
        CHECK(config.image_patterns.at("ds1") == std::vector<std::string>{"*.img"});
        CHECK(config.image_formats.at("ds1") == "raw");
        CHECK(accepted(k_minimal).image_formats.empty());
    }
    SECTION("only formats coldscan opens") {
        CHECK(refusal(with("images_format = \"iso\"\n")) ==
              "test.toml:11: [[datastore]] 'ds1' images_format: 'iso' is not a format coldscan opens (qcow2, "
              "vmdk, vhdx, vdi, vpc, qed, raw)");
    }
}

TEST_CASE("parse_service_config: limits policy", "[scheduler]") {
    CHECK(accepted(with("[limits]\npolicy = \"warn\"\n")).limit_policy ==
          coldscan::reports::LimitPolicy::warn);
    CHECK(refusal(with("[limits]\npolicy = \"strict\"\n")) ==
          "test.toml:12: [limits] policy: 'strict' is not warn (limit hits are warnings) or fail (they fail "
          "the "
          "scan)");
}

TEST_CASE("parse_service_config: fleet", "[scheduler]") {
    CHECK_FALSE(accepted(std::string(k_minimal)).fleet.has_value());

    const ServiceConfig config = accepted(with("[fleet]\ndatabase = \"postgresql://scan@db.example/coldscan"
                                               "?sslmode=verify-full\"\nnode = \"scan-01\"\n"
                                               "password_file = \"/etc/coldscan/db-password\"\n"
                                               "lease_seconds = \"2m\"\n"));
    REQUIRE(config.fleet.has_value());
    CHECK(config.fleet->database == "postgresql://scan@db.example/coldscan?sslmode=verify-full");
    CHECK(config.fleet->node == "scan-01");
    CHECK(config.fleet->password_file == std::filesystem::path("/etc/coldscan/db-password"));
    CHECK(config.fleet->lease == 120s);

    const ServiceConfig defaults = accepted(with("[fleet]\ndatabase = \"postgres:///coldscan\"\n"));
    REQUIRE(defaults.fleet.has_value());
    CHECK(defaults.fleet->node == default_node_name());
    CHECK_FALSE(default_node_name().empty());
    CHECK(defaults.fleet->lease == 30s);
    CHECK_FALSE(defaults.fleet->password_file.has_value());

    CHECK(refusal(with("[fleet]\nnode = \"a\"\n")).find("missing required key 'database' in [fleet]") !=
          std::string::npos);
    CHECK(refusal(with("[fleet]\ndatabase = \"mysql://db/coldscan\"\n")) ==
          "test.toml:12: [fleet] database: not a PostgreSQL URI like "
          "postgresql://coldscan@db.example/coldscan");
    // A password in the file is refused, and the message does not repeat it.
    for (const char* uri :
         {"postgresql://scan:pa55word@db/coldscan", "postgresql://db/coldscan?password=pa55word"}) {
        const std::string refused = refusal(with("[fleet]\ndatabase = \"" + std::string(uri) + "\"\n"));
        CHECK(refused.find("holds a password") != std::string::npos);
        CHECK(refused.find("pa55word") == std::string::npos);
    }
    CHECK(refusal(with("[fleet]\ndatabase = \"postgres:///c\"\nnode = \"a b\"\n")) ==
          "test.toml:13: [fleet] node: 'a b' is not a name of 1 to 64 letters, digits, '.', '-' and '_'");
    CHECK(refusal(with("[fleet]\ndatabase = \"postgres:///c\"\nlease_seconds = 2\n")).find("lease_seconds") !=
          std::string::npos);
    CHECK(refusal(with("[fleet]\ndatabase = \"postgres:///c\"\npassword_file = \"relative\"\n"))
              .find("password_file") != std::string::npos);
    CHECK(refusal(with("[fleet]\ndatabase = \"postgres:///c\"\nqueue = 1\n")).find("queue") !=
          std::string::npos);
}

TEST_CASE("parse_service_config: listen address and token", "[scheduler]") {
    SECTION("a non-loopback address without a token is refused") {
        CHECK(refusal(with("[api]\nlisten = \"0.0.0.0:8731\"\n")) ==
              "test.toml:12: [api] listen: 0.0.0.0:8731 is not a loopback address, so [api] auth_token is "
              "required");
        CHECK(refusal(with("[api]\nlisten = \"[::]:8731\"\n")) ==
              "test.toml:12: [api] listen: [::]:8731 is not a loopback address, so [api] auth_token is "
              "required");
        CHECK(
            refusal(with("[api]\nlisten = \"192.168.10.5:443\"\n")) ==
            "test.toml:12: [api] listen: 192.168.10.5:443 is not a loopback address, so [api] auth_token is "
            "required");
    }
    SECTION("with a token it is accepted") {
        const ServiceConfig config =
            accepted(with("[api]\nlisten = \"0.0.0.0:8731\"\nauth_token = \"s3cret-token-0123456789\"\n"));
        CHECK(config.api.listen.address == "0.0.0.0");
        CHECK(config.api.listen.port == 8731);
        CHECK_FALSE(config.api.listen.loopback());
        CHECK(config.api.auth_token == "s3cret-token-0123456789");
    }
    SECTION("loopback addresses and Unix sockets need none") {
        CHECK(accepted(with("[api]\nlisten = \"127.0.0.2:80\"\n")).api.listen.to_string() == "127.0.0.2:80");
        CHECK(accepted(with("[api]\nlisten = \"[::1]:8731\"\n")).api.listen.to_string() == "[::1]:8731");
        const ServiceConfig unix_socket = accepted(with("[api]\nlisten = \"unix:/run/coldscan/api.sock\"\n"));
        CHECK(unix_socket.api.listen.unix_socket == "/run/coldscan/api.sock");
        CHECK(unix_socket.api.listen.address.empty());
        CHECK(unix_socket.api.listen.to_string() == "unix:/run/coldscan/api.sock");
        CHECK_FALSE(unix_socket.api.auth_token.has_value());
    }
    SECTION("a weak token is refused without being repeated") {
        const std::string short_token =
            refusal(with("[api]\nlisten = \"0.0.0.0:8731\"\nauth_token = \"hunter2\"\n"));
        CHECK(short_token == "test.toml:13: [api] auth_token: must be at least 16 characters long");
        const std::string spaced = refusal(with("[api]\nauth_token = \"correct horse battery staple\"\n"));
        CHECK(spaced ==
              "test.toml:12: [api] auth_token: must hold only visible ASCII characters (no spaces)");
        CHECK(spaced.find("horse") == std::string::npos);
        CHECK(refusal(with("[api]\nauth_token = \"\"\n")) ==
              "test.toml:12: [api] auth_token: must not be empty");
    }
    SECTION("malformed addresses") {
        for (const char* bad : {"localhost:8731", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "::1:8731",
                                "[::1]8731", "unix:relative.sock", "127.0.0.1:87a1", "1.2.3:8731"}) {
            INFO(bad);
            CHECK(refusal(with("[api]\nlisten = \"" + std::string(bad) + "\"\n")) ==
                  "test.toml:12: [api] listen: '" + std::string(bad) +
                      "' is not an address like 127.0.0.1:8731, [::1]:8731 or unix:/run/coldscan/api.sock");
        }
    }
}

TEST_CASE("parse_service_config: load probes", "[scheduler]") {
    const auto probe_of = [](std::string_view value) {
        ServiceConfig config = accepted(in_host("load_probe = " + std::string(value) + "\n"));
        REQUIRE(config.load_probes.contains("esx1"));
        return config.load_probes.at("esx1");
    };
    SECTION("psi, a URL or a command") {
        CHECK(std::holds_alternative<PsiProbe>(probe_of("\"psi\"")));
        const LoadProbe https = probe_of("\"https://esx1.example/load\"");
        REQUIRE(std::holds_alternative<HttpProbe>(https));
        CHECK(std::get<HttpProbe>(https).url == "https://esx1.example/load");
        const LoadProbe command = probe_of("[\"/usr/bin/ssh\", \"esx1\", \"cat /proc/pressure/io\"]");
        REQUIRE(std::holds_alternative<CommandProbe>(command));
        CHECK(std::get<CommandProbe>(command).argv ==
              std::vector<std::string>{"/usr/bin/ssh", "esx1", "cat /proc/pressure/io"});
    }
    SECTION("anything else is refused") {
        const std::string expected_end =
            " is not \"psi\", an http:// or https:// URL, or a command starting with an absolute path";
        for (const char* bad :
             {"\"PSI\"", "\"load.sh\"", "\"http://\"", "\"http:///load\"", "\"ftp://esx1/load\""}) {
            INFO(bad);
            const std::string text(bad);
            CHECK(refusal(in_host("load_probe = " + text + "\n")) ==
                  "test.toml:6: [[host]] 'esx1' load_probe: '" + text.substr(1, text.size() - 2) + "'" +
                      expected_end);
        }
        CHECK(refusal(in_host("load_probe = [\"ssh\", \"esx1\"]\n")) ==
              "test.toml:6: [[host]] 'esx1' load_probe: 'ssh'" + expected_end);
        CHECK(refusal(in_host("load_probe = []\n")) ==
              "test.toml:6: [[host]] 'esx1' load_probe: an empty command");
        CHECK(refusal(in_host("load_probe = 3\n")) ==
              "test.toml:6: [[host]] 'esx1' load_probe: expected a string, got an integer");
    }
    SECTION("only one host can read this machine's pressure") {
        CHECK(
            refusal(inserted(with("[[host]]\nname = \"esx2\"\nload_probe = \"psi\"\n"), "name = \"esx1\"\n",
                             "load_probe = \"psi\"\n")) ==
            "test.toml:14: [[host]] 'esx2' load_probe: \"psi\" reads this machine's /proc/pressure, and host "
            "'esx1' (line 6) already uses it");
    }
}

TEST_CASE("parse_listen_address", "[scheduler]") {
    const auto address = [](std::string_view text) {
        auto parsed = parse_listen_address(text);
        REQUIRE(parsed.has_value());
        return *parsed;
    };
    CHECK(address("127.0.0.1:8731").loopback());
    CHECK(address("127.255.0.9:1").loopback());
    CHECK(address("[::1]:8731").loopback());
    CHECK(address("[::ffff:127.0.0.1]:8731").loopback());
    CHECK(address("unix:/run/coldscan.sock").loopback());
    CHECK_FALSE(address("0.0.0.0:8731").loopback());
    CHECK_FALSE(address("10.0.0.1:8731").loopback());
    CHECK_FALSE(address("[::]:8731").loopback());
    CHECK_FALSE(address("[::ffff:10.0.0.1]:8731").loopback());
    CHECK_FALSE(address("[fe80::1]:8731").loopback());
    CHECK(address("10.0.0.1:65535").port == 65535);
    CHECK(address("[fe80::1]:8731").to_string() == "[fe80::1]:8731");
    CHECK_FALSE(parse_listen_address("").has_value());
    CHECK_FALSE(parse_listen_address("unix:").has_value());
    CHECK_FALSE(parse_listen_address("unix:/run/").has_value());
    CHECK_FALSE(parse_listen_address("[::1]:").has_value());
    CHECK_FALSE(parse_listen_address("example.org:80").has_value());
}
