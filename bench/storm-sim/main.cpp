// coldscan-storm-sim: a hundred templates due at once on a small fleet, with and without the scheduler's
// caps, in simulated time through the real scheduler core (storm_model.hpp says how and why).
//
// usage: coldscan-storm-sim [--hosts H] [--datastores D] [--templates N] [--gates G] [--seed S]
//                           [--csv FILE] [--json FILE] [more model options, see --help]
// Prints a summary per arm; --csv writes the concurrency time series, --json the summary. Exit status 0;
// 1 when an invariant broke (a cap exceeded in the scheduler arm, a job not completed exactly once);
// 2 on bad options or an unwritable file.
#include "storm_model.hpp"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

using namespace coldscan;
using namespace coldscan::bench;

namespace {

constexpr double k_gib = 1024.0 * 1024.0 * 1024.0;

std::string fixed(double value, int decimals) {
    char text[64];
    std::snprintf(text, sizeof text, "%.*f", decimals, value);
    return text;
}

void write_csv(const std::string& path, const std::vector<ArmResult>& arms) {
    std::ofstream out(path);
    out << "time_s,arm,max_running_per_host,max_running_per_datastore,total_running\n";
    for (const ArmResult& arm : arms) {
        for (const Sample& s : arm.series) {
            out << fixed(s.time_s, 3) << ',' << to_string(arm.arm) << ',' << s.max_running_per_host << ','
                << s.max_running_per_datastore << ',' << s.total_running << '\n';
        }
    }
    out.close();
    if (!out) {
        throw std::runtime_error("cannot write " + path);
    }
}

nlohmann::json summary(const StormOptions& options, const std::vector<StormJob>& jobs,
                       const std::vector<ArmResult>& arms) {
    std::uint64_t template_bytes = 0;
    std::uint64_t gate_bytes = 0;
    for (const StormJob& job : jobs) {
        (job.gate ? gate_bytes : template_bytes) += job.bytes;
    }
    nlohmann::json document;
    document["options"] = {
        {"hosts", options.hosts},
        {"datastores", options.datastores},
        {"templates", options.templates},
        {"gates", options.gates},
        {"seed", options.seed},
        {"host_slots", options.host_slots},
        {"datastore_slots", options.datastore_slots},
        {"engine_mb_per_s", options.engine_mb_per_s},
        {"host_read_mb_per_s", options.host_read_mb_per_s},
        {"datastore_read_mb_per_s", options.datastore_read_mb_per_s},
        {"min_gib", options.min_gib},
        {"max_gib", options.max_gib},
    };
    document["template_bytes"] = template_bytes;
    document["gate_bytes"] = gate_bytes;
    document["arms"] = nlohmann::json::array();
    for (const ArmResult& arm : arms) {
        document["arms"].push_back({
            {"arm", std::string(to_string(arm.arm))},
            {"makespan_s", arm.makespan_s},
            {"peak_per_host", arm.peak_per_host},
            {"peak_per_datastore", arm.peak_per_datastore},
            {"peak_total", arm.peak_total},
            {"mean_slowdown", arm.mean_slowdown},
            {"max_slowdown", arm.max_slowdown},
            {"gate_wait_max_s", arm.gate_wait_max_s},
            {"gate_wait_median_s", arm.gate_wait_median_s},
            {"gate_turnaround_max_s", arm.gate_turnaround_max_s},
            {"gate_turnaround_median_s", arm.gate_turnaround_median_s},
            {"pauses", arm.pauses},
            {"mb_per_s", arm.makespan_s > 0.0 ? static_cast<double>(arm.bytes) / 1e6 / arm.makespan_s : 0.0},
            {"violations", arm.violations},
        });
    }
    return document;
}

void print(const StormOptions& options, const std::vector<StormJob>& jobs,
           const std::vector<ArmResult>& arms) {
    std::uint64_t template_bytes = 0;
    for (const StormJob& job : jobs) {
        template_bytes += job.gate ? 0 : job.bytes;
    }
    std::cout << "fleet: " << options.hosts << " hosts (" << options.host_slots << " slots, "
              << fixed(options.host_read_mb_per_s, 0) << " MB/s read cap), " << options.datastores
              << " datastores (" << options.datastore_slots << " slots, "
              << fixed(options.datastore_read_mb_per_s, 0) << " MB/s), one scan alone "
              << fixed(options.engine_mb_per_s, 0) << " MB/s\n"
              << "load: " << options.templates << " templates due at t=0 ("
              << fixed(static_cast<double>(template_bytes) / k_gib, 1) << " GiB), " << options.gates
              << " gate requests mid-run, seed " << options.seed << "\n\n";
    std::printf("%-13s %11s %10s %15s %19s %22s %25s\n", "arm", "makespan s", "peak/host", "peak/datastore",
                "slowdown mean/max", "gate wait max/med s", "gate verdict max/med s");
    for (const ArmResult& arm : arms) {
        const std::string slowdown = fixed(arm.mean_slowdown, 2) + " / " + fixed(arm.max_slowdown, 2);
        const std::string wait = fixed(arm.gate_wait_max_s, 1) + " / " + fixed(arm.gate_wait_median_s, 1);
        const std::string verdict =
            fixed(arm.gate_turnaround_max_s, 1) + " / " + fixed(arm.gate_turnaround_median_s, 1);
        std::printf("%-13s %11.1f %10u %15u %19s %22s %25s\n", std::string(to_string(arm.arm)).c_str(),
                    arm.makespan_s, arm.peak_per_host, arm.peak_per_datastore, slowdown.c_str(), wait.c_str(),
                    verdict.c_str());
    }
}

} // namespace

int main(int argc, char** argv) {
    try {
        CLI::App app{"Scan storm: templates due at once, with and without the scheduler's caps (simulated)"};
        StormOptions options;
        std::string csv_path;
        std::string json_path;
        app.add_option("--hosts", options.hosts, "Hypervisor hosts (default 10)");
        app.add_option("--datastores", options.datastores,
                       "Shared datastores, each mounted by every host (default 3)");
        app.add_option("--templates", options.templates, "Templates, all due at t=0 (default 100)");
        app.add_option("--gates", options.gates, "Gate requests arriving mid-run (default 5)");
        app.add_option("--seed", options.seed, "Seed of the image sizes and the gate requests (default 1)");
        app.add_option("--host-slots", options.host_slots,
                       "Scheduler: max_concurrent_scans per host (default 2)");
        app.add_option("--datastore-slots", options.datastore_slots,
                       "Scheduler: max_concurrent_scans per datastore (default 4)");
        app.add_option("--engine-mbps", options.engine_mb_per_s,
                       "One scan's speed, unloaded, MB/s (default 110)");
        app.add_option("--host-mbps", options.host_read_mb_per_s, "A host's read cap, MB/s (default 200)");
        app.add_option("--datastore-mbps", options.datastore_read_mb_per_s,
                       "A datastore's read cap, MB/s (default 400)");
        app.add_option("--min-gib", options.min_gib, "Smallest image, GiB (default 1)");
        app.add_option("--max-gib", options.max_gib, "Largest image, GiB (default 4)");
        app.add_option("--csv", csv_path,
                       "Write the time series (time_s, arm, max per host, max per datastore, total)");
        app.add_option("--json", json_path, "Write the summary");
        try {
            app.parse(argc, argv);
        } catch (const CLI::ParseError& e) {
            return app.exit(e) == 0 ? 0 : 2;
        }
        if (auto valid = validate(options); !valid) {
            std::cerr << "coldscan-storm-sim: error: " << valid.error().message << '\n';
            return 2;
        }
        const std::vector<StormJob> jobs = make_jobs(options);
        std::vector<ArmResult> arms;
        for (const Arm arm : {Arm::scheduler, Arm::no_scheduler}) {
            auto result = run_arm(options, jobs, arm);
            if (!result) {
                std::cerr << "coldscan-storm-sim: error: " << result.error().message << '\n';
                return 2;
            }
            arms.push_back(std::move(*result));
        }
        print(options, jobs, arms);
        if (!csv_path.empty()) {
            write_csv(csv_path, arms);
        }
        if (!json_path.empty()) {
            std::ofstream out(json_path);
            out << summary(options, jobs, arms).dump(2) << '\n';
            out.close();
            if (!out) {
                throw std::runtime_error("cannot write " + json_path);
            }
        }
        bool broken = false;
        for (const ArmResult& arm : arms) {
            for (const std::string& violation : arm.violations) {
                std::cerr << "coldscan-storm-sim: " << to_string(arm.arm) << ": " << violation << '\n';
                broken = true;
            }
        }
        return broken ? 1 : 0;
    } catch (const std::exception& e) {
        std::cerr << "coldscan-storm-sim: error: " << e.what() << '\n';
        return 2;
    }
}
