// Private: what a loaded ClamavEngine holds (shared by clamav_engine.cpp and clamav_scan.cpp).
#pragma once

#include "coldscan/common/c_handle.hpp"
#include "coldscan/common/temp_dir.hpp"
#include "coldscan/signatures/clamav_engine.hpp"

#include <clamav.h>

namespace coldscan::signatures {

// Thread rule: shared, immutable once compiled; libclamav allows concurrent scans on one compiled engine.
using ClamavEngineHandle = CHandle<cl_engine, cl_engine_free>;

struct ClamavEngine::Impl {
    // libclamav's scratch files (archive members, unpacked executables): a private folder of ours, so a
    // killed run's leftovers are found and removed (remove_stale_temp_dirs), instead of piling up in /tmp.
    // Declared first: it outlives the engine.
    TempDir scratch;
    ClamavEngineHandle engine;
    ClamavDatabaseInfo info;
};

namespace detail {

// The cl_engine_set_clcb_virus_found callback: appends the name to the scan's ClamavScanState (context).
void on_clamav_virus_found(int fd, const char* virname, void* context) noexcept;
// The cl_engine_set_clcb_meta callback (archive members, with the size their header declares): a member
// over MaxFileSize, which libclamav cuts to MaxFileSize without an alert, becomes a MaxFileSize limit hit.
cl_error_t on_clamav_archive_member(const char* container_type, unsigned long container_size,
                                    const char* member_name, unsigned long member_size, int is_encrypted,
                                    unsigned int member_index, void* context) noexcept;

} // namespace detail
} // namespace coldscan::signatures
