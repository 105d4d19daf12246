// Catch2 v2 main; the engine libraries are initialised once for the whole test binary (as main does).
#define CATCH_CONFIG_RUNNER
#include "coldscan/disk/filesystem_worker.hpp"
#include "coldscan/signatures/engine_libraries.hpp"
#include "coldscan/signatures/engine_sandbox.hpp"

#include <catch2/catch.hpp>
#include <csignal>
#include <cstdio>

int main(int argc, char* argv[]) {
    // The sandbox tests re-execute this binary as their engine host.
    if (auto host = coldscan::signatures::run_engine_host_if_asked(argc, argv)) {
        return *host;
    }
    if (auto worker = coldscan::disk::run_filesystem_worker_if_asked(argc, argv)) {
        return *worker;
    }
    std::signal(SIGPIPE, SIG_IGN);
    auto libraries = coldscan::signatures::EngineLibraries::initialize();
    if (!libraries) {
        std::fprintf(stderr, "cannot initialise engines: %s\n", libraries.error().message.c_str());
        return 2;
    }
    return Catch::Session().run(argc, argv);
}
