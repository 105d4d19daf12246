#include "coldscan/scheduler/scheduler.hpp"

#include <algorithm>
#include <cassert>
#include <utility>

namespace coldscan::scheduler {
namespace {

std::size_t index_of(Priority priority) {
    return static_cast<std::size_t>(priority);
}

std::size_t index_of(JobState state) {
    return static_cast<std::size_t>(state);
}

} // namespace

Scheduler::Scheduler(Inventory inventory, SchedulerOptions options)
    : m_inventory(std::move(inventory)), m_options(std::move(options)), m_hosts(m_inventory.hosts().size()),
      m_datastores(m_inventory.datastores().size()) {
    assert(m_options.assumed_scan_bytes_per_second > 0);
    if (!m_hosts.empty()) {
        m_turn.fill(m_options.first_turn % m_hosts.size());
    }
}

Expected<void> Scheduler::submit(Job job) {
    if (job.id.empty()) {
        return make_error(Errc::invalid_argument, "a job needs an id");
    }
    if (m_jobs.contains(job.id)) {
        return make_error(Errc::invalid_argument, "job id " + job.id + " is already used");
    }
    auto host = m_inventory.host_index(job.host);
    if (!host) {
        return make_error(Errc::not_found, "job " + job.id + ": unknown host " + job.host);
    }
    auto datastore = m_inventory.datastore_index(job.datastore);
    if (!datastore) {
        return make_error(Errc::not_found, "job " + job.id + ": unknown datastore " + job.datastore);
    }
    if (!m_inventory.mounts(*host, *datastore)) {
        return make_error(Errc::invalid_argument, "job " + job.id + ": host " + job.host +
                                                      " does not mount datastore " + job.datastore);
    }
    JobRecord record;
    record.host = *host;
    record.datastore = *datastore;
    m_hosts[*host].queued[index_of(job.priority)].insert({job.due, job.id});
    record.job = std::move(job);
    const std::string id = record.job.id;
    m_jobs.emplace(id, std::move(record));
    ++m_counts[index_of(JobState::queued)];
    return {};
}

Expected<JobState> Scheduler::cancel(std::string_view id) {
    auto found = m_jobs.find(id);
    if (found == m_jobs.end()) {
        return make_error(Errc::not_found, "no job " + std::string(id));
    }
    JobRecord& job = found->second;
    const JobState was = job.state;
    if (was == JobState::queued) {
        m_hosts[job.host].queued[index_of(job.job.priority)].erase({job.job.due, job.job.id});
        set_state(job, JobState::done);
    } else if (was == JobState::paused) {
        release_slots(job);
        set_state(job, JobState::done);
    }
    return was;
}

Expected<void> Scheduler::finished(std::string_view id, TimePoint now) {
    auto found = m_jobs.find(id);
    if (found == m_jobs.end()) {
        return make_error(Errc::not_found, "no job " + std::string(id));
    }
    JobRecord& job = found->second;
    if (job.state != JobState::running && job.state != JobState::paused) {
        return make_error(Errc::invalid_argument,
                          "job " + job.job.id + " is " + std::string(to_string(job.state)) + ", not running");
    }
    if (job.state == JobState::running) {
        job.ran += std::max(Duration::zero(), now - job.started_at);
    }
    release_slots(job);
    set_state(job, JobState::done);
    return {};
}

bool Scheduler::forget(std::string_view id) {
    const auto found = m_jobs.find(id);
    if (found == m_jobs.end() || found->second.state != JobState::done) {
        return false;
    }
    --m_counts[index_of(JobState::done)];
    m_jobs.erase(found);
    return true;
}

void Scheduler::set_running_elsewhere(const std::map<std::string, unsigned, std::less<>>& hosts,
                                      const std::map<std::string, unsigned, std::less<>>& datastores) {
    for (std::size_t host = 0; host < m_hosts.size(); ++host) {
        const auto found = hosts.find(m_inventory.hosts()[host].name);
        m_hosts[host].elsewhere = found == hosts.end() ? 0 : found->second;
    }
    for (std::size_t datastore = 0; datastore < m_datastores.size(); ++datastore) {
        const auto found = datastores.find(m_inventory.datastores()[datastore].name);
        m_datastores[datastore].elsewhere = found == datastores.end() ? 0 : found->second;
    }
}

Expected<void> Scheduler::set_pressure(std::string_view host, double value, TimePoint now) {
    auto index = m_inventory.host_index(host);
    if (!index) {
        return make_error(Errc::not_found, "unknown host " + std::string(host));
    }
    if (!(value >= 0.0 && value <= 1.0)) {
        return make_error(Errc::invalid_argument, "host " + std::string(host) + ": pressure outside 0..1");
    }
    HostState& state = m_hosts[*index];
    state.pressure = value;
    if (!throttled(*index)) {
        state.throttled_since.reset();
    } else if (!state.throttled_since) {
        state.throttled_since = now;
    }
    return {};
}

Decision Scheduler::step(TimePoint now) {
    Decision decision;
    // Jobs paused by this step carry a sequence number from here on; they do not resume in the same step.
    const std::uint64_t first_sequence_of_step = m_sequence + 1;
    serve_lane(Lane::gate, now, first_sequence_of_step, decision);
    serve_lane(Lane::on_demand, now, first_sequence_of_step, decision);
    serve_lane(Lane::paused, now, first_sequence_of_step, decision);
    if (nightly_allowed(now)) {
        serve_lane(Lane::nightly, now, first_sequence_of_step, decision);
    }
    decision.throttled = throttled_hosts();
    return decision;
}

void Scheduler::serve_lane(Lane lane, TimePoint now, std::uint64_t first_sequence_of_step,
                           Decision& decision) {
    const std::size_t hosts = m_hosts.size();
    std::size_t& turn = m_turn[static_cast<std::size_t>(lane)];
    // Round robin: stop once every host in a row has passed its turn.
    std::size_t host = turn % std::max<std::size_t>(hosts, 1);
    for (std::size_t passed = 0; passed < hosts; host = (host + 1) % hosts) {
        if (serve_host(lane, host, now, first_sequence_of_step, decision)) {
            passed = 0;
            turn = (host + 1) % hosts;
        } else {
            ++passed;
        }
    }
}

bool Scheduler::serve_host(Lane lane, std::size_t host, TimePoint now, std::uint64_t first_sequence_of_step,
                           Decision& decision) {
    HostState& state = m_hosts[host];
    if (lane != Lane::gate && (!node_has_room() || !host_has_room(host, true) || throttled(host))) {
        return false;
    }
    if (lane == Lane::paused) {
        for (const SequenceKey& key : state.paused) {
            if (key.sequence >= first_sequence_of_step) {
                continue;
            }
            JobRecord& job = record(key.id);
            if (datastore_has_room(job.datastore, true)) {
                decision.resume.push_back(job.job.id);
                resume(job, now);
                return true;
            }
        }
        return false;
    }
    const Priority priority = lane == Lane::gate        ? Priority::gate
                              : lane == Lane::on_demand ? Priority::on_demand
                                                        : Priority::nightly;
    for (const QueueKey& key : state.queued[index_of(priority)]) {
        if (key.due > now) {
            break;
        }
        JobRecord& job = record(key.id);
        if (priority == Priority::gate) {
            if (start_gate(job, now, decision)) {
                return true;
            }
        } else if (datastore_has_room(job.datastore, true)) {
            decision.start.push_back(job.job.id);
            start(job, now);
            return true;
        }
    }
    return false;
}

bool Scheduler::start_gate(JobRecord& job, TimePoint now, Decision& decision) {
    const bool host_full = !host_has_room(job.host);
    const bool datastore_full = !datastore_has_room(job.datastore);
    const auto& on_host = m_hosts[job.host].running_nightly;
    const auto& on_datastore = m_datastores[job.datastore].running_nightly;
    std::vector<std::string> victims;
    if (host_full && datastore_full) {
        // One nightly job on both frees both slots; else the latest on each.
        for (auto it = on_host.rbegin(); it != on_host.rend(); ++it) {
            if (record(it->id).datastore == job.datastore) {
                victims.push_back(it->id);
                break;
            }
        }
        if (victims.empty()) {
            if (on_host.empty() || on_datastore.empty()) {
                return false;
            }
            victims = {on_host.rbegin()->id, on_datastore.rbegin()->id};
        }
    } else if (host_full) {
        if (on_host.empty()) {
            return false;
        }
        victims.push_back(on_host.rbegin()->id);
    } else if (datastore_full) {
        if (on_datastore.empty()) {
            return false;
        }
        victims.push_back(on_datastore.rbegin()->id);
    }
    for (const std::string& id : victims) {
        pause(record(id), now);
        decision.pause.push_back(id);
    }
    assert(host_has_room(job.host) && datastore_has_room(job.datastore));
    decision.start.push_back(job.job.id);
    start(job, now);
    return true;
}

void Scheduler::start(JobRecord& job, TimePoint now) {
    assert(job.state == JobState::queued);
    m_hosts[job.host].queued[index_of(job.job.priority)].erase({job.job.due, job.job.id});
    resume(job, now);
}

void Scheduler::resume(JobRecord& job, TimePoint now) {
    assert(job.state == JobState::queued || job.state == JobState::paused);
    if (job.state == JobState::paused) {
        m_hosts[job.host].paused.erase({job.sequence, job.job.id});
    }
    job.sequence = ++m_sequence;
    job.started_at = now;
    HostState& host = m_hosts[job.host];
    DatastoreState& datastore = m_datastores[job.datastore];
    ++host.running;
    ++datastore.running;
    assert(host.running <= m_inventory.hosts()[job.host].max_concurrent_scans);
    assert(datastore.running <= m_inventory.datastores()[job.datastore].max_concurrent_scans);
    if (job.job.priority == Priority::nightly) {
        host.running_nightly.insert({job.sequence, job.job.id});
        datastore.running_nightly.insert({job.sequence, job.job.id});
    }
    set_state(job, JobState::running);
}

void Scheduler::pause(JobRecord& job, TimePoint now) {
    assert(job.state == JobState::running && job.job.priority == Priority::nightly);
    job.ran += std::max(Duration::zero(), now - job.started_at);
    release_slots(job);
    job.sequence = ++m_sequence;
    m_hosts[job.host].paused.insert({job.sequence, job.job.id});
    set_state(job, JobState::paused);
}

void Scheduler::release_slots(JobRecord& job) {
    HostState& host = m_hosts[job.host];
    DatastoreState& datastore = m_datastores[job.datastore];
    if (job.state == JobState::paused) {
        host.paused.erase({job.sequence, job.job.id});
        return;
    }
    assert(job.state == JobState::running && host.running > 0 && datastore.running > 0);
    --host.running;
    --datastore.running;
    host.running_nightly.erase({job.sequence, job.job.id});
    datastore.running_nightly.erase({job.sequence, job.job.id});
}

void Scheduler::set_state(JobRecord& job, JobState state) {
    --m_counts[index_of(job.state)];
    job.state = state;
    ++m_counts[index_of(state)];
}

Scheduler::JobRecord& Scheduler::record(const std::string& id) {
    auto found = m_jobs.find(id);
    assert(found != m_jobs.end());
    return found->second;
}

bool Scheduler::throttled(std::size_t host) const {
    return m_hosts[host].pressure > m_inventory.hosts()[host].pressure_threshold;
}

bool Scheduler::node_has_room() const {
    return m_options.max_running == 0 || m_counts[index_of(JobState::running)] < m_options.max_running;
}

bool Scheduler::host_has_room(std::size_t host, bool fleet) const {
    const HostState& state = m_hosts[host];
    return state.running + (fleet ? state.elsewhere : 0) < m_inventory.hosts()[host].max_concurrent_scans;
}

bool Scheduler::datastore_has_room(std::size_t datastore, bool fleet) const {
    const DatastoreState& state = m_datastores[datastore];
    return state.running + (fleet ? state.elsewhere : 0) <
           m_inventory.datastores()[datastore].max_concurrent_scans;
}

bool Scheduler::nightly_allowed(TimePoint now) const {
    return m_options.nightly_windows.empty() ||
           std::ranges::any_of(m_options.nightly_windows,
                               [&](const Window& window) { return window.contains(now); });
}

std::optional<TimePoint> Scheduler::next_wakeup(TimePoint now) const {
    std::optional<TimePoint> next;
    const auto consider = [&](TimePoint t) {
        if (!next || t < *next) {
            next = t;
        }
    };
    bool nightly_waiting = false;
    for (const HostState& host : m_hosts) {
        for (const auto& queue : host.queued) {
            // The first job due after now (QueueKey{due, ""} sorts before every id of that due).
            auto later = queue.lower_bound({now + Duration(1), std::string()});
            if (later != queue.end()) {
                consider(later->due);
            }
        }
        nightly_waiting = nightly_waiting || !host.queued[index_of(Priority::nightly)].empty();
    }
    if (nightly_waiting && !nightly_allowed(now)) {
        for (const Window& window : m_options.nightly_windows) {
            consider(window.next_start(now));
        }
    }
    return next;
}

std::optional<JobState> Scheduler::state(std::string_view id) const {
    auto found = m_jobs.find(id);
    if (found == m_jobs.end()) {
        return std::nullopt;
    }
    return found->second.state;
}

std::size_t Scheduler::count(JobState state) const noexcept {
    return m_counts[index_of(state)];
}

std::optional<unsigned> Scheduler::running_on_host(std::string_view host) const {
    auto index = m_inventory.host_index(host);
    if (!index) {
        return std::nullopt;
    }
    return m_hosts[*index].running;
}

std::optional<unsigned> Scheduler::running_on_datastore(std::string_view datastore) const {
    auto index = m_inventory.datastore_index(datastore);
    if (!index) {
        return std::nullopt;
    }
    return m_datastores[*index].running;
}

std::vector<std::string> Scheduler::throttled_hosts() const {
    std::vector<std::string> hosts;
    for (std::size_t i = 0; i < m_hosts.size(); ++i) {
        if (throttled(i)) {
            hosts.push_back(m_inventory.hosts()[i].name);
        }
    }
    return hosts;
}

std::optional<TimePoint> Scheduler::throttled_since(std::string_view host) const {
    auto index = m_inventory.host_index(host);
    if (!index) {
        return std::nullopt;
    }
    return m_hosts[*index].throttled_since;
}

} // namespace coldscan::scheduler
