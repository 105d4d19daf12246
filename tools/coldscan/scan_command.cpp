#include "scan_command.hpp"

#include "cache_command.hpp"
#include "coldscan/common/log.hpp"
#include "coldscan/common/temp_dir.hpp"
#include "coldscan/common/text.hpp"
#include "coldscan/disk/image_probe.hpp"
#include "coldscan/reports/json_report.hpp"
#include "coldscan/reports/text_report.hpp"
#include "coldscan/scanner/scan_run.hpp"
#include "coldscan/signatures/signature_set.hpp"
#include "console_events.hpp"
#include "vm_targets.hpp"

#include <chrono>
#include <cstdio>
#include <thread>
#include <unistd.h>

namespace coldscan::cli {

struct ScanCommandOptions {
    std::vector<std::string> targets;
    bool one_vm = false;
    std::vector<std::string> domain_xml;
    std::string clamav_db;
    std::vector<std::string> yara_rules;
    std::string format;
    std::vector<std::string> allowed_roots;
    std::string accel = "auto";
    std::string backend = "auto";
    std::string snapshot;
    std::string dirty_bitmap;
    unsigned threads = 0;
    std::string report;
    std::string inventory;
    std::string max_file_size = "256M";
    std::string max_scan_size = "1G";
    unsigned max_recursion = 17;
    unsigned max_files = 10'000;
    unsigned max_scan_time = 120;
    unsigned yara_timeout = 60;
    std::string limit_policy = "warn";
    std::string bytes_in_flight = "256M";
    std::string spill_dir = "/var/tmp";
    unsigned stall_timeout = 600;
    std::string cache_dir;
    bool no_cache = false;
    bool verify_content = false;
    bool no_progress = false;
    bool no_summary = false;
    bool quiet_issues = false;
    bool no_sandbox = false;
};

std::shared_ptr<ScanCommandOptions> add_scan_command(CLI::App& app) {
    auto options = std::make_shared<ScanCommandOptions>();
    auto* scan = app.add_subcommand("scan", "Scan VM disk images (qcow2, vmdk, vhdx, vdi, raw) or folders");
    scan->add_option(
        "TARGET", options->targets,
        "Disk image files, directory trees, NBD URIs, or libvirt:DOMAIN (all its disks as one VM)");
    scan->add_flag(
        "--one-vm", options->one_vm,
        "Every TARGET is a disk of one VM, in the order the VM sees them: scanned as one target (a "
        "volume group may span them)");
    scan->add_option("--domain-xml", options->domain_xml,
                     "A libvirt domain XML file: all its disks as one VM target (repeatable)")
        ->allow_extra_args(false);
    scan->add_option("--clamav-db", options->clamav_db,
                     "ClamAV database file or folder (default: /var/lib/clamav when it holds databases)");
    // One value per occurrence: a repeatable option must never swallow the TARGETs after it.
    scan->add_option("--yara-rules", options->yara_rules, "YARA rules file or folder (repeatable)")
        ->allow_extra_args(false)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    scan->add_option("--format", options->format, "Image format of every TARGET (default: safe detection)");
    scan->add_option("--allow-root", options->allowed_roots,
                     "Folder backing files may live in, besides the image's own (repeatable)")
        ->allow_extra_args(false)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    scan->add_option("--accel", options->accel, "Appliance acceleration: auto, kvm or tcg")
        ->check(CLI::IsMember({"auto", "kvm", "tcg"}));
    scan->add_option(
            "--backend", options->backend,
            "How images are read: guestfs (the appliance), direct (qemu-nbd + in-process reader), or "
            "auto (direct where it can, the appliance for LVM, XFS, btrfs and the rest)")
        ->capture_default_str()
        ->check(CLI::IsMember({"auto", "direct", "guestfs"}));
    scan->add_option("--snapshot", options->snapshot,
                     "Scan this qcow2 internal snapshot instead of the current state (every backend)");
    scan->add_option(
        "--dirty-bitmap", options->dirty_bitmap,
        "NBD targets: the export's qemu:dirty-bitmap:NAME; files wholly in blocks it calls clean keep "
        "the verdicts of the previous scan of the same URI");
    scan->add_option("--threads", options->threads, "Scan threads (default: all cores)")
        ->check(CLI::Range(1U, 1024U));
    scan->add_option("--report", options->report, "Write the JSON report to FILE");
    scan->add_option("--inventory", options->inventory, "Write one JSON line per file to FILE");
    scan->add_option("--max-filesize", options->max_file_size, "Larger files are not scanned (reported)")
        ->capture_default_str();
    scan->add_option("--max-scansize", options->max_scan_size, "Bytes scanned per file, archives included")
        ->capture_default_str();
    // 0 would switch a ClamAV limit off (or be replaced by its default): refused, as in the service config.
    scan->add_option("--max-recursion", options->max_recursion, "Archive nesting limit")
        ->capture_default_str()
        ->check(CLI::Range(1U, 4'294'967'295U));
    scan->add_option("--max-files", options->max_files, "Members scanned per archive")
        ->capture_default_str()
        ->check(CLI::Range(1U, 4'294'967'295U));
    scan->add_option("--limit-policy", options->limit_policy,
                     "Files the limits kept from being scanned in full (LIMIT_EXCEEDED, never clean): warn "
                     "(a warning; exit 0 if nothing else is wrong) or fail (exit 2, as a read error)")
        ->capture_default_str()
        ->check(CLI::IsMember({"warn", "fail"}));
    scan->add_option("--max-scantime", options->max_scan_time, "ClamAV seconds per file")
        ->capture_default_str()
        ->check(CLI::Range(1U, 86'400U));
    scan->add_option("--yara-timeout", options->yara_timeout, "YARA seconds per file")
        ->capture_default_str()
        ->check(CLI::Range(1U, 86'400U));
    scan->add_flag("--no-sandbox", options->no_sandbox,
                   "Run ClamAV, YARA and the direct path's filesystem reader inside coldscan's own process "
                   "instead of confined worker processes (a file that crashes one then ends the scan)");
    scan->add_option("--bytes-in-flight", options->bytes_in_flight, "Memory for file contents in flight")
        ->capture_default_str();
    scan->add_option("--spill-dir", options->spill_dir,
                     "Folder for temporary copies of big files streamed from the appliance")
        ->capture_default_str();
    scan->add_option("--stall-timeout", options->stall_timeout,
                     "Seconds an appliance call, or a filesystem worker, may go unanswered before it is "
                     "stopped as hung")
        ->capture_default_str()
        ->check(CLI::Range(1U, 86'400U));
    auto* cache =
        scan->add_option("--cache", options->cache_dir,
                         "Verdict cache folder (default: $XDG_CACHE_HOME/coldscan or ~/.cache/coldscan)");
    scan->add_flag("--no-cache", options->no_cache, "Use no persistent verdict cache")->excludes(cache);
    scan->add_flag("--verify-content", options->verify_content,
                   "Read and hash every file even when its identity is cached (distrust guest timestamps)");
    scan->add_flag("--no-progress", options->no_progress, "No live progress line");
    scan->add_flag("--no-summary", options->no_summary, "No summary at the end");
    scan->add_flag("--quiet-issues", options->quiet_issues, "Do not print ERROR / LIMIT_EXCEEDED lines");
    return options;
}

namespace {

// A bad option value: one clear line, exit status 2.
struct UsageError {
    std::string message;
};

std::uint64_t size_option(const std::string& name, const std::string& value) {
    const auto bytes = parse_size(value);
    if (!bytes || *bytes == 0) {
        throw UsageError{name + ": '" + value + "' is not a size (examples: 100M, 2G, 4096)"};
    }
    return *bytes;
}

scanner::Backend backend_option(const std::string& value) {
    if (value == "auto") {
        return scanner::Backend::automatic;
    }
    if (value == "direct") {
        return scanner::Backend::direct;
    }
    return scanner::Backend::guestfs;
}

disk::Accel accel_option(const std::string& value) {
    if (value == "kvm") {
        return disk::Accel::kvm;
    }
    if (value == "tcg") {
        return disk::Accel::tcg;
    }
    return disk::Accel::automatic;
}

void check_output(const std::string& option, const std::string& path) {
    if (path.empty()) {
        return;
    }
    if (auto ok = reports::check_writable(path); !ok) {
        throw UsageError{option + ": " + ok.error().message};
    }
}

} // namespace

namespace {

// The run's targets: each TARGET (libvirt:DOMAIN as one VM of all its disks), or all of them as one VM
// (--one-vm), then each --domain-xml VM. A VM that cannot be described is a failed target of the run, as a
// missing image is. Error: no target at all, or --one-vm with something that is not an image file.
Expected<std::vector<scanner::ScanTarget>> scan_targets(const ScanCommandOptions& o) {
    if (o.targets.empty() && o.domain_xml.empty()) {
        return make_error(Errc::invalid_argument,
                          "name a TARGET (an image, folder, NBD URI or libvirt:DOMAIN) "
                          "or --domain-xml FILE");
    }
    std::vector<scanner::ScanTarget> targets;
    auto failed = [](const std::string& name, const Error& why) {
        return scanner::ScanTarget{name, {}, why.message};
    };
    if (o.one_vm) {
        for (const auto& t : o.targets) {
            std::error_code ec;
            if (t.starts_with("libvirt:") || t.find("://") != std::string::npos ||
                std::filesystem::is_directory(t, ec)) {
                return make_error(Errc::invalid_argument, "--one-vm: " + t + " is not a disk image file");
            }
        }
        if (!o.targets.empty()) {
            targets.push_back(vm_from_disks(o.targets));
        }
    } else {
        for (const auto& t : o.targets) {
            if (!t.starts_with("libvirt:")) {
                targets.push_back(scanner::ScanTarget{t, {}, {}});
            } else if (auto vm = vm_from_libvirt(t)) {
                targets.push_back(std::move(*vm));
            } else {
                targets.push_back(failed(t, vm.error()));
            }
        }
    }
    for (const auto& file : o.domain_xml) {
        auto vm = vm_from_domain_xml(file);
        targets.push_back(vm ? std::move(*vm) : failed(file, vm.error()));
    }
    return targets;
}

} // namespace

int run_scan(const ScanCommandOptions& o, std::atomic<bool>& stop) {
    const auto start = std::chrono::steady_clock::now();
    signatures::SignatureOptions sig_options;
    scanner::ScanOptions scan_options;
    try {
        sig_options.limits.max_file_size = size_option("--max-filesize", o.max_file_size);
        sig_options.limits.max_scan_size = size_option("--max-scansize", o.max_scan_size);
        sig_options.limits.max_recursion = o.max_recursion;
        sig_options.limits.max_files = o.max_files;
        sig_options.limits.max_scan_time = std::chrono::seconds(o.max_scan_time);
        sig_options.limits.yara_timeout = std::chrono::seconds(o.yara_timeout);
        sig_options.isolation =
            o.no_sandbox ? signatures::EngineIsolation::in_process : signatures::EngineIsolation::sandboxed;
        scan_options.sandbox_filesystems = !o.no_sandbox;
        scan_options.bytes_in_flight = size_option("--bytes-in-flight", o.bytes_in_flight);
        if (!o.format.empty() && !disk::is_supported_format(o.format)) {
            throw UsageError{"--format: '" + o.format +
                             "' is not a format coldscan opens (qcow2, vmdk, vhdx, vdi, vpc, qed, raw)"};
        }
        check_output("--report", o.report);
        check_output("--inventory", o.inventory);
        std::error_code ec;
        if (!o.spill_dir.empty() && !std::filesystem::is_directory(o.spill_dir, ec)) {
            throw UsageError{"--spill-dir: " + o.spill_dir + " is not a folder"};
        }
        for (const auto& root : o.allowed_roots) {
            if (!std::filesystem::is_directory(root, ec)) {
                throw UsageError{"--allow-root: " + root + " is not a folder"};
            }
        }
    } catch (const UsageError& e) {
        spdlog::error("{}", e.message);
        return 2;
    }
    auto targets = scan_targets(o);
    if (!targets) {
        spdlog::error("{}", targets.error().message);
        return 2;
    }
    if (const auto removed = remove_stale_temp_dirs("coldscan"); removed > 0) {
        spdlog::info("removed {} temporary folder(s) that killed coldscan runs left behind", removed);
    }
    if (!o.clamav_db.empty()) {
        sig_options.clamav_db = o.clamav_db;
    }
    for (const auto& rules : o.yara_rules) {
        sig_options.yara_rules.emplace_back(rules);
    }

    if (!o.no_cache) {
        scan_options.cache_dir =
            o.cache_dir.empty() ? default_cache_dir() : std::filesystem::path(o.cache_dir);
        if (!scan_options.cache_dir) {
            spdlog::info("no verdict cache: HOME and XDG_CACHE_HOME are unset (use --cache DIR)");
        }
    }
    if (scan_options.cache_dir) {
        sig_options.memo_dir = *scan_options.cache_dir / signatures::k_memo_folder;
    }

    // The ClamAV engine compiles while the images are opened and the verdict cache is asked: a re-scan that
    // finds little to scan does not wait the whole load first.
    const auto load_start = std::chrono::steady_clock::now();
    auto signatures = signatures::SignatureSet::load(sig_options, signatures::LoadMode::background);
    if (!signatures) {
        spdlog::error("{}", signatures.error().message);
        return 2;
    }
    std::atomic<double> load_seconds{0.0};
    // A failed load stops the run like an interrupt; the error is told below, instead of a report.
    std::jthread load_watch([&] {
        const bool loaded = signatures->ready().has_value();
        load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();
        if (!loaded) {
            stop.store(true);
        }
    });

    std::optional<reports::InventoryWriter> inventory;
    if (!o.inventory.empty()) {
        auto writer = reports::InventoryWriter::open(o.inventory);
        if (!writer) {
            spdlog::error("{}", writer.error().message);
            return 2;
        }
        inventory.emplace(std::move(*writer));
    }

    const unsigned cores = std::max(1U, std::thread::hardware_concurrency());
    scan_options.threads = o.threads != 0 ? o.threads : cores;
    scan_options.accel = accel_option(o.accel);
    scan_options.backend = backend_option(o.backend);
    scan_options.snapshot = o.snapshot;
    scan_options.dirty_bitmap = o.dirty_bitmap;
    scan_options.limit_policy =
        reports::limit_policy_from(o.limit_policy).value_or(reports::LimitPolicy::warn);
    if (!o.format.empty()) {
        scan_options.format = o.format;
    }
    for (const auto& root : o.allowed_roots) {
        scan_options.allowed_roots.emplace_back(root);
    }
    scan_options.source.spill_dir = o.spill_dir;
    scan_options.source.stall_timeout = std::chrono::seconds(o.stall_timeout);
    scan_options.inventory = inventory.has_value();
    scan_options.identity = o.verify_content ? scanner::IdentityUse::ignore : scanner::IdentityUse::trust;

    ConsoleEvents events(!o.quiet_issues, std::move(inventory));
    scanner::ScanRun run(*signatures, scan_options, events, stop);
    if (!o.no_progress && ::isatty(STDERR_FILENO) == 1) {
        events.start_progress(run.progress());
    }
    reports::Report report = run.run(*targets);
    load_watch.join();
    if (auto loaded = signatures->ready(); !loaded) {
        static_cast<void>(events.finish()); // ends the progress line; the results are void without engines
        spdlog::error("{}", loaded.error().message);
        return 2;
    }
    report.signature_load_seconds = load_seconds;
    if (!signatures->loads_in_background()) {
        report.signature_wait_seconds = load_seconds; // it loaded before anything else started
    }
    report.total_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    int status = reports::exit_status(report);
    if (auto finished = events.finish(); !finished) {
        spdlog::error("{}", finished.error().message);
        status = std::max(status, 2);
    }
    if (!o.report.empty()) {
        if (auto written = reports::write_json_file(report, o.report); !written) {
            spdlog::error("{}", written.error().message);
            status = std::max(status, 2);
        }
    }
    if (!o.no_summary) {
        std::fputs(reports::summary(report).c_str(), stdout);
    }
    if (report.interrupted) {
        spdlog::warn("interrupted: the report covers what was scanned before the interrupt");
    }
    return status == 1 ? 1 : status;
}

} // namespace coldscan::cli
