// A host directory tree as a random-order file source.
//
// The walk is lazy and depth-first, one folder at a time: a folder's names are read and lstat'ed while its
// descriptor is open, then the descriptor is closed, so deep trees never pile up open descriptors. Every
// open goes through openat2() relative to the root with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
// RESOLVE_NO_XDEV, so a folder swapped for a symlink between listing and reading cannot lead outside the
// tree, and read() also checks that it opened the very inode it listed. The walk stays on the root's
// filesystem (like find -xdev): a mount point below the root is logged and not entered.
#include "coldscan/disk/directory_source.hpp"

#include "coldscan/common/log.hpp"

#include <algorithm>
#include <cerrno>
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <map>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace coldscan::disk {
namespace {

constexpr std::uint64_t k_max_in_memory = 32ULL << 20;

// Opens rel ("" for the root itself, else "a/b") beneath root_fd without following any symlink.
int open_beneath(int root_fd, const std::string& rel, int flags) {
    const std::string path = rel.empty() ? "." : rel;
    open_how how{};
    how.flags = static_cast<std::uint64_t>(flags) | O_CLOEXEC | O_NOFOLLOW;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
    for (;;) {
        const long fd = ::syscall(SYS_openat2, root_fd, path.c_str(), &how, sizeof how);
        if (fd >= 0) {
            return static_cast<int>(fd);
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno != ENOSYS) {
            return -1;
        }
        // Kernels before 5.6: O_NOFOLLOW guards the last component, the inode check in read() the rest.
        return ::openat(root_fd, path.c_str(), flags | O_CLOEXEC | O_NOFOLLOW);
    }
}

std::int64_t nanoseconds(const timespec& t) {
    return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

FileStamp stamp_of(const struct stat& st) {
    return FileStamp{static_cast<std::uint64_t>(st.st_ino), 0, nanoseconds(st.st_mtim),
                     nanoseconds(st.st_ctim)};
}

FileEntry problem_entry(std::string path, Errc code, std::string message) {
    FileEntry entry;
    entry.path = std::move(path);
    entry.problem = Error{code, std::move(message)};
    return entry;
}

// Thread rule: next() from one thread at a time; read() from any thread (it touches only immutable state).
class DirectorySource final : public FileSource {
public:
    DirectorySource(std::string root, UniqueFd root_fd, dev_t root_dev)
        : m_root(std::move(root)), m_root_fd(std::move(root_fd)), m_root_dev(root_dev) {
        m_pending_dirs.emplace_back();
    }

    Expected<std::optional<FileEntry>> next() override {
        while (m_ready_index == m_ready.size()) {
            if (m_pending_dirs.empty()) {
                return std::nullopt;
            }
            std::string dir = std::move(m_pending_dirs.back());
            m_pending_dirs.pop_back();
            visit(dir);
        }
        return std::move(m_ready[m_ready_index++]);
    }

    [[nodiscard]] ReadOrder read_order() const noexcept override { return ReadOrder::random; }

    Expected<Content> read(const FileEntry& entry) override {
        if (entry.problem || entry.hardlink_of || entry.path.size() < 2 || entry.path.front() != '/') {
            return make_error(Errc::invalid_argument, "not a readable entry of this folder: " + entry.path);
        }
        const std::string rel = entry.path.substr(1);
        UniqueFd fd(open_beneath(m_root_fd.get(), rel, O_RDONLY | O_NOCTTY | O_NONBLOCK));
        if (!fd) {
            return make_error(Errc::io, errno_message("cannot open " + m_root + entry.path));
        }
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0) {
            return make_error(Errc::io, errno_message("cannot examine " + m_root + entry.path));
        }
        if (!S_ISREG(st.st_mode) || st.st_dev != m_root_dev || !entry.stamp ||
            static_cast<std::uint64_t>(st.st_ino) != entry.stamp->inode) {
            return make_error(Errc::io, m_root + entry.path + " was replaced while the scan ran");
        }
        if (stamp_of(st).ctime_ns != entry.stamp->ctime_ns) {
            // Its listed identity would no longer describe these bytes (and the cache keys on it).
            return make_error(Errc::io, m_root + entry.path + " changed while the scan ran");
        }
        if (static_cast<std::uint64_t>(st.st_size) != entry.size) {
            return make_error(Errc::io, m_root + entry.path + " changed size while the scan ran (" +
                                            std::to_string(entry.size) + " -> " + std::to_string(st.st_size) +
                                            " bytes)");
        }
        if (entry.size > k_max_in_memory) {
            return Content::from_fd(std::move(fd), entry.size);
        }
        std::vector<std::byte> bytes(static_cast<std::size_t>(entry.size) + 1); // +1 detects growth
        std::size_t done = 0;
        while (done < bytes.size()) {
            const ssize_t n = ::read(fd.get(), bytes.data() + done, bytes.size() - done);
            if (n < 0) {
                if (errno == EINTR || errno == EAGAIN) {
                    continue;
                }
                return make_error(Errc::io, errno_message("cannot read " + m_root + entry.path));
            }
            if (n == 0) {
                break;
            }
            done += static_cast<std::size_t>(n);
        }
        if (done != entry.size) {
            return make_error(Errc::io, m_root + entry.path + " changed size while it was read");
        }
        bytes.resize(done);
        return Content::from_memory(std::move(bytes));
    }

private:
    // Lists folder rel ("" = root, else "a/b") into m_ready and queues its subfolders.
    void visit(const std::string& rel) {
        m_ready.clear();
        m_ready_index = 0;
        const std::string shown = "/" + rel; // path inside the tree, as entries show it
        UniqueFd fd(open_beneath(m_root_fd.get(), rel, O_RDONLY | O_DIRECTORY));
        if (!fd) {
            m_ready.push_back(problem_entry(shown, Errc::io, errno_message("cannot list folder")));
            return;
        }
        DIR* dir = ::fdopendir(fd.get());
        if (dir == nullptr) {
            m_ready.push_back(problem_entry(shown, Errc::io, errno_message("cannot list folder")));
            return;
        }
        fd.release(); // closedir closes it
        std::vector<std::string> names;
        int list_errno = 0;
        for (;;) {
            errno = 0;
            const dirent* d = ::readdir(dir);
            if (d == nullptr) {
                list_errno = errno;
                break;
            }
            const std::string_view name = d->d_name;
            if (name != "." && name != "..") {
                names.emplace_back(name);
            }
        }
        std::sort(names.begin(), names.end());
        std::vector<std::string> subdirs;
        const std::string prefix = rel.empty() ? "" : rel + "/";
        for (const auto& name : names) {
            const std::string child = "/" + prefix + name;
            struct stat st {};
            if (::fstatat(::dirfd(dir), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
                m_ready.push_back(problem_entry(child, Errc::io,
                                                errno == ENOENT ? "vanished while the folder was listed"
                                                                : errno_message("cannot examine")));
                continue;
            }
            if (S_ISDIR(st.st_mode)) {
                if (st.st_dev != m_root_dev) {
                    spdlog::info("{}{}: another filesystem is mounted here; not scanned", m_root, child);
                } else {
                    subdirs.push_back(prefix + name);
                }
                continue;
            }
            if (!S_ISREG(st.st_mode)) {
                continue; // symlinks, devices, fifos, sockets: not files to scan
            }
            FileEntry entry;
            entry.path = child;
            entry.size = static_cast<std::uint64_t>(st.st_size);
            entry.mtime = st.st_mtim.tv_sec;
            entry.stamp = stamp_of(st);
            if (st.st_nlink > 1) {
                const auto [it, first] = m_links.try_emplace({st.st_dev, st.st_ino}, child);
                if (!first) {
                    entry.hardlink_of = it->second;
                }
            }
            m_ready.push_back(std::move(entry));
        }
        ::closedir(dir);
        if (list_errno != 0) {
            m_ready.push_back(
                problem_entry(shown, Errc::io, errno_message("cannot list folder", list_errno)));
        }
        // Depth-first in name order: push in reverse so the first name is visited first.
        for (auto it = subdirs.rbegin(); it != subdirs.rend(); ++it) {
            m_pending_dirs.push_back(std::move(*it));
        }
    }

    const std::string m_root; // canonical, for messages
    const UniqueFd m_root_fd;
    const dev_t m_root_dev;
    // Walk state: touched by next() only.
    std::vector<std::string> m_pending_dirs; // relative paths, "" = root
    std::vector<FileEntry> m_ready;
    std::size_t m_ready_index = 0;
    std::map<std::pair<dev_t, ino_t>, std::string> m_links;
};

} // namespace

Expected<std::unique_ptr<FileSource>> open_directory(const std::filesystem::path& root) {
    std::error_code ec;
    const auto canonical = std::filesystem::canonical(root, ec); // a symlinked root is resolved once, here
    if (ec) {
        if (ec == std::errc::no_such_file_or_directory) {
            return make_error(Errc::not_found, root.string() + " does not exist");
        }
        return make_error(Errc::io, "cannot resolve " + root.string() + ": " + ec.message());
    }
    UniqueFd fd(::open(canonical.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) {
        if (errno == ENOTDIR) {
            return make_error(Errc::invalid_argument, root.string() + " is not a directory");
        }
        return make_error(Errc::io, errno_message("cannot open " + root.string()));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        return make_error(Errc::io, errno_message("cannot examine " + root.string()));
    }
    std::string shown = canonical.string();
    if (shown == "/") {
        shown.clear(); // entries start with '/'
    }
    return std::make_unique<DirectorySource>(std::move(shown), std::move(fd), st.st_dev);
}

} // namespace coldscan::disk
