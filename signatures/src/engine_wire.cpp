#include "engine_wire.hpp"

#include "coldscan/common/json_number.hpp"

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace coldscan::signatures::detail {
namespace {

using json = nlohmann::json;

Expected<json> parse(std::string_view text, std::string_view what) {
    json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded() || !parsed.is_object()) {
        return make_error(Errc::corrupt, "the engine host sent an unreadable " + std::string(what));
    }
    return parsed;
}

// Reads the whole message with exceptions (type errors) turned into one error.
template <typename T, typename F> Expected<T> decode(std::string_view text, std::string_view what, F&& read) {
    auto parsed = parse(text, what);
    if (!parsed) {
        return std::unexpected(parsed.error());
    }
    try {
        return read(*parsed);
    } catch (const json::exception& e) {
        return make_error(Errc::corrupt,
                          "the engine host sent a malformed " + std::string(what) + ": " + e.what());
    }
}

json paths_to_json(const std::vector<std::filesystem::path>& paths) {
    json out = json::array();
    for (const auto& path : paths) {
        out.push_back(path.string());
    }
    return out;
}

std::vector<std::filesystem::path> paths_from_json(const json& in) {
    std::vector<std::filesystem::path> out;
    for (const auto& path : in) {
        out.emplace_back(path.get<std::string>());
    }
    return out;
}

constexpr std::string_view k_statuses[] = {"clean", "detected", "limit_exceeded", "error"};

std::vector<std::string> digests_text(const std::vector<LayerDigest>& digests) {
    std::vector<std::string> out;
    out.reserve(digests.size());
    for (const auto& digest : digests) {
        out.push_back(to_text(digest));
    }
    return out;
}

json result_to_json(const EngineResult& result) {
    json detections = json::array();
    for (const auto& d : result.detections) {
        json meta = json::array();
        for (const auto& [key, value] : d.meta) {
            meta.push_back({key, value});
        }
        detections.push_back({{"engine", d.engine == Engine::yara ? "yara" : "clamav"},
                              {"signature", d.signature},
                              {"namespace", d.yara_namespace},
                              {"tags", d.tags},
                              {"meta", std::move(meta)}});
    }
    return {{"status", k_statuses[static_cast<int>(result.status)]},
            {"detections", std::move(detections)},
            {"reason", result.reason},
            {"timed_out", result.timed_out},
            {"layers",
             {{"complete", result.layers.complete},
              {"sizes", result.layers.sizes},
              {"types", result.layers.types},
              {"digests_complete", result.layers.digests_complete},
              {"digests", digests_text(result.layers.digests)}}}};
}

EngineResult result_from_json(const json& in) {
    EngineResult result;
    const auto status = in.at("status").get<std::string>();
    const auto* found = std::find(std::begin(k_statuses), std::end(k_statuses), status);
    if (found == std::end(k_statuses)) {
        throw json::type_error::create(302, "unknown status " + status, nullptr);
    }
    result.status = static_cast<EngineResult::Status>(found - std::begin(k_statuses));
    for (const auto& d : in.at("detections")) {
        Detection detection;
        detection.engine = d.at("engine").get<std::string>() == "yara" ? Engine::yara : Engine::clamav;
        detection.signature = d.at("signature").get<std::string>();
        detection.yara_namespace = d.at("namespace").get<std::string>();
        detection.tags = d.at("tags").get<std::vector<std::string>>();
        for (const auto& pair : d.at("meta")) {
            detection.meta.emplace_back(pair.at(0).get<std::string>(), pair.at(1).get<std::string>());
        }
        result.detections.push_back(std::move(detection));
    }
    result.reason = in.at("reason").get<std::string>();
    result.timed_out = in.at("timed_out").get<bool>();
    const auto& layers = in.at("layers");
    result.layers.complete = layers.at("complete").get<bool>();
    result.layers.sizes = layers.at("sizes").get<std::vector<std::uint64_t>>();
    result.layers.types = layers.at("types").get<std::vector<std::string>>();
    result.layers.digests_complete = layers.at("digests_complete").get<bool>();
    for (const auto& text : layers.at("digests")) {
        const auto digest = layer_digest_from_text(text.get<std::string>());
        if (!digest) {
            throw json::type_error::create(302, "a layer digest that does not parse", nullptr);
        }
        result.layers.digests.push_back(*digest);
    }
    return result;
}

} // namespace

std::string options_to_wire(const SandboxOptions& options) {
    const auto& l = options.limits;
    json out = {
        {"yara_rules", paths_to_json(options.yara_rules)},
        {"worker_memory_bytes", options.worker_memory_bytes},
        {"log_level", options.log_level >= 0 ? options.log_level : static_cast<int>(spdlog::get_level())},
        {"limits",
         {{"max_file_size", l.max_file_size},
          {"max_scan_size", l.max_scan_size},
          {"max_recursion", l.max_recursion},
          {"max_files", l.max_files},
          {"max_scan_time_ms", l.max_scan_time.count()},
          {"yara_timeout_s", l.yara_timeout.count()}}}};
    if (options.clamav_db) {
        out["clamav_db"] = options.clamav_db->string();
    }
    return out.dump();
}

Expected<SandboxOptions> options_from_wire(std::string_view text) {
    return decode<SandboxOptions>(text, "set of options", [](const json& in) {
        SandboxOptions options;
        if (in.contains("clamav_db")) {
            options.clamav_db = in.at("clamav_db").get<std::string>();
        }
        options.yara_rules = paths_from_json(in.at("yara_rules"));
        options.worker_memory_bytes = json_integer<std::uint64_t>(in.at("worker_memory_bytes"));
        options.log_level = json_integer<int>(in.at("log_level"));
        const auto& l = in.at("limits");
        options.limits.max_file_size = json_integer<std::uint64_t>(l.at("max_file_size"));
        options.limits.max_scan_size = json_integer<std::uint64_t>(l.at("max_scan_size"));
        options.limits.max_recursion = json_integer<std::uint32_t>(l.at("max_recursion"));
        options.limits.max_files = json_integer<std::uint32_t>(l.at("max_files"));
        options.limits.max_scan_time =
            std::chrono::milliseconds(json_integer<std::int64_t>(l.at("max_scan_time_ms")));
        options.limits.yara_timeout =
            std::chrono::seconds(json_integer<std::int64_t>(l.at("yara_timeout_s")));
        return options;
    });
}

std::string engines_to_wire(const SandboxEngines& engines) {
    json out = {{"yara_rule_count", engines.yara_rule_count}, {"yara_fingerprint", engines.yara_fingerprint}};
    if (engines.clamav) {
        const auto& c = *engines.clamav;
        out["clamav"] = {{"path", c.path.string()},
                         {"files", paths_to_json(c.files)},
                         {"signature_count", c.signature_count},
                         {"fingerprint", c.fingerprint},
                         {"engine_version", c.engine_version}};
    }
    return out.dump();
}

std::string load_error_to_wire(const Error& error) {
    return json{{"error", error.message}, {"code", static_cast<int>(error.code)}}.dump();
}

Expected<SandboxEngines> engines_from_wire(std::string_view text) {
    auto parsed =
        decode<Expected<SandboxEngines>>(text, "load answer", [](const json& in) -> Expected<SandboxEngines> {
            if (in.contains("error")) {
                const int code = json_integer<int>(in.at("code"));
                const bool known = code >= 0 && code <= static_cast<int>(Errc::internal);
                return make_error(known ? static_cast<Errc>(code) : Errc::engine,
                                  in.at("error").get<std::string>());
            }
            SandboxEngines engines;
            engines.yara_rule_count = json_integer<std::uint64_t>(in.at("yara_rule_count"));
            engines.yara_fingerprint = in.at("yara_fingerprint").get<std::string>();
            if (in.contains("clamav")) {
                const auto& c = in.at("clamav");
                ClamavDatabaseInfo info;
                info.path = c.at("path").get<std::string>();
                info.files = paths_from_json(c.at("files"));
                info.signature_count = json_integer<std::uint64_t>(c.at("signature_count"));
                info.fingerprint = c.at("fingerprint").get<std::string>();
                info.engine_version = c.at("engine_version").get<std::string>();
                engines.clamav = std::move(info);
            }
            return engines;
        });
    if (!parsed) {
        return std::unexpected(parsed.error());
    }
    return std::move(*parsed);
}

// "SIZE\nPATH": the guest path goes byte for byte (JSON would have to alter names that are not UTF-8, and
// YARA rules may match on them).
std::string request_to_wire(const ScanRequest& request) {
    return std::to_string(request.size) + '\n' + request.path;
}

Expected<ScanRequest> request_from_wire(std::string_view text) {
    const auto newline = text.find('\n');
    ScanRequest request;
    const auto digits = text.substr(0, newline);
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), request.size);
    if (newline == std::string_view::npos || digits.empty() || ec != std::errc() ||
        end != digits.data() + digits.size()) {
        return make_error(Errc::corrupt, "malformed scan request");
    }
    request.path = std::string(text.substr(newline + 1));
    return request;
}

std::string answer_to_wire(const ScanAnswer& answer) {
    json results = json::array();
    for (const auto& result : answer.results) {
        results.push_back(result_to_json(result));
    }
    return json{{"results", std::move(results)}, {"retire", answer.retire}}.dump(
        -1, ' ', false, json::error_handler_t::replace);
}

Expected<ScanAnswer> answer_from_wire(std::string_view text) {
    return decode<ScanAnswer>(text, "scan answer", [](const json& in) {
        ScanAnswer answer;
        for (const auto& result : in.at("results")) {
            answer.results.push_back(result_from_json(result));
        }
        answer.retire = in.at("retire").get<bool>();
        return answer;
    });
}

} // namespace coldscan::signatures::detail
