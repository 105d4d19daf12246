// coldscan: scans VM disk images from the outside with ClamAV and YARA.
#include "cache_command.hpp"
#include "client_commands.hpp"
#include "coldscan/common/log.hpp"
#include "coldscan/disk/filesystem_worker.hpp"
#include "coldscan/disk/guestfs_image.hpp"
#include "coldscan/signatures/engine_libraries.hpp"
#include "coldscan/signatures/engine_sandbox.hpp"
#include "findings_command.hpp"
#include "gate_command.hpp"
#include "retro_hunt_command.hpp"
#include "scan_command.hpp"
#include "serve_command.hpp"

#include <CLI/CLI.hpp>
#include <atomic>
#include <csignal>
#include <cstdio>

namespace {

std::atomic<bool> g_stop{false};

extern "C" void on_interrupt(int /*signal*/) {
    // First Ctrl-C: finish what is in flight and write the report; a second one kills as usual.
    g_stop.store(true);
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
}

} // namespace

int main(int argc, char** argv) {
    // The engine sandbox re-executes coldscan as its host process (signatures/engine_sandbox.hpp).
    if (auto host = coldscan::signatures::run_engine_host_if_asked(argc, argv)) {
        return *host;
    }
    if (auto worker = coldscan::disk::run_filesystem_worker_if_asked(argc, argv)) {
        return *worker;
    }
    if (auto hypervisor = coldscan::disk::run_confined_hypervisor_if_asked(argc, argv)) {
        return *hypervisor;
    }
    std::signal(SIGPIPE, SIG_IGN); // a closed pipe is an error return, never a dead process
    CLI::App app{"coldscan: scan VM disk images offline with ClamAV and YARA", "coldscan"};
    app.require_subcommand(1);
    app.set_version_flag("--version", std::string("coldscan ") + COLDSCAN_VERSION);
    bool verbose = false;
    bool debug = false;
    bool quiet = false;
    app.add_flag("-v,--verbose", verbose, "Log what happens");
    app.add_flag("--debug", debug, "Log everything");
    app.add_flag("-q,--quiet", quiet, "Only errors");
    auto scan_options = coldscan::cli::add_scan_command(app);
    auto cache_options = coldscan::cli::add_cache_command(app);
    auto retro_hunt_options = coldscan::cli::add_retro_hunt_command(app);
    auto findings_options = coldscan::cli::add_findings_command(app);
    auto client_options = coldscan::cli::add_client_commands(app);
    auto gate_options = coldscan::cli::add_gate_command(app);
    auto serve_options = coldscan::cli::add_serve_command(app);

    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "coldscan: error: %s (see coldscan --help)\n", e.what());
        return 2;
    }
    coldscan::setup_logging(debug     ? coldscan::LogLevel::debug
                            : verbose ? coldscan::LogLevel::verbose
                            : quiet   ? coldscan::LogLevel::quiet
                                      : coldscan::LogLevel::normal);

    auto libraries = coldscan::signatures::EngineLibraries::initialize();
    if (!libraries) {
        spdlog::error("{}", libraries.error().message);
        return 2;
    }
    std::signal(SIGINT, on_interrupt);
    std::signal(SIGTERM, on_interrupt);
    try {
        if (app.got_subcommand("scan")) {
            return coldscan::cli::run_scan(*scan_options, g_stop);
        }
        if (app.got_subcommand("serve")) {
            return coldscan::cli::run_serve(*serve_options);
        }
        if (app.got_subcommand("cache")) {
            return coldscan::cli::run_cache(*cache_options, app);
        }
        if (app.got_subcommand("findings")) {
            return coldscan::cli::run_findings(*findings_options);
        }
        if (app.got_subcommand("retro-hunt")) {
            return coldscan::cli::run_retro_hunt(*retro_hunt_options);
        }
        if (auto status = coldscan::cli::run_client_command(*client_options, g_stop)) {
            return *status;
        }
        if (app.got_subcommand("gate")) {
            return coldscan::cli::run_gate(*gate_options, g_stop);
        }
    } catch (const std::exception& e) {
        spdlog::critical("{}", e.what());
        return 2;
    }
    return 2;
}
