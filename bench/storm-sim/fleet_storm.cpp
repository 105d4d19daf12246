#include "fleet_storm.hpp"

#include "coldscan/fleet/fleet_schema.hpp"
#include "coldscan/fleet/pg_job_queue.hpp"
#include "coldscan/scheduler/scheduler.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <utility>

namespace coldscan::bench {

namespace {

using scheduler::ClaimOutcome;
using scheduler::JobState;

constexpr double k_mb = 1e6;
const std::chrono::seconds k_lease{3600}; // longer than any run: leases never run out here

struct LiveJob {
    JobState state = JobState::queued;
    std::string pg_id; // the fleet queue's id
    int node = -1;     // the node running it
    double remaining = 0.0;
    double speed = 0.0;
};

struct Node {
    std::string name;
    std::unique_ptr<fleet::PgJobQueue> queue;
    std::optional<scheduler::Scheduler> core;
    std::map<std::string, std::size_t, std::less<>> by_scheduler_id; // scheduler id -> job index
    std::map<std::size_t, std::string> placed;                       // job index -> scheduler id
    unsigned generation = 0;
    unsigned running = 0;
    std::vector<std::string> preempted; // heard at the last renewal
    NodeOutcome outcome;
};

Expected<fleet::PgConnection> connect(const std::string& uri) {
    return fleet::PgConnection::open({.uri = uri, .application_name = "coldscan fleet storm"});
}

class FleetSimulation {
public:
    FleetSimulation(const FleetStormOptions& options, const std::vector<StormJob>& jobs)
        : m_options(options), m_storm(options.storm), m_jobs(jobs), m_live(jobs.size()),
          m_host_running(m_storm.hosts, 0), m_datastore_running(m_storm.datastores, 0) {
        m_result.arm.arm = Arm::scheduler;
        for (std::size_t i = 0; i < jobs.size(); ++i) {
            m_result.arm.jobs.push_back(outcome_before_run(m_storm, jobs[i]));
            m_live[i].remaining = static_cast<double>(jobs[i].bytes);
            m_result.arm.bytes += jobs[i].bytes;
        }
        for (unsigned d = 0; d < m_storm.datastores; ++d) {
            m_datastore_names.push_back(datastore_name(d));
        }
    }

    Expected<FleetResult> run() {
        const auto wall_start = std::chrono::steady_clock::now();
        if (auto ready = start_nodes(); !ready) {
            return std::unexpected(ready.error());
        }
        const std::vector<std::size_t> arrivals = arrival_order(m_jobs);
        std::size_t next_arrival = 0;
        double now = 0.0;
        double next_adoption = 0.0;
        const std::size_t max_events = 20 * m_jobs.size() + 10000;
        for (std::size_t event = 0; m_done < m_jobs.size(); ++event) {
            if (event > max_events) {
                add_violation(m_result.arm, "no progress after " + std::to_string(max_events) + " events");
                break;
            }
            while (next_arrival < arrivals.size() && m_jobs[arrivals[next_arrival]].arrival_s <= now) {
                if (auto submitted = submit(arrivals[next_arrival], now); !submitted) {
                    return std::unexpected(submitted.error());
                }
                ++next_arrival;
            }
            if (now >= next_adoption) {
                if (auto adopted = renew_and_adopt(now); !adopted) {
                    return std::unexpected(adopted.error());
                }
                next_adoption = now + m_options.adopt_s;
            }
            if (auto stepped = step_nodes(now, event); !stepped) {
                return std::unexpected(stepped.error());
            }
            sample(now);
            double next = next_adoption;
            const double next_finish =
                share_reads(m_storm, m_jobs, m_live, m_host_running, m_datastore_running, now);
            next = std::min(next, next_finish);
            if (next_arrival < arrivals.size()) {
                next = std::min(next, m_jobs[arrivals[next_arrival]].arrival_s);
            }
            for (Node& node : m_nodes) {
                if (const auto wakeup = node.core->next_wakeup(to_time_point(now))) {
                    next = std::min(next, std::max(now, to_seconds(*wakeup)));
                }
            }
            if (auto advanced = advance(now, next, next_finish); !advanced) {
                return std::unexpected(advanced.error());
            }
            now = next;
        }
        summarise(m_result.arm);
        for (Node& node : m_nodes) {
            m_result.nodes.push_back(node.outcome);
        }
        m_result.wall_s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
        return std::move(m_result);
    }

private:
    Expected<void> start_nodes() {
        // A success stores its report's text: every job gets the same small one.
        m_report = std::filesystem::temp_directory_path() / "coldscan-fleet-storm-report.json";
        std::ofstream(m_report) << "{\"storm\": true}\n";
        auto admin = connect(m_options.database);
        if (!admin) {
            return std::unexpected(admin.error());
        }
        if (auto migrated = fleet::migrate_schema(*admin); !migrated) {
            return std::unexpected(migrated.error());
        }
        auto inventory = make_inventory(m_storm, true, 0);
        if (!inventory) {
            return std::unexpected(inventory.error());
        }
        m_nodes.resize(m_options.nodes);
        for (unsigned n = 0; n < m_options.nodes; ++n) {
            Node& node = m_nodes[n];
            node.name = "node-" + std::to_string(n);
            node.outcome.name = node.name;
            auto db = connect(m_options.database);
            auto keeper = db ? connect(m_options.database) : std::move(db);
            if (!db || !keeper) {
                return std::unexpected(db ? keeper.error() : db.error());
            }
            node.queue = std::make_unique<fleet::PgJobQueue>(
                std::move(*db), std::move(*keeper),
                fleet::PgJobQueueOptions{.node = node.name, .lease = k_lease, .keeper = false});
            node.queue->set_preempt_listener(
                [&node](const std::string& id) { node.preempted.push_back(id); });
            scheduler::SchedulerOptions options;
            options.assumed_scan_bytes_per_second =
                static_cast<std::uint64_t>(m_storm.engine_mb_per_s * k_mb);
            options.max_running = m_options.node_scans;
            options.first_turn = std::hash<std::string>{}(node.name); // as coldscan serve does
            node.core.emplace(*inventory, std::move(options));
        }
        return {};
    }

    scheduler::JobSlots slots_of(std::size_t i) const {
        return scheduler::JobSlots{host_name(m_jobs[i].host), datastore_name(m_jobs[i].datastore),
                                   m_storm.host_slots, m_storm.datastore_slots, m_jobs[i].bytes};
    }

    // Into the fleet queue through node i % nodes, which schedules it at once, as `coldscan serve` does.
    Expected<void> submit(std::size_t i, double now) {
        Node& node = m_nodes[i % m_nodes.size()];
        scheduler::JobRequest request;
        request.target = target_of(m_jobs[i]);
        request.priority = m_jobs[i].gate ? scheduler::Priority::gate : scheduler::Priority::nightly;
        auto submitted =
            node.queue->submit(std::move(request), "storm " + m_jobs[i].id, "storm set", {}, slots_of(i));
        if (!submitted) {
            return make_error(Errc::internal, "submit " + m_jobs[i].id + ": " + submitted.error().message);
        }
        m_live[i].pg_id = submitted->record.id;
        m_index.emplace(submitted->record.id, i);
        return schedule(node, i, now);
    }

    Expected<void> schedule(Node& node, std::size_t i, double now) {
        const StormJob& job = m_jobs[i];
        std::string scheduler_id = job.id + "/" + std::to_string(++node.generation);
        scheduler::Job scheduled{scheduler_id,
                                 target_of(job),
                                 host_name(job.host),
                                 datastore_name(job.datastore),
                                 job.gate ? scheduler::Priority::gate : scheduler::Priority::nightly,
                                 to_time_point(std::min(job.arrival_s, now)),
                                 job.bytes};
        if (auto done = node.core->submit(std::move(scheduled)); !done) {
            return make_error(Errc::internal,
                              node.name + " scheduling " + job.id + ": " + done.error().message);
        }
        node.by_scheduler_id.emplace(scheduler_id, i);
        node.placed.emplace(i, std::move(scheduler_id));
        return {};
    }

    // The job leaves the node's scheduler: finished (it ran or was paused here) or, when it was only queued
    // here, cancelled.
    void unplace(Node& node, std::size_t i, double now) {
        const auto placed = node.placed.find(i);
        if (placed == node.placed.end()) {
            add_violation(m_result.arm, node.name + " dropped " + m_jobs[i].id + ", which it had not placed");
            return;
        }
        const std::string& scheduler_id = placed->second;
        if (node.core->state(scheduler_id) == JobState::queued) {
            static_cast<void>(node.core->cancel(scheduler_id));
        } else if (auto finished = node.core->finished(scheduler_id, to_time_point(now)); !finished) {
            add_violation(m_result.arm,
                          node.name + " finished(" + scheduler_id + "): " + finished.error().message);
        }
        node.core->forget(scheduler_id);
        node.by_scheduler_id.erase(scheduler_id);
        node.placed.erase(placed);
    }

    // Every node renews its leases (a preempted job stops and is queued again) and adopts queued jobs.
    Expected<void> renew_and_adopt(double now) {
        for (Node& node : m_nodes) {
            node.queue->renew_leases();
            for (const std::string& id : std::exchange(node.preempted, {})) {
                if (auto stopped = preempt(node, id, now); !stopped) {
                    return stopped;
                }
            }
            auto adoption = node.queue->adoptable(m_datastore_names);
            if (!adoption) {
                return make_error(Errc::internal, node.name + " adoptable: " + adoption.error().message);
            }
            ++m_result.adoptions;
            m_result.adopted_rows += adoption->queued.size() + adoption->dequeued.size();
            node.core->set_running_elsewhere(adoption->running_elsewhere_on_host,
                                             adoption->running_elsewhere_on_datastore);
            for (const std::string& id : adoption->dequeued) {
                const auto found = m_index.find(id);
                if (found != m_index.end() && node.placed.contains(found->second) &&
                    node.core->state(node.placed.at(found->second)) == JobState::queued) {
                    unplace(node, found->second, now);
                }
            }
            for (const scheduler::SharedJob& shared : adoption->queued) {
                const auto found = m_index.find(shared.id);
                if (found == m_index.end()) {
                    add_violation(m_result.arm, "adopted an unknown job " + shared.id);
                    continue;
                }
                if (node.placed.contains(found->second)) {
                    continue;
                }
                if (auto scheduled = schedule(node, found->second, now); !scheduled) {
                    return scheduled;
                }
            }
        }
        return {};
    }

    Expected<void> preempt(Node& node, const std::string& id, double now) {
        const auto found = m_index.find(id);
        if (found == m_index.end()) {
            return {};
        }
        const std::size_t i = found->second;
        const auto self = static_cast<int>(&node - m_nodes.data());
        if (m_live[i].state != JobState::running || m_live[i].node != self) {
            return {}; // already ended or paused here: nothing to stop
        }
        leave_slot(i, node);
        m_live[i].state = JobState::queued;
        ++m_result.preemptions;
        ++m_result.arm.jobs[i].pauses;
        ++m_result.arm.pauses;
        unplace(node, i, now);
        if (auto requeued = node.queue->requeue(id); !requeued) {
            return make_error(Errc::internal, node.name + " requeue " + id + ": " + requeued.error().message);
        }
        return {};
    }

    // Every node steps; a node whose claim was refused steps again at once (as the service does), until
    // no claim is refused. The node that goes first rotates.
    Expected<void> step_nodes(double now, std::size_t event) {
        const std::size_t count = m_nodes.size();
        for (std::size_t k = 0; k < count; ++k) {
            Node& node = m_nodes[(event + k) % count];
            for (unsigned rounds = 0;; ++rounds) {
                auto refused = step_node(node, now);
                if (!refused) {
                    return std::unexpected(refused.error());
                }
                if (!*refused) {
                    break;
                }
                if (rounds > m_jobs.size()) {
                    add_violation(m_result.arm, node.name + " kept stepping");
                    break;
                }
            }
        }
        return {};
    }

    // Carries out one step of a node's scheduler; true when a claim was refused.
    Expected<bool> step_node(Node& node, double now) {
        const scheduler::Decision decision = node.core->step(to_time_point(now));
        for (const std::string& scheduler_id : decision.pause) {
            const std::size_t i = node.by_scheduler_id.at(scheduler_id);
            leave_slot(i, node);
            m_live[i].state = JobState::paused;
            ++m_result.arm.jobs[i].pauses;
            ++m_result.arm.pauses;
            if (auto paused = node.queue->mark_paused(m_live[i].pg_id); !paused) {
                return make_error(Errc::internal, node.name + " pause: " + paused.error().message);
            }
        }
        bool refused = false;
        for (const auto* ids : {&decision.resume, &decision.start}) {
            for (const std::string& scheduler_id : *ids) {
                auto claimed =
                    begin(node, node.by_scheduler_id.at(scheduler_id), now, ids == &decision.resume);
                if (!claimed) {
                    return std::unexpected(claimed.error());
                }
                refused = refused || !*claimed;
            }
        }
        return refused;
    }

    // A claim; false when refused (the job leaves this node's scheduler until the next adoption).
    Expected<bool> begin(Node& node, std::size_t i, double now, bool resuming) {
        auto claim = node.queue->claim(m_live[i].pg_id, slots_of(i));
        if (!claim) {
            return make_error(Errc::internal, node.name + " claim: " + claim.error().message);
        }
        if (claim->outcome == ClaimOutcome::granted) {
            ++m_result.claims_granted;
            if (m_live[i].state == JobState::running || m_live[i].state == JobState::done) {
                add_violation(m_result.arm, m_jobs[i].id + " granted while running or done");
            }
            take_slot(i, node);
            if (m_result.arm.jobs[i].start_s < 0.0) {
                m_result.arm.jobs[i].start_s = now;
            }
            return true;
        }
        (claim->outcome == ClaimOutcome::caps_full ? m_result.claims_caps_full : m_result.claims_taken) += 1;
        unplace(node, i, now);
        if (resuming && claim->outcome == ClaimOutcome::caps_full) {
            m_live[i].state = JobState::queued;
            if (auto requeued = node.queue->requeue(m_live[i].pg_id); !requeued) {
                return make_error(Errc::internal, node.name + " requeue: " + requeued.error().message);
            }
        }
        return false;
    }

    void take_slot(std::size_t i, Node& node) {
        const StormJob& job = m_jobs[i];
        m_live[i].state = JobState::running;
        m_live[i].node = static_cast<int>(&node - m_nodes.data());
        ++node.running;
        node.outcome.peak_running = std::max(node.outcome.peak_running, node.running);
        if (++m_host_running[job.host] > m_storm.host_slots) {
            add_violation(m_result.arm,
                          host_name(job.host) + " runs " + std::to_string(m_host_running[job.host]));
        }
        if (++m_datastore_running[job.datastore] > m_storm.datastore_slots) {
            add_violation(m_result.arm, datastore_name(job.datastore) + " runs " +
                                            std::to_string(m_datastore_running[job.datastore]));
        }
    }

    void leave_slot(std::size_t i, Node& node) {
        --node.running;
        --m_host_running[m_jobs[i].host];
        --m_datastore_running[m_jobs[i].datastore];
        m_live[i].node = -1;
    }

    // Moves time from now to next; the scans due by then finish and their nodes write the success.
    Expected<void> advance(double now, double next, double next_finish) {
        const std::vector<std::size_t> finishing = read_until(m_live, m_result.arm, now, next, next_finish);
        for (const std::size_t i : finishing) {
            Node& node = m_nodes[static_cast<std::size_t>(m_live[i].node)];
            leave_slot(i, node);
            m_live[i].state = JobState::done;
            m_live[i].remaining = 0.0;
            ++m_done;
            ++node.outcome.completed;
            m_result.arm.jobs[i].finish_s = next;
            ++m_result.arm.jobs[i].completions;
            if (auto written = node.queue->mark_succeeded(m_live[i].pg_id, m_report.string()); !written) {
                return make_error(Errc::internal, node.name + " success: " + written.error().message);
            }
            unplace(node, i, next);
        }
        return {};
    }

    void sample(double now) { record_sample(m_result.arm, m_host_running, m_datastore_running, now); }

    const FleetStormOptions& m_options;
    const StormOptions& m_storm;
    const std::vector<StormJob>& m_jobs;
    std::vector<LiveJob> m_live;
    std::map<std::string, std::size_t, std::less<>> m_index; // fleet queue id -> job index
    std::vector<std::string> m_datastore_names;
    std::vector<Node> m_nodes;
    std::vector<unsigned> m_host_running;
    std::vector<unsigned> m_datastore_running;
    std::size_t m_done = 0;
    std::filesystem::path m_report;
    FleetResult m_result;
};

} // namespace

Expected<FleetResult> run_fleet(const FleetStormOptions& options, const std::vector<StormJob>& jobs) {
    if (auto valid = validate(options.storm); !valid) {
        return std::unexpected(valid.error());
    }
    if (options.nodes == 0 || options.node_scans == 0 || !(options.adopt_s > 0.0)) {
        return make_error(Errc::invalid_argument,
                          "--nodes, --node-scans and --adopt-seconds must be positive");
    }
    if (options.database.empty()) {
        return make_error(Errc::invalid_argument,
                          "--database (a libpq URI of an empty database) is required");
    }
    return FleetSimulation(options, jobs).run();
}

} // namespace coldscan::bench
