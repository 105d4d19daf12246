#include "coldscan/common/confinement.hpp"

#include "coldscan/common/c_handle.hpp"

#include <array>
#include <cerrno>
#include <seccomp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

namespace coldscan {
namespace {

using SeccompFilter = CHandle<void, seccomp_release>;

// Refused with EPERM: the network (no socket can be made or reached; inherited socketpairs still work),
// namespaces, mounts, the kernel's own administration, and ways around the limits.
constexpr std::array k_refused = {
    "socket",
    "connect",
    "bind",
    "listen",
    "accept",
    "accept4",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "setns",
    "unshare",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "keyctl",
    "add_key",
    "request_key",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "open_by_handle_at",
    "name_to_handle_at",
    "reboot",
    "swapon",
    "swapoff",
    "setrlimit",
    "acct",
    "quotactl",
    "syslog",
    "settimeofday",
    "clock_settime",
    "adjtimex",
    "personality",
    "pidfd_open",
    "pidfd_send_signal",
    "pidfd_getfd",
    "tkill",
    "rt_sigqueueinfo",
    "rt_tgsigqueueinfo",
};

// Ends the process: nothing a scan does needs these, so a call means the worker is compromised.
constexpr std::array k_fatal = {"execve", "execveat", "ptrace", "process_vm_readv", "process_vm_writev"};

Expected<void> add_rule(scmp_filter_ctx filter, std::uint32_t action, const char* name,
                        std::optional<scmp_arg_cmp> arg = std::nullopt) {
    const int number = seccomp_syscall_resolve_name(name);
    if (number == __NR_SCMP_ERROR) {
        return {}; // not on this architecture
    }
    const int rc =
        arg ? seccomp_rule_add(filter, action, number, 1, *arg) : seccomp_rule_add(filter, action, number, 0);
    if (rc != 0) {
        return make_error(Errc::io, std::string("seccomp rule for ") + name + ": " + errno_message("", -rc));
    }
    return {};
}

Expected<void> install_filter(bool signal_only_self) {
    SeccompFilter filter(seccomp_init(SCMP_ACT_ALLOW));
    if (!filter) {
        return make_error(Errc::io, "seccomp_init failed");
    }
    for (const char* name : k_refused) {
        if (auto added = add_rule(filter.get(), SCMP_ACT_ERRNO(EPERM), name); !added) {
            return added;
        }
    }
    for (const char* name : k_fatal) {
        if (auto added = add_rule(filter.get(), SCMP_ACT_KILL_PROCESS, name); !added) {
            return added;
        }
    }
    // prlimit64 reads limits (getrlimit) but must not change them.
    if (auto added = add_rule(filter.get(), SCMP_ACT_ERRNO(EPERM), "prlimit64", SCMP_A2(SCMP_CMP_NE, 0));
        !added) {
        return added;
    }
    if (signal_only_self) {
        const auto self = static_cast<scmp_datum_t>(::getpid());
        for (const char* name : {"kill", "tgkill"}) {
            if (auto added = add_rule(filter.get(), SCMP_ACT_ERRNO(EPERM), name, SCMP_A0(SCMP_CMP_NE, self));
                !added) {
                return added;
            }
        }
    }
    if (const int rc = seccomp_load(filter.get()); rc != 0) {
        return make_error(Errc::io, errno_message("seccomp_load", -rc));
    }
    return {};
}

Expected<void> set_limit(int resource, rlim_t soft, rlim_t hard, const char* what) {
    const rlimit limit{soft, hard};
    if (::setrlimit(resource, &limit) != 0) {
        return make_error(Errc::io, errno_message(what));
    }
    return {};
}

} // namespace

bool sanitizer_build() noexcept {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
    return true;
#else
    return false;
#endif
#else
    return false;
#endif
}

Expected<void> confine_process(const Confinement& confinement) {
    if (auto core = set_limit(RLIMIT_CORE, 0, 0, "setrlimit(RLIMIT_CORE)"); !core) {
        return core;
    }
    if (confinement.address_space_bytes && !sanitizer_build()) {
        const auto bytes = static_cast<rlim_t>(*confinement.address_space_bytes);
        if (auto as = set_limit(RLIMIT_AS, bytes, bytes, "setrlimit(RLIMIT_AS)"); !as) {
            return as;
        }
    }
    if (confinement.cpu_time) {
        const auto seconds = static_cast<rlim_t>(confinement.cpu_time->count());
        if (auto cpu = set_limit(RLIMIT_CPU, seconds, seconds + 1, "setrlimit(RLIMIT_CPU)"); !cpu) {
            return cpu;
        }
    }
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        return make_error(Errc::io, errno_message("prctl(PR_SET_NO_NEW_PRIVS)"));
    }
    return install_filter(confinement.signal_only_self);
}

} // namespace coldscan
