// ScanService: start-up and recovery, submissions, views, cancel, reloads and shutdown. The dispatcher and
// the scan workers are in service_workers.cpp, probes and discovery in service_housekeeping.cpp.
#include "coldscan/scheduler/scan_service.hpp"

#include "coldscan/common/log.hpp"
#include "coldscan/common/temp_dir.hpp"
#include "coldscan/disk/image_probe.hpp"
#include "coldscan/reports/json_report.hpp"
#include "coldscan/reports/report.hpp"
#include "coldscan/scanner/scan_run.hpp"
#include "coldscan/scheduler/libvirt_disks.hpp"
#include "service_impl.hpp"

#include <algorithm>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>

namespace coldscan::scheduler {
namespace {

using json = nlohmann::json;

constexpr std::string_view k_libvirt_prefix = "libvirt:";
constexpr std::string_view k_vm_prefix = "vm:";

signatures::SignatureOptions signature_options(const ServiceConfig& config) {
    signatures::SignatureOptions options;
    options.clamav_db = config.clamav_db;
    options.yara_rules = config.yara_rules;
    options.limits = config.limits;
    options.isolation =
        config.sandbox ? signatures::EngineIsolation::sandboxed : signatures::EngineIsolation::in_process;
    options.memo_dir = config.state_dir / "store" / signatures::k_memo_folder;
    return options;
}

Expected<std::shared_ptr<const signatures::SignatureSet>> load_signatures(const ServiceConfig& config) {
    auto loaded = signatures::SignatureSet::load(signature_options(config), signatures::LoadMode::now);
    if (!loaded) {
        return make_error(Errc::engine, "signatures: " + loaded.error().message);
    }
    return std::make_shared<const signatures::SignatureSet>(std::move(*loaded));
}

} // namespace

TimePoint service_now() {
    return std::chrono::time_point_cast<Duration>(std::chrono::system_clock::now());
}

ScanService::Impl::Impl(ServiceConfig service_config)
    : config(std::move(service_config)), state_dir(config.state_dir),
      m_scheduler(
          config.inventory,
          SchedulerOptions{.nightly_windows = config.nightly_windows,
                           .max_running = config.max_scans,
                           // A fleet's nodes begin their turns at different hosts (rule 3).
                           .first_turn = config.fleet ? std::hash<std::string>{}(config.fleet->node) : 0}),
      m_pressure(config.inventory.hosts().size()) {}

ScanService::ScanService(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}

ScanService::~ScanService() {
    shutdown(std::chrono::seconds{0});
}

const ServiceConfig& ScanService::config() const noexcept {
    return m_impl->config;
}

Expected<std::unique_ptr<ScanService>> ScanService::start(ServiceConfig config, ServiceSharing sharing) {
    auto impl = std::make_unique<Impl>(std::move(config));
    impl->node_directory = sharing.nodes ? std::move(sharing.nodes) : std::make_shared<LocalNodeDirectory>();
    impl->node_name = impl->config.fleet ? impl->config.fleet->node : default_node_name();
    std::error_code ec;
    std::filesystem::create_directories(impl->state_dir / "reports", ec);
    if (ec) {
        return make_error(Errc::io, "state_dir: cannot create " + (impl->state_dir / "reports").string() +
                                        ": " + ec.message());
    }
    std::filesystem::permissions(impl->state_dir, std::filesystem::perms(0750),
                                 std::filesystem::perm_options::replace, ec);
    if (const auto removed = remove_stale_temp_dirs("coldscan"); removed > 0) {
        spdlog::info("removed {} temporary folder(s) that killed coldscan runs left behind", removed);
    }
    const auto store_dir = impl->state_dir / "store";
    auto store = scanner::open_rocksdb_store(store_dir);
    if (!store) {
        // Not moved aside as `coldscan scan` does with its cache: this store holds the job queue too, and
        // acknowledged jobs must not vanish without an operator's decision.
        return make_error(store.error().code,
                          "the service store " + store_dir.string() +
                              " cannot be opened: " + store.error().message +
                              (store.error().code == Errc::corrupt
                                   ? " (move it aside to start with an empty queue and cache)"
                                   : ""));
    }
    if (const auto damage = (*store)->open_problem(); !damage.empty()) {
        // Started all the same: what came before the damage passed its checksums, and refusing would leave
        // every job waiting for an operator. Jobs acknowledged in the lost records are what may be missing.
        spdlog::error("service store: {}; jobs submitted or updated in the lost records may be missing",
                      damage);
    }
    impl->store = std::shared_ptr<scanner::KvStore>(std::move(*store));
    impl->scan_store = sharing.scan_store ? sharing.scan_store(impl->store) : impl->store;
    if (sharing.jobs) {
        impl->queue = std::move(sharing.jobs);
    } else {
        impl->queue = std::make_shared<JobQueue>(*impl->store, JobQueueOptions{impl->config.max_attempts});
    }
    if (sharing.findings) {
        impl->findings = std::move(sharing.findings);
    } else {
        auto local = LocalFindingStore::open((impl->state_dir / "findings.jsonl").string());
        if (!local) {
            return std::unexpected(local.error());
        }
        impl->findings = std::move(*local);
    }
    Impl* raw_impl = impl.get();
    impl->queue->set_lease_listener([raw_impl](const std::string& id) { raw_impl->on_lease_lost(id); });
    impl->queue->set_preempt_listener([raw_impl](const std::string& id) { raw_impl->on_preempt(id); });
    impl->budgets = std::make_unique<ReadBudgets>(impl->config.inventory);
    impl->queue->set_load_listener([raw_impl](const FleetLoad& load) { raw_impl->on_fleet_load(load); });

    spdlog::info("loading signatures");
    impl->m_signature_stamp = impl->signature_folder_stamp();
    auto signatures = load_signatures(impl->config);
    if (!signatures) {
        return std::unexpected(signatures.error());
    }
    impl->m_signatures = std::move(*signatures);
    impl->m_signatures_loaded_at = reports::utc_now_iso8601();
    spdlog::info("signature set {}", impl->m_signatures->fingerprint());
    impl->load_alert_ids();

    auto unfinished = impl->queue->recover();
    if (!unfinished) {
        return make_error(unfinished.error().code, "job queue: " + unfinished.error().message);
    }
    {
        std::lock_guard lock(impl->m_mutex);
        for (const auto& record : *unfinished) {
            ScanRequest request{record.request.target, record.request.priority,     record.request.snapshot,
                                record.request.host,   record.request.requested_by, std::nullopt,
                                record.request.format, record.request.disks};
            auto placed = impl->resolve(request);
            if (!placed) {
                spdlog::warn("job {}: {}; it fails", record.id, placed.error().message);
                impl->queue_written_locked(record.id, impl->queue->claim(record.id, JobSlots{}));
                impl->queue_written_locked(
                    record.id, impl->queue->mark_failed(record.id, placed.error().message, Retry::never));
                continue;
            }
            const auto& where = placed->front();
            impl->schedule_locked(record, where.host, where.datastore, where.estimated_bytes, service_now());
        }
    }
    if (!unfinished->empty()) {
        spdlog::info("{} job(s) recovered from the queue", unfinished->size());
    }
    impl->report_node();
    Impl* raw = impl.get();
    impl->dispatcher = std::thread([raw] { raw->dispatch_loop(); });
    impl->housekeeper = std::thread([raw] { raw->housekeeping_loop(); });
    return std::unique_ptr<ScanService>(new ScanService(std::move(impl)));
}

std::filesystem::path ScanService::Impl::report_path(std::string_view id) const {
    return state_dir / "reports" / (std::string(id) + ".json");
}

Expected<ScanService::Impl::Resolved> ScanService::Impl::resolve_image(const std::string& path,
                                                                       const ScanRequest& request) const {
    const std::filesystem::path given(path);
    if (!given.is_absolute()) {
        return make_error(Errc::invalid_argument, "targets must be absolute paths: " + path);
    }
    std::error_code ec;
    const auto canonical = std::filesystem::canonical(given, ec);
    if (ec) {
        return make_error(ec == std::errc::no_such_file_or_directory ? Errc::not_found : Errc::io,
                          path + ": " + ec.message());
    }
    if (!std::filesystem::is_regular_file(canonical, ec)) {
        return make_error(Errc::invalid_argument, path + " is not an image file");
    }
    const auto& inventory = config.inventory;
    const auto datastore = inventory.datastore_of(canonical.string());
    if (!datastore) {
        return make_error(Errc::forbidden, path + " is outside every datastore root of the configuration");
    }
    const auto& store_spec = inventory.datastores()[*datastore];
    std::size_t host = 0;
    if (!request.host.empty()) {
        const auto index = inventory.host_index(request.host);
        if (!index) {
            return make_error(Errc::invalid_argument, "unknown host: " + request.host);
        }
        if (!inventory.mounts(*index, *datastore)) {
            return make_error(Errc::forbidden,
                              "host " + request.host + " does not use datastore " + store_spec.name);
        }
        host = *index;
    } else {
        // No host named: a stable pick among the datastore's hosts, so a shared datastore's images spread.
        const auto pick = std::hash<std::string>{}(canonical.string()) % store_spec.hosts.size();
        host = *inventory.host_index(store_spec.hosts[pick]);
    }
    disk::ProbeOptions probe;
    for (const auto& root : store_spec.roots) {
        probe.allowed_roots.emplace_back(root);
    }
    if (!request.format.empty()) {
        probe.format = request.format; // probe_image refuses a format coldscan does not open
    }
    auto info = disk::probe_image(canonical, probe);
    if (!info) {
        return std::unexpected(info.error());
    }
    Resolved resolved;
    resolved.request.target = canonical.string();
    resolved.request.snapshot = request.snapshot;
    resolved.request.priority = request.priority;
    resolved.request.requested_by = request.requested_by;
    resolved.request.host = inventory.hosts()[host].name;
    resolved.request.format = request.format;
    std::uint64_t on_disk = 0;
    for (const auto& layer : info->chain) {
        resolved.identity += layer.path.string() + "|" + scanner::host_file_identity(layer.path) + ";";
        on_disk += layer.file_size;
    }
    // How the top layer is read is part of the job: a raw reading of a file is another job than its reading
    // as an image format. The other formats are recognised by their magic bytes, so a format given reads
    // the file exactly as detection would (and gets the same job: a gate with the domain's <driver type>
    // reuses the verdict of a nightly scan that detected it); only raw changes what the bytes mean.
    if (info->format == "raw") {
        resolved.identity += "read as raw;";
    }
    resolved.host = host;
    resolved.datastore = *datastore;
    resolved.estimated_bytes = std::min(on_disk, info->virtual_size);
    resolved.max_age = request.max_age;
    return resolved;
}

Expected<std::vector<JobDisk>> ScanService::Impl::libvirt_job_disks(const ScanRequest& request) const {
    const std::string domain = request.target.substr(k_libvirt_prefix.size());
    if (!config.libvirt_uri) {
        return make_error(Errc::invalid_argument,
                          request.target + ": the configuration names no libvirt connection ([libvirt] uri)");
    }
    auto disks = domain_disks(*config.libvirt_uri, domain);
    if (!disks) {
        return std::unexpected(disks.error());
    }
    std::vector<JobDisk> out;
    for (const auto& disk : *disks) {
        if (disk.kind != "file") {
            return make_error(Errc::unsupported, request.target + ": disk " + disk.target + " is a " +
                                                     disk.kind + " disk; only file disks can be scanned");
        }
        if (!disk.format.empty() && !request.format.empty() && request.format != disk.format) {
            return make_error(Errc::invalid_argument, request.target + ": disk " + disk.target + " is a " +
                                                          disk.format + " disk in the domain's XML, not " +
                                                          request.format);
        }
        if (!disk.format.empty() && !disk::is_supported_format(disk.format)) {
            return make_error(Errc::unsupported, request.target + ": disk " + disk.target +
                                                     " has the format '" + disk.format +
                                                     "', which coldscan does not open");
        }
        out.push_back(JobDisk{disk.source, disk.format.empty() ? request.format : disk.format});
    }
    if (out.empty()) {
        return make_error(Errc::not_found, request.target + ": the domain has no disks");
    }
    return out;
}

Expected<ScanService::Impl::Resolved> ScanService::Impl::resolve_vm(const ScanRequest& request,
                                                                    const std::vector<JobDisk>& disks) const {
    std::vector<Resolved> each;
    for (const auto& disk : disks) {
        ScanRequest for_disk = request;
        for_disk.format = disk.format;
        for_disk.disks.clear();
        auto one = resolve_image(disk.path, for_disk);
        if (!one) {
            return make_error(one.error().code, request.target + ": " + one.error().message);
        }
        each.push_back(std::move(*one));
    }
    // A VM of one disk is that disk's job (the same scan: a gate of a one-disk domain and the image's nightly
    // scan share their verdict). Else one job for the whole VM (a volume group may span its disks), placed
    // where its first disk lies.
    if (each.size() == 1) {
        return std::move(each.front());
    }
    Resolved vm = each.front();
    vm.request.target = request.target;
    vm.request.format = request.format;
    vm.estimated_bytes = 0;
    // As for one image, a given format is in the identity only where it changes the reading (raw): so a gate
    // with the domain's <driver type>s finds the job of a submission that let them be detected.
    vm.identity = "vm|";
    for (const auto& disk : each) {
        vm.identity += disk.identity + "|" + disk.request.target + ";";
        vm.estimated_bytes += disk.estimated_bytes;
        if (!request.disks.empty()) { // a vm: job scans what was checked here, by its canonical path
            vm.request.disks.push_back(JobDisk{disk.request.target, disk.request.format});
        }
    }
    return vm;
}

Expected<std::vector<ScanService::Impl::Resolved>>
ScanService::Impl::resolve(const ScanRequest& request) const {
    if (request.target.empty()) {
        return make_error(Errc::invalid_argument, "an empty target");
    }
    if (request.target.starts_with(k_vm_prefix) != !request.disks.empty()) {
        return make_error(Errc::invalid_argument,
                          request.target + ": a vm: target is named by its disks, and only a vm: target is");
    }
    Expected<Resolved> one = std::unexpected(Error{});
    if (!request.disks.empty()) {
        one = resolve_vm(request, request.disks);
    } else if (request.target.starts_with(k_libvirt_prefix)) {
        auto disks = libvirt_job_disks(request);
        if (!disks) {
            return std::unexpected(disks.error());
        }
        one = resolve_vm(request, *disks);
    } else {
        one = resolve_image(request.target, request);
    }
    if (!one) {
        return std::unexpected(one.error());
    }
    return std::vector<Resolved>{std::move(*one)};
}

void ScanService::Impl::schedule_locked(const JobRecord& record, std::size_t host, std::size_t datastore,
                                        std::uint64_t estimated_bytes, TimePoint due) {
    const auto& inventory = config.inventory;
    JobPlacement placement{host, datastore, record.id + "/" + std::to_string(++m_generation),
                           estimated_bytes};
    Job job{placement.scheduler_id,
            record.request.target,
            inventory.hosts()[host].name,
            inventory.datastores()[datastore].name,
            record.request.priority,
            due,
            estimated_bytes};
    if (auto submitted = m_scheduler.submit(std::move(job)); !submitted) {
        spdlog::error("job {}: the scheduler refused it: {}", record.id, submitted.error().message);
        return;
    }
    m_by_scheduler_id[placement.scheduler_id] = record.id;
    m_placements[record.id] = std::move(placement);
}

Expected<std::vector<SubmittedJob>> ScanService::Impl::store_and_schedule(std::vector<Resolved> jobs) {
    std::lock_guard lock(m_mutex);
    if (!accepting.load() || m_draining) {
        return make_error(Errc::cancelled, "the service is shutting down");
    }
    const std::string fingerprint = m_signatures->fingerprint();
    const std::int64_t now_s = unix_seconds();
    std::vector<SubmittedJob> out;
    for (auto& job : jobs) {
        Rescan rescan;
        if (job.max_age) {
            rescan.succeeded_before = now_s - job.max_age->count();
        }
        const Priority asked = job.request.priority;
        auto submitted = queue->submit(job.request, job.identity, fingerprint, rescan,
                                       slots_of(job.host, job.datastore, job.estimated_bytes));
        if (!submitted) {
            return std::unexpected(submitted.error());
        }
        const JobRecord& record = submitted->record;
        if (record.status == JobStatus::queued) {
            const auto placed = m_placements.find(record.id);
            if (placed == m_placements.end()) {
                schedule_locked(record, job.host, job.datastore, job.estimated_bytes, service_now());
                ++m_counters.jobs_submitted;
            } else if (asked < record.request.priority) {
                // Asked for again more urgently (a gate on an image queued for tonight): queued again at the
                // higher priority. The stored record keeps its first priority.
                const auto& scheduler_id = placed->second.scheduler_id;
                if (m_scheduler.state(scheduler_id) == JobState::queued &&
                    m_scheduler.cancel(scheduler_id).has_value()) {
                    forget_locked(scheduler_id);
                    JobRecord raised = record;
                    raised.request.priority = asked;
                    schedule_locked(raised, job.host, job.datastore, job.estimated_bytes, service_now());
                }
            }
        }
        out.push_back(SubmittedJob{view_locked(record), submitted->created});
    }
    wake();
    return out;
}

Expected<std::vector<SubmittedJob>> ScanService::submit(const std::vector<ScanRequest>& requests) {
    if (!m_impl->accepting.load()) {
        return make_error(Errc::cancelled, "the service is shutting down");
    }
    if (requests.empty()) {
        return make_error(Errc::invalid_argument, "no targets");
    }
    std::vector<Impl::Resolved> all;
    for (const auto& request : requests) {
        auto resolved = m_impl->resolve(request);
        if (!resolved) {
            return std::unexpected(resolved.error());
        }
        std::move(resolved->begin(), resolved->end(), std::back_inserter(all));
    }
    return m_impl->store_and_schedule(std::move(all));
}

std::optional<JobVerdict> ScanService::Impl::verdict_of(const JobRecord& record) const {
    if (record.status != JobStatus::succeeded || !record.report_path) {
        return std::nullopt;
    }
    if (const auto known = m_verdicts.find(record.id); known != m_verdicts.end()) {
        return known->second;
    }
    const auto text = queue->report_text(record);
    if (!text) {
        return std::nullopt;
    }
    const json report = json::parse(*text, nullptr, false);
    if (report.is_discarded() || !report.is_object()) {
        return std::nullopt;
    }
    JobVerdict verdict;
    try {
        verdict.status = report.value("status", std::string());
        const auto& counts = report.at("counts");
        verdict.files = counts.value("files", std::uint64_t{0});
        verdict.limit_exceeded = counts.value("limit_exceeded", std::uint64_t{0});
        verdict.not_fully_scanned = counts.value("errors", std::uint64_t{0}) +
                                    counts.value("limit_exceeded", std::uint64_t{0}) +
                                    counts.value("skipped", std::uint64_t{0});
        // Found later by a retro-hunt in what this scan read: detections as well (the gate refuses).
        verdict.detections =
            report.at("detections").size() + report.value("retro_hunt", json::array()).size();
        verdict.signature_set = report.at("signatures").value("fingerprint", std::string());
    } catch (const json::exception&) {
        return std::nullopt;
    }
    verdict.exit_status = reports::exit_status(verdict.status, verdict.detections);
    m_verdicts[record.id] = verdict;
    return verdict;
}

JobView ScanService::Impl::view_locked(const JobRecord& record) const {
    JobView view;
    view.record = record;
    if (view.record.node.empty() && record.status != JobStatus::queued) {
        view.record.node = node_name; // one node's queue: every job ran here
    }
    view.host = record.request.host;
    if (const auto datastore = config.inventory.datastore_of(record.request.target)) {
        view.datastore = config.inventory.datastores()[*datastore].name;
    }
    if (const auto placed = m_placements.find(record.id); placed != m_placements.end()) {
        view.host = config.inventory.hosts()[placed->second.host].name;
        view.datastore = config.inventory.datastores()[placed->second.datastore].name;
    }
    if (const auto worker = m_workers.find(record.id); worker != m_workers.end() &&
                                                       worker->second->progress != nullptr &&
                                                       record.status == JobStatus::running) {
        const auto& progress = *worker->second->progress;
        view.progress = JobProgress{
            progress.phase(), progress.files_done.load(), progress.bytes_done.load(),
            std::chrono::duration<double>(std::chrono::steady_clock::now() - worker->second->started)
                .count()};
    }
    view.verdict = verdict_of(record);
    return view;
}

Expected<JobView> ScanService::job(std::string_view id) const {
    std::lock_guard lock(m_impl->m_mutex);
    auto record = m_impl->queue->get(id);
    if (!record) {
        return std::unexpected(record.error());
    }
    if (!*record) {
        return make_error(Errc::not_found, "no job " + std::string(id));
    }
    return m_impl->view_locked(**record);
}

Expected<std::vector<JobView>> ScanService::jobs(std::optional<JobStatus> status) const {
    std::lock_guard lock(m_impl->m_mutex);
    auto records = m_impl->queue->list(status);
    if (!records) {
        return std::unexpected(records.error());
    }
    std::vector<JobView> out;
    out.reserve(records->size());
    for (const auto& record : *records) {
        out.push_back(m_impl->view_locked(record));
    }
    return out;
}

std::map<JobStatus, std::size_t> ScanService::job_counts() const {
    std::map<JobStatus, std::size_t> counts;
    for (const auto status : {JobStatus::queued, JobStatus::running, JobStatus::paused, JobStatus::succeeded,
                              JobStatus::failed, JobStatus::cancelled, JobStatus::dead_letter}) {
        counts[status] = 0;
    }
    std::lock_guard lock(m_impl->m_mutex);
    if (auto records = m_impl->queue->list(std::nullopt)) {
        for (const auto& record : *records) {
            ++counts[record.status];
        }
    }
    return counts;
}

Expected<JobView> ScanService::cancel(std::string_view id) {
    std::lock_guard lock(m_impl->m_mutex);
    auto cancelled = m_impl->queue->cancel(id);
    if (!cancelled) {
        return std::unexpected(cancelled.error());
    }
    auto& impl = *m_impl;
    if (const auto placed = impl.m_placements.find(id); placed != impl.m_placements.end()) {
        const std::string scheduler_id = placed->second.scheduler_id;
        const auto state = impl.m_scheduler.cancel(scheduler_id);
        if (state && *state == JobState::running) {
            // The worker stops within seconds; finish_job frees the slots.
            if (const auto worker = impl.m_workers.find(id); worker != impl.m_workers.end()) {
                worker->second->reason = StopReason::cancel;
                worker->second->stop->store(true);
            }
        } else {
            impl.forget_locked(scheduler_id);
            impl.m_placements.erase(placed);
        }
        impl.wake();
    }
    spdlog::info("job {}: cancelled", id);
    return impl.view_locked(*cancelled);
}

Expected<std::string> ScanService::report(std::string_view id) const {
    auto found = job(id);
    if (!found) {
        return std::unexpected(found.error());
    }
    if (!found->record.report_path) {
        return make_error(Errc::not_found, "job " + std::string(id) + " has no report yet (" +
                                               std::string(to_string(found->record.status)) + ")");
    }
    return m_impl->queue->report_text(found->record);
}

std::vector<HostView> ScanService::hosts() const {
    std::lock_guard lock(m_impl->m_mutex);
    const auto& impl = *m_impl;
    std::vector<HostView> out;
    const auto& specs = impl.config.inventory.hosts();
    for (std::size_t i = 0; i < specs.size(); ++i) {
        HostView view;
        view.spec = specs[i];
        view.running = impl.m_scheduler.running_on_host(specs[i].name).value_or(0);
        for (const auto& [id, placement] : impl.m_placements) {
            if (placement.host == i && impl.m_scheduler.state(placement.scheduler_id) == JobState::queued) {
                ++view.queued;
            }
        }
        const auto& pressure = impl.m_pressure[i];
        view.pressure = pressure.value;
        view.probe_error = pressure.error;
        view.throttled = pressure.throttled;
        auto total = pressure.throttled_total;
        if (pressure.throttled_since) {
            total += std::chrono::steady_clock::now() - *pressure.throttled_since;
        }
        view.throttled_seconds = std::chrono::duration<double>(total).count();
        view.bytes_read = impl.budgets->host_bytes(i);
        out.push_back(std::move(view));
    }
    return out;
}

std::vector<DatastoreView> ScanService::datastores() const {
    std::lock_guard lock(m_impl->m_mutex);
    std::vector<DatastoreView> out;
    const auto& specs = m_impl->config.inventory.datastores();
    for (std::size_t i = 0; i < specs.size(); ++i) {
        out.push_back(DatastoreView{specs[i],
                                    m_impl->m_scheduler.running_on_datastore(specs[i].name).value_or(0),
                                    m_impl->budgets->datastore_bytes(i)});
    }
    return out;
}

Plan ScanService::plan() const {
    std::lock_guard lock(m_impl->m_mutex);
    Plan plan = m_impl->m_scheduler.plan(service_now());
    // The scheduler knows its own ids (a job queued again gets a new one); users know the job's.
    std::erase_if(plan.jobs,
                  [&](const PlanEntry& entry) { return !m_impl->m_by_scheduler_id.contains(entry.id); });
    for (auto& entry : plan.jobs) {
        entry.id = m_impl->m_by_scheduler_id.find(entry.id)->second;
    }
    return plan;
}

ServiceCounters ScanService::counters() const {
    std::lock_guard lock(m_impl->m_mutex);
    return m_impl->m_counters;
}

ServiceHealth ScanService::health() const {
    std::lock_guard lock(m_impl->m_mutex);
    return ServiceHealth{m_impl->accepting.load() && !m_impl->m_draining, m_impl->m_signatures->fingerprint(),
                         m_impl->m_signatures_loaded_at, m_impl->queue->damaged_records()};
}

Expected<FindingPage> ScanService::findings(const FindingQuery& query) const {
    return m_impl->findings->search(query);
}

Expected<FindingStats> ScanService::finding_stats(const FindingQuery& query) const {
    return m_impl->findings->stats(query);
}

Expected<std::vector<NodeView>> ScanService::nodes() const {
    return m_impl->node_directory->nodes();
}

Expected<std::string> ScanService::reload_signatures() {
    return m_impl->reload_signatures();
}

Expected<std::string> ScanService::retro_hunt() {
    return m_impl->retro_hunt();
}

std::string ScanService::signatures_json() const {
    std::shared_ptr<const signatures::SignatureSet> set;
    std::string loaded_at;
    std::string last_hunt;
    {
        std::lock_guard lock(m_impl->m_mutex);
        set = m_impl->m_signatures;
        loaded_at = m_impl->m_signatures_loaded_at;
        last_hunt = m_impl->m_last_retro_hunt;
    }
    json out = json::parse(reports::signatures_to_json(scanner::describe(*set)));
    out["signature_set"] = set->fingerprint();
    out["loaded_at"] = loaded_at;
    out["last_retro_hunt"] = last_hunt.empty() ? json(nullptr) : json::parse(last_hunt);
    return out.dump();
}

void ScanService::set_pressure(std::string_view host, Expected<double> reading) {
    m_impl->set_pressure(host, std::move(reading));
}

Expected<std::string> ScanService::Impl::reload_signatures() {
    auto fingerprint = load_new_signatures();
    if (fingerprint) {
        if (auto hunted = retro_hunt(); !hunted) {
            spdlog::warn("retro-hunt after the reload failed: {}", hunted.error().message);
        }
    }
    return fingerprint;
}

Expected<std::string> ScanService::Impl::load_new_signatures() {
    std::lock_guard reload(m_reload_mutex);
    spdlog::info("reloading signatures");
    // Taken first: files that change during the load make the watch load again.
    std::string stamp = signature_folder_stamp();
    auto loaded = load_signatures(config);
    std::lock_guard lock(m_mutex);
    m_signature_stamp = std::move(stamp); // a failed load is not retried until the files change again
    if (!loaded) {
        ++m_counters.signature_reload_failures;
        spdlog::error("signature reload failed, the current set stays: {}", loaded.error().message);
        return std::unexpected(loaded.error());
    }
    // Running scans hold the set they started with; it is freed when the last of them ends.
    m_signatures = std::move(*loaded);
    m_signatures_loaded_at = reports::utc_now_iso8601();
    ++m_counters.signature_reloads;
    spdlog::info("signature set {} is current", m_signatures->fingerprint());
    return m_signatures->fingerprint();
}

void ScanService::Impl::set_pressure(std::string_view host, Expected<double> reading) {
    std::lock_guard lock(m_mutex);
    auto& impl = *this;
    const auto index = impl.config.inventory.host_index(host);
    if (!index) {
        return;
    }
    auto& state = impl.m_pressure[*index];
    if (!reading) {
        if (state.error != reading.error().message) {
            spdlog::warn("host {}: load probe failed: {}", host, reading.error().message);
        }
        state.error = reading.error().message;
        return;
    }
    const double value = std::clamp(*reading, 0.0, 1.0);
    state.error.clear();
    state.value = value;
    static_cast<void>(impl.m_scheduler.set_pressure(host, value, service_now()));
    const bool throttled = impl.m_scheduler.throttled_since(host).has_value();
    if (throttled != state.throttled) {
        const auto now = std::chrono::steady_clock::now();
        if (throttled) {
            state.throttled_since = now;
            spdlog::warn(
                "host {}: load {:.2f} is above its threshold; new scans wait, running ones slow down", host,
                value);
        } else {
            state.throttled_total += now - *state.throttled_since;
            state.throttled_since.reset();
            spdlog::info("host {}: load {:.2f}, scans go on", host, value);
        }
        state.throttled = throttled;
        impl.budgets->set_throttled(*index, throttled);
        impl.wake();
    }
}

void ScanService::shutdown(std::chrono::seconds grace) {
    std::lock_guard once(m_impl->m_shutdown_mutex);
    auto& impl = *m_impl;
    std::unique_lock lock(impl.m_mutex);
    if (impl.m_stopped) {
        return;
    }
    impl.accepting = false;
    impl.m_draining = true;
    if (!impl.m_workers.empty()) {
        spdlog::info("shutting down: {} running scan(s) get {} s to finish", impl.m_workers.size(),
                     grace.count());
    }
    impl.m_worker_ended_cv.wait_for(lock, grace, [&] { return impl.m_workers.empty(); });
    for (auto& [id, worker] : impl.m_workers) {
        if (worker->reason == StopReason::none) {
            worker->reason = StopReason::shutdown;
        }
        worker->stop->store(true);
    }
    impl.m_worker_ended_cv.wait(lock, [&] { return impl.m_workers.empty(); });
    impl.queue->set_lease_listener({}); // the store may outlive this service
    impl.queue->set_load_listener({});
    impl.queue->set_preempt_listener({});
    impl.m_quit = true;
    impl.wake();
    lock.unlock();
    if (impl.dispatcher.joinable()) {
        impl.dispatcher.join();
    }
    if (impl.housekeeper.joinable()) {
        impl.housekeeper.join();
    }
    lock.lock();
    impl.reap_workers_locked();
    if (auto synced = impl.store->sync(); !synced) {
        spdlog::error("service store: {}", synced.error().message);
    }
    impl.m_stopped = true;
    impl.m_stopped_cv.notify_all();
    spdlog::info("scan service stopped");
}

void ScanService::wait_stopped() {
    std::unique_lock lock(m_impl->m_mutex);
    m_impl->m_stopped_cv.wait(lock, [&] { return m_impl->m_stopped; });
}

} // namespace coldscan::scheduler
