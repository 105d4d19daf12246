#include "coldscan/common/file_view.hpp"

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <linux/landlock.h>
#include <spdlog/spdlog.h>
#include <string_view>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef LANDLOCK_ACCESS_FS_TRUNCATE // ABI 3 (Linux 6.2); Debian 12's headers stop at ABI 2
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif

namespace coldscan {
namespace {

constexpr std::uint64_t k_read = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
constexpr std::uint64_t k_execute = k_read | LANDLOCK_ACCESS_FS_EXECUTE;
constexpr std::uint64_t k_abi1_all =
    LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE |
    LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
    LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |
    LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
    LANDLOCK_ACCESS_FS_MAKE_SYM;
// Rights a rule on a regular file (not a folder) may carry.
constexpr std::uint64_t k_file_rights = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
                                        LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE;

std::atomic<bool> g_warned{false};

// Every right this kernel's ABI knows: all of them are handled, so anything not granted is refused.
std::uint64_t handled_rights(int abi) {
    std::uint64_t rights = k_abi1_all;
    if (abi >= 2) {
        rights |= LANDLOCK_ACCESS_FS_REFER;
    }
    if (abi >= 3) {
        rights |= LANDLOCK_ACCESS_FS_TRUNCATE;
    }
    return rights;
}

enum class Presence { required, optional };

// Grants rights below path (or on the file itself). A missing optional path is skipped.
Expected<void> add_rule(int ruleset, const std::filesystem::path& path, std::uint64_t rights,
                        std::uint64_t handled, Presence presence) {
    const int fd = ::open(path.c_str(), O_PATH | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT && presence == Presence::optional) {
            return {};
        }
        return make_error(Errc::io, errno_message("cannot open " + path.string() + " for a file view"));
    }
    UniqueFd owned(fd);
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        return make_error(Errc::io, errno_message("cannot examine " + path.string()));
    }
    landlock_path_beneath_attr rule{};
    rule.allowed_access = rights & handled & (S_ISDIR(st.st_mode) ? ~0ULL : k_file_rights);
    rule.parent_fd = fd;
    if (::syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0) != 0) {
        return make_error(Errc::io, errno_message("cannot add " + path.string() + " to a file view"));
    }
    return {};
}

} // namespace

FileView system_file_view(bool with_kvm) {
    FileView view;
    view.execute = {"/usr", "/bin", "/sbin", "/lib", "/lib64"}; // the last four: links into /usr, or not
    view.read = {"/etc", "/proc", "/sys", "/dev/zero", "/dev/urandom", "/dev/random"};
    view.read_write = {"/dev/null"};
    if (with_kvm) {
        view.read_write.emplace_back("/dev/kvm");
    }
    return view;
}

int FileViewRules::kernel_abi() noexcept {
    const long abi = ::syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
    return abi > 0 ? static_cast<int>(abi) : 0;
}

Expected<FileViewRules> FileViewRules::build(const FileView& view) {
    const int abi = kernel_abi();
    if (abi == 0) {
        return make_error(Errc::unsupported, "this kernel has no Landlock");
    }
    const std::uint64_t handled = handled_rights(abi);
    landlock_ruleset_attr attr{};
    attr.handled_access_fs = handled;
    const long fd = ::syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
    if (fd < 0) {
        return make_error(Errc::io, errno_message("cannot create a Landlock ruleset"));
    }
    FileViewRules rules{UniqueFd(static_cast<int>(fd))};
    const int ruleset = rules.m_ruleset.get();
    for (const auto& path : view.execute) {
        if (auto added = add_rule(ruleset, path, k_execute, handled, Presence::optional); !added) {
            return std::unexpected(added.error());
        }
    }
    for (const auto& path : view.read) {
        if (auto added = add_rule(ruleset, path, k_read, handled, Presence::optional); !added) {
            return std::unexpected(added.error());
        }
    }
    for (const auto& path : view.read_write) {
        const auto presence = path.string().starts_with("/dev/") ? Presence::optional : Presence::required;
        if (auto added = add_rule(ruleset, path, handled, handled, presence); !added) {
            return std::unexpected(added.error());
        }
    }
    return rules;
}

int FileViewRules::enforce() const noexcept {
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        return -1;
    }
    return static_cast<int>(::syscall(SYS_landlock_restrict_self, m_ruleset.get(), 0));
}

void FileViewRules::enforce_or_exit(const char* what) const noexcept {
    if (enforce() == 0) {
        return;
    }
    constexpr std::string_view head = "coldscan: cannot confine ";
    constexpr std::string_view tail = "'s file view\n";
    [[maybe_unused]] auto written = ::write(2, head.data(), head.size());
    written = ::write(2, what, std::strlen(what));
    written = ::write(2, tail.data(), tail.size());
    ::_exit(126);
}

Expected<std::optional<FileViewRules>> build_file_view_or_warn(const FileView& view) {
    auto rules = FileViewRules::build(view);
    if (rules) {
        return std::optional<FileViewRules>(std::move(*rules));
    }
    if (rules.error().code != Errc::unsupported) {
        return std::unexpected(rules.error());
    }
    if (!g_warned.exchange(true)) {
        spdlog::warn("qemu helper processes run without a confined file view: {} (Linux 5.13+ with "
                     "Landlock enabled confines them)",
                     rules.error().message);
    }
    return std::optional<FileViewRules>{};
}

} // namespace coldscan
