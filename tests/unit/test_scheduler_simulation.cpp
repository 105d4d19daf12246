// A discrete-event simulation that drives the real Scheduler with simulated time.
//
// 1000 images on 50 hosts behind 10 shared datastores (5 hosts each), all nightly and due at the same
// instant, plus 20 gate requests arriving mid-run. The simulation keeps its own model of what runs where,
// built only from the Decisions it carries out, and checks after every event: no host or datastore over its
// cap, every job done exactly once, each gate job started at its submission or else at the first completion
// on its host or datastore after which it could start (and never waiting while its host and datastore each
// have room or a nightly job to pause), no nightly job started outside its window. Job durations are
// estimated_bytes / the host's per-scan read rate and do not depend on load: the "uncapped" comparison run
// therefore shows the storm (peak concurrency), not the slowdown the storm would cause.
#include "coldscan/scheduler/scheduler.hpp"
#include "test_scheduler_support.hpp"

#include <catch2/catch.hpp>
#include <cstdio>
#include <map>
#include <queue>
#include <random>
#include <set>
#include <tuple>

using namespace coldscan;
using namespace coldscan::scheduler;
using namespace std::chrono_literals;
using coldscan::test::at;

namespace {

constexpr int k_hosts = 50;
constexpr int k_datastores = 10;
constexpr int k_hosts_per_datastore = k_hosts / k_datastores;
constexpr int k_images = 1000;
constexpr int k_gates = 20;
constexpr std::uint64_t k_gib = 1ULL << 30;

enum class Caps { realistic, uncapped };

struct World {
    std::vector<HostSpec> hosts;
    std::vector<DatastoreSpec> datastores;
    std::vector<std::uint64_t> scan_rate; // per host: bytes per second one scan reads
};

World make_world(Caps caps) {
    World world;
    for (int h = 0; h < k_hosts; ++h) {
        const unsigned cap = caps == Caps::realistic ? 2 + static_cast<unsigned>(h % 3) : 1000;
        world.hosts.push_back(HostSpec{test::numbered("h", h), cap, 0, 0.7});
        world.scan_rate.push_back((50 + 25 * static_cast<std::uint64_t>(h % 5)) * 1'000'000);
    }
    for (int d = 0; d < k_datastores; ++d) {
        DatastoreSpec datastore;
        datastore.name = test::numbered("ds", d);
        datastore.roots = {"/vmfs/" + datastore.name};
        for (int h = d * k_hosts_per_datastore; h < (d + 1) * k_hosts_per_datastore; ++h) {
            datastore.hosts.push_back(test::numbered("h", h));
        }
        datastore.max_concurrent_scans = caps == Caps::realistic ? 6 + static_cast<unsigned>(d % 5) : 1000;
        world.datastores.push_back(std::move(datastore));
    }
    return world;
}

struct Arrival {
    TimePoint at;
    Job job;
};

// The nightly images (all due at `due`) and the gate requests, from a fixed seed.
std::pair<std::vector<Job>, std::vector<Arrival>> make_jobs(TimePoint due, TimePoint first_gate, int gates) {
    std::mt19937_64 random(20240101); // mt19937_64's output is fixed by the standard
    std::vector<Job> images;
    for (int i = 0; i < k_images; ++i) {
        const int host = i % k_hosts;
        Job job;
        job.id = test::numbered("img", i);
        job.host = test::numbered("h", host);
        job.datastore = test::numbered("ds", host / k_hosts_per_datastore);
        job.target = "/vmfs/" + job.datastore + "/" + job.id + ".qcow2";
        job.priority = Priority::nightly;
        job.due = due;
        job.estimated_bytes = 10 * k_gib + random() % (70 * k_gib);
        images.push_back(std::move(job));
    }
    std::vector<Arrival> arrivals;
    for (int k = 0; k < gates; ++k) {
        // 17 and 50 are coprime: different hosts, one request every 4 minutes; but the last three arrive
        // together on h0, which has 2 slots: two pause nightly jobs, the third waits for one of them.
        const bool burst = k >= gates - 3;
        const int host = burst ? 0 : (k * 17) % k_hosts;
        Job job;
        job.id = test::numbered("gate", k);
        job.host = test::numbered("h", host);
        job.datastore = test::numbered("ds", host / k_hosts_per_datastore);
        job.target = "/vmfs/" + job.datastore + "/" + job.id + ".qcow2";
        job.priority = Priority::gate;
        const TimePoint when = burst ? first_gate + (gates - 3) * 4min
                                     : first_gate + k * 4min + std::chrono::seconds(random() % 60);
        job.due = when;
        job.estimated_bytes = 1 * k_gib + random() % (3 * k_gib);
        arrivals.push_back({when, std::move(job)});
    }
    return {std::move(images), std::move(arrivals)};
}

struct Result {
    std::vector<std::string> violations;
    TimePoint first_start{TimePoint::max()};
    TimePoint last_finish{TimePoint::min()};
    unsigned peak_host = 0;
    unsigned peak_datastore = 0;
    int gates_at_submission = 0;
    int gates_at_first_completion = 0;
    int pauses = 0;
    int events = 0;
    std::set<TimePoint> nights; // per nightly start: the day its window occurrence began (UTC midnight)
    std::size_t done = 0;
    std::size_t jobs = 0;
    std::size_t completed_once = 0;
};

class Simulation {
public:
    Simulation(Caps caps, Window window, TimePoint nightly_due, TimePoint first_gate, int gates)
        : m_world(make_world(caps)), m_window(window),
          m_scheduler(test::make_inventory(m_world.hosts, m_world.datastores),
                      SchedulerOptions{{window}, 100ULL << 20, std::chrono::days{14}}),
          m_host_running(k_hosts), m_host_nightly(k_hosts), m_datastore_running(k_datastores),
          m_datastore_nightly(k_datastores) {
        auto [images, arrivals] = make_jobs(nightly_due, first_gate, gates);
        for (Job& job : images) {
            add(job);
            REQUIRE(m_scheduler.submit(std::move(job)).has_value());
        }
        for (Arrival& arrival : arrivals) {
            add(arrival.job);
            push(arrival.at, Kind::arrival, arrival.job.id, 0);
            m_arrivals.emplace(arrival.job.id, std::move(arrival.job));
        }
    }

    Result run(TimePoint start) {
        TimePoint now = start;
        step(now);
        while (true) {
            const std::optional<TimePoint> wakeup = m_scheduler.next_wakeup(now);
            if (m_events.empty() && !wakeup) {
                break;
            }
            if (wakeup && (m_events.empty() || *wakeup < m_events.top().at)) {
                now = *wakeup;
                step(now);
                continue;
            }
            const Event event = m_events.top();
            m_events.pop();
            SimJob& job = m_jobs.at(event.id);
            if (event.kind == Kind::completion && event.version != job.version) {
                continue; // the job was paused after this completion was scheduled
            }
            now = event.at;
            ++m_result.events;
            if (event.kind == Kind::arrival) {
                job.submitted_at_step = m_steps;
                REQUIRE(m_scheduler.submit(m_arrivals.at(event.id)).has_value());
                step(now);
            } else {
                complete(job, now);
                step(now);
            }
        }
        for (const auto& [id, job] : m_jobs) {
            if (job.completions != 1) {
                violation(id + " completed " + std::to_string(job.completions) + " times");
            } else {
                ++m_result.completed_once;
            }
        }
        m_result.done = m_scheduler.count(JobState::done);
        m_result.jobs = m_jobs.size();
        return m_result;
    }

private:
    enum class Kind { completion, arrival };
    struct Event {
        TimePoint at;
        std::uint64_t order; // ties: first pushed, first served
        Kind kind;
        std::string id;
        std::uint64_t version;
        bool operator>(const Event& other) const {
            return std::tie(at, order) > std::tie(other.at, other.order);
        }
    };
    struct SimJob {
        std::string id;
        int host = 0;
        int datastore = 0;
        Priority priority = Priority::nightly;
        TimePoint due{};
        JobState state = JobState::queued;
        Duration remaining{};
        TimePoint resumed_at{};
        std::uint64_t version = 0;
        int completions = 0;
        // Gate jobs: when submitted, and the first step after that triggered by a completion on the job's
        // host or datastore.
        std::optional<std::uint64_t> submitted_at_step;
        std::optional<std::uint64_t> first_completion_step;
    };

    void add(const Job& job) {
        SimJob sim;
        sim.id = job.id;
        sim.host = std::stoi(job.host.substr(1));
        sim.datastore = std::stoi(job.datastore.substr(2));
        sim.priority = job.priority;
        sim.due = job.due;
        const std::uint64_t rate = m_world.scan_rate[static_cast<std::size_t>(sim.host)];
        sim.remaining = Duration(static_cast<Duration::rep>(job.estimated_bytes * 1000 / rate));
        m_jobs.emplace(job.id, sim);
        if (job.priority == Priority::gate) {
            m_gates.push_back(job.id);
        }
    }

    void push(TimePoint when, Kind kind, const std::string& id, std::uint64_t version) {
        m_events.push(Event{when, m_order++, kind, id, version});
    }

    void violation(std::string message) {
        if (m_result.violations.size() < 20) {
            m_result.violations.push_back(std::move(message));
        }
    }

    static std::string time_of(TimePoint t) {
        const auto day = std::chrono::floor<std::chrono::days>(t);
        const std::chrono::hh_mm_ss clock(t - day);
        char text[48];
        std::snprintf(text, sizeof text, "day %lld %02lld:%02lld:%02lld",
                      static_cast<long long>((day - at(0, 0)) / std::chrono::days{1}),
                      static_cast<long long>(clock.hours().count()),
                      static_cast<long long>(clock.minutes().count()),
                      static_cast<long long>(clock.seconds().count()));
        return text;
    }

    void complete(SimJob& job, TimePoint now) {
        const std::string& id = job.id;
        if (job.state != JobState::running) {
            violation(id + " completed while " + std::string(to_string(job.state)));
        }
        if (auto finished = m_scheduler.finished(id, now); !finished) {
            violation("finished(" + id + "): " + finished.error().message);
        }
        leave_slot(job);
        job.state = JobState::done;
        ++job.completions;
        m_result.last_finish = std::max(m_result.last_finish, now);
        // Gates waiting on this host or datastore: the first completion there after which they can start
        // must start them.
        for (const std::string& gate : m_gates) {
            SimJob& other = m_jobs.at(gate);
            if (other.state == JobState::queued && other.submitted_at_step && !other.first_completion_step &&
                (other.host == job.host || other.datastore == job.datastore) && gate_could_start(other)) {
                other.first_completion_step = m_steps;
            }
        }
    }

    void take_slot(SimJob& job, TimePoint now) {
        ++m_host_running[static_cast<std::size_t>(job.host)];
        ++m_datastore_running[static_cast<std::size_t>(job.datastore)];
        if (job.priority == Priority::nightly) {
            ++m_host_nightly[static_cast<std::size_t>(job.host)];
            ++m_datastore_nightly[static_cast<std::size_t>(job.datastore)];
        }
        job.state = JobState::running;
        job.resumed_at = now;
    }

    void leave_slot(SimJob& job) {
        --m_host_running[static_cast<std::size_t>(job.host)];
        --m_datastore_running[static_cast<std::size_t>(job.datastore)];
        if (job.priority == Priority::nightly) {
            --m_host_nightly[static_cast<std::size_t>(job.host)];
            --m_datastore_nightly[static_cast<std::size_t>(job.datastore)];
        }
    }

    // One scheduler step, carried out on the model, then every invariant checked.
    void step(TimePoint now) {
        const Decision decision = m_scheduler.step(now);
        const std::uint64_t this_step = m_steps++;
        for (const std::string& id : decision.pause) {
            SimJob& job = m_jobs.at(id);
            if (job.state != JobState::running || job.priority != Priority::nightly) {
                violation("paused " + id + ", which is not a running nightly job");
                continue;
            }
            leave_slot(job);
            job.remaining -= now - job.resumed_at;
            job.state = JobState::paused;
            ++job.version; // its scheduled completion no longer holds
            ++m_result.pauses;
        }
        for (const std::string& id : decision.resume) {
            SimJob& job = m_jobs.at(id);
            if (job.state != JobState::paused) {
                violation("resumed " + id + ", which is not paused");
                continue;
            }
            take_slot(job, now);
            push(now + job.remaining, Kind::completion, id, job.version);
        }
        for (const std::string& id : decision.start) {
            SimJob& job = m_jobs.at(id);
            if (job.state != JobState::queued) {
                violation("started " + id + ", which is " + std::string(to_string(job.state)));
                continue;
            }
            if (now < job.due) {
                violation("started " + id + " before it was due");
            }
            if (job.priority == Priority::nightly) {
                // Checked on the clock face, not through Window, so a bug in Window shows up here too.
                if (!inside_nightly_window(now)) {
                    violation("nightly " + id + " started outside the window at " + time_of(now));
                }
                m_result.nights.insert(std::chrono::floor<std::chrono::days>(now - m_window.start()));
            }
            if (job.priority == Priority::gate) {
                if (job.submitted_at_step == this_step) {
                    ++m_result.gates_at_submission;
                } else if (job.first_completion_step == this_step) {
                    ++m_result.gates_at_first_completion;
                } else {
                    violation("gate " + id +
                              " started neither at its submission nor at the first completion "
                              "on its host or datastore");
                }
            }
            take_slot(job, now);
            m_result.first_start = std::min(m_result.first_start, now);
            push(now + job.remaining, Kind::completion, id, job.version);
        }
        check(now);
    }

    bool inside_nightly_window(TimePoint now) const {
        const auto since_midnight = now - std::chrono::floor<std::chrono::days>(now);
        const auto start = m_window.start();
        const auto end = m_window.end();
        if (start < end) {
            return since_midnight >= start && since_midnight < end;
        }
        return since_midnight >= start || since_midnight < end;
    }

    // Whether its host and its datastore each have room or a nightly job to pause.
    bool gate_could_start(const SimJob& job) const {
        const auto host = static_cast<std::size_t>(job.host);
        const auto datastore = static_cast<std::size_t>(job.datastore);
        const bool host_ok =
            m_host_running[host] < m_world.hosts[host].max_concurrent_scans || m_host_nightly[host] > 0;
        const bool datastore_ok =
            m_datastore_running[datastore] < m_world.datastores[datastore].max_concurrent_scans ||
            m_datastore_nightly[datastore] > 0;
        return host_ok && datastore_ok;
    }

    void check(TimePoint now) {
        for (int h = 0; h < k_hosts; ++h) {
            const auto index = static_cast<std::size_t>(h);
            const unsigned running = m_host_running[index];
            m_result.peak_host = std::max(m_result.peak_host, running);
            if (running > m_world.hosts[index].max_concurrent_scans) {
                violation(test::numbered("host h", h) + " runs " + std::to_string(running) + " at " +
                          time_of(now));
            }
            if (m_scheduler.running_on_host(m_world.hosts[index].name) != running) {
                violation(test::numbered("the scheduler's count differs from what runs on h", h));
            }
        }
        for (int d = 0; d < k_datastores; ++d) {
            const auto index = static_cast<std::size_t>(d);
            const unsigned running = m_datastore_running[index];
            m_result.peak_datastore = std::max(m_result.peak_datastore, running);
            if (running > m_world.datastores[index].max_concurrent_scans) {
                violation(test::numbered("datastore ds", d) + " runs " + std::to_string(running) + " at " +
                          time_of(now));
            }
            if (m_scheduler.running_on_datastore(m_world.datastores[index].name) != running) {
                violation(test::numbered("the scheduler's count differs from what runs on ds", d));
            }
        }
        // No gate job may wait while room, or a nightly job to pause, is there on both its host and
        // its datastore.
        for (const std::string& id : m_gates) {
            const SimJob& job = m_jobs.at(id);
            if (job.state != JobState::queued || !job.submitted_at_step) {
                continue;
            }
            if (gate_could_start(job)) {
                violation("gate " + id + " waits at " + time_of(now) + " though it could start");
            }
        }
    }

    World m_world;
    Window m_window;
    Scheduler m_scheduler;
    std::map<std::string, SimJob> m_jobs;
    std::map<std::string, Job> m_arrivals;
    std::vector<std::string> m_gates;
    std::priority_queue<Event, std::vector<Event>, std::greater<>> m_events;
    std::uint64_t m_order = 0;
    std::uint64_t m_steps = 0;
    std::vector<unsigned> m_host_running;
    std::vector<unsigned> m_host_nightly;
    std::vector<unsigned> m_datastore_running;
    std::vector<unsigned> m_datastore_nightly;
    Result m_result;
};

std::string hours_minutes(Duration d) {
    const auto minutes = std::chrono::duration_cast<std::chrono::minutes>(d).count();
    char text[32];
    std::snprintf(text, sizeof text, "%lld:%02lld", static_cast<long long>(minutes / 60),
                  static_cast<long long>(minutes % 60));
    return text;
}

void require_clean(const Result& result) {
    // Shows the first violations when there are any.
    CHECK(result.violations == std::vector<std::string>{});
    CHECK(result.completed_once == result.jobs);
    CHECK(result.done == result.jobs);
}

} // namespace

TEST_CASE("Scheduler simulation: 1000 images, 50 hosts, 10 datastores, 20 gate requests", "[scheduler]") {
    const Window night = Window::create(22h, 6h).value();
    // Everything is due at 21:00 on day 0; the window opens at 22:00; gates arrive from 22:05 on.
    Simulation capped(Caps::realistic, night, at(0, 21), at(0, 22, 5), k_gates);
    const Result result = capped.run(at(0, 21));
    require_clean(result);
    CHECK(result.jobs == k_images + k_gates);
    CHECK(result.first_start == at(0, 22));
    CHECK(result.gates_at_submission == k_gates - 1);
    CHECK(result.gates_at_first_completion == 1);
    CHECK(result.peak_host <= 4);
    CHECK(result.peak_datastore <= 10);
    // Gates arrived while nightly jobs held every datastore: each paused one.
    CHECK(result.pauses >= 1);
    CHECK(result.nights == std::set<TimePoint>{at(0, 0)});
    CHECK(result.last_finish < at(1, 6));

    Simulation uncapped(Caps::uncapped, night, at(0, 21), at(0, 22, 5), k_gates);
    const Result storm = uncapped.run(at(0, 21));
    require_clean(storm);
    CHECK(storm.peak_host == k_images / k_hosts);
    CHECK(storm.peak_datastore == k_images / k_datastores);

    WARN("simulation, capped (hosts 2-4, datastores 6-10): makespan "
         << hours_minutes(result.last_finish - result.first_start) << " h:mm from 22:00, peak per host "
         << result.peak_host << ", peak per datastore " << result.peak_datastore << "; gates started at "
         << "submission " << result.gates_at_submission << ", at the first completion "
         << result.gates_at_first_completion << "; nightly jobs paused " << result.pauses << "; events "
         << result.events << "\nsimulation, uncapped: makespan "
         << hours_minutes(storm.last_finish - storm.first_start) << " h:mm, peak per host " << storm.peak_host
         << ", peak per datastore " << storm.peak_datastore
         << " (durations do not grow with load, so the uncapped makespan is a lower bound)");
}

TEST_CASE("Scheduler simulation: the window closes before all jobs ran", "[scheduler]") {
    const Window short_night = Window::create(22h, 23h).value();
    Simulation simulation(Caps::realistic, short_night, at(0, 21), at(0, 22), 0);
    const Result result = simulation.run(at(0, 21));
    require_clean(result);
    CHECK(result.jobs == k_images);
    // Starts on two or more nights, each inside 22:00-23:00 (checked per start); the last jobs started
    // the next night or later, not in between.
    REQUIRE(result.nights.size() >= 2);
    CHECK(*result.nights.begin() == at(0, 0));
    CHECK(*std::next(result.nights.begin()) == at(1, 0));
    CHECK(result.last_finish > at(1, 22));
    const auto last_day = std::chrono::floor<std::chrono::days>(result.last_finish);
    WARN("simulation, 22:00-23:00 window: nights with starts "
         << result.nights.size() << ", last finish on day " << (last_day - at(0, 0)) / std::chrono::days{1}
         << " at " << hours_minutes(result.last_finish - last_day));
}
