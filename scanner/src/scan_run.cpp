#include "coldscan/scanner/scan_run.hpp"

#include "coldscan/common/log.hpp"
#include "coldscan/common/text.hpp"
#include "coldscan/disk/directory_source.hpp"
#include "coldscan/disk/ovf_package.hpp"
#include "coldscan/scanner/image_state.hpp"
#include "filesystem_relay.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <sys/stat.h>
#include <thread>

namespace coldscan::scanner {
namespace {

bool is_nbd_uri(std::string_view target) {
    return target.starts_with("nbd://") || target.starts_with("nbd+unix://") ||
           target.starts_with("nbds://") || target.starts_with("nbds+unix://");
}

reports::FilesystemReport filesystem_report(const disk::FilesystemInfo& fs, std::string reader) {
    reports::FilesystemReport report;
    report.device = fs.device;
    report.type = fs.type;
    report.label = fs.label;
    report.uuid = fs.uuid;
    report.reader = std::move(reader);
    return report;
}

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string_view accel_name(disk::Accel accel) {
    switch (accel) {
    case disk::Accel::automatic:
        return "auto";
    case disk::Accel::kvm:
        return "kvm";
    case disk::Accel::tcg:
        return "tcg";
    }
    return "auto";
}

reports::IssueRecord filesystem_issue(const reports::TargetReport& target,
                                      const reports::FilesystemReport& fs) {
    return reports::IssueRecord{target.path, fs.device, "", reports::k_filesystem_failed, fs.reason};
}

std::int64_t nanoseconds(const timespec& t) {
    return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

std::string utc_stamp() {
    const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm tm{};
    ::gmtime_r(&now, &tm);
    std::array<char, 32> text{};
    std::strftime(text.data(), text.size(), "%Y%m%dT%H%M%SZ", &tm);
    return text.data();
}

} // namespace

// A host file's identity: the same path, inode and times mean the same bytes (the host kernel keeps ctime,
// which nothing in the guest can set).
std::string host_file_identity(const std::filesystem::path& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        return "unknown:" + std::to_string(errno);
    }
    return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) +
           ":" + std::to_string(nanoseconds(st.st_mtim)) + ":" + std::to_string(nanoseconds(st.st_ctim));
}

std::unique_ptr<ScanCache> open_scan_cache(const ScanOptions& options, std::string context) {
    auto memory_only = [&](IdentityUse) {
        return std::make_unique<ScanCache>(open_memory_store(), context, IdentityUse::ignore, "");
    };
    if (options.shared_store) {
        return std::make_unique<ScanCache>(share_store(options.shared_store), std::move(context),
                                           options.identity,
                                           options.cache_dir ? options.cache_dir->string() : "service store");
    }
    if (!options.cache_dir) {
        return memory_only(IdentityUse::ignore);
    }
    const std::filesystem::path& dir = *options.cache_dir;
    std::error_code marker_ec;
    const bool marked_damaged = std::filesystem::exists(dir / k_damaged_marker, marker_ec);
    auto store = marked_damaged
                     ? make_error(Errc::corrupt, "cache: an earlier run found damage in " + dir.string())
                     : open_rocksdb_store(dir);
    std::string problem;
    if (!store && store.error().code == Errc::corrupt) {
        std::filesystem::path aside = dir;
        aside += ".damaged-" + utc_stamp();
        std::error_code ec;
        std::filesystem::rename(dir, aside, ec);
        if (ec) {
            problem = store.error().message + "; it could not be moved aside (" + ec.message() + ")";
        } else {
            problem =
                store.error().message + "; it was moved to " + aside.string() + " and a new cache started";
            store = open_rocksdb_store(dir);
        }
    }
    if (!store) {
        auto cache = memory_only(IdentityUse::ignore);
        cache->report_problem((problem.empty() ? store.error().message : problem) +
                              "; this run uses no persistent cache");
        return cache;
    }
    // A damaged write-ahead log: the store opened with what came before the damage (see rocksdb_store.cpp).
    if (auto damage = (*store)->open_problem(); !damage.empty()) {
        problem = problem.empty() ? std::move(damage) : problem + "; " + damage;
    }
    auto cache =
        std::make_unique<ScanCache>(std::move(*store), std::move(context), options.identity, dir.string());
    if (!problem.empty()) {
        cache->report_problem(problem);
    }
    return cache;
}

reports::SignatureReport describe(const signatures::SignatureSet& signatures) {
    reports::SignatureReport out;
    out.fingerprint = signatures.fingerprint();
    out.engine_part = signatures.engine_part();
    out.detection_set = signatures.detection_set();
    if (const auto& databases = signatures.clamav_databases()) {
        const auto& info = *databases;
        reports::ClamavSignatures c;
        c.path = info.path.string();
        for (const auto& file : info.files) {
            c.files.push_back(file.string());
        }
        c.signature_count = signatures.clamav_signature_count(); // waits: known once it is compiled
        c.fingerprint = info.fingerprint;
        c.engine_version = info.engine_version;
        out.clamav = std::move(c);
    }
    if (const auto* yara = signatures.yara()) {
        const auto& info = yara->info();
        reports::YaraSignatures y;
        for (const auto& file : info.files) {
            y.files.push_back(file.string());
        }
        y.rule_count = info.rule_count;
        y.fingerprint = info.fingerprint;
        y.engine_version = info.engine_version;
        out.yara = std::move(y);
    }
    return out;
}

ScanRun::ScanRun(const signatures::SignatureSet& signatures, ScanOptions options, ScanEvents& events,
                 const std::atomic<bool>& stop)
    : m_signatures(signatures), m_options(std::move(options)), m_events(events), m_stop(stop) {}

reports::Report ScanRun::run(const std::vector<std::string>& targets) {
    std::vector<ScanTarget> plain;
    for (const auto& path : targets) {
        plain.push_back(ScanTarget{path, {}, {}});
    }
    return run(plain);
}

reports::Report ScanRun::run(const std::vector<ScanTarget>& targets) {
    reports::Report report;
    report.started_at = reports::utc_now_iso8601();
    const auto& limits = m_signatures.limits();
    report.options = reports::OptionsReport{
        m_options.threads,
        std::string(accel_name(m_options.accel)),
        limits.max_file_size,
        limits.max_scan_size,
        limits.max_recursion,
        limits.max_files,
        static_cast<std::uint64_t>(limits.max_scan_time.count()),
        static_cast<std::uint64_t>(limits.yara_timeout.count()),
        m_options.limit_policy,
    };

    PipelineSettings settings{m_options.threads, m_options.bytes_in_flight, m_options.source.max_in_memory,
                              m_options.inventory};
    // Everything a verdict depends on besides the bytes and the detection lines: the engine part covers the
    // engine versions, the scan limits and every file that changes how bytes are parsed; the engines'
    // options are fixed by this version of coldscan. The detection lines are followed per verdict.
    auto cache = open_scan_cache(m_options, "coldscan verdicts v2; " + m_signatures.engine_part());
    cache->follow_sets(m_signatures);
    Pipeline pipeline(m_signatures, settings, *cache, m_events, m_progress, m_stop);
    m_cache = cache.get();
    m_progress.target_count = static_cast<std::uint32_t>(targets.size());
    for (std::size_t i = 0; i < targets.size() && !m_stop.load(); ++i) {
        m_progress.target_index = static_cast<std::uint32_t>(i + 1);
        scan_target(targets[i], report, pipeline);
    }
    for (const auto& target : report.targets) {
        report.counts += target.counts;
    }
    report.signatures = describe(m_signatures); // at the end: the engines may still be loading at the start
    cache->sync(); // before the report says anything: a verdict reported is a verdict kept
    report.cache = cache->report();
    report.interrupted = m_stop.load();
    report.status = reports::status_of(report);
    report.finished_at = reports::utc_now_iso8601();
    report.signature_wait_seconds = pipeline.signature_wait_seconds();
    spdlog::debug("peak bytes in flight: {}", pipeline.peak_bytes_in_flight());
    return report;
}

void ScanRun::enter_phase(const std::string& phase) {
    spdlog::info("{}", phase);
    m_progress.set_phase(phase);
}

void ScanRun::record_issue(reports::TargetKind kind, reports::Report& report, reports::IssueRecord issue) {
    m_events.on_issue(kind, issue);
    report.errors.push_back(std::move(issue));
}

void ScanRun::fail_target(reports::TargetReport& target, reports::Report& report, const std::string& reason) {
    target.status = reports::RunStatus::failed;
    target.error = reason;
    record_issue(target.kind, report,
                 reports::IssueRecord{target.path, "", "", reports::k_target_failed, reason});
}

void ScanRun::scan_target(const ScanTarget& scan_target, reports::Report& report, Pipeline& pipeline) {
    reports::TargetReport target;
    const std::string& path = scan_target.name;
    target.path = path;
    std::error_code ec;
    const auto status = std::filesystem::status(path, ec);
    if (!scan_target.error.empty()) {
        fail_target(target, report, scan_target.error);
    } else if (!scan_target.disks.empty()) {
        scan_image(target, scan_target.disks, report, pipeline);
    } else if (is_nbd_uri(path)) {
        scan_nbd(target, report, pipeline);
    } else if (ec || !std::filesystem::exists(status)) {
        fail_target(target, report, "no such file or directory");
    } else if (std::filesystem::is_directory(status)) {
        target.kind = reports::TargetKind::directory;
        scan_directory(target, report, pipeline);
    } else if (disk::is_ovf_package(path)) {
        scan_package(target, report, pipeline);
    } else {
        scan_image(target, {VmDisk{path, m_options.format, 0, 0, ""}}, report, pipeline);
    }
    if (m_stop.load() && target.status != reports::RunStatus::failed &&
        target.status != reports::RunStatus::inconsistent) {
        target.status = reports::RunStatus::completed_with_issues; // interrupted: not every file was scanned
    }
    spdlog::info("{}: {} ({} files, {} infected)", printable(target.path), reports::to_string(target.status),
                 target.counts.files, target.counts.infected);
    report.targets.push_back(std::move(target));
}

void ScanRun::scan_package(reports::TargetReport& target, reports::Report& report, Pipeline& pipeline) {
    auto disks = disk::package_disks(target.path);
    if (!disks) {
        fail_target(target, report, disks.error().message);
        return;
    }
    std::vector<VmDisk> vm;
    for (const auto& d : *disks) {
        vm.push_back(VmDisk{d.file.string(), d.format ? d.format : m_options.format, d.offset, d.length,
                            target.path + "/" + d.name});
    }
    scan_image(target, vm, report, pipeline);
}

void ScanRun::scan_directory(reports::TargetReport& target, reports::Report& report, Pipeline& pipeline) {
    const auto start = Clock::now();
    auto source = disk::open_directory(target.path);
    if (!source) {
        fail_target(target, report, source.error().message);
        return;
    }
    enter_phase("scanning " + printable(target.path));
    std::error_code ec;
    const auto canonical = std::filesystem::canonical(target.path, ec);
    const SourceLocation where{target.kind, target.path, "",
                               "folder|" + canonical.string() + "|" + host_file_identity(canonical), ""};
    const auto result = pipeline.scan(**source, where, report);
    target.counts = result.counts;
    target.scan_seconds = seconds_since(start);
    target.status = reports::status_of(target, m_options.limit_policy);
    if (result.source_error) {
        fail_target(target, report, result.source_error->message);
    }
}

namespace {

// Test hook (tests/e2e/image-changed.sh): with COLDSCAN_TEST_PAUSE_FILE=PATH set, a scan that has taken an
// image's state creates PATH.paused and waits (at most 5 minutes, or until stopped) for PATH to exist, so a
// test can change the image at a known point. Not for production use.
void test_pause(const std::atomic<bool>& stop) {
    const char* path = std::getenv("COLDSCAN_TEST_PAUSE_FILE");
    if (path == nullptr || *path == '\0') {
        return;
    }
    std::ofstream(std::string(path) + ".paused") << "paused\n";
    const auto deadline = Clock::now() + std::chrono::minutes(5);
    std::error_code ec;
    while (!std::filesystem::exists(path, ec) && !stop.load() && Clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

} // namespace

namespace {

// The state of every layer of every disk, the tops taken before the gate read them.
struct ProbedDisks {
    std::vector<disk::ImageInfo> infos;
    std::vector<std::filesystem::path> layers;
    ImageState before;
};

// Each disk through the safety gate. Error: the first disk that fails it, named when there are several.
Expected<ProbedDisks> probe_disks(const std::vector<VmDisk>& disks, const std::optional<std::string>& format,
                                  const std::vector<std::filesystem::path>& allowed_roots) {
    // The top layers' state is taken before the gate reads them, the rest once the gate named them: a
    // change at any point from here to the end of the scan makes the target inconsistent.
    std::vector<std::filesystem::path> tops;
    for (const auto& d : disks) {
        std::error_code ec;
        const auto top = std::filesystem::canonical(d.path, ec);
        tops.push_back(ec ? std::filesystem::path(d.path) : top);
    }
    const ImageState tops_before = capture_image_state(tops);
    ProbedDisks probed;
    std::vector<std::size_t> top_index; // where each disk's top layer is in layers
    for (const auto& d : disks) {
        auto info = disk::probe_image(
            d.path, disk::ProbeOptions{d.format ? d.format : format, allowed_roots, d.offset, d.length});
        if (!info) {
            const std::string& name = d.name.empty() ? d.path : d.name;
            if (disks.size() == 1 && d.name.empty()) {
                return std::unexpected(info.error());
            }
            return make_error(info.error().code, name + ": " + info.error().message);
        }
        if (!d.name.empty()) {
            info->path = d.name; // how the report names it: the package's member
        }
        top_index.push_back(probed.layers.size());
        for (const auto& layer : info->chain) {
            probed.layers.push_back(layer.path);
        }
        probed.infos.push_back(std::move(*info));
    }
    probed.before = capture_image_state(probed.layers);
    for (std::size_t i = 0; i < top_index.size() && top_index[i] < probed.before.layers.size(); ++i) {
        probed.before.layers[top_index[i]] = tops_before.layers.at(i);
    }
    if (!tops_before.layers.empty()) {
        probed.before.top_fingerprint = tops_before.top_fingerprint;
    }
    return probed;
}

} // namespace

void ScanRun::scan_image(reports::TargetReport& target, const std::vector<VmDisk>& disks,
                         reports::Report& report, Pipeline& pipeline) {
    const auto start = Clock::now();
    enter_phase("checking " + printable(target.path));
    auto probed = probe_disks(disks, m_options.format, m_options.allowed_roots);
    target.probe_seconds = seconds_since(start);
    if (!probed) {
        fail_target(target, report, probed.error().message);
        return;
    }
    const auto& layers = probed->layers;
    const ImageState before = probed->before;
    // The image's cache records are held until a check finds it unchanged (scan_cache.cpp).
    m_cache->begin_target([layers, before] { return !describe_change(before, capture_image_state(layers)); });
    test_pause(m_stop);
    scan_probed_image(probed->infos, target, report, pipeline);
    const auto change = describe_change(before, capture_image_state(layers));
    if (change) {
        m_cache->discard_target();
    } else {
        m_cache->commit_target();
    }
    if (change) {
        const std::string reason =
            "the image changed while it was scanned (" + *change +
            "); nothing it gave after the change was cached, and its results may mix two "
            "states of the disk: scan it again when it is at rest";
        target.status = reports::RunStatus::inconsistent;
        target.error = reason;
        record_issue(target.kind, report,
                     reports::IssueRecord{target.path, "", "", reports::k_image_changed, reason});
    }
}

namespace {

void describe_disks(const std::vector<disk::ImageInfo>& disks, reports::TargetReport& target) {
    target.format = disks.size() == 1 ? disks.front().format : "vm";
    for (const auto& info : disks) {
        target.virtual_size += info.virtual_size;
        for (std::size_t i = 1; i < info.chain.size(); ++i) {
            const auto& layer = info.chain[i];
            target.backing_chain.push_back(
                reports::LayerReport{layer.path.string(), layer.format, layer.virtual_size, layer.file_size});
        }
        if (disks.size() > 1 || info.path.string() != target.path) { // a VM, or a package's one disk
            const auto& top = info.chain.front();
            target.disks.push_back(
                reports::LayerReport{info.path.string(), info.format, info.virtual_size, top.file_size});
        }
    }
}

} // namespace

void ScanRun::scan_probed_image(const std::vector<disk::ImageInfo>& disks, reports::TargetReport& target,
                                reports::Report& report, Pipeline& pipeline) {
    describe_disks(disks, target);
    // Per disk, per layer, the chain from it down; a single disk's image identity is its own chain's.
    std::vector<std::vector<std::string>> disk_layers;
    std::string identity;
    for (const auto& info : disks) {
        disk_layers.push_back(layer_identities(info));
        identity += (identity.empty() ? "" : "||") + disk_layers.back().front();
    }
    if (disks.size() > 1) {
        identity = "vm|" + identity;
    }
    const auto start = Clock::now();
    DirectPass pass; // what the direct path read and left
    bool use_appliance = m_options.backend == Backend::guestfs;
    if (m_options.backend != Backend::guestfs) {
        const auto opening = Clock::now();
        enter_phase("opening " + printable(target.path) + " (direct)");
        auto image = disk::DirectImage::serve(disks, direct_options());
        target.launch_seconds = seconds_since(opening);
        // Block keys name the layers a file's data lies in; --verify-content trusts no earlier record at all.
        if (m_options.identity != IdentityUse::trust) {
            disk_layers.clear();
        }
        auto direct = image
                          ? scan_direct(**image, identity, disk_layers, true, target, report, pipeline, pass)
                          : Expected<bool>(std::unexpected(image.error()));
        if (!direct) {
            if (m_options.backend == Backend::direct) {
                fail_target(target, report, direct.error().message);
                return;
            }
            spdlog::warn("{}: the direct reader cannot open it ({}); using the appliance",
                         printable(target.path), direct.error().message);
            use_appliance = true;
        } else {
            use_appliance = *direct;
        }
    }
    if (use_appliance && !m_stop.load()) {
        scan_with_appliance(disks, identity, target, report, pipeline, pass);
        if (target.status == reports::RunStatus::failed) {
            return;
        }
    }
    target.scan_seconds = std::max(0.0, seconds_since(start) - target.launch_seconds);
    finish_image(target, report);
}

disk::DirectOptions ScanRun::direct_options() const {
    return disk::DirectOptions{std::max(2U, m_options.threads + 1),
                               m_options.snapshot,
                               m_options.dirty_bitmap,
                               m_options.source.throttle,
                               m_options.sandbox_filesystems,
                               m_options.source.stall_timeout};
}

void ScanRun::scan_nbd(reports::TargetReport& target, reports::Report& report, Pipeline& pipeline) {
    auto start = Clock::now();
    enter_phase("connecting to " + printable(target.path));
    auto image = disk::DirectImage::connect(target.path, direct_options());
    target.launch_seconds = seconds_since(start);
    if (!image) {
        fail_target(target, report, image.error().message);
        return;
    }
    target.format = "nbd";
    target.virtual_size = (*image)->size();
    // An export's content may change under the same URI: no file identity of an earlier scan is trusted
    // (the identity is new every run). With a dirty bitmap, blocks it calls clean are as at the earlier scan.
    const std::string identity = "nbd|" + target.path + "|" + report.started_at;
    std::vector<std::string> layers;
    if (!m_options.dirty_bitmap.empty() && m_options.identity == IdentityUse::trust) {
        layers.push_back("nbd|" + target.path + "|bitmap " + m_options.dirty_bitmap);
    }
    DirectPass pass;
    start = Clock::now();
    auto scanned = scan_direct(**image, identity, {layers}, false, target, report, pipeline, pass);
    if (!scanned) {
        fail_target(target, report, scanned.error().message);
        return;
    }
    target.scan_seconds = seconds_since(start);
    finish_image(target, report);
}

void ScanRun::finish_image(reports::TargetReport& target, reports::Report& report) {
    target.status = reports::status_of(target, m_options.limit_policy);
    const bool none_scanned =
        std::ranges::none_of(target.filesystems, [](const reports::FilesystemReport& fs) {
            return fs.status == reports::FilesystemStatus::scanned;
        });
    if (none_scanned && !m_stop.load()) {
        // A disk without one readable filesystem (truncated, encrypted, unsupported, blank) is not clean.
        const bool some_failed =
            std::ranges::any_of(target.filesystems, [](const reports::FilesystemReport& fs) {
                return fs.status == reports::FilesystemStatus::failed;
            });
        record_issue(target.kind, report,
                     reports::IssueRecord{target.path, "", "", reports::k_no_filesystem,
                                          some_failed
                                              ? "no filesystem of this disk could be scanned (failures above)"
                                              : "no filesystem coldscan can read was found on this disk"});
        target.status = reports::RunStatus::completed_with_issues;
    }
}

namespace {

// A logical volume as libguestfs names it: /dev/VG/LV (not /dev/sda1, /dev/md0).
bool is_logical_volume(const std::string& device) {
    return device.starts_with("/dev/") && std::ranges::count(device, '/') == 3;
}

// /dev/VG/LV as device-mapper names it: /dev/mapper/VG-LV, each '-' in a name doubled.
std::string mapper_name(const std::string& device) {
    if (!is_logical_volume(device)) {
        return device;
    }
    std::string out = "/dev/mapper/";
    for (const char c : device.substr(5)) {
        out += c == '/' ? std::string("-") : c == '-' ? std::string("--") : std::string(1, c);
    }
    return out;
}

// Whether the direct path and the appliance name the same device (libguestfs lists some logical volumes,
// thin pools among them, under /dev/mapper).
bool same_device(const std::string& direct, const std::string& appliance) {
    return direct == appliance || mapper_name(direct) == appliance;
}

} // namespace

void ScanRun::scan_with_appliance(const std::vector<disk::ImageInfo>& disks, const std::string& identity,
                                  reports::TargetReport& target, reports::Report& report, Pipeline& pipeline,
                                  const DirectPass& pass) {
    auto start = Clock::now();
    const std::string launching = "starting the appliance for " + printable(target.path);
    enter_phase(launching);
    m_events.on_phase(launching);
    auto image = disk::GuestfsImage::launch(
        disks, disk::ApplianceOptions{m_options.accel, m_options.source.stall_timeout, m_options.snapshot});
    target.launch_seconds += seconds_since(start);
    if (!image) {
        fail_target(target, report, image.error().message);
        return;
    }
    target.accel = image->accel_used();

    start = Clock::now();
    enter_phase("inspecting " + printable(target.path));
    if (!target.inspection.empty()) {
        // the direct path already named the systems
    } else if (auto inspection = image->inspect()) {
        for (const auto& os : *inspection) {
            target.inspection.push_back(
                reports::OsReport{os.root, os.type, os.distro, os.product_name, os.version, os.hostname});
        }
    } else {
        spdlog::warn("{}: OS inspection failed: {}", printable(target.path), inspection.error().message);
    }
    auto filesystems = image->filesystems();
    target.inspect_seconds += seconds_since(start);
    if (!filesystems) {
        fail_target(target, report, "cannot list filesystems: " + filesystems.error().message);
        return;
    }
    for (const auto& fs : *filesystems) {
        if (std::ranges::any_of(pass.reported,
                                [&](const std::string& d) { return same_device(d, fs.device); })) {
            continue; // the direct path read it, or said why not
        }
        const OpenSource open = [&](disk::WantBytes want) {
            return image->open_filesystem(fs, m_options.source, std::move(want));
        };
        // Left by the direct path for a reason (a volume whose physical volume is on no disk given) and not
        // readable here either: a failure with both reasons, not a skip.
        const auto left = std::ranges::find_if(
            pass.left, [&](const disk::FilesystemInfo& l) { return same_device(l.device, fs.device); });
        disk::FilesystemInfo info = fs;
        const bool failed =
            left != pass.left.end() && !fs.not_scannable_reason.empty() && left->type != "swap";
        if (failed) {
            info.not_scannable_reason =
                left->not_scannable_reason + "; the appliance: " + fs.not_scannable_reason;
        }
        scan_filesystem(info, "appliance", fs.not_scannable_reason.empty() ? &open : nullptr, failed,
                        identity, target, report, pipeline);
    }
    report_unfound(pass, *filesystems, identity, target, report, pipeline);
}

void ScanRun::report_unfound(const DirectPass& pass, const std::vector<disk::FilesystemInfo>& found,
                             const std::string& identity, reports::TargetReport& target,
                             reports::Report& report, Pipeline& pipeline) {
    const bool found_volumes = std::ranges::any_of(
        found, [](const disk::FilesystemInfo& fs) { return is_logical_volume(fs.device); });
    for (const auto& left : pass.left) {
        const bool seen =
            std::ranges::any_of(found, [&](const auto& fs) { return same_device(left.device, fs.device); });
        // A physical volume the direct reader could not make sense of is covered by the volumes the appliance
        // found; anything else the appliance does not list was read by neither: never silently dropped.
        if (seen || (left.type == "LVM2_member" && found_volumes)) {
            continue;
        }
        disk::FilesystemInfo info = left;
        info.not_scannable_reason += " (the appliance did not find it either)";
        scan_filesystem(info, "direct", nullptr, true, identity, target, report, pipeline);
    }
}

ScanRun::FilesystemScan ScanRun::open_filesystem(const disk::FilesystemInfo& fs, std::string reader,
                                                 const OpenSource* open, bool unread_is_failure,
                                                 const std::string& identity,
                                                 const reports::TargetReport& target, Pipeline& pipeline) {
    FilesystemScan scan;
    scan.report = filesystem_report(fs, std::move(reader));
    if (open == nullptr) {
        // Encrypted volumes hold files we could not scan: that is an issue, not a deliberate skip.
        const bool failed = unread_is_failure || disk::encrypted_reason(fs.type).has_value();
        scan.report.status = failed ? reports::FilesystemStatus::failed : reports::FilesystemStatus::skipped;
        scan.report.reason = fs.not_scannable_reason;
        scan.issue = failed;
        return scan;
    }
    if (m_stop.load()) {
        scan.report.status = reports::FilesystemStatus::failed; // the run's interruption is reported once
        scan.report.reason = "scan interrupted";
        return scan;
    }
    enter_phase("scanning " + printable(target.path) + ":" + printable(fs.device));
    scan.where = SourceLocation{target.kind, target.path, fs.device, identity,
                                fs.uuid + "|" + fs.device + "|" + fs.type};
    const auto start = Clock::now();
    auto source = (*open)(pipeline.want_bytes(scan.where));
    scan.report.open_seconds = seconds_since(start);
    if (!source) {
        scan.report.status = reports::FilesystemStatus::failed;
        scan.report.reason = source.error().message;
        scan.issue = true;
        return scan;
    }
    scan.source = std::move(*source);
    return scan;
}

void ScanRun::read_filesystem(FilesystemScan& scan, reports::Report& report, Pipeline& pipeline,
                              const std::function<void()>& listed) noexcept {
    const auto start = Clock::now();
    try {
        const auto result = pipeline.scan(*scan.source, scan.where, report, listed);
        scan.counts = result.counts;
        scan.report.files = result.counts.files;
        scan.report.bytes = result.counts.bytes;
        if (result.source_error) {
            scan.report.status = reports::FilesystemStatus::failed;
            scan.report.reason = result.source_error->message;
            scan.issue = true;
        }
    } catch (const std::exception& e) {
        scan.report.status = reports::FilesystemStatus::failed;
        scan.report.reason = std::string("internal error: ") + e.what();
        scan.issue = true;
    }
    scan.report.scan_seconds = seconds_since(start);
    scan.source.reset();
}

void ScanRun::end_filesystem(FilesystemScan& scan, reports::TargetReport& target, reports::Report& report) {
    target.counts += scan.counts;
    if (scan.issue) {
        record_issue(target.kind, report, filesystem_issue(target, scan.report));
    }
    target.filesystems.push_back(std::move(scan.report));
}

void ScanRun::scan_filesystem(const disk::FilesystemInfo& fs, std::string reader, const OpenSource* open,
                              bool unread_is_failure, const std::string& identity,
                              reports::TargetReport& target, reports::Report& report, Pipeline& pipeline) {
    auto scan = open_filesystem(fs, std::move(reader), open, unread_is_failure, identity, target, pipeline);
    if (scan.source) {
        read_filesystem(scan, report, pipeline, {});
    }
    end_filesystem(scan, target, report);
}

Expected<bool> ScanRun::scan_direct(disk::DirectImage& image, const std::string& identity,
                                    const std::vector<std::vector<std::string>>& disk_layers,
                                    bool appliance_available, reports::TargetReport& target,
                                    reports::Report& report, Pipeline& pipeline, DirectPass& pass) {
    const auto start = Clock::now();
    auto filesystems = image.filesystems();
    if (!filesystems) {
        return std::unexpected(filesystems.error());
    }
    for (const auto& warning : image.warnings()) {
        spdlog::warn("{}: {}", printable(target.path), warning);
    }
    for (const auto& os : image.inspect(*filesystems)) {
        target.inspection.push_back(
            reports::OsReport{os.root, os.type, os.distro, os.product_name, os.version, os.hostname});
    }
    target.inspect_seconds = seconds_since(start);
    bool needs_appliance = false;
    std::deque<FilesystemScan> scans; // in the filesystems' order; read by the relay, overlapped
    {
        FilesystemRelay relay; // (destroyed first: its reads end before the scans they fill)
        for (const auto& fs : *filesystems) {
            if (fs.for_appliance && m_options.backend == Backend::automatic && appliance_available) {
                needs_appliance = true; // the appliance pass reports it (and what it holds: LVM volumes)
                pass.left.push_back(fs.info);
                continue;
            }
            disk::FilesystemInfo info = fs.info;
            if (fs.for_appliance) { // its files were not scanned: a failure, and where they can be read
                info.not_scannable_reason += appliance_available
                                                 ? " (--backend auto reads it through the appliance)"
                                                 : " (the appliance does not read NBD exports)";
            }
            pass.reported.push_back(fs.info.device);
            const OpenSource open = [&](disk::WantBytes want) {
                return image.open_filesystem(fs, m_options.source, std::move(want), disk_layers);
            };
            auto& scan = scans.emplace_back(open_filesystem(info, "direct", fs.readable ? &open : nullptr,
                                                            fs.for_appliance, identity, target, pipeline));
            if (scan.source) {
                relay.start([this, &scan, &report, &pipeline](const std::function<void()>& listed) {
                    read_filesystem(scan, report, pipeline, listed);
                });
            }
        }
    }
    for (auto& scan : scans) {
        end_filesystem(scan, target, report);
    }
    return needs_appliance;
}

std::vector<std::string> ScanRun::layer_identities(const disk::ImageInfo& info) const {
    // From the bottom up: the chain from layer i down is layer i's own identity, then the chain below it.
    // The chain below a linked clone's top is then exactly its template's identity.
    std::vector<std::string> identities(std::max<std::size_t>(1, info.chain.size()));
    std::string below;
    for (std::size_t i = info.chain.size(); i-- > 0;) {
        const auto& layer = info.chain[i];
        // A disk inside a package is its slice of the file: two disks of one OVA are not the same layer.
        const std::string slice =
            layer.length == 0 ? "" : "@" + std::to_string(layer.offset) + "+" + std::to_string(layer.length);
        below = "|" + layer.path.string() + slice + "|" + layer.format + "|" +
                host_file_identity(layer.path) + below;
        identities[i] = "image" + below;
    }
    if (info.chain.empty()) {
        identities[0] = "image";
    }
    return identities;
}

} // namespace coldscan::scanner
