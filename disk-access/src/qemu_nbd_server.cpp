#include "qemu_nbd_server.hpp"

#include "coldscan/common/subprocess.hpp"
#include "coldscan/common/text.hpp"
#include "qemu_file_view.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace coldscan::disk::detail {

namespace {

constexpr auto k_start_timeout = std::chrono::seconds(30);
constexpr unsigned k_max_filesystem_workers = 16;
constexpr auto k_stop_grace = std::chrono::seconds(5);
constexpr std::size_t k_max_socket_path = 107; // sun_path holds 108 bytes with the terminating NUL
// qemu 7.2 warns about `backing=` (the only way to say "no backing" in --image-opts; JSON's null would need
// UTF-8 paths): not a reason to show anyone.
constexpr std::string_view k_no_backing_warning = "Use of \"backing\": \"\" is deprecated";

// In qemu option strings a comma is written twice.
std::string option_value(const std::string& value) {
    std::string out;
    for (const char c : value) {
        out += c;
        if (c == ',') {
            out += ',';
        }
    }
    return out;
}

// The last lines of qemu-nbd's log, joined: its own explanation of a failure.
std::string log_tail(const std::filesystem::path& log) {
    std::string text;
    const int fd = ::open(log.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return text;
    }
    char buffer[4096];
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    ::close(fd);
    if (n > 0) {
        text.assign(buffer, static_cast<std::size_t>(n));
    }
    std::string joined;
    std::string_view rest = text;
    while (!rest.empty()) {
        const auto end = rest.find('\n');
        const std::string_view line = rest.substr(0, end);
        if (!line.empty() && line.find(k_no_backing_warning) == std::string_view::npos) {
            joined += (joined.empty() ? "" : "; ") + printable(line);
        }
        rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end + 1);
    }
    return joined;
}

// Runs in the forked child: only async-signal-safe calls until exec.
[[noreturn]] void exec_server(const std::vector<char*>& argv, int log_fd, pid_t parent,
                              const FileViewRules* view) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) { // the parent died before the line above took effect
        ::_exit(1);
    }
    ::setpgid(0, 0); // the terminal's Ctrl-C is for coldscan, which still needs the export to finish
    const int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd < 0 || ::dup2(null_fd, 0) < 0 || ::dup2(log_fd, 1) < 0 || ::dup2(log_fd, 2) < 0) {
        ::_exit(126);
    }
    if (view != nullptr) {
        view->enforce_or_exit("qemu-nbd"); // before close_range: the ruleset is a descriptor
    }
    ::close_range(3, ~0U, 0);
    // A blocked signal stays blocked across exec: the child must hear SIGTERM whatever thread forked it.
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
}

// Whether something listens on the Unix socket (a connection is made and closed at once).
bool accepts_connections(const std::string& socket) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return false;
    }
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, socket.c_str(), std::min(socket.size(), sizeof(address.sun_path) - 1));
    const bool connected = ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0;
    ::close(fd);
    return connected;
}

Error refusal(const std::filesystem::path& log, const QemuNbdOptions& options) {
    std::string said = log_tail(log);
    if (!options.snapshot.empty()) {
        said += " (internal snapshot \"" + printable(options.snapshot) + "\")";
    }
    return Error{Errc::engine,
                 "qemu-nbd could not serve the image: " + (said.empty() ? std::string("no message") : said)};
}

// Whether the child pid ended (and was reaped) within wait.
bool reaped_within(pid_t pid, std::chrono::milliseconds wait) {
    const auto deadline = std::chrono::steady_clock::now() + wait;
    for (;;) {
        int status = 0;
        const pid_t done = ::waitpid(pid, &status, WNOHANG);
        if (done == pid || (done < 0 && errno != EINTR)) {
            return true;
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

void stop(pid_t pid) {
    ::kill(pid, SIGTERM);
    if (!reaped_within(pid, k_stop_grace)) {
        ::kill(pid, SIGKILL);
        int status = 0;
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
    }
}

// A clear refusal for a snapshot the image does not have (qemu-nbd only says "Can't find snapshot").
Expected<void> check_snapshot(const ImageInfo& image, const std::string& name) {
    ProcessLimits limits;
    limits.wall_time = std::chrono::seconds(30);
    limits.file_view = qemu_file_view(image_read_roots(image), {});
    auto listed =
        run_bounded({"qemu-img", "snapshot", "-l", "-U", "--image-opts", image_opts(image)}, limits);
    if (!listed || listed->exit_code != 0) {
        return {}; // qemu-nbd will say what is wrong
    }
    std::vector<std::string> names;
    std::string_view rest = listed->out;
    while (!rest.empty()) {
        const auto end = rest.find('\n');
        const std::string_view line = rest.substr(0, end);
        rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end + 1);
        // "ID  TAG  VM SIZE  DATE ...": the first two columns name a snapshot.
        const auto id_end = line.find(' ');
        if (id_end == std::string_view::npos || line.starts_with("ID") || line.starts_with("Snapshot list")) {
            continue;
        }
        const auto tag_start = line.find_first_not_of(' ', id_end);
        if (tag_start == std::string_view::npos) {
            continue;
        }
        const auto tag_end = line.find(' ', tag_start);
        const std::string id(line.substr(0, id_end));
        const std::string tag(line.substr(tag_start, tag_end - tag_start));
        if (id == name || tag == name) {
            return {};
        }
        names.push_back(tag);
    }
    std::string has;
    for (const auto& n : names) {
        has += (has.empty() ? "" : ", ") + printable(n);
    }
    return make_error(Errc::invalid_argument, "the image has no internal snapshot named \"" +
                                                  printable(name) + "\" (it has " +
                                                  (has.empty() ? std::string("none") : has) + ")");
}

} // namespace

std::string image_opts(const ImageInfo& image) {
    std::string opts;
    std::string prefix;
    const auto add = [&](const std::string& key, const std::string& value) {
        opts += (opts.empty() ? "" : ",") + prefix + key + "=" + option_value(value);
    };
    if (image.chain.empty()) {
        add("driver", image.format);
        add("file.driver", "file");
        add("file.filename", image.path.string());
        add("backing", ""); // no backing file, whatever the header says (see k_no_backing_warning)
        return opts;
    }
    for (const auto& layer : image.chain) {
        add("driver", layer.format);
        if (layer.length != 0) { // a disk inside a package: a slice of the file, through qemu's raw driver
            add("file.driver", "raw");
            add("file.offset", std::to_string(layer.offset));
            add("file.size", std::to_string(layer.length));
            add("file.file.driver", "file");
            add("file.file.filename", layer.path.string());
        } else {
            add("file.driver", "file");
            add("file.filename", layer.path.string());
        }
        prefix += "backing.";
    }
    prefix.resize(prefix.size() - std::string_view("backing.").size());
    add("backing", "");
    return opts;
}

QemuNbdServer::~QemuNbdServer() {
    if (m_pid > 0) {
        stop(m_pid);
    }
}

std::optional<Error> QemuNbdServer::exit_reason(std::chrono::milliseconds wait) {
    if (m_pid > 0 && reaped_within(m_pid, wait)) {
        m_pid = -1; // reaped: nothing left to stop, and never waitpid(-1), which would reap any child
        m_exit = refusal(m_log, QemuNbdOptions{m_snapshot, 1});
    }
    return m_exit;
}

Expected<std::unique_ptr<QemuNbdServer>> QemuNbdServer::start(const ImageInfo& image,
                                                              const QemuNbdOptions& options) {
    if (!options.snapshot.empty()) {
        if (auto known = check_snapshot(image, options.snapshot); !known) {
            return std::unexpected(known.error());
        }
    }
    auto folder = TempDir::create("coldscan-nbd");
    if (!folder) {
        return std::unexpected(folder.error());
    }
    const std::string socket = (folder->path() / "export.sock").string();
    if (socket.size() > k_max_socket_path) {
        return make_error(Errc::invalid_argument,
                          "the temporary folder's path is too long for a Unix socket (" + socket +
                              "); set TMPDIR to a shorter one");
    }
    const auto log = folder->path() / "qemu-nbd.log";
    const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (log_fd < 0) {
        return make_error(Errc::io, errno_message("cannot create " + log.string()));
    }

    std::vector<std::string> args{
        "qemu-nbd", "--read-only", "--persistent", "--allocation-depth",
        // One spare for probes, and one per filesystem worker (past that many filesystems on one disk, a
        // worker cannot connect and its filesystem is reported failed).
        "--shared=" + std::to_string(std::max(1U, options.connections) + 1 + k_max_filesystem_workers),
        "--cache=writeback", "--aio=threads", "--socket=" + socket, "--image-opts"};
    if (!options.snapshot.empty()) {
        args.push_back("--load-snapshot=snapshot.name=" + option_value(options.snapshot));
    }
    args.push_back(image_opts(image));
    std::vector<char*> argv;
    for (auto& arg : args) {
        argv.push_back(arg.data());
    }
    argv.push_back(nullptr);

    // It reads the image's roots and makes its socket in its folder; nothing else of the host.
    auto view = program_file_view("qemu-nbd", qemu_file_view(image_read_roots(image), {folder->path()}));
    if (!view) {
        ::close(log_fd);
        if (view.error().code == Errc::not_found) {
            return make_error(Errc::not_found, "cannot run qemu-nbd (is qemu-utils installed?)");
        }
        return std::unexpected(view.error());
    }
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
        ::close(log_fd);
        return make_error(Errc::io, errno_message("fork"));
    }
    if (pid == 0) {
        exec_server(argv, log_fd, parent, *view ? &**view : nullptr);
    }
    ::close(log_fd);
    spdlog::debug("qemu-nbd (pid {}) serving {} on {}", pid, image.path.string(), socket);

    // Ready when its socket accepts a connection: qemu-nbd creates the socket file before it listens (and
    // before it has opened everything), so the file alone proves nothing. An exit is a refusal, explained in
    // its log.
    const auto deadline = std::chrono::steady_clock::now() + k_start_timeout;
    for (;;) {
        int status = 0;
        const pid_t done = ::waitpid(pid, &status, WNOHANG);
        if (done == pid) {
            if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
                return make_error(Errc::not_found, "cannot run qemu-nbd (is qemu-utils installed?)");
            }
            return std::unexpected(refusal(log, options));
        }
        if (accepts_connections(socket)) {
            return std::unique_ptr<QemuNbdServer>(
                new QemuNbdServer(std::move(*folder), socket, pid, log.string(), options.snapshot));
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            stop(pid);
            return make_error(Errc::timeout, "qemu-nbd did not open its socket within " +
                                                 std::to_string(k_start_timeout.count()) + " s");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

} // namespace coldscan::disk::detail
