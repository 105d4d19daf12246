// The direct path's filesystem parsing (The Sleuth Kit over the export) runs in a confined worker process,
// one per filesystem, when DirectOptions::sandbox is set (disk-access/src/sandboxed_filesystem.hpp). The
// worker is this executable re-executed: every executable that links this library calls
// run_filesystem_worker_if_asked() first thing in main.
#pragma once

#include <optional>

namespace coldscan::disk {

// When argv asks for a filesystem worker, runs it and returns its exit status; otherwise nullopt.
[[nodiscard]] std::optional<int> run_filesystem_worker_if_asked(int argc, char** argv);

} // namespace coldscan::disk
