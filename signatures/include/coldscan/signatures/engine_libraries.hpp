// Process-wide init of libclamav and libyara: construct exactly one, in main, before anything else here.
// Thread rule: construct and destroy from the main thread, while no engine is in use.
#pragma once

#include "coldscan/common/error.hpp"

#include <string>

namespace coldscan::signatures {

class EngineLibraries {
public:
    // Runs cl_init and yr_initialize and routes libclamav's messages into our log. Error: engine.
    static Expected<EngineLibraries> initialize();
    EngineLibraries(EngineLibraries&& other) noexcept;
    EngineLibraries& operator=(EngineLibraries&&) = delete;
    EngineLibraries(const EngineLibraries&) = delete;
    EngineLibraries& operator=(const EngineLibraries&) = delete;
    ~EngineLibraries(); // yr_finalize

    [[nodiscard]] static std::string clamav_version();
    [[nodiscard]] static std::string yara_version();

private:
    EngineLibraries() = default;
    bool m_owner = true;
};

} // namespace coldscan::signatures
