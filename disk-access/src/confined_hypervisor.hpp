// The appliance's qemu in a file view (common/file_view.hpp).
//
// libguestfs forks and execs its hypervisor itself, so coldscan cannot confine it between fork and exec as
// it does qemu-img and qemu-nbd. Instead guestfs_set_hv() names a link in the appliance's private folder,
// called k_link_name, to coldscan's own executable; beside it, a view file says what qemu may open and which
// qemu to run. coldscan started under that name builds the view, enforces it, and execs the real qemu with
// libguestfs' arguments. libguestfs keys its cache of qemu's -help output on the hypervisor's stat(), which
// follows the link to coldscan's executable: the cache stays valid from one launch to the next.
//
// The view file: one "KEY PATH" per line; keys exec (the real qemu), read, execute, write, tmpdir (qemu's
// TMPDIR: the appliance's snapshot=on root writes its scratch file there).
#pragma once

#include "coldscan/common/error.hpp"
#include "coldscan/common/file_view.hpp"

#include <filesystem>
#include <optional>
#include <string>

namespace coldscan::disk::detail {

inline constexpr const char* k_confined_hypervisor_name = "coldscan-confined-qemu";

// Writes the view file and the link into folder; returns the link, for guestfs_set_hv(). Errors: io,
// invalid_argument (a path with a line break).
[[nodiscard]] Expected<std::filesystem::path>
prepare_confined_hypervisor(const std::filesystem::path& folder, const std::string& real_hypervisor,
                            const FileView& view, const std::filesystem::path& tmpdir);

// The view file's contents for these settings (one line each).
[[nodiscard]] Expected<std::string> hypervisor_view_text(const std::string& real_hypervisor,
                                                         const FileView& view,
                                                         const std::filesystem::path& tmpdir);

// When coldscan runs under the link's name: confine, then exec the real qemu (returns only on failure, with
// the exit status, after a line on stderr, which libguestfs shows). nullopt otherwise.
[[nodiscard]] std::optional<int> run_confined_hypervisor_if_asked(int argc, char** argv);

} // namespace coldscan::disk::detail
