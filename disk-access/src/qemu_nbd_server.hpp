// qemu-nbd serving one image read-only over a Unix socket in a private folder: user space only (no kernel
// nbd module), explicit formats for every layer of the validated chain, stopped and cleaned up with us.
#pragma once

#include "coldscan/common/error.hpp"
#include "coldscan/common/temp_dir.hpp"
#include "coldscan/disk/image_probe.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <sys/types.h>

namespace coldscan::disk::detail {

struct QemuNbdOptions {
    std::string snapshot;     // a qcow2 internal snapshot to export instead of the current state
    unsigned connections = 4; // clients that may connect at once (qemu-nbd --shared is one more)
};

// Thread rule: one owner. Start it from a thread that outlives it: the server is killed when the thread
// that started it ends (PR_SET_PDEATHSIG), so it never outlives a crashed coldscan.
class QemuNbdServer {
public:
    // Errors: not_found (qemu-nbd missing), io, engine (qemu-nbd refused the image: its message), timeout,
    // invalid_argument (the image has no internal snapshot of that name).
    static Expected<std::unique_ptr<QemuNbdServer>> start(const ImageInfo& image,
                                                          const QemuNbdOptions& options);
    ~QemuNbdServer(); // SIGTERM, then SIGKILL after a grace period; the folder and socket are removed
    QemuNbdServer(const QemuNbdServer&) = delete;
    QemuNbdServer& operator=(const QemuNbdServer&) = delete;

    [[nodiscard]] const std::string& socket_path() const noexcept { return m_socket; }
    [[nodiscard]] pid_t pid() const noexcept { return m_pid; }
    // Why qemu-nbd stopped, if it stops within wait (it can still refuse after listening: a missing snapshot
    // is found only then); std::nullopt while it runs.
    [[nodiscard]] std::optional<Error> exit_reason(std::chrono::milliseconds wait);

private:
    QemuNbdServer(TempDir folder, std::string socket, pid_t pid, std::string log, std::string snapshot)
        : m_folder(std::move(folder)), m_socket(std::move(socket)), m_pid(pid), m_log(std::move(log)),
          m_snapshot(std::move(snapshot)) {}

    TempDir m_folder;
    std::string m_socket;
    pid_t m_pid;
    std::string m_log;
    std::string m_snapshot;
    std::optional<Error> m_exit; // once it has stopped
};

// The --image-opts string naming every layer of the chain with its format, so qemu opens exactly the files
// the safety gate checked (it never probes a format or follows a header on its own).
[[nodiscard]] std::string image_opts(const ImageInfo& image);

} // namespace coldscan::disk::detail
