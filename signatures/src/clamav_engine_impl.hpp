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
// declared over MaxFileSize may be cut by libclamav's zip reader without an alert; noted, and confirmed or
// dropped by the next layer (on_clamav_layer).
cl_error_t on_clamav_archive_member(const char* container_type, unsigned long container_size,
                                    const char* member_name, unsigned long member_size, int is_encrypted,
                                    unsigned int member_index, void* context) noexcept;
// The cl_engine_set_clcb_file_inspection callback (every layer libclamav scans): a layer extracted from a
// noted member that reached MaxFileSize was cut there, a MaxFileSize limit hit naming the member.
cl_error_t on_clamav_layer(int fd, const char* type, const char** ancestors, size_t parent_file_size,
                           const char* file_name, size_t file_size, const char* file_buffer,
                           uint32_t recursion_level, uint32_t layer_attributes, void* context) noexcept;

} // namespace detail
} // namespace coldscan::signatures
