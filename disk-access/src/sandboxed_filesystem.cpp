#include "sandboxed_filesystem.hpp"

#include "coldscan/common/fd_channel.hpp"
#include "coldscan/common/self_process.hpp"
#include "filesystem_wire.hpp"

#include <csignal>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <string_view>

namespace coldscan::disk::detail {
namespace {

constexpr std::chrono::seconds k_open_within{120};
constexpr std::chrono::seconds k_small_within{60};
constexpr std::size_t k_worker_read_bytes = 8U << 20; // per request; reads are split
constexpr const char* k_worker_role = "__coldscan-fs-worker";

// Ends a worker whose conversation broke (killed when its socket is still open) and says why, naming it.
Error worker_lost(pid_t pid, UniqueFd& socket, const Error& why, std::string_view worker,
                  std::string_view on) {
    if (pid > 0 && socket) {
        ::kill(pid, SIGKILL);
    }
    socket.reset();
    if (why.code == Errc::timeout) {
        return Error{Errc::io, "the " + std::string(worker) + " stopped answering and was stopped"};
    }
    return Error{Errc::io, "the " + std::string(worker) + " failed (" + why.message +
                               "): it crashed or ran past its memory or CPU limit" + std::string(on)};
}

} // namespace

Expected<DiskLayout> read_disk_layout_in_worker(const std::vector<WorkerDisk>& disks,
                                                const std::vector<std::uint64_t>& disk_sizes,
                                                const WorkerLimits& limits) {
    auto worker = start_self_process(k_worker_role);
    if (!worker) {
        return std::unexpected(worker.error());
    }
    // One answer per disk (its table or why not), then the volumes.
    std::vector<std::string> answers;
    auto talk = [&]() -> Expected<void> {
        WorkerStart start{disks, 0, 0, 0, limits, true, std::nullopt};
        if (auto sent = send_message(worker->socket.get(), start_to_wire(start)); !sent) {
            return sent;
        }
        for (std::size_t i = 0; i <= disks.size(); ++i) {
            auto got = receive_message(worker->socket.get(), limits.answer_within);
            if (!got) {
                return std::unexpected(got.error());
            }
            answers.push_back(std::move(got->body));
        }
        return {};
    }();
    if (!talk) {
        const Error lost =
            worker_lost(worker->pid, worker->socket, talk.error(), "partition table worker", "");
        reap_or_kill(worker->pid, std::chrono::seconds(2));
        return std::unexpected(lost);
    }
    worker->socket.reset();
    reap_or_kill(worker->pid, std::chrono::seconds(2));
    DiskLayout layout;
    for (std::size_t i = 0; i < disks.size(); ++i) {
        if (auto error = error_from_wire(answers[i])) {
            layout.tables.emplace_back(std::unexpected(*error));
            continue;
        }
        auto table = table_from_wire(answers[i], disk_sizes.at(i));
        if (!table) {
            return std::unexpected(table.error()); // a worker that describes the impossible is not believed
        }
        layout.tables.emplace_back(std::move(*table));
    }
    auto volumes = volumes_from_wire(answers.back(), disk_sizes);
    if (!volumes) {
        return std::unexpected(volumes.error());
    }
    layout.volumes = std::move(*volumes);
    return layout;
}

Expected<std::unique_ptr<SandboxedFilesystem>>
SandboxedFilesystem::open(const WorkerDisk& disk, std::shared_ptr<BlockDevice> device, std::uint64_t offset,
                          std::uint64_t size, std::shared_ptr<ReadThrottle> throttle,
                          const WorkerLimits& limits) {
    return open({disk}, 0, std::move(device), offset, size, std::move(throttle), limits, nullptr);
}

Expected<std::unique_ptr<SandboxedFilesystem>>
SandboxedFilesystem::open(const std::vector<WorkerDisk>& disks, unsigned disk,
                          std::shared_ptr<BlockDevice> device, std::uint64_t offset, std::uint64_t size,
                          std::shared_ptr<ReadThrottle> throttle, const WorkerLimits& limits,
                          const LogicalVolume* volume) {
    auto worker = start_self_process(k_worker_role);
    if (!worker) {
        return std::unexpected(worker.error());
    }
    std::unique_ptr<SandboxedFilesystem> fs(new SandboxedFilesystem());
    fs->m_pid = worker->pid;
    fs->m_socket = std::move(worker->socket);
    fs->m_device = std::move(device);
    fs->m_offset = offset;
    fs->m_size = size;
    fs->m_limits = limits;
    fs->m_throttle = std::move(throttle);
    WorkerStart start{disks, disk, offset, size, limits, false, std::nullopt};
    if (volume != nullptr) {
        start.volume = *volume;
    }
    auto opened = fs->ask(start_to_wire(start), k_open_within);
    if (!opened) {
        return std::unexpected(opened.error());
    }
    if (auto error = error_from_wire(*opened)) {
        return std::unexpected(*error);
    }
    const auto answer = nlohmann::json::parse(*opened, nullptr, /*allow_exceptions=*/false);
    if (!answer.is_object() || !answer.contains("type") || !answer["type"].is_string() ||
        !answer.contains("uuid") || !answer["uuid"].is_string() || !answer.contains("label") ||
        !answer["label"].is_string()) {
        return std::unexpected(fs->lost(Error{Errc::corrupt, "an unreadable answer"}));
    }
    fs->m_type = answer["type"].get<std::string>();
    fs->m_uuid = answer["uuid"].get<std::string>();
    fs->m_label = answer["label"].get<std::string>();
    return fs;
}

SandboxedFilesystem::~SandboxedFilesystem() {
    m_socket.reset(); // the worker exits when its socket closes
    reap_or_kill(m_pid, std::chrono::seconds(2));
}

Error SandboxedFilesystem::lost(const Error& why) {
    return worker_lost(m_pid, m_socket, why, "filesystem worker", " on this filesystem");
}

Expected<std::string> SandboxedFilesystem::next_answer(std::chrono::milliseconds within) {
    if (!m_socket) {
        return make_error(Errc::io, "the filesystem worker is gone");
    }
    auto answer = receive_message(m_socket.get(), within);
    if (!answer) {
        return std::unexpected(lost(answer.error()));
    }
    return std::move(answer->body);
}

Expected<std::string> SandboxedFilesystem::ask(const std::string& request, std::chrono::milliseconds within) {
    if (!m_socket) {
        return make_error(Errc::io, "the filesystem worker is gone");
    }
    if (auto sent = send_message(m_socket.get(), request); !sent) {
        return std::unexpected(lost(sent.error()));
    }
    return next_answer(within);
}

Expected<std::vector<FsFile>> SandboxedFilesystem::list(std::vector<FsFile>* partial) {
    std::lock_guard lock(m_mutex);
    std::vector<FsFile> files;
    auto keep = [&](std::vector<FsFile>& batch) {
        for (auto& file : batch) {
            if (!well_formed(file, m_size)) {
                file.problem =
                    Error{Errc::corrupt, "the filesystem reader described this file inconsistently"};
            }
            files.push_back(std::move(file));
        }
    };
    auto answer = ask("list", m_limits.answer_within);
    while (answer) {
        // Progress during the walk: charge it, then let the worker go on. answer_within runs from here
        // again, so it bounds a stall, not the walk of a big filesystem.
        if (const auto progress = progress_from_wire(*answer)) {
            if (m_throttle && *progress > 0) {
                m_throttle->acquire(*progress);
            }
            answer = ask(std::string(k_walk_go), m_limits.answer_within);
            continue;
        }
        auto batch = batch_from_wire(*answer);
        if (!batch) {
            answer = std::unexpected(lost(batch.error()));
            break;
        }
        keep(batch->files);
        if (m_throttle && batch->bytes_read > 0) {
            m_throttle->acquire(batch->bytes_read); // the walk's reads since its last progress report
        }
        if (batch->end) {
            if (batch->error) {
                answer = std::unexpected(*batch->error);
                break;
            }
            return files;
        }
        answer = next_answer(m_limits.answer_within);
    }
    if (partial != nullptr) {
        *partial = std::move(files);
    }
    return std::unexpected(answer.error());
}

std::optional<std::string> SandboxedFilesystem::read_small_file(const std::string& path, std::size_t limit) {
    std::lock_guard lock(m_mutex);
    auto answer = ask("small " + std::to_string(limit) + "\n" + path, k_small_within);
    if (!answer || answer->empty() || (*answer)[0] != '1' || answer->size() - 1 > limit) {
        return std::nullopt;
    }
    return answer->substr(1);
}

bool SandboxedFilesystem::is_folder(const std::string& path) {
    std::lock_guard lock(m_mutex);
    auto answer = ask("folder\n" + path, k_small_within);
    return answer && *answer == "1";
}

Expected<std::size_t> SandboxedFilesystem::read(const FsFile& file, std::uint64_t offset,
                                                std::span<std::byte> out) {
    if (file.problem) {
        return std::unexpected(*file.problem);
    }
    if (!file.through_tsk) {
        return read_along_runs(*m_device, m_offset, file, offset, out); // no parsing: straight from the disk
    }
    if (offset >= file.size || out.empty()) {
        return std::size_t{0};
    }
    const auto length = static_cast<std::size_t>(
        std::min<std::uint64_t>({out.size(), file.size - offset, k_worker_read_bytes}));
    if (m_throttle) {
        m_throttle->acquire(length);
    }
    std::lock_guard lock(m_mutex);
    auto answer = ask("read " + std::to_string(file.inode) + " " + std::to_string(file.attr_type) + " " +
                          std::to_string(file.attr_id) + " " + std::to_string(file.size) + " " +
                          std::to_string(offset) + " " + std::to_string(length),
                      m_limits.answer_within);
    if (!answer) {
        return std::unexpected(answer.error());
    }
    if (!answer->starts_with("ok")) {
        return std::unexpected(error_from_wire(*answer).value_or(Error{Errc::io, "a malformed read answer"}));
    }
    const std::size_t got = answer->size() - 2;
    if (got > length) {
        return std::unexpected(lost(Error{Errc::corrupt, "more bytes than asked for"}));
    }
    std::memcpy(out.data(), answer->data() + 2, got);
    return got;
}

} // namespace coldscan::disk::detail
