// The engine host's messages as JSON: what the parent sends (options, scan requests) and what the host and
// its workers answer (the loaded engines, scan results). Both ends are the same binary, so there is no
// versioning; the parser still treats every message as untrusted (a worker may be compromised).
#pragma once

#include "coldscan/common/error.hpp"
#include "coldscan/signatures/engine_sandbox.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace coldscan::signatures::detail {

[[nodiscard]] std::string options_to_wire(const SandboxOptions& options);
[[nodiscard]] Expected<SandboxOptions> options_from_wire(std::string_view text);

[[nodiscard]] std::string engines_to_wire(const SandboxEngines& engines);
// The host's first answer: the engines, or the load's error.
[[nodiscard]] std::string load_error_to_wire(const Error& error);
[[nodiscard]] Expected<SandboxEngines> engines_from_wire(std::string_view text);

struct ScanRequest {
    std::string path;
    std::uint64_t size = 0;
};
[[nodiscard]] std::string request_to_wire(const ScanRequest& request);
[[nodiscard]] Expected<ScanRequest> request_from_wire(std::string_view text);

struct ScanAnswer {
    std::vector<EngineResult> results;
    bool retire = false; // the worker exits after this answer
};
[[nodiscard]] std::string answer_to_wire(const ScanAnswer& answer);
[[nodiscard]] Expected<ScanAnswer> answer_from_wire(std::string_view text);

} // namespace coldscan::signatures::detail
