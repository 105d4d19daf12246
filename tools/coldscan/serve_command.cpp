#include "serve_command.hpp"

#include "coldscan/common/log.hpp"
#include "coldscan/fleet/fleet_schema.hpp"
#include "coldscan/fleet/pg_finding_store.hpp"
#include "coldscan/fleet/pg_job_queue.hpp"
#include "coldscan/fleet/pg_node_directory.hpp"
#include "coldscan/fleet/pg_verdict_store.hpp"
#include "coldscan/scheduler/api_server.hpp"
#include "coldscan/scheduler/scan_service.hpp"
#include "coldscan/scheduler/service_config.hpp"

#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <string_view>
#include <thread>
#include <unistd.h>
#include <vector>

namespace coldscan::cli {

struct ServeCommandOptions {
    std::string config;
    bool check = false;
};

std::shared_ptr<ServeCommandOptions> add_serve_command(CLI::App& app) {
    auto options = std::make_shared<ServeCommandOptions>();
    auto* serve = app.add_subcommand(
        "serve", "Run the scan service: host-aware scheduler, persistent job queue, HTTP API (SIGHUP reloads "
                 "signatures, SIGTERM stops)");
    serve->add_option("--config", options->config, "The service's TOML configuration file")->required();
    serve->add_flag("--check", options->check, "Check the configuration and exit");
    return options;
}

namespace {

// The signal handlers only write the signal's number into this pipe; the main thread reads it. (Blocking the
// signals for sigwait() instead would leave them blocked in every child process: qemu-nbd and the appliance's
// qemu would then ignore the SIGTERM that ends them.)
int g_signal_pipe[2] = {-1, -1};

extern "C" void on_service_signal(int signal) {
    const auto byte = static_cast<unsigned char>(signal);
    static_cast<void>(::write(g_signal_pipe[1], &byte, 1));
}

bool install_signal_pipe() {
    if (::pipe2(g_signal_pipe, O_CLOEXEC) != 0) {
        return false;
    }
    struct sigaction action {};
    action.sa_handler = on_service_signal;
    action.sa_flags = SA_RESTART;
    ::sigemptyset(&action.sa_mask);
    return ::sigaction(SIGHUP, &action, nullptr) == 0 && ::sigaction(SIGINT, &action, nullptr) == 0 &&
           ::sigaction(SIGTERM, &action, nullptr) == 0;
}

int next_signal() {
    unsigned char byte = 0;
    while (::read(g_signal_pipe[0], &byte, 1) != 1) {
    }
    return byte;
}

// Fleet mode: the fleet's database, migrated, and this node's name claimed in it. Errors name the database
// without a password.
Expected<scheduler::ServiceSharing> join_fleet(const scheduler::ServiceConfig& config) {
    const scheduler::FleetConfig& fleet = *config.fleet;
    const auto connect = [&](std::string_view role, std::chrono::seconds timeout) {
        return fleet::PgConnection::open(
            {.uri = fleet.database,
             .password_file = fleet.password_file,
             .application_name = "coldscan " + fleet.node + " " + std::string(role),
             .connect_timeout = timeout});
    };
    auto db = connect("nodes", std::chrono::seconds{10});
    if (!db) {
        return std::unexpected(db.error());
    }
    auto found = fleet::migrate_schema(*db);
    if (!found) {
        return std::unexpected(found.error());
    }
    if (*found < fleet::schema_version()) {
        spdlog::info("fleet database {}: schema {} -> {}", db->server(), *found, fleet::schema_version());
    }
    const std::string server = db->server();
    auto directory = std::make_shared<fleet::PgNodeDirectory>(std::move(*db), fleet.node, fleet.lease);
    scheduler::NodeView self;
    self.name = fleet.node;
    self.version = COLDSCAN_VERSION;
    self.started = std::chrono::system_clock::now();
    if (auto claimed = directory->claim(self); !claimed) {
        return std::unexpected(claimed.error());
    }
    // The queue's calls and its lease keeper each have a connection: a renewal never waits behind a query.
    auto jobs_db = connect("jobs", std::chrono::seconds{10});
    auto keeper_db = connect("leases", std::max(std::chrono::seconds{2}, fleet.lease / 4));
    auto findings_db = connect("findings", std::chrono::seconds{10});
    auto verdicts_db = connect("verdicts", std::chrono::seconds{10});
    for (const auto* opened : {&jobs_db, &keeper_db, &findings_db, &verdicts_db}) {
        if (!*opened) {
            return std::unexpected(opened->error());
        }
    }
    auto jobs = std::make_shared<fleet::PgJobQueue>(
        std::move(*jobs_db), std::move(*keeper_db),
        fleet::PgJobQueueOptions{
            .node = fleet.node, .lease = fleet.lease, .max_attempts = config.max_attempts});
    auto findings = std::make_shared<fleet::PgFindingStore>(
        std::move(*findings_db), fleet.node, [jobs](std::string_view job) { return jobs->fence_of(job); });
    spdlog::info("fleet mode: node {} in {}", fleet.node, server);
    spdlog::warn(
        "fleet mode shares the nodes, the job queue and the findings so far: verdicts are still this "
        "node's own");
    auto verdicts = std::make_shared<fleet::PgConnection>(std::move(*verdicts_db));
    auto scan_store = [verdicts, node = fleet.node](std::shared_ptr<scanner::KvStore> local) {
        return std::shared_ptr<scanner::KvStore>(
            std::make_shared<fleet::PgVerdictStore>(std::move(local), std::move(*verdicts), node));
    };
    return scheduler::ServiceSharing{directory, jobs, findings, scan_store};
}

} // namespace

int run_serve(const ServeCommandOptions& o) {
    auto config = scheduler::load_service_config(o.config);
    if (!config) {
        // One problem per line: each its own log line (the log escapes a newline inside a message).
        std::string_view problems = config.error().message;
        while (!problems.empty()) {
            const auto end = problems.find('\n');
            spdlog::error("{}", problems.substr(0, end));
            problems = end == std::string_view::npos ? std::string_view{} : problems.substr(end + 1);
        }
        return 2;
    }
    // A service's log is its record: what started, finished, was paused or refused, with the time (journald
    // adds its own, a terminal or a file has none). -q still means errors only, -v/--debug more.
    if (spdlog::get_level() == spdlog::level::warn) {
        spdlog::set_level(spdlog::level::info);
    }
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S coldscan: %^%l%$: %v");
    if (o.check) {
        std::printf("%s: the configuration is valid (%zu hosts, %zu datastores)\n", o.config.c_str(),
                    config->inventory.hosts().size(), config->inventory.datastores().size());
        return 0;
    }
    if (!install_signal_pipe()) {
        spdlog::error("{}", errno_message("cannot set up signal handling"));
        return 2;
    }

    const scheduler::ApiConfig api_config = config->api;
    const auto grace = config->shutdown_grace;
    scheduler::ServiceSharing sharing;
    if (config->fleet) {
        auto joined = join_fleet(*config);
        if (!joined) {
            spdlog::error("{}", joined.error().message);
            return 2;
        }
        sharing = std::move(*joined);
    }
    auto service = scheduler::ScanService::start(std::move(*config), std::move(sharing));
    if (!service) {
        spdlog::error("{}", service.error().message);
        return 2;
    }
    auto api = scheduler::ApiServer::start(**service, api_config);
    if (!api) {
        spdlog::error("{}", api.error().message);
        (*service)->shutdown(std::chrono::seconds{0});
        return 2;
    }
    spdlog::info("coldscan serve: listening on {}", (*api)->address());

    std::vector<std::jthread> reloads;
    for (;;) {
        const int signal = next_signal();
        if (signal == SIGHUP) {
            // On its own thread: a SIGTERM during a long load is still heard.
            reloads.emplace_back([&service] { static_cast<void>((*service)->reload_signatures()); });
            continue;
        }
        spdlog::info("{}: stopping (running scans get {} s)", signal == SIGTERM ? "SIGTERM" : "SIGINT",
                     grace.count());
        break;
    }
    // The API stays up while scans finish: status keeps answering, submissions get 503.
    (*service)->shutdown(grace);
    (*api)->stop();
    reloads.clear();
    return 0;
}

} // namespace coldscan::cli
