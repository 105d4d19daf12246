// The dispatcher (carries out the Scheduler's decisions) and the scan workers (one ScanRun per job), with
// what a finished scan leaves: its report, its alerts and its state in the queue.
#include "coldscan/common/log.hpp"
#include "coldscan/common/text.hpp"
#include "coldscan/reports/json_report.hpp"
#include "coldscan/scanner/scan_run.hpp"
#include "coldscan/scheduler/libvirt_disks.hpp"
#include "service_impl.hpp"

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>
#include <unistd.h>

namespace coldscan::scheduler {
namespace {

using json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

// Issues and detections go to the report; the log gets one line per detection.
class ServiceEvents final : public scanner::ScanEvents {
public:
    explicit ServiceEvents(std::string job) : m_job(std::move(job)) {}
    void on_detection(reports::TargetKind /*kind*/, const reports::DetectionRecord& record) override {
        spdlog::warn("job {}: {} {}: {} FOUND", m_job, printable(record.target), printable(record.path),
                     printable(record.detection.signature));
    }

private:
    std::string m_job;
};

// One scan of a job: the job and its submission (a job submitted again is another run). It names the job's
// alert and its findings, so a rerun after a crash records neither twice.
std::string run_id_of(const JobRecord& record) {
    return record.id + ":" + std::to_string(record.submitted_at);
}

// Retried failures wait a little longer each time (a datastore that is briefly away).
Duration retry_delay(unsigned attempts) {
    return std::chrono::duration_cast<Duration>(std::chrono::seconds{30} * std::min(attempts, 10U));
}

std::string failure_of(const reports::Report& report) {
    for (const auto& target : report.targets) {
        if (target.status == reports::RunStatus::inconsistent) {
            return target.error;
        }
    }
    for (const auto& target : report.targets) {
        if (!target.error.empty()) {
            return target.error;
        }
    }
    return "the scan failed";
}

// Writes to a temporary name and renames: a report is there whole or not at all, crash or not.
Expected<void> write_report(const reports::Report& report, const std::filesystem::path& path) {
    auto temporary = path;
    temporary += ".partial";
    if (auto written = reports::write_json_file(report, temporary); !written) {
        return written;
    }
    std::error_code ec;
    std::filesystem::rename(temporary, path, ec);
    if (ec) {
        return make_error(Errc::io, "report: cannot rename it to " + path.string() + ": " + ec.message());
    }
    return {};
}

} // namespace

void ScanService::Impl::wake() {
    m_woken = true;
    m_wake_cv.notify_all();
}

void ScanService::Impl::dispatch_loop() {
    std::unique_lock lock(m_mutex);
    auto next_adoption = SteadyClock::now();
    while (!m_quit) {
        reap_workers_locked();
        if (queue->shared() && SteadyClock::now() >= next_adoption) {
            lock.unlock(); // the API answers while the database is slow
            const auto jobs = queue->adoptable(reachable_datastores());
            lock.lock();
            adopt_shared_jobs_locked(jobs);
            next_adoption = SteadyClock::now() + std::chrono::seconds{2};
        }
        const TimePoint now = service_now();
        if (!m_draining) {
            carry_out_locked(m_scheduler.step(now), now);
        }
        // Also every few seconds (every two in a fleet: other nodes' jobs): nothing is lost if a wakeup is
        // missed.
        TimePoint until = now + (queue->shared() ? std::chrono::seconds{2} : std::chrono::seconds{5});
        if (const auto next = m_scheduler.next_wakeup(now)) {
            until = std::min(until, std::max(*next, now + Duration{10}));
        }
        m_wake_cv.wait_until(lock, until, [&] { return m_woken || m_quit; });
        m_woken = false;
    }
}

void ScanService::Impl::carry_out_locked(const Decision& decision, TimePoint now) {
    for (const auto& scheduler_id : decision.pause) {
        const auto& id = m_by_scheduler_id.at(scheduler_id);
        if (const auto worker = m_workers.find(id); worker != m_workers.end()) {
            worker->second->reason = StopReason::pause;
            worker->second->stop->store(true);
        }
        queue_written_locked(id, queue->mark_paused(id));
        spdlog::info("job {}: paused for a gate scan", id);
    }
    auto begin = [&](const std::string& scheduler_id, std::string_view verb) {
        const std::string id = m_by_scheduler_id.at(scheduler_id);
        const JobPlacement placed = m_placements.at(id);
        const bool resuming = verb == "resuming";
        auto claimed = queue->claim(id, slots_of(placed.host, placed.datastore, placed.estimated_bytes));
        if (claimed && claimed->outcome == ClaimOutcome::granted) {
            spdlog::info("job {}: {} {}", id, verb, claimed->record->request.target);
            start_worker_locked(id);
            return;
        }
        // Not started: its slots here are free again. A fleet's job that is still queued comes back with
        // the next adoption; one of a single node's queue that could not be written is recovered at the
        // next start.
        static_cast<void>(m_scheduler.finished(scheduler_id, now));
        forget_locked(scheduler_id);
        m_placements.erase(id);
        m_woken = true; // the next step may start another job in the slots it had
        if (!claimed) {
            queue_written_locked(id, claimed);
            spdlog::error("job {}: cannot {} it", id, verb);
        } else if (claimed->outcome == ClaimOutcome::caps_full) {
            spdlog::debug("job {}: its host or datastore runs as many scans as its cap allows in the fleet",
                          id);
            if (resuming) {
                queue_written_locked(id,
                                     queue->requeue(id)); // a paused job holds no slot: others may take it
            }
        } else {
            spdlog::debug("job {}: taken by another node", id);
        }
    };
    for (const auto& scheduler_id : decision.resume) {
        begin(scheduler_id, "resuming");
    }
    for (const auto& scheduler_id : decision.start) {
        begin(scheduler_id, "starting");
    }
}

void ScanService::Impl::start_worker_locked(const std::string& id) {
    auto worker = std::make_shared<Worker>();
    std::shared_ptr<Worker> previous;
    if (auto old = m_workers.find(id); old != m_workers.end()) {
        previous = old->second; // a paused scan still stopping
    }
    m_workers[id] = worker;
    {
        std::lock_guard stops(m_lease_stop_mutex);
        m_lease_stops[id] = worker;
    }
    std::thread thread([this, id, worker, previous] {
        if (previous) {
            previous->ended_future.wait();
        }
        run_job(id, worker);
    });
    m_threads.emplace_back(std::move(thread), worker->ended_future);
}

void ScanService::Impl::reap_workers_locked() {
    // Only threads whose worker has ended: joining them never waits for a scan.
    std::erase_if(m_threads, [](auto& entry) {
        if (entry.second.wait_for(std::chrono::seconds{0}) != std::future_status::ready) {
            return false;
        }
        entry.first.join();
        return true;
    });
}

scanner::ScanTarget ScanService::Impl::scan_target_of(const JobRequest& request) const {
    const auto vm_of = [&](const std::vector<JobDisk>& disks) {
        scanner::ScanTarget vm{request.target, {}, {}};
        for (const auto& disk : disks) {
            vm.disks.push_back(scanner::VmDisk{
                disk.path, disk.format.empty() ? std::nullopt : std::optional<std::string>(disk.format), 0, 0,
                ""});
        }
        return vm;
    };
    if (!request.disks.empty()) {
        return vm_of(request.disks);
    }
    if (!request.target.starts_with("libvirt:")) {
        return scanner::ScanTarget{request.target, {}, {}};
    }
    // A domain is one VM of all its disks, as its XML says now.
    ScanRequest asked;
    asked.target = request.target;
    asked.format = request.format;
    auto disks = libvirt_job_disks(asked);
    if (!disks) {
        return scanner::ScanTarget{request.target, {}, disks.error().message};
    }
    return vm_of(*disks);
}

void ScanService::Impl::add_disk_roots(const scanner::ScanTarget& target,
                                       std::vector<std::filesystem::path>& roots) const {
    for (const auto& disk : target.disks) {
        if (const auto datastore = config.inventory.datastore_of(disk.path)) {
            for (const auto& root : config.inventory.datastores()[*datastore].roots) {
                if (std::find(roots.begin(), roots.end(), root) == roots.end()) {
                    roots.emplace_back(root);
                }
            }
        }
    }
}

void ScanService::Impl::run_job(const std::string& id, const std::shared_ptr<Worker>& worker) {
    reports::Report report;
    try {
        std::shared_ptr<const signatures::SignatureSet> signatures;
        scanner::ScanOptions options;
        JobRequest request;
        {
            std::lock_guard lock(m_mutex);
            signatures = m_signatures;
            auto record = queue->get(id);
            const auto placed = m_placements.find(id);
            if (!record || !*record || placed == m_placements.end()) {
                throw std::runtime_error("the job vanished before it started");
            }
            request = (*record)->request;
            options.snapshot = (*record)->request.snapshot;
            options.sandbox_filesystems = config.sandbox;
            options.limit_policy = config.limit_policy;
            if (!(*record)->request.format.empty()) {
                options.format = (*record)->request.format;
            }
            const auto& datastore = config.inventory.datastores()[placed->second.datastore];
            for (const auto& root : datastore.roots) {
                options.allowed_roots.emplace_back(root);
            }
            options.source.throttle =
                budgets->throttle_for(placed->second.host, placed->second.datastore, worker->stop);
        }
        const scanner::ScanTarget target = scan_target_of(request);
        add_disk_roots(target, options.allowed_roots);
        const unsigned cores = std::max(1U, std::thread::hardware_concurrency());
        options.threads = config.threads != 0 ? config.threads : cores;
        options.bytes_in_flight = 128ULL << 20;
        options.shared_store = scan_store;
        options.cache_dir = state_dir / "store";
        ServiceEvents events(id);
        const auto started = SteadyClock::now();
        scanner::ScanRun run(*signatures, options, events, *worker->stop);
        {
            std::lock_guard lock(m_mutex);
            worker->progress = &run.progress();
        }
        report = run.run({target});
        {
            std::lock_guard lock(m_mutex);
            worker->progress = nullptr;
        }
        report.total_seconds = std::chrono::duration<double>(SteadyClock::now() - started).count();
    } catch (const std::exception& e) {
        report = reports::Report{};
        report.status = reports::RunStatus::failed;
        reports::TargetReport failed;
        failed.status = reports::RunStatus::failed;
        failed.error = std::string("internal error: ") + e.what();
        report.targets.push_back(std::move(failed));
    }
    finish_job(id, worker, report);
}

void ScanService::Impl::finish_job(const std::string& id, const std::shared_ptr<Worker>& worker,
                                   const reports::Report& report) {
    StopReason reason = StopReason::none;
    std::optional<JobRecord> record;
    {
        std::lock_guard lock(m_mutex);
        reason = worker->lease_lost.load()  ? StopReason::lease_lost
                 : worker->preempted.load() ? StopReason::preempted
                                            : worker->reason;
        if (auto found = queue->get(id); found && *found) {
            record = **found;
        }
    }
    // An image that changed while it was scanned gave no verdict: the job fails this attempt and is queued
    // again after retry_delay (a counted attempt, so an image that never rests ends dead-lettered).
    const bool inconsistent = std::ranges::any_of(report.targets, [](const reports::TargetReport& target) {
        return target.status == reports::RunStatus::inconsistent;
    });
    const bool whole = !report.interrupted && report.status != reports::RunStatus::failed && !inconsistent;
    // What must survive a crash is written before the queue says succeeded: the report, then the alerts.
    std::optional<std::string> written;
    if (whole && record && reason != StopReason::cancel && reason != StopReason::lease_lost) {
        const auto path = report_path(id);
        if (auto ok = write_report(report, path); ok) {
            written = path.string();
            record_alerts(*record, report);
            record_findings(*record, report, run_id_of(*record));
        } else {
            spdlog::error("job {}: {}", id, ok.error().message);
        }
    }

    if (!whole && record && reason == StopReason::none && !report.interrupted) {
        // A failed attempt is a finding too (retried or not): what failed, and where.
        reports::Report failed = report;
        if (failed.errors.empty()) {
            failed.errors.push_back(
                reports::IssueRecord{record->request.target, "", "", "JOB_FAILED", failure_of(report)});
        }
        record_findings(*record, failed,
                        run_id_of(*record) + ":attempt-" + std::to_string(record->attempts + 1));
    }

    std::lock_guard lock(m_mutex);
    const auto placed = m_placements.find(id);
    const std::string scheduler_id = placed != m_placements.end() ? placed->second.scheduler_id : "";
    auto release = [&] {
        if (!scheduler_id.empty()) {
            static_cast<void>(m_scheduler.finished(scheduler_id, service_now()));
            forget_locked(scheduler_id);
            m_placements.erase(id);
        }
    };
    if (written) {
        if (record->status == JobStatus::paused && placed != m_placements.end()) {
            // It ended before the pause reached it.
            const auto& where = placed->second;
            static_cast<void>(queue->claim(id, slots_of(where.host, where.datastore, where.estimated_bytes)));
        }
        queue_written_locked(id, queue->mark_succeeded(id, *written));
        ++m_counters.jobs_succeeded;
        m_counters.files_scanned += report.counts.files;
        m_counters.bytes_scanned += report.counts.bytes;
        m_counters.cache_hits += report.cache.files_not_scanned;
        m_counters.engine_scans += report.cache.engine_scans;
        m_counters.detections += report.detections.size();
        spdlog::info("job {}: {} ({} files, {} detections)", id, to_string(report.status),
                     report.counts.files, report.detections.size());
        release();
    } else if (reason == StopReason::pause && report.interrupted) {
        // Paused: keeps its place in the scheduler; what it verdicted stays in the cache for the resume.
    } else if (reason == StopReason::cancel) {
        release();
    } else if (reason == StopReason::lease_lost) {
        // Whatever the scan found is not this node's to write (fencing): the node that holds the job now,
        // or the next to claim it, scans it; the verdicts cached here still spare it the work.
        spdlog::warn("job {}: stopped: this node's lease on it is lost", id);
        release();
    } else if (reason == StopReason::preempted && report.interrupted) {
        // What it verdicted stays in the caches: its rerun, first among the nightly jobs (due at its
        // submission), scans only the rest.
        spdlog::info("job {}: stopped for a gate scan on another node; queued again", id);
        queue_written_locked(id, queue->requeue(id));
        release();
    } else if (reason == StopReason::shutdown && report.interrupted) {
        queue_written_locked(id, queue->requeue(id));
        release();
    } else {
        const std::string failure = report.interrupted ? "the scan was interrupted" : failure_of(report);
        if (record && record->status == JobStatus::paused && placed != m_placements.end()) {
            const auto& where = placed->second;
            static_cast<void>(queue->claim(id, slots_of(where.host, where.datastore, where.estimated_bytes)));
        }
        auto failed = queue->mark_failed(id, failure, Retry::allowed);
        queue_written_locked(id, failed);
        ++m_counters.jobs_failed;
        const auto retry_host = placed != m_placements.end() ? placed->second.host : 0;
        const auto retry_datastore = placed != m_placements.end() ? placed->second.datastore : 0;
        const auto retry_bytes = placed != m_placements.end() ? placed->second.estimated_bytes : 0;
        release();
        if (failed && failed->status == JobStatus::queued && !m_draining) {
            spdlog::warn("job {}: {} (attempt {} of {}; retried later)", id, failure, failed->attempts,
                         queue->max_attempts());
            schedule_locked(*failed, retry_host, retry_datastore, retry_bytes,
                            service_now() + retry_delay(failed->attempts));
        } else if (failed) {
            spdlog::error("job {}: {} ({})", id, failure, to_string(failed->status));
        }
    }
    if (const auto current = m_workers.find(id); current != m_workers.end() && current->second == worker) {
        m_workers.erase(current);
        std::lock_guard stops(m_lease_stop_mutex);
        if (const auto entry = m_lease_stops.find(id);
            entry != m_lease_stops.end() && entry->second == worker) {
            m_lease_stops.erase(entry);
        }
    }
    worker->ended.set_value();
    m_worker_ended_cv.notify_all();
    wake();
}

void ScanService::Impl::record_alerts(const JobRecord& record, const reports::Report& report) {
    if (report.detections.empty()) {
        return;
    }
    // One alert per scan of a job: a rerun after a crash between this line and the queue's update finds
    // the id and stays quiet.
    const std::string alert_id = run_id_of(record);
    std::lock_guard lock(m_alert_mutex);
    if (m_alert_ids.contains(alert_id)) {
        return;
    }
    json detections = json::array();
    for (const auto& detection : report.detections) {
        json line{{"device", utf8_or_escaped(detection.device)},
                  {"path", utf8_or_escaped(detection.path)},
                  {"signature", utf8_or_escaped(detection.detection.signature)},
                  {"sha256", detection.sha256},
                  {"size", detection.size}};
        if (!is_valid_utf8(detection.path)) {
            line["path_hex"] = hex_encode(detection.path); // as the report does: the exact bytes too
        }
        detections.push_back(std::move(line));
    }
    const json alert{{"alert_id", alert_id},
                     {"job", record.id},
                     {"target", utf8_or_escaped(record.request.target)},
                     {"signature_set", report.signatures.fingerprint},
                     {"at", reports::utc_now_iso8601()},
                     {"detections", std::move(detections)}};
    const std::string alert_text = alert.dump(-1, ' ', false, json::error_handler_t::replace);
    // A fleet raises each alert once, from the node whose lease is live when it records it.
    auto first = queue->record_alert(record.id, alert_id, alert_text);
    if (!first) {
        spdlog::error("job {}: its alert is not raised: {}", record.id, first.error().message);
        return;
    }
    if (!*first) {
        m_alert_ids.insert(alert_id);
        return;
    }
    append_alert_locked(alert_id, alert_text);
}

void ScanService::Impl::record_findings(const JobRecord& record, const reports::Report& report,
                                        const std::string& run_id) {
    FindingContext context{record.request.target, record.request.host, "", record.id, node_name,
                           unix_seconds()};
    {
        std::lock_guard lock(m_mutex);
        if (const auto placed = m_placements.find(record.id); placed != m_placements.end()) {
            context.host = config.inventory.hosts()[placed->second.host].name;
            context.datastore = config.inventory.datastores()[placed->second.datastore].name;
        }
    }
    const auto rows = findings_of(report, context);
    if (rows.empty()) {
        return;
    }
    if (auto recorded = findings->record(run_id, rows); !recorded) {
        spdlog::error("job {}: its findings are not recorded: {}", record.id, recorded.error().message);
    }
}

bool ScanService::Impl::append_alert_locked(const std::string& alert_id, const std::string& alert_json) {
    const std::string line = alert_json + "\n";
    const auto path = state_dir / "alerts.jsonl";
    const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        spdlog::error("alerts: {}", errno_message("cannot open " + path.string()));
        return false;
    }
    const bool ok =
        ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && ::fsync(fd) == 0;
    ::close(fd);
    if (!ok) {
        spdlog::error("alerts: {}", errno_message("cannot write " + path.string()));
        return false;
    }
    m_alert_ids.insert(alert_id);
    return true;
}

void ScanService::Impl::load_alert_ids() {
    const auto path = state_dir / "alerts.jsonl";
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return;
    }
    std::string line;
    std::uint64_t good_bytes = 0;
    bool damaged_tail = false;
    while (std::getline(in, line)) {
        const bool complete = !in.eof(); // getline hit a newline
        const json alert = json::parse(line, nullptr, false);
        if (!complete || alert.is_discarded() || !alert.is_object() || !alert.contains("alert_id")) {
            damaged_tail = !complete;
            if (complete) {
                good_bytes += line.size() + 1;
            }
            continue;
        }
        m_alert_ids.insert(alert["alert_id"].get<std::string>());
        good_bytes += line.size() + 1;
    }
    if (damaged_tail) {
        // A crash in the middle of an append left half a line: cut it, the rerun writes it whole.
        std::error_code ec;
        std::filesystem::resize_file(path, good_bytes, ec);
        spdlog::warn("alerts: removed an incomplete last line of {}", path.string());
    }
}

} // namespace coldscan::scheduler
