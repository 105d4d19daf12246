#include "serve_command.hpp"

#include "coldscan/common/log.hpp"
#include "coldscan/scheduler/api_server.hpp"
#include "coldscan/scheduler/scan_service.hpp"
#include "coldscan/scheduler/service_config.hpp"

#include <csignal>
#include <cstdio>
#include <pthread.h>
#include <thread>
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

sigset_t service_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    return set;
}

} // namespace

int run_serve(const ServeCommandOptions& o) {
    auto config = scheduler::load_service_config(o.config);
    if (!config) {
        spdlog::error("{}", config.error().message);
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
    // Blocked before any thread starts, so every thread inherits the mask and only sigwait() below sees them.
    const sigset_t signals = service_signals();
    ::pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    const scheduler::ApiConfig api_config = config->api;
    const auto grace = config->shutdown_grace;
    auto service = scheduler::ScanService::start(std::move(*config));
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
        int signal = 0;
        if (::sigwait(&signals, &signal) != 0) {
            continue;
        }
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
