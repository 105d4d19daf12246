#include "storm_model.hpp"

#include "coldscan/scheduler/inventory.hpp"
#include "coldscan/scheduler/job.hpp"
#include "coldscan/scheduler/scheduler.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <utility>

namespace coldscan::bench {

namespace {

using scheduler::Decision;
using scheduler::Duration;
using scheduler::JobState;
using scheduler::Priority;
using scheduler::TimePoint;

constexpr double k_mb = 1e6;
constexpr double k_gib = 1024.0 * 1024.0 * 1024.0;

std::string numbered(std::string_view prefix, std::size_t n) {
    std::string name(prefix);
    name += std::to_string(n);
    return name;
}

// A double in [0, 1) from the top 53 bits: the same on every platform, unlike uniform_real_distribution.
double unit(std::mt19937_64& random) {
    return static_cast<double>(random() >> 11) * 0x1.0p-53;
}

std::uint64_t draw_bytes(std::mt19937_64& random, const StormOptions& options) {
    const double gib = options.min_gib + (options.max_gib - options.min_gib) * unit(random);
    return static_cast<std::uint64_t>(gib * k_gib);
}

double median(std::vector<double> values) {
    if (values.empty()) {
        return 0.0;
    }
    std::sort(values.begin(), values.end());
    const std::size_t middle = values.size() / 2;
    return values.size() % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2.0;
}

// Scheduler time: day 0 is 2024-01-01 00:00 UTC, millisecond resolution.
const TimePoint k_epoch = std::chrono::sys_days{std::chrono::year{2024} / std::chrono::January / 1};

struct LiveJob {
    JobState state = JobState::queued;
    bool arrived = false;
    double remaining = 0.0; // bytes
    double speed = 0.0;     // bytes per second while running
};

class Simulation {
public:
    Simulation(const StormOptions& options, const std::vector<StormJob>& jobs, Arm arm)
        : m_options(options), m_jobs(jobs), m_arm(arm), m_live(jobs.size()), m_host_running(options.hosts, 0),
          m_datastore_running(options.datastores, 0) {
        m_result.arm = arm;
        for (std::size_t i = 0; i < jobs.size(); ++i) {
            m_index.emplace(jobs[i].id, i);
            m_result.jobs.push_back(outcome_before_run(options, jobs[i]));
            m_live[i].remaining = static_cast<double>(jobs[i].bytes);
            m_result.bytes += jobs[i].bytes;
        }
    }

    Expected<ArmResult> run() {
        auto core = make_scheduler();
        if (!core) {
            return std::unexpected(core.error());
        }
        const std::vector<std::size_t> arrivals = arrival_order(m_jobs);
        std::size_t next_arrival = 0;
        double now = 0.0;
        const std::size_t max_events = 4 * m_jobs.size() + 1000;
        for (std::size_t events = 0;; ++events) {
            if (events > max_events) {
                violation(numbered("no progress after events: ", max_events));
                break;
            }
            while (next_arrival < arrivals.size() && m_jobs[arrivals[next_arrival]].arrival_s <= now) {
                if (auto submitted = submit(*core, arrivals[next_arrival]); !submitted) {
                    return std::unexpected(submitted.error());
                }
                ++next_arrival;
            }
            apply(core->step(to_time_point(now)), now);
            check(*core);
            sample(now);

            // The next event: a finish, an arrival or a scheduler wake-up, whichever is first.
            const double next_finish =
                share_reads(m_options, m_jobs, m_live, m_host_running, m_datastore_running, now);
            double next = next_finish;
            if (next_arrival < arrivals.size()) {
                next = std::min(next, m_jobs[arrivals[next_arrival]].arrival_s);
            }
            if (const auto wakeup = core->next_wakeup(to_time_point(now))) {
                next = std::min(next, std::max(now, to_seconds(*wakeup)));
            }
            if (std::isinf(next)) {
                break;
            }
            advance(now, next, next_finish, *core);
            now = next;
        }
        finish_up();
        return std::move(m_result);
    }

private:
    Expected<scheduler::Scheduler> make_scheduler() const {
        // Without the scheduler: slots nobody can fill, so every job starts when due.
        const bool capped = m_arm == Arm::scheduler;
        auto inventory = make_inventory(m_options, capped, static_cast<unsigned>(m_jobs.size()) + 1);
        if (!inventory) {
            return std::unexpected(inventory.error());
        }
        scheduler::SchedulerOptions options;
        options.assumed_scan_bytes_per_second = static_cast<std::uint64_t>(m_options.engine_mb_per_s * k_mb);
        options.max_running = capped ? m_options.max_running : 0;
        return scheduler::Scheduler(std::move(*inventory), std::move(options));
    }

    Expected<void> submit(scheduler::Scheduler& core, std::size_t index) {
        const StormJob& job = m_jobs[index];
        scheduler::Job submitted;
        submitted.id = job.id;
        submitted.host = host_name(job.host);
        submitted.datastore = datastore_name(job.datastore);
        submitted.target = target_of(job);
        submitted.priority = job.gate ? Priority::gate : Priority::nightly;
        submitted.due = to_time_point(job.arrival_s);
        submitted.estimated_bytes = job.bytes;
        if (auto done = core.submit(std::move(submitted)); !done) {
            return make_error(Errc::internal, "submit(" + job.id + "): " + done.error().message);
        }
        m_live[index].arrived = true;
        return {};
    }

    std::size_t index_of(const std::string& id) {
        const auto found = m_index.find(id);
        if (found == m_index.end()) {
            violation("the scheduler named an unknown job " + id);
            return m_jobs.size();
        }
        return found->second;
    }

    void take_slot(std::size_t i) {
        ++m_host_running[m_jobs[i].host];
        ++m_datastore_running[m_jobs[i].datastore];
        m_live[i].state = JobState::running;
    }

    void leave_slot(std::size_t i) {
        --m_host_running[m_jobs[i].host];
        --m_datastore_running[m_jobs[i].datastore];
    }

    // Carries out a Decision on the model: pause, resume, start, in that order.
    void apply(const Decision& decision, double now) {
        for (const std::string& id : decision.pause) {
            const std::size_t i = index_of(id);
            if (i == m_jobs.size()) {
                continue;
            }
            if (m_live[i].state != JobState::running || m_jobs[i].gate) {
                violation("paused " + id + ", which is not a running nightly job");
                continue;
            }
            leave_slot(i);
            m_live[i].state = JobState::paused;
            ++m_result.jobs[i].pauses;
            ++m_result.pauses;
        }
        for (const std::string& id : decision.resume) {
            const std::size_t i = index_of(id);
            if (i == m_jobs.size()) {
                continue;
            }
            if (m_live[i].state != JobState::paused) {
                violation("resumed " + id + ", which is not paused");
                continue;
            }
            take_slot(i);
        }
        for (const std::string& id : decision.start) {
            const std::size_t i = index_of(id);
            if (i == m_jobs.size()) {
                continue;
            }
            if (m_live[i].state != JobState::queued || !m_live[i].arrived) {
                violation("started " + id + ", which is not a queued job");
                continue;
            }
            take_slot(i);
            m_result.jobs[i].start_s = now;
        }
    }

    void check(const scheduler::Scheduler& core) {
        for (unsigned h = 0; h < m_options.hosts; ++h) {
            const unsigned running = m_host_running[h];
            if (m_arm == Arm::scheduler && running > m_options.host_slots) {
                violation(numbered("host h", h) + " runs " + std::to_string(running));
            }
            if (core.running_on_host(numbered("h", h)) != running) {
                violation(numbered("the scheduler's count differs from the model's on h", h));
            }
        }
        for (unsigned d = 0; d < m_options.datastores; ++d) {
            const unsigned running = m_datastore_running[d];
            if (m_arm == Arm::scheduler && running > m_options.datastore_slots) {
                violation(numbered("datastore ds", d) + " runs " + std::to_string(running));
            }
            if (core.running_on_datastore(numbered("ds", d)) != running) {
                violation(numbered("the scheduler's count differs from the model's on ds", d));
            }
        }
    }

    void sample(double now) { record_sample(m_result, m_host_running, m_datastore_running, now); }

    // Moves time from now to next: running scans read, and those due to finish by then finish.
    void advance(double now, double next, double next_finish, scheduler::Scheduler& core) {
        const std::vector<std::size_t> finishing = read_until(m_live, m_result, now, next, next_finish);
        for (const std::size_t i : finishing) {
            m_live[i].remaining = 0.0;
            leave_slot(i);
            m_live[i].state = JobState::done;
            JobOutcome& outcome = m_result.jobs[i];
            outcome.finish_s = next;
            ++outcome.completions;
            if (auto finished = core.finished(m_jobs[i].id, to_time_point(next)); !finished) {
                violation("finished(" + m_jobs[i].id + "): " + finished.error().message);
            }
        }
    }

    void finish_up() { summarise(m_result); }

    void violation(std::string message) { add_violation(m_result, std::move(message)); }

    const StormOptions& m_options;
    const std::vector<StormJob>& m_jobs;
    Arm m_arm;
    std::vector<LiveJob> m_live;
    std::map<std::string, std::size_t, std::less<>> m_index;
    std::vector<unsigned> m_host_running;
    std::vector<unsigned> m_datastore_running;
    ArmResult m_result;
};

} // namespace

Expected<void> validate(const StormOptions& options) {
    const auto invalid = [](std::string message) {
        return make_error(Errc::invalid_argument, std::move(message));
    };
    if (options.hosts == 0 || options.datastores == 0 || options.templates == 0) {
        return invalid("--hosts, --datastores and --templates must be at least 1");
    }
    if (options.host_slots == 0 || options.datastore_slots == 0) {
        return invalid("--host-slots and --datastore-slots must be at least 1");
    }
    if (!(options.engine_mb_per_s > 0.0) || !(options.host_read_mb_per_s > 0.0) ||
        !(options.datastore_read_mb_per_s > 0.0)) {
        return invalid("speeds and read caps must be positive");
    }
    if (!(options.min_gib > 0.0) || !(options.max_gib >= options.min_gib) || options.max_gib > 1e6) {
        return invalid("image sizes need 0 < --min-gib <= --max-gib <= 1e6");
    }
    return {};
}

std::vector<StormJob> make_jobs(const StormOptions& options) {
    std::mt19937_64 random(options.seed);
    std::vector<StormJob> jobs;
    double template_bytes = 0.0;
    for (unsigned i = 0; i < options.templates; ++i) {
        StormJob job;
        job.id = numbered("tpl", i);
        job.host = i % options.hosts;
        job.datastore = i % options.datastores;
        job.bytes = draw_bytes(random, options);
        template_bytes += static_cast<double>(job.bytes);
        jobs.push_back(std::move(job));
    }
    // The fleet's aggregate read capacity: every host's cap, every datastore's, or every scan's engine.
    const double capacity = std::min({options.hosts * options.host_read_mb_per_s,
                                      options.datastores * options.datastore_read_mb_per_s,
                                      options.templates * options.engine_mb_per_s}) *
                            k_mb;
    const double ideal_makespan = template_bytes / capacity;
    std::vector<StormJob> gates;
    for (unsigned k = 0; k < options.gates; ++k) {
        StormJob job;
        job.id = numbered("gate", k);
        job.gate = true;
        job.host = static_cast<unsigned>(random() % options.hosts);
        job.datastore = static_cast<unsigned>(random() % options.datastores);
        // Whole milliseconds, the scheduler's resolution.
        job.arrival_s = std::round(ideal_makespan * (0.2 + 0.6 * unit(random)) * 1000.0) / 1000.0;
        job.bytes = draw_bytes(random, options);
        gates.push_back(std::move(job));
    }
    std::stable_sort(gates.begin(), gates.end(),
                     [](const StormJob& a, const StormJob& b) { return a.arrival_s < b.arrival_s; });
    jobs.insert(jobs.end(), std::make_move_iterator(gates.begin()), std::make_move_iterator(gates.end()));
    return jobs;
}

Expected<scheduler::Inventory> make_inventory(const StormOptions& options, bool capped, unsigned unlimited) {
    std::vector<scheduler::HostSpec> hosts;
    std::vector<std::string> host_names;
    for (unsigned h = 0; h < options.hosts; ++h) {
        scheduler::HostSpec host;
        host.name = host_name(h);
        host.max_concurrent_scans = capped ? options.host_slots : unlimited;
        host.max_read_bytes_per_second = static_cast<std::uint64_t>(options.host_read_mb_per_s * k_mb);
        host_names.push_back(host.name);
        hosts.push_back(std::move(host));
    }
    std::vector<scheduler::DatastoreSpec> datastores;
    for (unsigned d = 0; d < options.datastores; ++d) {
        scheduler::DatastoreSpec datastore;
        datastore.name = datastore_name(d);
        datastore.roots = {"/storm/" + datastore.name};
        datastore.hosts = host_names;
        datastore.max_concurrent_scans = capped ? options.datastore_slots : unlimited;
        datastore.max_read_bytes_per_second =
            static_cast<std::uint64_t>(options.datastore_read_mb_per_s * k_mb);
        datastores.push_back(std::move(datastore));
    }
    auto inventory = scheduler::Inventory::create(std::move(hosts), std::move(datastores));
    if (!inventory) {
        return make_error(Errc::internal, "the simulated fleet: " + inventory.error().message);
    }
    return std::move(*inventory);
}

std::string host_name(unsigned host) {
    return numbered("h", host);
}

std::string datastore_name(unsigned datastore) {
    return numbered("ds", datastore);
}

std::string target_of(const StormJob& job) {
    return "/storm/" + datastore_name(job.datastore) + "/" + job.id + ".qcow2";
}

TimePoint to_time_point(double seconds) {
    return k_epoch + Duration(static_cast<Duration::rep>(std::llround(seconds * 1000.0)));
}

double to_seconds(TimePoint t) {
    return static_cast<double>((t - k_epoch).count()) / 1000.0;
}

double shared_speed(const StormOptions& options, unsigned on_host, unsigned on_datastore) {
    const double host_share = options.host_read_mb_per_s / on_host;
    const double datastore_share = options.datastore_read_mb_per_s / on_datastore;
    return std::min({options.engine_mb_per_s, host_share, datastore_share}) * k_mb;
}

void summarise(ArmResult& result) {
    std::vector<double> waits;
    std::vector<double> turnarounds;
    double slowdowns = 0.0;
    std::size_t finished = 0;
    for (const JobOutcome& job : result.jobs) {
        if (job.completions != 1) {
            add_violation(result, job.id + " completed " + std::to_string(job.completions) + " times");
            continue;
        }
        ++finished;
        result.makespan_s = std::max(result.makespan_s, job.finish_s);
        const double slowdown = job.run_s / job.unloaded_s;
        slowdowns += slowdown;
        result.max_slowdown = std::max(result.max_slowdown, slowdown);
        if (job.gate) {
            waits.push_back(job.start_s - job.arrival_s);
            turnarounds.push_back(job.finish_s - job.arrival_s);
        }
    }
    result.mean_slowdown = finished == 0 ? 0.0 : slowdowns / static_cast<double>(finished);
    if (!waits.empty()) {
        result.gate_wait_max_s = *std::max_element(waits.begin(), waits.end());
        result.gate_turnaround_max_s = *std::max_element(turnarounds.begin(), turnarounds.end());
    }
    result.gate_wait_median_s = median(waits);
    result.gate_turnaround_median_s = median(turnarounds);
}

std::vector<std::size_t> arrival_order(const std::vector<StormJob>& jobs) {
    std::vector<std::size_t> order(jobs.size());
    for (std::size_t i = 0; i < order.size(); ++i) {
        order[i] = i;
    }
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return jobs[a].arrival_s < jobs[b].arrival_s; });
    return order;
}

JobOutcome outcome_before_run(const StormOptions& options, const StormJob& job) {
    JobOutcome outcome;
    outcome.id = job.id;
    outcome.gate = job.gate;
    outcome.arrival_s = job.arrival_s;
    outcome.unloaded_s = static_cast<double>(job.bytes) / shared_speed(options, 1, 1);
    return outcome;
}

void record_sample(ArmResult& result, const std::vector<unsigned>& host_running,
                   const std::vector<unsigned>& datastore_running, double now) {
    Sample s;
    s.time_s = now;
    s.max_running_per_host = *std::max_element(host_running.begin(), host_running.end());
    s.max_running_per_datastore = *std::max_element(datastore_running.begin(), datastore_running.end());
    for (const unsigned running : host_running) {
        s.total_running += running;
    }
    result.peak_per_host = std::max(result.peak_per_host, s.max_running_per_host);
    result.peak_per_datastore = std::max(result.peak_per_datastore, s.max_running_per_datastore);
    result.peak_total = std::max(result.peak_total, s.total_running);
    if (!result.series.empty() && result.series.back().time_s == now) {
        result.series.back() = s;
    } else {
        result.series.push_back(s);
    }
}

void add_violation(ArmResult& result, std::string message) {
    if (result.violations.size() < 20) {
        result.violations.push_back(std::move(message));
    }
}

std::string_view to_string(Arm arm) {
    return arm == Arm::scheduler ? "scheduler" : "no-scheduler";
}

Expected<ArmResult> run_arm(const StormOptions& options, const std::vector<StormJob>& jobs, Arm arm) {
    if (auto valid = validate(options); !valid) {
        return std::unexpected(valid.error());
    }
    for (const StormJob& job : jobs) {
        if (job.host >= options.hosts || job.datastore >= options.datastores) {
            return make_error(Errc::invalid_argument,
                              job.id + " names a host or datastore outside the fleet");
        }
    }
    return Simulation(options, jobs, arm).run();
}

} // namespace coldscan::bench
