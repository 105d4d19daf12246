// coldscan-fleet-storm: the scan storm on a fleet of scanner nodes that claim through the real fleet queue
// on a real PostgreSQL (fleet_storm.hpp says how), against one scheduler with the same total capacity.
//
// usage: coldscan-fleet-storm --database URI [--nodes N] [--node-scans K] [--hosts H] [--datastores D]
//                             [--templates T] [--gates G] [--json FILE] [more, see --help]
// The database must be empty (bench/fleet-storm-bench.sh makes one). Exit status 0; 1 when an invariant
// broke (a cap exceeded, a job not completed exactly once); 2 on bad options or a failed call.
#include "fleet_storm.hpp"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

using namespace coldscan;
using namespace coldscan::bench;

namespace {

nlohmann::json arm_json(const ArmResult& arm) {
    return {{"makespan_s", arm.makespan_s},
            {"peak_per_host", arm.peak_per_host},
            {"peak_per_datastore", arm.peak_per_datastore},
            {"peak_total", arm.peak_total},
            {"mean_slowdown", arm.mean_slowdown},
            {"gate_wait_max_s", arm.gate_wait_max_s},
            {"gate_wait_median_s", arm.gate_wait_median_s},
            {"gate_turnaround_max_s", arm.gate_turnaround_max_s},
            {"pauses", arm.pauses},
            {"violations", arm.violations}};
}

nlohmann::json summary(const FleetStormOptions& options, const FleetResult& fleet, const ArmResult& one) {
    nlohmann::json nodes = nlohmann::json::array();
    for (const NodeOutcome& node : fleet.nodes) {
        nodes.push_back(
            {{"name", node.name}, {"completed", node.completed}, {"peak_running", node.peak_running}});
    }
    nlohmann::json fleet_json = arm_json(fleet.arm);
    fleet_json.update({{"claims_granted", fleet.claims_granted},
                       {"claims_caps_full", fleet.claims_caps_full},
                       {"claims_taken", fleet.claims_taken},
                       {"preemptions", fleet.preemptions},
                       {"adoptions", fleet.adoptions},
                       {"adopted_rows", fleet.adopted_rows},
                       {"wall_s", fleet.wall_s},
                       {"nodes", nodes}});
    const StormOptions& s = options.storm;
    return {{"options",
             {{"nodes", options.nodes},
              {"node_scans", options.node_scans},
              {"adopt_s", options.adopt_s},
              {"hosts", s.hosts},
              {"datastores", s.datastores},
              {"templates", s.templates},
              {"gates", s.gates},
              {"host_slots", s.host_slots},
              {"datastore_slots", s.datastore_slots},
              {"seed", s.seed}}},
            {"fleet", fleet_json},
            {"one_scheduler", arm_json(one)},
            {"makespan_ratio", one.makespan_s > 0.0 ? fleet.arm.makespan_s / one.makespan_s : 0.0}};
}

void print(const FleetStormOptions& options, const FleetResult& fleet, const ArmResult& one) {
    const StormOptions& s = options.storm;
    std::printf(
        "fleet: %u nodes x %u scans; %u hosts (%u slots), %u datastores (%u slots); %u templates due at "
        "t=0, %u gate requests\n\n",
        options.nodes, options.node_scans, s.hosts, s.host_slots, s.datastores, s.datastore_slots,
        s.templates, s.gates);
    std::printf("%-15s %11s %10s %15s %11s %20s %8s\n", "arm", "makespan s", "peak/host", "peak/datastore",
                "peak total", "gate wait max/med s", "pauses");
    for (const auto& [name, arm] :
         {std::pair<const char*, const ArmResult*>{"fleet", &fleet.arm}, {"one scheduler", &one}}) {
        const std::string wait = std::to_string(static_cast<int>(arm->gate_wait_max_s)) + " / " +
                                 std::to_string(static_cast<int>(arm->gate_wait_median_s));
        std::printf("%-15s %11.1f %10u %15u %11u %20s %8u\n", name, arm->makespan_s, arm->peak_per_host,
                    arm->peak_per_datastore, arm->peak_total, wait.c_str(), arm->pauses);
    }
    unsigned least = fleet.nodes.empty() ? 0 : fleet.nodes.front().completed;
    unsigned most = least;
    for (const NodeOutcome& node : fleet.nodes) {
        least = std::min(least, node.completed);
        most = std::max(most, node.completed);
    }
    std::printf("\nmakespan fleet / one scheduler: %.3f\n",
                one.makespan_s > 0.0 ? fleet.arm.makespan_s / one.makespan_s : 0.0);
    std::printf("claims: %u granted, %u refused at the caps, %u taken by another node; %u preemptions\n",
                fleet.claims_granted, fleet.claims_caps_full, fleet.claims_taken, fleet.preemptions);
    std::printf("adoptions: %u reading %llu rows; jobs per node %u..%u; %.1f s of real time\n",
                fleet.adoptions, static_cast<unsigned long long>(fleet.adopted_rows), least, most,
                fleet.wall_s);
}

} // namespace

int main(int argc, char** argv) {
    try {
        CLI::App app{"Scan storm on a fleet of nodes claiming through the real fleet queue (simulated time)"};
        FleetStormOptions options;
        StormOptions& s = options.storm;
        s.hosts = 200;
        s.datastores = 20;
        s.templates = 5000;
        s.gates = 20;
        s.datastore_slots = 12;
        std::string json_path;
        app.add_option("--database", options.database, "libpq URI of an empty database")->required();
        app.add_option("--nodes", options.nodes, "Scanner nodes (default 20)");
        app.add_option("--node-scans", options.node_scans, "Each node's max_scans (default 4)");
        app.add_option("--adopt-seconds", options.adopt_s,
                       "A node's adoption and renewal period (default 2)");
        app.add_option("--hosts", s.hosts, "Hypervisor hosts (default 200)");
        app.add_option("--datastores", s.datastores,
                       "Shared datastores, each mounted by every host (default 20)");
        app.add_option("--templates", s.templates, "Images, all due at t=0 (default 5000)");
        app.add_option("--gates", s.gates, "Gate requests arriving mid-run (default 20)");
        app.add_option("--seed", s.seed, "Seed of the image sizes and the gate requests (default 1)");
        app.add_option("--host-slots", s.host_slots, "max_concurrent_scans per host (default 2)");
        app.add_option("--datastore-slots", s.datastore_slots,
                       "max_concurrent_scans per datastore (default 12)");
        app.add_option("--engine-mbps", s.engine_mb_per_s, "One scan's speed, unloaded, MB/s (default 110)");
        app.add_option("--host-mbps", s.host_read_mb_per_s, "A host's read cap, MB/s (default 200)");
        app.add_option("--datastore-mbps", s.datastore_read_mb_per_s,
                       "A datastore's read cap, MB/s (default 400)");
        app.add_option("--min-gib", s.min_gib, "Smallest image, GiB (default 1)");
        app.add_option("--max-gib", s.max_gib, "Largest image, GiB (default 4)");
        app.add_option("--json", json_path, "Write the summary");
        try {
            app.parse(argc, argv);
        } catch (const CLI::ParseError& e) {
            return app.exit(e) == 0 ? 0 : 2;
        }
        const std::vector<StormJob> jobs = make_jobs(s);
        auto fleet = run_fleet(options, jobs);
        if (!fleet) {
            std::cerr << "coldscan-fleet-storm: error: " << fleet.error().message << '\n';
            return 2;
        }
        StormOptions central = s;
        central.max_running = options.nodes * options.node_scans;
        auto one = run_arm(central, jobs, Arm::scheduler);
        if (!one) {
            std::cerr << "coldscan-fleet-storm: error: " << one.error().message << '\n';
            return 2;
        }
        print(options, *fleet, *one);
        if (!json_path.empty()) {
            std::ofstream out(json_path);
            out << summary(options, *fleet, *one).dump(2) << '\n';
            if (!out) {
                std::cerr << "coldscan-fleet-storm: error: cannot write " << json_path << '\n';
                return 2;
            }
        }
        bool broken = false;
        for (const auto* arm : {&fleet->arm, &*one}) {
            for (const std::string& violation : arm->violations) {
                std::cerr << "coldscan-fleet-storm: " << (arm == &fleet->arm ? "fleet" : "one scheduler")
                          << ": " << violation << '\n';
                broken = true;
            }
        }
        return broken ? 1 : 0;
    } catch (const std::exception& e) {
        std::cerr << "coldscan-fleet-storm: error: " << e.what() << '\n';
        return 2;
    }
}
