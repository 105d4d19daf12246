// coldscan-claim-bench: the fleet queue's claim throughput and latency with N concurrent claimers on a real
// PostgreSQL (bench/fleet-claim-bench.sh starts one). Each claimer is a node of its own (its own PgJobQueue
// and connection); every granted claim is followed by the fenced write that ends the job, as a scan's end
// does, so the caps keep turning over. Prints one JSON object.
#include "coldscan/fleet/fleet_schema.hpp"
#include "coldscan/fleet/pg_job_queue.hpp"
#include "coldscan/scheduler/job_queue.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

namespace {

using namespace coldscan;
using Clock = std::chrono::steady_clock;

struct Options {
    std::string uri;
    unsigned claimers = 1;
    unsigned jobs = 2000;
    unsigned hosts = 50;
    unsigned cap = 2;
};

fleet::PgConnection connect(const std::string& uri) {
    auto db = fleet::PgConnection::open({.uri = uri, .application_name = "coldscan claim bench"});
    if (!db) {
        std::fprintf(stderr, "%s\n", db.error().message.c_str());
        std::exit(2);
    }
    return std::move(*db);
}

std::unique_ptr<fleet::PgJobQueue> node(const Options& o, const std::string& name) {
    return std::make_unique<fleet::PgJobQueue>(connect(o.uri), connect(o.uri),
                                               fleet::PgJobQueueOptions{.node = name, .keeper = false});
}

scheduler::JobSlots slots_of(const Options& o, unsigned job) {
    const std::string host = "host-" + std::to_string(job % o.hosts);
    return scheduler::JobSlots{host, "ds-" + std::to_string(job % o.hosts), o.cap, 0, 0};
}

// Submits the jobs; returns their ids in submission order.
std::vector<std::string> submit_all(const Options& o) {
    auto submitter = node(o, "submitter");
    std::vector<std::string> ids;
    for (unsigned i = 0; i < o.jobs; ++i) {
        scheduler::JobRequest request;
        request.target = "/images/" + std::to_string(i) + ".qcow2";
        auto submitted = submitter->submit(request, "bench " + std::to_string(i), "sigs", {}, slots_of(o, i));
        if (!submitted) {
            std::fprintf(stderr, "%s\n", submitted.error().message.c_str());
            std::exit(2);
        }
        ids.push_back(submitted->record.id);
    }
    return ids;
}

} // namespace

int main(int argc, char** argv) {
    Options o;
    CLI::App app("Claim throughput of the fleet's job queue");
    app.add_option("--uri", o.uri, "libpq URI of an empty database")->required();
    app.add_option("--claimers", o.claimers, "Concurrent claimers (nodes)");
    app.add_option("--jobs", o.jobs, "Jobs to claim");
    app.add_option("--hosts", o.hosts, "Hosts (and datastores) the jobs spread over");
    app.add_option("--cap", o.cap, "Each host's cap");
    CLI11_PARSE(app, argc, argv);
    auto admin = connect(o.uri);
    if (auto migrated = fleet::migrate_schema(admin); !migrated) {
        std::fprintf(stderr, "%s\n", migrated.error().message.c_str());
        return 2;
    }
    const auto ids = submit_all(o);
    std::atomic<unsigned> done{0};
    std::atomic<unsigned> attempts{0};
    std::vector<std::vector<double>> latencies(o.claimers);
    std::vector<std::thread> threads;
    const auto started = Clock::now();
    for (unsigned c = 0; c < o.claimers; ++c) {
        threads.emplace_back([&, c] {
            auto queue = node(o, "bench-" + std::to_string(c));
            // Each claimer walks the queue from its own place, as nodes with their own schedulers do.
            for (std::size_t step = 0; done.load() < o.jobs; ++step) {
                const std::size_t index = (c * ids.size() / o.claimers + step) % ids.size();
                const auto before = Clock::now();
                auto claim = queue->claim(ids[index], slots_of(o, static_cast<unsigned>(index)));
                latencies[c].push_back(
                    std::chrono::duration<double, std::milli>(Clock::now() - before).count());
                attempts.fetch_add(1);
                if (claim && claim->outcome == scheduler::ClaimOutcome::granted &&
                    queue->mark_failed(ids[index], "bench", scheduler::Retry::never)) {
                    done.fetch_add(1);
                }
            }
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
    std::vector<double> all;
    for (const auto& each : latencies) {
        all.insert(all.end(), each.begin(), each.end());
    }
    std::sort(all.begin(), all.end());
    const auto at = [&](double q) {
        return all.empty() ? 0.0 : all[static_cast<std::size_t>(q * (all.size() - 1))];
    };
    const nlohmann::json out{{"claimers", o.claimers},
                             {"jobs", o.jobs},
                             {"attempts", attempts.load()},
                             {"seconds", seconds},
                             {"claims_per_second", o.jobs / seconds},
                             {"p50_ms", at(0.5)},
                             {"p99_ms", at(0.99)}};
    std::printf("%s\n", out.dump().c_str());
    return 0;
}
