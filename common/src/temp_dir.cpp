#include "coldscan/common/temp_dir.hpp"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <string>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>
#include <utility>

namespace coldscan {

std::filesystem::path TempDir::base() {
    const char* tmpdir = std::getenv("TMPDIR");
    return (tmpdir != nullptr && *tmpdir != '\0') ? tmpdir : "/tmp";
}

Expected<TempDir> TempDir::create(std::string_view prefix) {
    std::string pattern = (base() / prefix).string() + "-" + std::to_string(::getpid()) + "-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) { // mkdtemp creates it 0700
        return make_error(Errc::io, errno_message("cannot create a temporary folder " + pattern));
    }
    return TempDir(std::filesystem::path(pattern));
}

std::size_t remove_stale_temp_dirs(std::string_view prefix, const std::filesystem::path& base) {
    const std::string start = std::string(prefix) + "-";
    std::size_t removed = 0;
    std::error_code ec;
    for (std::filesystem::directory_iterator it(base, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (!name.starts_with(start)) {
            continue;
        }
        // PREFIX[-MORE]-PID-XXXXXX: the pid is the all-digit part before mkdtemp's suffix.
        const auto last_dash = name.rfind('-');
        const auto pid_dash = last_dash == std::string::npos || last_dash == 0
                                  ? std::string::npos
                                  : name.rfind('-', last_dash - 1);
        if (pid_dash == std::string::npos || pid_dash + 1 < start.size()) {
            continue;
        }
        const std::string digits = name.substr(pid_dash + 1, last_dash - pid_dash - 1);
        if (digits.empty() || digits.size() > 9 ||
            digits.find_first_not_of("0123456789") != std::string::npos) {
            continue;
        }
        const auto pid = static_cast<pid_t>(std::stol(digits));
        struct stat st {};
        if (::lstat(it->path().c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::getuid()) {
            continue;
        }
        if (pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) {
            continue; // alive (or not ours to ask about): in use
        }
        std::error_code remove_ec;
        if (std::filesystem::remove_all(it->path(), remove_ec) > 0 && !remove_ec) {
            ++removed;
        }
    }
    return removed;
}

TempDir::TempDir(TempDir&& other) noexcept : m_path(std::exchange(other.m_path, {})) {}

TempDir& TempDir::operator=(TempDir&& other) noexcept {
    if (this != &other) {
        std::error_code ignored;
        if (!m_path.empty()) {
            std::filesystem::remove_all(m_path, ignored);
        }
        m_path = std::exchange(other.m_path, {});
    }
    return *this;
}

TempDir::~TempDir() {
    if (!m_path.empty()) {
        std::error_code ignored;
        std::filesystem::remove_all(m_path, ignored);
    }
}

} // namespace coldscan
