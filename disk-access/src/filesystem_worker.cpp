// The filesystem worker's side (see sandboxed_filesystem.hpp): connect to the disk, confine, open the
// filesystem with The Sleuth Kit, then answer the parent's requests until its socket closes.
#include "coldscan/disk/filesystem_worker.hpp"

#include "coldscan/common/confinement.hpp"
#include "coldscan/common/fd_channel.hpp"
#include "coldscan/common/log.hpp"
#include "coldscan/common/self_process.hpp"
#include "coldscan/disk/nbd_device.hpp"
#include "disk_layout.hpp"
#include "filesystem_wire.hpp"
#include "volume_device.hpp"

#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <sstream>
#include <unistd.h>
#include <utility>

namespace coldscan::disk {
namespace {

using detail::FileBatch;
using detail::FsFile;

constexpr const char* k_role = "__coldscan-fs-worker";
constexpr int k_socket = k_self_process_socket_fd;
constexpr std::size_t k_batch_files = 2000;

// A raw image file as a disk (tests).
class RawFileDevice final : public BlockDevice {
public:
    explicit RawFileDevice(UniqueFd fd, std::uint64_t size) : m_fd(std::move(fd)), m_size(size) {}
    [[nodiscard]] std::uint64_t size() const noexcept override { return m_size; }
    [[nodiscard]] Expected<void> read(std::uint64_t offset, std::span<std::byte> out) override {
        while (!out.empty()) {
            const ssize_t n = ::pread(m_fd.get(), out.data(), out.size(), static_cast<off_t>(offset));
            if (n <= 0) {
                return make_error(Errc::io, n == 0 ? "short read" : errno_message("pread"));
            }
            out = out.subspan(static_cast<std::size_t>(n));
            offset += static_cast<std::uint64_t>(n);
        }
        return {};
    }

private:
    UniqueFd m_fd;
    std::uint64_t m_size;
};

// Counts what the filesystem reader reads, so the parent can charge it to the job's read budget. While a walk
// is paced, a read that brings the uncharged bytes to report_bytes, or comes k_report_interval after the
// last report, is reported first and waits for the parent's "go" (it has charged them by then); a parent that
// is gone fails the read, and so the walk.
class CountingDevice final : public BlockDevice {
public:
    static constexpr std::chrono::seconds k_report_interval{1};

    CountingDevice(std::shared_ptr<BlockDevice> device, std::uint64_t report_bytes)
        : m_device(std::move(device)), m_report_bytes(std::max<std::uint64_t>(report_bytes, 1)) {}
    [[nodiscard]] std::uint64_t size() const noexcept override { return m_device->size(); }
    [[nodiscard]] Expected<void> read(std::uint64_t offset, std::span<std::byte> out) override {
        m_read += out.size();
        if (m_paced && (m_read >= m_report_bytes || std::chrono::steady_clock::now() >= m_next_report)) {
            if (auto charged = report(); !charged) {
                return charged;
            }
        }
        return m_device->read(offset, out);
    }
    // The bytes read (and not yet reported) since the last call.
    std::uint64_t take() { return std::exchange(m_read, 0); }
    void pace(bool on) {
        m_paced = on;
        m_next_report = std::chrono::steady_clock::now() + k_report_interval;
    }

private:
    Expected<void> report() {
        if (auto sent = send_message(k_socket, detail::progress_to_wire(take())); !sent) {
            return std::unexpected(sent.error());
        }
        auto go = receive_message(k_socket, std::nullopt);
        if (!go || go->body != detail::k_walk_go) {
            return make_error(Errc::io, "the parent stopped the walk");
        }
        m_next_report = std::chrono::steady_clock::now() + k_report_interval;
        return {};
    }

    std::shared_ptr<BlockDevice> m_device;
    std::uint64_t m_report_bytes;
    std::uint64_t m_read = 0; // the worker is single-threaded
    bool m_paced = false;
    std::chrono::steady_clock::time_point m_next_report;
};

Expected<std::shared_ptr<BlockDevice>> connect(const detail::WorkerDisk& disk) {
    const NbdOptions one{1, "", nullptr};
    if (!disk.nbd_socket.empty()) {
        auto device = NbdDevice::connect_unix(disk.nbd_socket, one);
        if (!device) {
            return std::unexpected(device.error());
        }
        return std::shared_ptr<BlockDevice>(std::move(*device));
    }
    if (!disk.nbd_uri.empty()) {
        auto device = NbdDevice::connect_uri(disk.nbd_uri, one);
        if (!device) {
            return std::unexpected(device.error());
        }
        return std::shared_ptr<BlockDevice>(std::move(*device));
    }
    UniqueFd fd(::open(disk.raw_file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        return make_error(Errc::io, errno_message("open " + disk.raw_file));
    }
    const off_t size = ::lseek(fd.get(), 0, SEEK_END);
    return std::shared_ptr<BlockDevice>(std::make_shared<RawFileDevice>(std::move(fd), size));
}

// Test hooks: a filesystem whose label is $COLDSCAN_TEST_FS_WORKER_CRASH_LABEL crashes its worker when
// listed, and one labelled $COLDSCAN_TEST_FS_WORKER_HANG_LABEL hangs it, as a filesystem built against the
// reader would; the label ":partition-table" does the same to the worker reading a partition table. Unset
// in production.
bool label_asked(const char* variable, const std::string& label) {
    const char* wanted = std::getenv(variable);
    return wanted != nullptr && *wanted != '\0' && label == wanted;
}

void misbehave_if_asked(const std::string& label) {
    if (label_asked("COLDSCAN_TEST_FS_WORKER_CRASH_LABEL", label)) {
        std::signal(SIGSEGV, SIG_DFL);
        std::raise(SIGSEGV);
    }
    if (label_asked("COLDSCAN_TEST_FS_WORKER_HANG_LABEL", label)) {
        for (;;) {
            ::pause();
        }
    }
}

Expected<std::vector<std::shared_ptr<BlockDevice>>>
connect_all(const std::vector<detail::WorkerDisk>& disks) {
    std::vector<std::shared_ptr<BlockDevice>> devices;
    for (const auto& disk : disks) {
        auto device = connect(disk);
        if (!device) {
            return std::unexpected(device.error());
        }
        devices.push_back(std::move(*device));
    }
    return devices;
}

// Each disk's table (or why not), then the volumes on all of them.
void send_layout(const std::vector<std::shared_ptr<BlockDevice>>& disks) {
    std::vector<BlockDevice*> raw;
    for (const auto& disk : disks) {
        raw.push_back(disk.get());
    }
    const auto layout = detail::read_disk_layout(raw);
    for (const auto& table : layout.tables) {
        if (!send_message(k_socket,
                          table ? detail::table_to_wire(*table) : detail::error_to_wire(table.error()))) {
            return;
        }
    }
    (void)send_message(k_socket, detail::volumes_to_wire(layout.volumes));
}

// The bytes the filesystem lies in: its disk, or the logical volume over the disks.
Expected<std::shared_ptr<BlockDevice>> filesystem_bytes(const detail::WorkerStart& start,
                                                        std::vector<std::shared_ptr<BlockDevice>>& disks) {
    if (!start.volume) {
        return disks.at(start.disk);
    }
    std::vector<std::uint64_t> sizes;
    for (const auto& disk : disks) {
        sizes.push_back(disk->size());
    }
    if (auto fits = detail::volume_fits(*start.volume, sizes); !fits) {
        return std::unexpected(fits.error());
    }
    return std::make_shared<detail::VolumeDevice>(disks, *start.volume);
}

void send_list(detail::FilesystemReader& fs, CountingDevice& counter) {
    std::vector<FsFile> partial;
    counter.pace(true); // the first report also charges what opening the filesystem read
    auto files = fs.list(&partial);
    counter.pace(false);
    FileBatch batch;
    batch.bytes_read = counter.take(); // the walk's reads since its last progress report
    std::vector<FsFile>& all = files ? *files : partial;
    for (std::size_t i = 0; i < all.size(); ++i) {
        batch.files.push_back(std::move(all[i]));
        if (batch.files.size() == k_batch_files && i + 1 < all.size()) {
            (void)send_message(k_socket, detail::batch_to_wire(batch));
            batch.files.clear();
            batch.bytes_read = 0;
        }
    }
    batch.end = true;
    if (!files) {
        batch.error = files.error();
    }
    (void)send_message(k_socket, detail::batch_to_wire(batch));
}

// "read INODE TYPE ID SIZE OFFSET LENGTH": data TSK decodes (NTFS compressed or encrypted).
void send_read(detail::FilesystemReader& fs, const std::string& request) {
    std::istringstream in(request.substr(5));
    FsFile file;
    std::uint64_t offset = 0;
    std::size_t length = 0;
    in >> file.inode >> file.attr_type >> file.attr_id >> file.size >> offset >> length;
    if (!in || length > (8U << 20)) {
        (void)send_message(k_socket,
                           detail::error_to_wire(Error{Errc::invalid_argument, "bad read request"}));
        return;
    }
    file.through_tsk = true;
    std::string answer = "ok";
    answer.resize(2 + length);
    auto got = fs.read(file, offset, std::as_writable_bytes(std::span(answer).subspan(2)));
    if (!got) {
        (void)send_message(k_socket, detail::error_to_wire(got.error()));
        return;
    }
    answer.resize(2 + *got);
    (void)send_message(k_socket, answer);
}

int serve() {
    std::signal(SIGPIPE, SIG_IGN);
    std::signal(SIGINT, SIG_IGN); // Ctrl-C is the parent's to handle
    setup_logging(LogLevel::normal);
    auto start_message = receive_message(k_socket, std::nullopt);
    if (!start_message) {
        return 1;
    }
    auto start = detail::start_from_wire(start_message->body);
    if (!start) {
        return 1;
    }
    auto fail = [](const Error& error) {
        (void)send_message(k_socket, detail::error_to_wire(error));
        return 0;
    };
    auto disks = connect_all(start->disks);
    if (!disks) {
        return fail(disks.error());
    }
    // Connected: from here on nothing but this socket and the exports'.
    Confinement confinement;
    confinement.address_space_bytes = start->limits.address_space_bytes;
    confinement.cpu_time = start->limits.cpu_time;
    confinement.signal_only_self = true;
    if (auto confined = confine_process(confinement); !confined) {
        return fail(Error{Errc::io, "cannot confine the filesystem worker: " + confined.error().message});
    }
    if (start->partition_table) {
        misbehave_if_asked(":partition-table");
        send_layout(*disks);
        return 0;
    }
    auto device = filesystem_bytes(*start, *disks);
    if (!device) {
        return fail(device.error());
    }
    auto counter = std::make_shared<CountingDevice>(std::move(*device), start->limits.report_bytes);
    auto fs = detail::open_filesystem_reader(counter, start->offset, start->size);
    if (!fs) {
        return fail(fs.error());
    }
    const nlohmann::json opened = {
        {"type", (*fs)->type()}, {"uuid", (*fs)->uuid()}, {"label", (*fs)->label()}};
    if (!send_message(k_socket, opened.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace))) {
        return 0;
    }
    for (;;) {
        auto message = receive_message(k_socket, std::nullopt);
        if (!message) {
            return 0; // the parent is done (or gone)
        }
        const std::string& request = message->body;
        if (request == "list") {
            misbehave_if_asked((*fs)->label());
            send_list(**fs, *counter);
        } else if (request.starts_with("small ")) {
            const auto newline = request.find('\n');
            std::size_t limit = 0;
            std::from_chars(request.data() + 6, request.data() + request.size(), limit);
            const auto content = newline == std::string::npos
                                     ? std::nullopt
                                     : (*fs)->read_small_file(request.substr(newline + 1), limit);
            (void)send_message(k_socket, content ? "1" + *content : std::string("0"));
        } else if (request.starts_with("folder\n")) {
            (void)send_message(k_socket, (*fs)->is_folder(request.substr(7)) ? "1" : "0");
        } else if (request.starts_with("read ")) {
            send_read(**fs, request);
            counter->take(); // the parent charged these before it asked
        } else {
            return 1;
        }
    }
}

} // namespace

std::optional<int> run_filesystem_worker_if_asked(int argc, char** argv) {
    if (!asked_for_role(argc, argv, k_role)) {
        return std::nullopt;
    }
    // The worker's memory goes with its process: no exit handlers (a leak checker's report about libtsk's
    // caches would only be noise on stderr).
    const int status = serve();
    spdlog::shutdown();
    std::fflush(nullptr);
    ::_exit(status);
}

} // namespace coldscan::disk
