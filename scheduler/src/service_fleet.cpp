// What a service does with a shared job store (fleet mode, docs/fleet.md): it adopts the fleet's queued jobs
// on the datastores it reaches into its own Scheduler, which orders them as it orders its own; the store's
// claim() then checks the fleet's caps before any of them starts. With one node's JobQueue none of this runs.
#include "service_impl.hpp"

#include <algorithm>
#include <filesystem>

namespace coldscan::scheduler {

JobSlots ScanService::Impl::slots_of(std::size_t host, std::size_t datastore,
                                     std::uint64_t estimated_bytes) const {
    const auto& inventory = config.inventory;
    return JobSlots{inventory.hosts()[host].name, inventory.datastores()[datastore].name,
                    inventory.hosts()[host].max_concurrent_scans,
                    inventory.datastores()[datastore].max_concurrent_scans, estimated_bytes};
}

std::vector<std::string> ScanService::Impl::reachable_datastores() const {
    std::vector<std::string> out;
    for (const auto& datastore : config.inventory.datastores()) {
        const bool reached = std::ranges::any_of(datastore.roots, [](const std::string& root) {
            std::error_code ec;
            return std::filesystem::is_directory(root, ec);
        });
        if (reached) {
            out.push_back(datastore.name);
        }
    }
    return out;
}

void ScanService::Impl::adopt_shared_jobs_locked(const Expected<Adoption>& adoption) {
    if (m_draining) {
        return;
    }
    if (!adoption) {
        ++m_counters.job_queue_write_errors;
        spdlog::error("fleet: cannot read the shared queue: {}", adoption.error().message);
        return;
    }
    for (const auto& id : adoption->dequeued) {
        const auto placed = m_placements.find(id);
        if (placed == m_placements.end()) {
            continue;
        }
        const std::string scheduler_id = placed->second.scheduler_id;
        if (m_scheduler.state(scheduler_id) == JobState::queued && m_scheduler.cancel(scheduler_id)) {
            forget_locked(scheduler_id);
            m_placements.erase(placed);
        }
    }
    m_scheduler.set_running_elsewhere(adoption->running_elsewhere_on_host,
                                      adoption->running_elsewhere_on_datastore);
    const auto& inventory = config.inventory;
    for (const auto& job : adoption->queued) {
        if (m_placements.contains(job.id)) {
            continue;
        }
        const auto host = inventory.host_index(job.slots.host);
        const auto datastore = inventory.datastore_index(job.slots.datastore);
        if (!host || !datastore || !inventory.mounts(*host, *datastore)) {
            continue; // another node's inventory: this one does not know where its bytes are
        }
        JobRecord record;
        record.id = job.id;
        record.request.target = job.target;
        record.request.priority = job.priority;
        const TimePoint due{std::chrono::duration_cast<Duration>(std::chrono::seconds{job.submitted_at})};
        schedule_locked(record, *host, *datastore, job.slots.estimated_bytes, std::min(due, service_now()));
    }
}

void ScanService::Impl::on_lease_lost(const std::string& id) {
    std::lock_guard stops(m_lease_stop_mutex); // not m_mutex: see m_lease_stops
    if (const auto worker = m_lease_stops.find(id); worker != m_lease_stops.end()) {
        worker->second->lease_lost.store(true);
        worker->second->stop->store(true);
    }
}

void ScanService::Impl::on_preempt(const std::string& id) {
    std::lock_guard stops(m_lease_stop_mutex); // not m_mutex: see m_lease_stops
    if (const auto worker = m_lease_stops.find(id); worker != m_lease_stops.end()) {
        worker->second->preempted.store(true);
        worker->second->stop->store(true);
    }
}

void ScanService::Impl::on_fleet_load(const FleetLoad& load) {
    const auto& inventory = config.inventory;
    std::vector<double> host_shares(inventory.hosts().size(), 1.0);
    std::vector<double> datastore_shares(inventory.datastores().size(), 1.0);
    const auto share = [](const FleetLoad::Entry& entry) {
        return entry.total == 0 ? 1.0 : static_cast<double>(entry.mine) / static_cast<double>(entry.total);
    };
    for (const auto& entry : load.hosts) {
        if (const auto index = inventory.host_index(entry.name)) {
            host_shares[*index] = share(entry);
        }
    }
    for (const auto& entry : load.datastores) {
        if (const auto index = inventory.datastore_index(entry.name)) {
            datastore_shares[*index] = share(entry);
        }
    }
    for (std::size_t host = 0; host < host_shares.size(); ++host) {
        budgets->set_host_share(host, host_shares[host]);
    }
    for (std::size_t datastore = 0; datastore < datastore_shares.size(); ++datastore) {
        budgets->set_datastore_share(datastore, datastore_shares[datastore]);
    }
}

} // namespace coldscan::scheduler
