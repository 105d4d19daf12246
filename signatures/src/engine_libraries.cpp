#include "coldscan/signatures/engine_libraries.hpp"

#include "clamav_log.hpp"

#include <atomic>
#include <clamav.h>
#include <utility>
#include <yara.h>

namespace coldscan::signatures {
namespace {

// One live EngineLibraries at a time: yr_finalize must pair with exactly one yr_initialize.
std::atomic<bool> g_initialized{false};

} // namespace

Expected<EngineLibraries> EngineLibraries::initialize() {
    if (g_initialized.exchange(true)) {
        return make_error(Errc::engine, "the engine libraries are already initialised");
    }
    detail::install_clamav_log(); // before cl_init, so its own messages are routed too
    if (const cl_error_t rc = cl_init(CL_INIT_DEFAULT); rc != CL_SUCCESS) {
        g_initialized = false;
        return make_error(Errc::engine, std::string("cannot initialise libclamav: ") + cl_strerror(rc));
    }
    if (const int rc = yr_initialize(); rc != ERROR_SUCCESS) {
        g_initialized = false;
        return make_error(Errc::engine, "cannot initialise libyara: error code " + std::to_string(rc));
    }
    return EngineLibraries();
}

EngineLibraries::EngineLibraries(EngineLibraries&& other) noexcept
    : m_owner(std::exchange(other.m_owner, false)) {}

EngineLibraries::~EngineLibraries() {
    if (m_owner) {
        yr_finalize();
        g_initialized = false;
    }
}

std::string EngineLibraries::clamav_version() {
    return cl_retver();
}

std::string EngineLibraries::yara_version() {
    return YR_VERSION;
}

} // namespace coldscan::signatures
