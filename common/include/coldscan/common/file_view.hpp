// The part of the host's file system a helper process may open (qemu-img, qemu-nbd, the appliance's qemu),
// enforced by the kernel's Landlock LSM (5.13+, no library needed).
//
// Why: those programs open whatever a block-layer option names. coldscan names every format explicitly so
// that no guest byte decides what they open; a view is the second wall, for the day a probing mistake slips
// through: outside its folders, an open() fails with EACCES whatever the program was told to open.
//
// The rules are built in the parent (allocation, open(O_PATH)) and enforced in the child between fork and
// exec with two async-signal-safe system calls, so a threaded parent can confine what it forks.
#pragma once

#include "coldscan/common/error.hpp"
#include "coldscan/common/unique_fd.hpp"

#include <filesystem>
#include <optional>
#include <vector>

namespace coldscan {

struct FileView {
    std::vector<std::filesystem::path> read;       // read files and list folders below these (a file: itself)
    std::vector<std::filesystem::path> execute;    // also run programs and libraries below these
    std::vector<std::filesystem::path> read_write; // anything below these: create, write, remove
};

// What every qemu program needs to start: /usr (programs, libraries, firmware, modules) to read and run,
// /etc, /proc and /sys to read, and the harmless devices (/dev/null, /dev/zero, /dev/urandom, /dev/random;
// /dev/kvm when with_kvm). No other device: a block device is as much a host file as any other.
[[nodiscard]] FileView system_file_view(bool with_kvm);

// A Landlock ruleset, built before fork. Thread rule: shared, immutable once built.
class FileViewRules {
public:
    // Errors: unsupported (the kernel has no Landlock: said once per process by the caller's log line),
    // io (a folder or file of the view cannot be opened; missing ones are skipped, except read_write ones).
    static Expected<FileViewRules> build(const FileView& view);

    // Confines the calling thread and whatever it execs, for good. Async-signal-safe: for the forked child
    // before exec. Returns 0, or -1 with errno set.
    int enforce() const noexcept;
    // enforce(), or else "coldscan: cannot confine WHAT's file view" on stderr and _exit(126): for the forked
    // child, whose stderr is already where its output goes. Async-signal-safe.
    void enforce_or_exit(const char* what) const noexcept;

    // The Landlock ABI version of this kernel, 0 when it has none.
    [[nodiscard]] static int kernel_abi() noexcept;

private:
    explicit FileViewRules(UniqueFd ruleset) : m_ruleset(std::move(ruleset)) {}
    UniqueFd m_ruleset;
};

// build() for callers that go on unconfined on a kernel without Landlock: nullopt then, after one warning
// per process ("... not confined: this kernel has no Landlock"). Other errors stay errors.
[[nodiscard]] Expected<std::optional<FileViewRules>> build_file_view_or_warn(const FileView& view);

} // namespace coldscan
