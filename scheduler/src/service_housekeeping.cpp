// The service's background duties: reading each host's load, finding the images due tonight, and noticing
// a changed signature folder (freshclam wrote new databases) to reload it.
#include "coldscan/common/log.hpp"
#include "coldscan/common/sha256.hpp"
#include "coldscan/disk/image_probe.hpp"
#include "coldscan/scheduler/libvirt_disks.hpp"
#include "coldscan/scheduler/load_probe.hpp"
#include "service_impl.hpp"

#include <algorithm>
#include <glob.h>

namespace coldscan::scheduler {
namespace {

constexpr auto k_tick = std::chrono::seconds{5};
constexpr auto k_probe_timeout = std::chrono::seconds{3};
// Without nightly windows, discovery runs at start-up and then once a day.
constexpr auto k_discovery_period = std::chrono::hours{24};

std::vector<std::string> glob_files(const std::string& pattern) {
    glob_t found{};
    std::vector<std::string> out;
    if (::glob(pattern.c_str(), GLOB_NOSORT, nullptr, &found) == 0) {
        for (std::size_t i = 0; i < found.gl_pathc; ++i) {
            out.emplace_back(found.gl_pathv[i]);
        }
    }
    ::globfree(&found);
    std::sort(out.begin(), out.end());
    return out;
}

// Names, sizes and times of every file under path (a file or a folder): changes when freshclam or an
// operator writes new databases or rules.
void stamp_path(const std::filesystem::path& path, std::string& stamp) {
    std::error_code ec;
    auto add = [&](const std::filesystem::path& file) {
        std::error_code file_ec;
        const auto size = std::filesystem::file_size(file, file_ec);
        const auto time = std::filesystem::last_write_time(file, file_ec);
        stamp += file.string() + ":" + std::to_string(size) + ":" +
                 std::to_string(time.time_since_epoch().count()) + ";";
    };
    if (std::filesystem::is_directory(path, ec)) {
        std::vector<std::filesystem::path> files;
        for (std::filesystem::recursive_directory_iterator it(path, ec), end; !ec && it != end;
             it.increment(ec)) {
            if (it->is_regular_file(ec)) {
                files.push_back(it->path());
            }
        }
        std::sort(files.begin(), files.end());
        std::for_each(files.begin(), files.end(), add);
    } else {
        add(path);
    }
}

} // namespace

std::string ScanService::Impl::signature_folder_stamp() const {
    std::string stamp;
    stamp_path(config.clamav_db.value_or(signatures::k_default_clamav_db), stamp);
    for (const auto& rules : config.yara_rules) {
        stamp_path(rules, stamp);
    }
    return stamp;
}

void ScanService::Impl::housekeeping_loop() {
    bool window_was_open = false;
    std::optional<std::chrono::steady_clock::time_point> last_discovery;
    std::string pending_stamp;
    const bool discovers = !config.image_patterns.empty() || config.libvirt_uri.has_value();
    // In a fleet, this node's report is its heartbeat: three per lease, so one lost report never makes it
    // look gone.
    const auto tick = config.fleet ? std::min<std::chrono::seconds>(k_tick, config.fleet->lease / 3) : k_tick;
    std::unique_lock lock(m_mutex);
    while (!m_quit) {
        const bool window_open = m_scheduler.nightly_allowed(service_now());
        lock.unlock();

        probe_hosts();
        report_node();

        // Nightly discovery: when a window opens (or at start-up inside one); without windows, once a day.
        const auto now = std::chrono::steady_clock::now();
        const bool due = config.nightly_windows.empty()
                             ? (!last_discovery || now - *last_discovery >= k_discovery_period)
                             : (window_open && !window_was_open);
        window_was_open = window_open;
        if (discovers && due) {
            last_discovery = now;
            discover_images();
        }

        // A changed signature folder is reloaded once it stopped changing (freshclam writes in steps).
        const std::string current = signature_folder_stamp();
        std::string loaded;
        {
            std::lock_guard stamp_lock(m_mutex);
            loaded = m_signature_stamp;
        }
        if (current != loaded) {
            if (current == pending_stamp) {
                spdlog::info("the signature files changed");
                pending_stamp.clear();
                static_cast<void>(reload_signatures());
            } else {
                pending_stamp = current;
            }
        }

        lock.lock();
        m_wake_cv.wait_for(lock, tick, [&] { return m_quit; });
    }
}

void ScanService::Impl::report_node() {
    NodeView self;
    self.name = node_name;
    self.version = COLDSCAN_VERSION;
    self.started = started_at;
    for (const auto& datastore : config.inventory.datastores()) {
        self.datastores.push_back(datastore.name);
    }
    {
        std::lock_guard lock(m_mutex);
        self.signature_set = m_signatures ? m_signatures->fingerprint() : "";
        self.running_jobs = m_workers.size();
    }
    if (auto reported = node_directory->report(self); !reported) {
        if (!m_node_report_failing) {
            spdlog::error("node {}: cannot report itself to the node directory: {}", node_name,
                          reported.error().message);
        }
        m_node_report_failing = true;
        return;
    }
    if (m_node_report_failing) {
        spdlog::info("node {}: reports itself to the node directory again", node_name);
    }
    m_node_report_failing = false;
}

void ScanService::Impl::probe_hosts() {
    for (const auto& [host, probe] : config.load_probes) {
        {
            std::lock_guard lock(m_mutex);
            if (m_quit) {
                return;
            }
        }
        auto reading = read_load(probe, k_probe_timeout);
        set_pressure(host, std::move(reading));
    }
}

std::vector<ScanRequest> ScanService::Impl::discovered_requests() const {
    const auto nightly = [](std::string target, std::string format) {
        return ScanRequest{std::move(target), Priority::nightly, "", "", "nightly discovery",
                           std::nullopt,      std::move(format), {}};
    };
    std::vector<ScanRequest> requests;
    // (path, format): a format from images_format, else "" (detected).
    std::vector<std::pair<std::string, std::string>> images;
    const auto& inventory = config.inventory;
    for (const auto& [datastore, patterns] : config.image_patterns) {
        const auto index = inventory.datastore_index(datastore);
        const auto format = config.image_formats.find(datastore);
        for (const auto& root : inventory.datastores()[*index].roots) {
            for (const auto& pattern : patterns) {
                for (auto& found : glob_files(root + "/" + pattern)) {
                    images.emplace_back(std::move(found),
                                        format != config.image_formats.end() ? format->second : "");
                }
            }
        }
    }
    std::sort(images.begin(), images.end());
    images.erase(std::unique(images.begin(), images.end()), images.end());
    for (auto& [image, format] : images) {
        requests.push_back(nightly(std::move(image), std::move(format)));
    }
    if (config.libvirt_uri) {
        // A domain is one job of all its disks (a volume group may span them); of one disk, that image's job.
        auto domains = list_domains(*config.libvirt_uri);
        if (!domains) {
            spdlog::warn("nightly discovery: libvirt: {}", domains.error().message);
            return requests;
        }
        for (const auto& domain : *domains) {
            requests.push_back(nightly("libvirt:" + domain, ""));
        }
    }
    return requests;
}

void ScanService::Impl::discover_images() {
    const auto requests = discovered_requests();
    std::size_t queued = 0;
    for (const auto& request : requests) {
        auto resolved = resolve(request);
        if (!resolved) {
            spdlog::warn("nightly discovery: {}", resolved.error().message);
            continue;
        }
        auto stored = store_and_schedule(std::move(*resolved));
        if (!stored) {
            spdlog::warn("nightly discovery: {}: {}", request.target, stored.error().message);
            continue;
        }
        queued += (*stored)[0].job.record.status == JobStatus::queued ? 1 : 0;
    }
    spdlog::info(
        "nightly discovery: {} image(s) and VM(s) found, {} queued (the rest are unchanged since their "
        "last scan with this signature set)",
        requests.size(), queued);
}

} // namespace coldscan::scheduler
