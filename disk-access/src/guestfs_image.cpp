// A disk image in a libguestfs appliance: launch (with the KVM -> TCG fallback), inspection, filesystem
// listing, and a streaming FileSource per filesystem.
//
// Launch. Many scanning hosts are nested VMs where /dev/kvm exists but qemu aborts under KVM. In automatic
// mode the first launch tries KVM; if it fails, the handle is discarded, a warning says so once per process,
// and the appliance is launched again with force_tcg. When that works, a process-wide flag sends every later
// launch straight to TCG. The user's LIBGUESTFS_* environment keeps working: force_tcg is added to whatever
// backend settings it set.
//
// Streaming. tar-out is the fastest bulk read libguestfs has: a worker thread runs guestfs_tar_out_opts()
// into a pipe and TarSource parses the other end. Before streaming, guestfs_find0() lists every name, so a
// file tar skips or never reaches (I/O error, appliance crash) comes back as a problem entry. The appliance's
// console carries tar's own messages; those naming a file mark it as possibly incomplete.
//
// Formats. The appliance never opens the image: coldscan serves it read-only with qemu-nbd (every layer's
// format and file named, as on the direct path) and gives the appliance a qcow2 overlay of its own whose
// backing is that export, read as raw (create_overlay). The drive is added writable with format qcow2, so
// libguestfs adds no read-only overlay of its own: libguestfs 1.48 passes that one to qemu without a format
// at the top (file.driver=qcow2 only), and qemu then probes the guest-visible bytes. qemu runs confined to a
// file view (confined_hypervisor.hpp): even a probing mistake could not reach a host file.
//
// Errors. The handle's error handler records messages instead of printing them; each operation clears the
// record first and builds its Error from it. Appliance output (qemu's and tar's stderr) is kept as a short
// tail for the same purpose.
#include "coldscan/disk/guestfs_image.hpp"

#include "coldscan/common/c_handle.hpp"
#include "coldscan/common/file_view.hpp"
#include "coldscan/common/log.hpp"
#include "coldscan/common/read_fully.hpp"
#include "coldscan/common/subprocess.hpp"
#include "coldscan/common/temp_dir.hpp"
#include "coldscan/common/text.hpp"
#include "confined_hypervisor.hpp"
#include "listed_source.hpp"
#include "qemu_file_view.hpp"
#include "qemu_nbd_server.hpp"
#include "spill_file.hpp"
#include "stall_watchdog.hpp"
#include "tar_source.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <guestfs.h>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <utility>

namespace coldscan::disk {
namespace {

using Guestfs = CHandle<guestfs_h, guestfs_close>; // one per worker

std::atomic<bool> g_kvm_failed{false}; // a KVM launch failed and TCG worked: later launches use TCG
std::atomic<bool> g_kvm_warned{false};

constexpr std::size_t k_appliance_log_limit = 64U << 10;
constexpr std::size_t k_max_tar_lines = 100000;
constexpr std::size_t k_lstat_batch = 1000;

std::string take_string(char* text) {
    if (text == nullptr) {
        return {};
    }
    std::string result(text);
    std::free(text);
    return result;
}

// Takes ownership of a NULL-terminated list of strings from libguestfs.
std::vector<std::string> take_string_list(char** list) {
    std::vector<std::string> result;
    if (list == nullptr) {
        return result;
    }
    for (char** item = list; *item != nullptr; ++item) {
        result.emplace_back(*item);
        std::free(*item);
    }
    std::free(list);
    return result;
}

std::string first_line(std::string_view text) {
    const auto end = text.find('\n');
    std::string line(text.substr(0, end));
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) {
        line.pop_back();
    }
    return line;
}

bool kvm_usable() {
    const int fd = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    ::close(fd);
    return true;
}

// One launched appliance. Heap-allocated and never moved: the libguestfs callbacks hold its address.
struct Appliance {
    // Outlive the handle (declared first, destroyed last): the overlay and the export qemu reads.
    std::optional<TempDir> folder; // overlay, confined qemu's link and view, qemu's scratch files
    std::vector<std::unique_ptr<detail::QemuNbdServer>> export_servers; // one per disk
    Guestfs g;
    std::string accel;
    pid_t qemu_pid = -1; // to stop a hung appliance: the handle itself is busy in that thread then
    std::unique_ptr<detail::StallWatchdog> watchdog; // set at launch; destroyed before the handle
    bool verbose = false;      // LIBGUESTFS_DEBUG=1: echo the appliance output, as libguestfs would
    std::mutex messages_mutex; // callbacks run on whichever thread drives the handle
    std::vector<std::string> errors;
    std::string appliance_log;
    std::vector<std::string> tar_lines;

    Appliance() = default;
    Appliance(const Appliance&) = delete;
    Appliance& operator=(const Appliance&) = delete;
    // The handle closes first: closing shuts the appliance down, and its last console output still reaches
    // on_event, which writes into the members below it.
    ~Appliance() {
        watchdog.reset();
        g.reset();
    }

    static void on_error(guestfs_h* /*g*/, void* opaque, const char* message) noexcept {
        try {
            auto* self = static_cast<Appliance*>(opaque);
            std::lock_guard lock(self->messages_mutex);
            if (self->errors.size() < 16) {
                self->errors.emplace_back(message != nullptr ? message : "");
            }
        } catch (...) {
        }
    }

    static void on_event(guestfs_h* /*g*/, void* opaque, std::uint64_t /*event*/, int /*handle*/,
                         int /*flags*/, const char* buf, std::size_t len, const std::uint64_t* /*array*/,
                         std::size_t /*array_len*/) noexcept {
        try {
            auto* self = static_cast<Appliance*>(opaque);
            if (self->verbose) {
                std::fwrite(buf, 1, len, stderr); // registering a callback silences libguestfs' own echo
            }
            std::lock_guard lock(self->messages_mutex);
            self->take_output(std::string_view(buf, len));
        } catch (...) {
        }
    }

    // Appliance output arrives in arbitrary chunks: keep a bounded tail for error messages, and every
    // line from tar (which names the files it had trouble with) whatever else the console says.
    void take_output(std::string_view chunk) {
        const std::size_t old_size = appliance_log.size();
        appliance_log.append(chunk);
        std::size_t line_start = 0; // of the first line this chunk may complete
        if (old_size > 0) {
            const auto newline = appliance_log.rfind('\n', old_size - 1);
            line_start = newline == std::string::npos ? 0 : newline + 1;
        }
        for (;;) {
            const auto end = appliance_log.find('\n', line_start);
            if (end == std::string::npos) {
                break;
            }
            const std::string_view line =
                std::string_view(appliance_log).substr(line_start, end - line_start);
            if (line.starts_with("tar: ") && tar_lines.size() < k_max_tar_lines) {
                tar_lines.push_back(first_line(line));
            }
            line_start = end + 1;
        }
        if (appliance_log.size() > k_appliance_log_limit) {
            appliance_log.erase(0, appliance_log.size() - k_appliance_log_limit / 2);
        }
    }

    // Starts an operation on the calling thread: libguestfs keeps error handlers per thread, so ours is
    // installed on whichever thread drives the handle now, and the previous messages are dropped. The guard
    // has the appliance stopped if the operation outlives the stall limit; keep it until the call returns.
    [[nodiscard]] detail::StallWatchdog::Call begin_call() {
        begin_unwatched_call();
        return detail::StallWatchdog::Call(*watchdog);
    }

    // For tar-out, which may stream for hours: TarReader's own stall limit covers it.
    void begin_unwatched_call() {
        ::guestfs_set_error_handler(g.get(), &Appliance::on_error, this);
        clear_messages();
    }

    void clear_messages() {
        std::lock_guard lock(messages_mutex);
        errors.clear();
        appliance_log.clear();
        tar_lines.clear();
    }

    // The recorded errors as one line each, joined; fallback when libguestfs said nothing. Once the watchdog
    // has stopped the appliance, that is the reason for every failure after it.
    std::string error_message(std::string_view fallback) {
        if (watchdog && watchdog->fired()) {
            return "the appliance stopped answering for more than " +
                   std::to_string(watchdog->limit().count()) + " s (--stall-timeout) and was stopped";
        }
        std::lock_guard lock(messages_mutex);
        std::string message;
        for (const auto& error : errors) {
            std::string line = first_line(error);
            while (!line.empty() && line.back() == '.') {
                line.pop_back();
            }
            if (line.empty() || message.find(line) != std::string::npos) {
                continue;
            }
            if (!message.empty()) {
                message += "; ";
            }
            message += line;
        }
        return message.empty() ? std::string(fallback) : message;
    }

    std::vector<std::string> appliance_lines() {
        std::lock_guard lock(messages_mutex);
        std::vector<std::string> lines;
        std::string_view rest = appliance_log;
        while (!rest.empty()) {
            const auto end = rest.find('\n');
            std::string line = first_line(rest.substr(0, end));
            if (!line.empty()) {
                lines.push_back(std::move(line));
            }
            rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end + 1);
        }
        return lines;
    }

    std::vector<std::string> take_tar_lines() {
        std::lock_guard lock(messages_mutex);
        return std::exchange(tar_lines, {});
    }

    // qemu's own complaint from the appliance output ("qemu-system-x86_64: error: ..."), if any.
    std::optional<std::string> qemu_complaint() {
        for (const auto& line : appliance_lines()) {
            if (line.starts_with("qemu-system") || line.find("qemu-kvm:") != std::string::npos) {
                return line;
            }
        }
        return std::nullopt;
    }
};

// The appliance's disk: a qcow2 overlay of ours whose backing file is the image's qemu-nbd export read as
// raw. Every name in it is explicit: qemu opens the overlay as qcow2 (the drive's format) and the export as
// raw over NBD, so no byte of the guest is ever probed for a format. Writes (a journal replayed by the
// appliance's read-only mount) land in the overlay, which goes with the folder.
// Errors: io (qemu-img create failed), invalid_argument (a socket path that is not UTF-8).
Expected<std::filesystem::path> create_overlay(const std::filesystem::path& folder, const std::string& name,
                                               const std::string& socket, std::uint64_t size) {
    if (!is_valid_utf8(socket)) {
        return make_error(Errc::invalid_argument, "the export's socket path " + socket + " is not UTF-8");
    }
    // Test hook (tests/e2e/host-file-canary.sh): the mistake the file view is there for, the export read as
    // an image format, so that the guest's bytes decide what qemu opens.
    const char* mistake = std::getenv("COLDSCAN_TEST_APPLIANCE_EXPORT_FORMAT");
    const std::string format = mistake != nullptr ? mistake : "raw";
    const nlohmann::json backing = {
        {"driver", format}, {"file", {{"driver", "nbd"}, {"server", {{"type", "unix"}, {"path", socket}}}}}};
    const auto overlay = folder / name;
    const std::vector<std::string> argv = {"qemu-img",
                                           "create",
                                           "-q",
                                           "-f",
                                           "qcow2",
                                           "-u",
                                           "-b",
                                           "json:" + backing.dump(),
                                           "-F",
                                           format,
                                           overlay.string(),
                                           std::to_string(std::max<std::uint64_t>(size, 512))};
    ProcessLimits limits;
    limits.file_view = detail::qemu_file_view({}, {folder});
    auto created = run_bounded(argv, limits);
    if (!created || created->exit_code != 0) {
        return make_error(Errc::io, "cannot create the appliance's overlay: " +
                                        (created ? created->err : created.error().message));
    }
    return overlay;
}

// What the appliance's qemu may open: the system's folders, the appliance (kernel, initrd, root: libguestfs'
// cache folder), and its private folder (overlay, scratch). Not the image: it reads that over NBD.
FileView appliance_file_view(guestfs_h* g, const std::filesystem::path& folder) {
    FileView view = system_file_view(/*with_kvm=*/true);
    const std::string cache = take_string(::guestfs_get_cachedir(g));
    view.read.push_back(std::filesystem::path(cache) / (".guestfs-" + std::to_string(::geteuid())));
    view.read_write.push_back(folder);
    return view;
}

// Points libguestfs at a confined qemu (confined_hypervisor.hpp): the direct backend, whose hypervisor
// coldscan names; libvirt's would start qemu outside that view. Error: engine, io.
Expected<void> confine_hypervisor(Appliance& appliance, const std::filesystem::path& folder) {
    guestfs_h* g = appliance.g.get();
    if (::guestfs_set_backend(g, "direct") == -1) {
        return make_error(Errc::engine, appliance.error_message("cannot select the direct backend"));
    }
    const std::string real = take_string(::guestfs_get_hv(g));
    const auto program = find_program(real);
    if (!program) {
        return make_error(Errc::not_found, "cannot find the hypervisor " + real + " (is qemu installed?)");
    }
    FileView view = appliance_file_view(g, folder);
    view.execute.push_back(*program);
    auto supported = build_file_view_or_warn(view); // checked here so that a kernel without says it once
    if (!supported) {
        return std::unexpected(supported.error());
    }
    auto link = detail::prepare_confined_hypervisor(folder, program->string(), view, folder);
    if (!link) {
        return std::unexpected(link.error());
    }
    if (::guestfs_set_hv(g, link->c_str()) == -1) {
        return make_error(Errc::engine, appliance.error_message("cannot set the hypervisor"));
    }
    return {};
}

// Serves each disk read-only with qemu-nbd (every layer's format explicit, as the direct path does) and adds
// the overlay over that export as an appliance drive (in order: /dev/sda, /dev/sdb, ...), writable so that
// libguestfs adds no overlay of its own (its read-only overlay reaches qemu with no format at the top, and
// qemu would probe the guest's bytes: a raw disk starting with a qcow2 header would name a host file as its
// backing file).
Expected<void> add_image_drives(Appliance& appliance, const std::vector<ImageInfo>& disks,
                                const std::string& snapshot) {
    auto folder = TempDir::create("coldscan-appliance");
    if (!folder) {
        return std::unexpected(folder.error());
    }
    appliance.folder.emplace(std::move(*folder));
    const std::filesystem::path& dir = appliance.folder->path();
    if (auto confined = confine_hypervisor(appliance, dir); !confined) {
        return std::unexpected(confined.error());
    }
    for (std::size_t i = 0; i < disks.size(); ++i) {
        auto server = detail::QemuNbdServer::start(disks[i], detail::QemuNbdOptions{snapshot, 1});
        if (!server) {
            return std::unexpected(server.error());
        }
        appliance.export_servers.push_back(std::move(*server));
        auto overlay = create_overlay(dir, "disk" + std::to_string(i) + ".qcow2",
                                      appliance.export_servers.back()->socket_path(), disks[i].virtual_size);
        if (!overlay) {
            return std::unexpected(overlay.error());
        }
        if (::guestfs_add_drive_opts(appliance.g.get(), overlay->c_str(), GUESTFS_ADD_DRIVE_OPTS_FORMAT,
                                     "qcow2", GUESTFS_ADD_DRIVE_OPTS_READONLY, 0, -1) == -1) {
            return make_error(Errc::engine, "cannot add " + overlay->string() + ": " +
                                                appliance.error_message("unknown error"));
        }
    }
    return {};
}

Expected<std::unique_ptr<Appliance>> launch_once(const std::vector<ImageInfo>& disks,
                                                 const ApplianceOptions& options, bool force_tcg) {
    auto impl = std::make_unique<Appliance>();
    impl->g.reset(::guestfs_create()); // honours LIBGUESTFS_* in the environment
    if (!impl->g) {
        return make_error(Errc::engine, errno_message("cannot create a libguestfs handle"));
    }
    guestfs_h* g = impl->g.get();
    impl->verbose = ::guestfs_get_verbose(g) > 0;
    ::guestfs_set_error_handler(g, &Appliance::on_error, impl.get());
    if (::guestfs_set_event_callback(g, &Appliance::on_event, GUESTFS_EVENT_APPLIANCE, 0, impl.get()) == -1) {
        return make_error(Errc::engine, impl->error_message("cannot watch the appliance output"));
    }
    if (force_tcg && ::guestfs_set_backend_setting(g, "force_tcg", "1") == -1) {
        return make_error(Errc::engine, impl->error_message("cannot select TCG"));
    }
    // The drive is writable (our overlay): no umount and sync at close, nothing written is kept anyway.
    if (::guestfs_set_autosync(g, 0) == -1) {
        return make_error(Errc::engine, impl->error_message("cannot turn autosync off"));
    }
    if (auto added = add_image_drives(*impl, disks, options.snapshot); !added) {
        return std::unexpected(added.error());
    }
    if (::guestfs_launch(g) == -1) {
        std::string message = impl->error_message("the appliance did not start");
        if (auto qemu = impl->qemu_complaint(); qemu && message.find(*qemu) == std::string::npos) {
            message = *qemu + "; " + message;
        }
        return make_error(Errc::engine, "the libguestfs appliance failed to start: " + message);
    }
    // What the appliance really runs on: the user's environment may force TCG, and libguestfs silently
    // falls back to TCG when /dev/kvm cannot be used.
    const std::string env_tcg = take_string(::guestfs_get_backend_setting(g, "force_tcg"));
    impl->accel = (force_tcg || (!env_tcg.empty() && env_tcg != "0" && env_tcg != "false") || !kvm_usable())
                      ? "tcg"
                      : "kvm";
    impl->qemu_pid = ::guestfs_get_pid(g); // -1 for backends that do not expose it (libvirt)
    impl->watchdog = std::make_unique<detail::StallWatchdog>(impl->qemu_pid, options.stall_timeout);
    impl->clear_messages();
    return impl;
}

// lstat()s absolute paths in the appliance, one call per folder and batch (about 1 ms each under TCG), and
// hands each name that exists to found. Error: io (usually the appliance is gone).
template <typename Found>
Expected<void> stat_names(Appliance& appliance, const std::vector<std::string>& paths, Found&& found) {
    std::map<std::string, std::vector<std::string>> by_folder;
    for (const auto& path : paths) {
        const auto slash = path.rfind('/');
        if (slash == std::string::npos || slash + 1 == path.size()) {
            continue;
        }
        by_folder[slash == 0 ? "/" : path.substr(0, slash)].push_back(path.substr(slash + 1));
    }
    guestfs_h* g = appliance.g.get();
    for (const auto& [folder, names] : by_folder) {
        const std::string prefix = folder == "/" ? "/" : folder + "/";
        for (std::size_t start = 0; start < names.size(); start += k_lstat_batch) {
            const std::size_t end = std::min(names.size(), start + k_lstat_batch);
            std::vector<char*> argv;
            for (std::size_t i = start; i < end; ++i) {
                argv.push_back(const_cast<char*>(names[i].c_str()));
            }
            argv.push_back(nullptr);
            const auto watched = appliance.begin_call();
            CHandle<struct guestfs_statns_list, guestfs_free_statns_list> stats(
                ::guestfs_lstatnslist(g, folder.c_str(), argv.data()));
            if (!stats || stats->len != end - start) {
                return make_error(Errc::io, "cannot examine names in " + folder + ": " +
                                                appliance.error_message("unexpected answer"));
            }
            for (std::size_t i = 0; i < stats->len; ++i) {
                if (stats->val[i].st_ino != -1) { // -1: the name vanished or could not be examined
                    found(prefix + names[start + i], stats->val[i]);
                }
            }
        }
    }
    return {};
}

std::int64_t nanoseconds(std::int64_t seconds, std::int64_t nanos) {
    return seconds * 1'000'000'000 + nanos;
}

// The regular files among names, with the identity the verdict cache keys on. Error: io.
Expected<std::vector<detail::ListedFile>> list_regular_files(Appliance& appliance,
                                                             const std::vector<std::string>& names) {
    std::vector<detail::ListedFile> files;
    auto examined = stat_names(appliance, names, [&](std::string path, const struct guestfs_statns& st) {
        if (!S_ISREG(static_cast<mode_t>(st.st_mode))) {
            return;
        }
        detail::ListedFile file;
        file.path = std::move(path);
        file.size = static_cast<std::uint64_t>(std::max<std::int64_t>(st.st_size, 0));
        file.device = static_cast<std::uint64_t>(st.st_dev);
        file.links = static_cast<std::uint64_t>(std::max<std::int64_t>(st.st_nlink, 1));
        file.stamp = FileStamp{static_cast<std::uint64_t>(st.st_ino), 0,
                               nanoseconds(st.st_mtime_sec, st.st_mtime_nsec),
                               nanoseconds(st.st_ctime_sec, st.st_ctime_nsec)};
        files.push_back(std::move(file));
    });
    if (!examined) {
        return std::unexpected(examined.error());
    }
    return files;
}

// Reads files of the mounted filesystem with guestfs_pread: one protocol message per call, several times
// the throughput of tar-out's 8 KiB chunks for big files, about 1 ms per call under TCG.
class GuestfsFileReads final : public detail::FileReads {
public:
    GuestfsFileReads(Appliance& appliance, std::shared_ptr<ReadThrottle> throttle)
        : m_appliance(appliance), m_throttle(std::move(throttle)) {}

    Expected<std::size_t> pread(const std::string& path, std::uint64_t offset,
                                std::span<std::byte> out) override {
        if (m_throttle) {
            m_throttle->acquire(out.size());
        }
        std::size_t got = 0;
        char* data = nullptr;
        {
            const auto watched = m_appliance.begin_call();
            data = ::guestfs_pread(m_appliance.g.get(), path.c_str(), static_cast<int>(out.size()),
                                   static_cast<std::int64_t>(offset), &got);
        }
        if (data == nullptr) {
            return make_error(Errc::io, "the appliance could not read it: " +
                                            m_appliance.error_message("unknown error"));
        }
        got = std::min(got, out.size());
        std::memcpy(out.data(), data, got);
        std::free(data);
        return got;
    }

private:
    Appliance& m_appliance;
    std::shared_ptr<ReadThrottle> m_throttle;
};

// Streams the mounted filesystem as tar into a pipe from a worker thread.
// Thread rule: while the worker runs it is the only user of the handle; finish() joins it, and only then
// may the handle be used again (regular_files()).
class GuestfsTarProducer final : public detail::TarProducer {
public:
    GuestfsTarProducer(Appliance& appliance, UniqueFd write_end) : m_appliance(appliance) {
        m_thread = std::thread([this, fd = std::move(write_end)]() mutable { run(std::move(fd)); });
    }
    ~GuestfsTarProducer() override { stop(); }
    GuestfsTarProducer(const GuestfsTarProducer&) = delete;
    GuestfsTarProducer& operator=(const GuestfsTarProducer&) = delete;

    detail::TarProducerResult finish() override {
        stop();
        detail::TarProducerResult result;
        std::string tar_said;
        for (const auto& line : m_appliance.take_tar_lines()) {
            if (tar_said.size() < 1024) {
                tar_said += (tar_said.empty() ? "" : "; ") + line;
            }
            if (auto path = detail::tar_complaint_path(line)) {
                result.file_errors.emplace_back(std::move(*path), line);
            }
        }
        if (m_failed) {
            std::string message = "streaming the filesystem from the appliance failed: " + m_error;
            if (!tar_said.empty()) {
                message += " (" + tar_said + ")";
            }
            result.error = Error{Errc::io, std::move(message)};
        }
        return result;
    }

    Expected<std::vector<detail::RegularFile>> regular_files(const std::vector<std::string>& paths) override {
        std::vector<detail::RegularFile> regular;
        auto examined =
            stat_names(m_appliance, paths, [&](std::string path, const struct guestfs_statns& st) {
                if (S_ISREG(static_cast<mode_t>(st.st_mode))) {
                    regular.push_back(
                        {std::move(path), static_cast<std::uint64_t>(std::max<std::int64_t>(st.st_size, 0))});
                }
            });
        if (!examined) {
            return std::unexpected(examined.error());
        }
        return regular;
    }

private:
    // The reader has closed its end, so a healthy tar-out ends at once (EPIPE). One that does not end within
    // the grace period is hung inside the appliance: kill qemu so the call returns, the handle fails, and the
    // rest of the target is reported as not scanned instead of the scan hanging forever.
    void stop() {
        if (!m_thread.joinable()) {
            return;
        }
        std::unique_lock lock(m_mutex);
        if (!m_done_cv.wait_for(lock, k_stop_grace, [this] { return m_done; })) {
            if (m_appliance.qemu_pid > 0) {
                spdlog::warn("the appliance did not stop streaming within {} s; stopping it",
                             k_stop_grace.count());
                ::kill(m_appliance.qemu_pid, SIGKILL);
            }
        }
        lock.unlock();
        m_thread.join();
    }

    void run(UniqueFd write_end) noexcept {
        try {
            m_appliance.begin_unwatched_call();
            const std::string target = "/dev/fd/" + std::to_string(write_end.get());
            if (::guestfs_tar_out_opts(m_appliance.g.get(), "/", target.c_str(),
                                       GUESTFS_TAR_OUT_OPTS_NUMERICOWNER, 1, -1) == -1) {
                m_error = m_appliance.error_message("tar-out failed");
                m_failed = true;
            }
        } catch (...) {
            m_error = "internal error in the streaming thread";
            m_failed = true;
        }
        // write_end closes here; the reader sees the end once libguestfs has closed its own descriptor too.
        write_end.reset();
        {
            std::lock_guard lock(m_mutex);
            m_done = true;
        }
        m_done_cv.notify_all();
    }

    static constexpr std::chrono::seconds k_stop_grace{60};

    Appliance& m_appliance;
    std::thread m_thread;
    bool m_failed = false; // written by the worker, read after join
    std::string m_error;
    std::mutex m_mutex;
    std::condition_variable m_done_cv;
    bool m_done = false; // the worker's guestfs call returned
};

// Every name under the mounted root ("/etc", "/etc/passwd", ...), from guestfs_find0 through a spill file.
std::vector<std::string> list_names(Appliance& impl, const SourceOptions& options) {
    std::vector<std::string> names;
    auto file = detail::create_spill_file(options.spill_dir);
    if (!file) {
        spdlog::warn("cannot list the filesystem before streaming it: {}", file.error().message);
        return names;
    }
    const std::string target = "/dev/fd/" + std::to_string(file->get());
    const auto watched = impl.begin_call();
    if (::guestfs_find0(impl.g.get(), "/", target.c_str()) == -1) {
        // Keep whatever was listed: the stream is checked against it.
        spdlog::warn("listing the filesystem in the appliance failed ({}); files the stream misses may "
                     "go unreported",
                     impl.error_message("unknown error"));
    }
    struct stat st {};
    if (::fstat(file->get(), &st) != 0 || st.st_size <= 0) {
        return names;
    }
    std::string data(static_cast<std::size_t>(st.st_size), '\0');
    int error = 0; // a failed read keeps the names before it; the stream is checked against those
    data.resize(read_fully(file->get(), 0, std::as_writable_bytes(std::span(data)), error));
    std::string_view rest = data;
    while (!rest.empty()) {
        const auto end = rest.find('\0');
        const std::string_view name = rest.substr(0, end);
        if (!name.empty()) {
            names.push_back(detail::normalise_tar_path(name));
        }
        rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end + 1);
    }
    return names;
}

} // namespace

struct GuestfsImage::Impl {
    std::unique_ptr<Appliance> appliance;
};

GuestfsImage::GuestfsImage(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
GuestfsImage::GuestfsImage(GuestfsImage&&) noexcept = default;
GuestfsImage& GuestfsImage::operator=(GuestfsImage&&) noexcept = default;
GuestfsImage::~GuestfsImage() = default;

Expected<GuestfsImage> GuestfsImage::launch(const ImageInfo& image, const ApplianceOptions& options) {
    return launch(std::vector<ImageInfo>{image}, options);
}

Expected<GuestfsImage> GuestfsImage::launch(const std::vector<ImageInfo>& disks,
                                            const ApplianceOptions& options) {
    if (disks.empty()) {
        return make_error(Errc::invalid_argument, "a VM without disks");
    }
    const ImageInfo& image = disks.front(); // names the VM in the log
    const Accel accel = options.accel;
    const bool tcg_first =
        accel == Accel::tcg || (accel == Accel::automatic && (g_kvm_failed.load() || !kvm_usable()));
    auto first = launch_once(disks, options, tcg_first);
    if (first) {
        spdlog::debug("appliance for {} runs under {}", image.path.string(), (*first)->accel);
        return GuestfsImage(std::make_unique<Impl>(Impl{std::move(*first)}));
    }
    if (accel == Accel::kvm) {
        return make_error(first.error().code,
                          first.error().message + " (--accel kvm; --accel auto falls back to TCG by itself)");
    }
    if (tcg_first || accel != Accel::automatic) {
        return std::unexpected(first.error());
    }
    // The most specific part: qemu's own complaint when there is one, else libguestfs' first error.
    std::string_view detail = first.error().message;
    if (const auto colon = detail.find(": "); colon != std::string_view::npos) {
        detail.remove_prefix(colon + 2);
    }
    const std::string reason = first_line(detail.substr(0, detail.find("; ")));
    if (!g_kvm_warned.exchange(true)) {
        spdlog::warn("KVM is present but the appliance failed to start with it ({}); retrying with software "
                     "emulation (TCG)",
                     reason);
    }
    auto second = launch_once(disks, options, true);
    if (!second) {
        return make_error(Errc::engine, second.error().message + " (with KVM: " + reason + ")");
    }
    g_kvm_failed.store(true);
    return GuestfsImage(std::make_unique<Impl>(Impl{std::move(*second)}));
}

const std::string& GuestfsImage::accel_used() const noexcept {
    return m_impl->appliance->accel;
}

Expected<std::vector<OsInfo>> GuestfsImage::inspect() {
    Appliance& a = *m_impl->appliance;
    guestfs_h* g = a.g.get();
    auto watched = a.begin_call();
    char** roots_list = ::guestfs_inspect_os(g);
    if (roots_list == nullptr) {
        return make_error(Errc::engine, "OS inspection failed: " + a.error_message("unknown error"));
    }
    std::vector<OsInfo> systems;
    for (auto& root : take_string_list(roots_list)) {
        watched.restart();
        OsInfo os;
        os.type = take_string(::guestfs_inspect_get_type(g, root.c_str()));
        os.distro = take_string(::guestfs_inspect_get_distro(g, root.c_str()));
        os.product_name = take_string(::guestfs_inspect_get_product_name(g, root.c_str()));
        const int major = ::guestfs_inspect_get_major_version(g, root.c_str());
        const int minor = ::guestfs_inspect_get_minor_version(g, root.c_str());
        if (major >= 0) {
            os.version = std::to_string(major) + "." + std::to_string(std::max(minor, 0));
        }
        os.hostname = take_string(::guestfs_inspect_get_hostname(g, root.c_str()));
        os.root = std::move(root);
        systems.push_back(std::move(os));
    }
    a.clear_messages();
    return systems;
}

// How libguestfs names a btrfs subvolume as a mountable: "btrfsvol:/dev/sda2/home".
constexpr std::string_view k_btrfs_subvolume_prefix = "btrfsvol:";

namespace {

// libguestfs leaves encrypted partitions and volumes out of its filesystem list: named here, never silently
// absent (they hold files nobody scanned).
void add_encrypted_volumes(Appliance& a, std::vector<FilesystemInfo>& result) {
    guestfs_h* g = a.g.get();
    std::vector<std::string> devices = take_string_list(::guestfs_list_partitions(g));
    for (auto& lv : take_string_list(::guestfs_lvs(g))) {
        devices.push_back(std::move(lv));
    }
    for (const auto& device : devices) {
        if (std::ranges::any_of(result, [&](const FilesystemInfo& fs) { return fs.device == device; })) {
            continue;
        }
        const std::string type = take_string(::guestfs_vfs_type(g, device.c_str()));
        if (auto encrypted = encrypted_reason(type)) {
            FilesystemInfo fs;
            fs.device = device;
            fs.type = type;
            fs.not_scannable_reason = *encrypted;
            result.push_back(std::move(fs));
        }
    }
}

} // namespace

Expected<std::vector<FilesystemInfo>> GuestfsImage::filesystems() {
    Appliance& a = *m_impl->appliance;
    guestfs_h* g = a.g.get();
    auto watched = a.begin_call();
    char** pairs = ::guestfs_list_filesystems(g);
    if (pairs == nullptr) {
        return make_error(Errc::engine, "cannot list filesystems: " + a.error_message("unknown error"));
    }
    const auto flat = take_string_list(pairs);
    std::vector<FilesystemInfo> result;
    for (std::size_t i = 0; i + 1 < flat.size(); i += 2) {
        watched.restart();
        FilesystemInfo fs;
        fs.device = flat[i];
        fs.type = flat[i + 1];
        fs.label = take_string(::guestfs_vfs_label(g, fs.device.c_str()));
        fs.uuid = take_string(::guestfs_vfs_uuid(g, fs.device.c_str()));
        if (fs.type == "swap") {
            fs.not_scannable_reason = "swap space";
        } else if (fs.type == "unknown") {
            fs.not_scannable_reason = "no filesystem recognised";
        } else if (auto encrypted = encrypted_reason(fs.type)) {
            fs.not_scannable_reason = *encrypted;
        } else if (fs.type == "LVM2_member") {
            fs.not_scannable_reason = "LVM physical volume (its logical volumes are listed separately)";
        }
        result.push_back(std::move(fs));
    }
    add_encrypted_volumes(a, result);
    // A btrfs volume is mounted at its top level (subvolid=5), where every subvolume and snapshot appears as
    // a folder; listing the subvolumes again would scan and count their files twice.
    for (auto& fs : result) {
        if (!fs.device.starts_with(k_btrfs_subvolume_prefix)) {
            continue;
        }
        for (const auto& top : result) {
            // Same volume: the same filesystem UUID. The device inside a btrfsvol: name is not reliable (the
            // appliance may name the device the volume was created on), so it is only the fallback.
            const bool same_volume =
                fs.uuid.empty()
                    ? fs.device.starts_with(std::string(k_btrfs_subvolume_prefix) + top.device + "/")
                    : fs.uuid == top.uuid;
            if (top.type == "btrfs" && !top.device.starts_with(k_btrfs_subvolume_prefix) && same_volume) {
                fs.not_scannable_reason = "btrfs subvolume: scanned within the top level of " + top.device;
            }
        }
    }
    a.clear_messages(); // label/uuid errors on swap and the like are expected
    return result;
}

Expected<std::unique_ptr<FileSource>>
GuestfsImage::open_filesystem(const FilesystemInfo& fs, const SourceOptions& options, WantBytes want) {
    Appliance& a = *m_impl->appliance;
    guestfs_h* g = a.g.get();
    a.watchdog->set_limit(options.stall_timeout);
    std::optional<std::uint64_t> expected_bytes;
    {
        auto watched = a.begin_call();
        if (::guestfs_umount_all(g) == -1) {
            return make_error(Errc::io,
                              "cannot unmount in the appliance: " + a.error_message("unknown error"));
        }
        const bool btrfs_top_level = fs.type == "btrfs" && !fs.device.starts_with(k_btrfs_subvolume_prefix);
        const char* mount_options = btrfs_top_level ? "ro,subvolid=5" : "ro";
        watched.restart();
        if (::guestfs_mount_options(g, mount_options, fs.device.c_str(), "/") == -1) {
            const std::string message = a.error_message("unknown error");
            // "wrong fs type, bad option, bad superblock" is also what a damaged filesystem gives: io.
            const bool unknown_type = message.find("unknown filesystem type") != std::string::npos;
            return make_error(unknown_type ? Errc::unsupported : Errc::io,
                              "cannot mount " + fs.device + " (" + fs.type +
                                  ") read-only in the appliance: " + message);
        }

        watched.restart();
        if (CHandle<struct guestfs_statvfs, guestfs_free_statvfs> vfs(::guestfs_statvfs(g, "/")); vfs) {
            if (vfs->blocks >= vfs->bfree && vfs->frsize > 0) {
                expected_bytes = static_cast<std::uint64_t>(vfs->blocks - vfs->bfree) *
                                 static_cast<std::uint64_t>(vfs->frsize);
            }
        }
    }
    std::vector<std::string> names = list_names(a, options);
    if (want && !names.empty()) {
        auto files = list_regular_files(a, names);
        if (files) {
            return std::make_unique<detail::ListedSource>(
                std::move(*files), std::move(want), std::make_unique<GuestfsFileReads>(a, options.throttle),
                options);
        }
        spdlog::warn("{}: cannot list file identities ({}); streaming every file instead", fs.device,
                     files.error().message);
    }
    // An upper bound: the listing holds folders and links too.
    const std::optional<std::uint64_t> expected_files =
        names.empty() ? std::nullopt : std::optional<std::uint64_t>(names.size());

    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        return make_error(Errc::io, errno_message("cannot create a pipe"));
    }
    // Declared first, destroyed last: on any early exit the read end closes before the worker is joined.
    std::unique_ptr<GuestfsTarProducer> producer;
    UniqueFd read_end(fds[0]);
    UniqueFd write_end(fds[1]);
    producer = std::make_unique<GuestfsTarProducer>(a, std::move(write_end));
    return std::make_unique<detail::TarSource>(std::move(read_end), std::move(producer), std::move(names),
                                               options, expected_bytes, expected_files);
}

} // namespace coldscan::disk
