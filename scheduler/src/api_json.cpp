#include "coldscan/scheduler/api_json.hpp"

#include "coldscan/disk/image_probe.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <limits>
#include <nlohmann/json.hpp>
#include <type_traits>

namespace coldscan::scheduler::api {
namespace {

using nlohmann::json;
using nlohmann::ordered_json; // responses keep their keys in the documented order

std::string dump(const ordered_json& value) {
    return value.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
}

// A key or value named in an error message: short enough for one line.
std::string shown(std::string_view text) {
    constexpr std::size_t k_max = 64;
    return text.size() <= k_max ? std::string(text) : std::string(text.substr(0, k_max)) + "...";
}

ordered_json optional_time(const std::optional<TimePoint>& time) {
    return time ? ordered_json(format_iso8601(*time)) : ordered_json(nullptr);
}

ordered_json job_json(const JobView& view) {
    const JobRecord& record = view.record;
    ordered_json out = ordered_json::object();
    out["id"] = record.id;
    out["target"] = record.request.target;
    out["snapshot"] = record.request.snapshot;
    out["format"] = record.request.format;
    out["disks"] = ordered_json::array();
    for (const auto& disk : record.request.disks) {
        out["disks"].push_back(ordered_json{{"path", disk.path}, {"format", disk.format}});
    }
    out["priority"] = priority_name(record.request.priority);
    out["status"] = to_string(record.status);
    out["attempts"] = record.attempts;
    out["last_error"] = record.last_error;
    out["submitted_at"] = format_iso8601(record.submitted_at);
    out["updated_at"] = format_iso8601(record.updated_at);
    out["host"] = view.host.empty() ? record.request.host : view.host;
    out["datastore"] = view.datastore;
    out["node"] = record.node; // the node that runs or ran it ("" while queued)
    out["requested_by"] = record.request.requested_by;
    out["signature_set"] = record.signature_set;
    if (view.progress) {
        out["progress"] = ordered_json{{"phase", view.progress->phase},
                                       {"files_done", view.progress->files_done},
                                       {"bytes_done", view.progress->bytes_done},
                                       {"seconds", view.progress->seconds}};
    } else {
        out["progress"] = nullptr;
    }
    if (view.verdict) {
        out["verdict"] = ordered_json{{"status", view.verdict->status},
                                      {"exit_status", view.verdict->exit_status},
                                      {"files", view.verdict->files},
                                      {"detections", view.verdict->detections},
                                      {"not_fully_scanned", view.verdict->not_fully_scanned},
                                      {"limit_exceeded", view.verdict->limit_exceeded},
                                      {"signature_set", view.verdict->signature_set}};
    } else {
        out["verdict"] = nullptr;
    }
    return out;
}

std::string string_or_empty(const json& object, const char* key) {
    const auto found = object.find(key);
    return found != object.end() && found->is_string() ? found->get<std::string>() : std::string();
}

template <typename T> T number_or(const json& object, const char* key, T fallback) {
    const auto found = object.find(key);
    if (found == object.end() || !found->is_number()) {
        return fallback;
    }
    if constexpr (std::is_floating_point_v<T>) {
        return found->get<T>();
    } else if constexpr (std::is_signed_v<T>) {
        return found->is_number_integer() ? found->get<T>() : fallback;
    } else {
        return found->is_number_unsigned() ? found->get<T>() : fallback;
    }
}

Expected<JobView> job_from_json(const json& in) {
    if (!in.is_object()) {
        return make_error(Errc::invalid_argument, "a job must be a JSON object");
    }
    JobView view;
    JobRecord& record = view.record;
    record.id = string_or_empty(in, "id");
    const auto status = parse_job_status(string_or_empty(in, "status"));
    if (record.id.empty() || !status) {
        return make_error(Errc::invalid_argument, "a job needs an id and a known status");
    }
    record.status = *status;
    record.request.target = string_or_empty(in, "target");
    record.request.snapshot = string_or_empty(in, "snapshot");
    record.request.format = string_or_empty(in, "format");
    if (const auto disks = in.find("disks"); disks != in.end() && disks->is_array()) {
        for (const auto& disk : *disks) {
            if (disk.is_object()) {
                record.request.disks.push_back(
                    JobDisk{string_or_empty(disk, "path"), string_or_empty(disk, "format")});
            }
        }
    }
    record.request.priority = parse_priority(string_or_empty(in, "priority")).value_or(Priority::on_demand);
    record.request.requested_by = string_or_empty(in, "requested_by");
    record.node = string_or_empty(in, "node");
    record.request.host = string_or_empty(in, "host");
    record.signature_set = string_or_empty(in, "signature_set");
    record.attempts = number_or<unsigned>(in, "attempts", 0);
    record.last_error = string_or_empty(in, "last_error");
    record.submitted_at = parse_iso8601(string_or_empty(in, "submitted_at")).value_or(0);
    record.updated_at = parse_iso8601(string_or_empty(in, "updated_at")).value_or(0);
    view.host = record.request.host;
    view.datastore = string_or_empty(in, "datastore");
    if (const auto progress = in.find("progress"); progress != in.end() && progress->is_object()) {
        view.progress = JobProgress{
            string_or_empty(*progress, "phase"), number_or<std::uint64_t>(*progress, "files_done", 0),
            number_or<std::uint64_t>(*progress, "bytes_done", 0), number_or<double>(*progress, "seconds", 0)};
    }
    if (const auto verdict = in.find("verdict"); verdict != in.end() && verdict->is_object()) {
        view.verdict = JobVerdict{string_or_empty(*verdict, "status"),
                                  number_or<int>(*verdict, "exit_status", 2),
                                  number_or<std::uint64_t>(*verdict, "files", 0),
                                  number_or<std::uint64_t>(*verdict, "detections", 0),
                                  number_or<std::uint64_t>(*verdict, "not_fully_scanned", 0),
                                  number_or<std::uint64_t>(*verdict, "limit_exceeded", 0),
                                  string_or_empty(*verdict, "signature_set")};
    }
    return view;
}

json parse_or_discarded(std::string_view body) {
    try {
        return json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
    } catch (const std::exception&) {
        return json(json::value_t::discarded);
    }
}

// Shortest text that reads back as the same double; Prometheus spells the special values its own way.
std::string number_text(double value) {
    if (std::isnan(value)) {
        return "NaN";
    }
    if (std::isinf(value)) {
        return value > 0 ? "+Inf" : "-Inf";
    }
    char buffer[64];
    const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
    return ec == std::errc() ? std::string(buffer, end) : std::string("NaN");
}

// The exposition text, one metric family at a time.
class Exposition {
public:
    void family(std::string_view name, std::string_view type, std::string_view help) {
        m_text.append("# HELP ").append(name).append(" ").append(help).append("\n");
        m_text.append("# TYPE ").append(name).append(" ").append(type).append("\n");
    }
    void sample(std::string_view name, std::string_view value) {
        m_text.append(name).append(" ").append(value).append("\n");
    }
    void sample(std::string_view name, std::string_view label, std::string_view label_value,
                std::string_view value) {
        m_text.append(name).append("{").append(label).append("=\"");
        m_text.append(escape_label_value(label_value)).append("\"} ").append(value).append("\n");
    }
    void counter(std::string_view name, std::string_view help, std::uint64_t value) {
        family(name, "counter", help);
        sample(name, std::to_string(value));
    }
    [[nodiscard]] std::string take() { return std::move(m_text); }

private:
    std::string m_text;
};

} // namespace

std::string_view priority_name(Priority priority) {
    switch (priority) {
    case Priority::gate:
        return "gate";
    case Priority::on_demand:
        return "on-demand";
    case Priority::nightly:
        return "nightly";
    }
    return "unknown";
}

std::string format_iso8601(std::int64_t unix_seconds) {
    const auto time = static_cast<std::time_t>(unix_seconds);
    std::tm utc{};
    if (::gmtime_r(&time, &utc) == nullptr) {
        return "1970-01-01T00:00:00Z";
    }
    char text[64];
    const std::size_t length = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
    return std::string(text, length);
}

std::string format_iso8601(TimePoint time) {
    return format_iso8601(std::chrono::floor<std::chrono::seconds>(time).time_since_epoch().count());
}

std::optional<std::int64_t> parse_iso8601(std::string_view text) {
    // YYYY-MM-DDTHH:MM:SSZ
    if (text.size() != 20) {
        return std::nullopt;
    }
    const auto field = [&](std::size_t at, std::size_t length) -> std::optional<int> {
        int value = 0;
        const auto [end, ec] = std::from_chars(text.data() + at, text.data() + at + length, value);
        if (ec != std::errc() || end != text.data() + at + length || text[at] == '-' || text[at] == '+') {
            return std::nullopt;
        }
        return value;
    };
    const auto year = field(0, 4);
    const auto month = field(5, 2);
    const auto day = field(8, 2);
    const auto hour = field(11, 2);
    const auto minute = field(14, 2);
    const auto second = field(17, 2);
    if (!year || !month || !day || !hour || !minute || !second || text[4] != '-' || text[7] != '-' ||
        text[10] != 'T' || text[13] != ':' || text[16] != ':' || text[19] != 'Z') {
        return std::nullopt;
    }
    std::tm utc{};
    utc.tm_year = *year - 1900;
    utc.tm_mon = *month - 1;
    utc.tm_mday = *day;
    utc.tm_hour = *hour;
    utc.tm_min = *minute;
    utc.tm_sec = *second;
    const std::int64_t seconds = ::timegm(&utc);
    // timegm normalises out-of-range fields (month 13, February 30): only a date that reads back is one.
    if (format_iso8601(seconds) != text) {
        return std::nullopt;
    }
    return seconds;
}

namespace {

// A string a request may carry: no NUL byte (`what` names it in the error); empty only when `may_be_empty`.
Expected<std::string> request_string(const json& value, const std::string& what, bool may_be_empty) {
    if (!value.is_string()) {
        return make_error(Errc::invalid_argument, what + " must be a string");
    }
    const auto& text = value.get_ref<const std::string&>();
    if ((!may_be_empty && text.empty()) || text.find('\0') != std::string::npos) {
        return make_error(Errc::invalid_argument,
                          what + (may_be_empty ? " has a NUL byte" : " is empty or has a NUL byte"));
    }
    return text;
}

Expected<std::string> request_format(const json& value, const std::string& what) {
    if (!value.is_string() || (!value.get_ref<const std::string&>().empty() &&
                               !disk::is_supported_format(value.get_ref<const std::string&>()))) {
        return make_error(Errc::invalid_argument,
                          what + " must be one of qcow2, vmdk, vhdx, vdi, vpc, qed, raw (or \"\")");
    }
    return value.get<std::string>();
}

Expected<std::vector<std::string>> parse_targets(const json& value) {
    if (!value.is_array()) {
        return make_error(Errc::invalid_argument, "targets must be an array of strings");
    }
    if (value.size() > k_max_targets) {
        return make_error(Errc::invalid_argument, "too many targets: " + std::to_string(value.size()) +
                                                      " (at most " + std::to_string(k_max_targets) +
                                                      " per request)");
    }
    std::vector<std::string> targets;
    for (const auto& target : value) {
        if (!target.is_string()) {
            return make_error(Errc::invalid_argument, "targets must be an array of strings");
        }
        auto text = request_string(target, "targets[" + std::to_string(targets.size()) + "]", false);
        if (!text) {
            return std::unexpected(text.error());
        }
        targets.push_back(std::move(*text));
    }
    return targets;
}

Expected<JobDisk> parse_vm_disk(const json& value, const std::string& where) {
    if (!value.is_object()) {
        return make_error(Errc::invalid_argument, where + " must be an object {\"path\", \"format\"}");
    }
    JobDisk disk;
    for (const auto& [key, field] : value.items()) {
        if (key == "path") {
            auto path = request_string(field, where + ".path", false);
            if (!path) {
                return std::unexpected(path.error());
            }
            disk.path = std::move(*path);
        } else if (key == "format") {
            auto format = request_format(field, where + ".format");
            if (!format) {
                return std::unexpected(format.error());
            }
            disk.format = std::move(*format);
        } else {
            return make_error(Errc::invalid_argument,
                              "unknown key \"" + shown(key) + "\" in " + where + " (known: path, format)");
        }
    }
    if (disk.path.empty()) {
        return make_error(Errc::invalid_argument, where + " has no path");
    }
    return disk;
}

// {"name": NAME, "disks": [{"path", "format"}...]} -> a request for "vm:NAME" (NAME: the first disk's path
// when not given).
Expected<ScanRequest> parse_vm(const json& value) {
    if (!value.is_object()) {
        return make_error(Errc::invalid_argument, "vm must be an object {\"name\", \"disks\"}");
    }
    ScanRequest vm;
    std::string name;
    for (const auto& [key, field] : value.items()) {
        if (key == "name") {
            auto text = request_string(field, "vm.name", false);
            if (!text) {
                return std::unexpected(text.error());
            }
            name = std::move(*text);
        } else if (key == "disks" && field.is_array() && field.size() <= k_max_vm_disks) {
            for (const auto& disk : field) {
                auto parsed = parse_vm_disk(disk, "vm.disks[" + std::to_string(vm.disks.size()) + "]");
                if (!parsed) {
                    return std::unexpected(parsed.error());
                }
                vm.disks.push_back(std::move(*parsed));
            }
        } else if (key == "disks") {
            return make_error(Errc::invalid_argument, "vm.disks must be an array of at most " +
                                                          std::to_string(k_max_vm_disks) + " disks");
        } else {
            return make_error(Errc::invalid_argument,
                              "unknown key \"" + shown(key) + "\" in vm (known: name, disks)");
        }
    }
    if (vm.disks.empty()) {
        return make_error(Errc::invalid_argument, "vm.disks must name at least one disk");
    }
    vm.target = "vm:" + (name.empty() ? vm.disks.front().path : name);
    return vm;
}

// One key of the body other than targets and vm, into what every request of the body shares.
Expected<void> parse_common_key(const std::string& key, const json& value, ScanRequest& common) {
    if (key == "priority") {
        const auto priority = value.is_string() ? parse_priority(value.get_ref<const std::string&>())
                                                : std::optional<Priority>();
        if (!priority) {
            return make_error(Errc::invalid_argument,
                              "priority must be \"gate\", \"on-demand\" or \"nightly\"");
        }
        common.priority = *priority;
    } else if (key == "snapshot" || key == "host" || key == "requested_by") {
        auto text = request_string(value, key, true);
        if (!text) {
            return std::unexpected(text.error());
        }
        (key == "snapshot" ? common.snapshot : key == "host" ? common.host : common.requested_by) = *text;
    } else if (key == "format") {
        auto format = request_format(value, "format");
        if (!format) {
            return std::unexpected(format.error());
        }
        common.format = std::move(*format);
    } else if (key == "max_age_seconds") {
        // Integers only; nlohmann keeps non-negative ones as unsigned.
        if (!value.is_number_unsigned() ||
            value.get<std::uint64_t>() >
                static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
            return make_error(Errc::invalid_argument,
                              "max_age_seconds must be a whole number of seconds >= 0");
        }
        common.max_age = std::chrono::seconds(static_cast<std::int64_t>(value.get<std::uint64_t>()));
    } else {
        return make_error(Errc::invalid_argument, "unknown key \"" + shown(key) +
                                                      "\" (known: targets, vm, priority, snapshot, format, "
                                                      "host, max_age_seconds, requested_by)");
    }
    return {};
}

} // namespace

Expected<std::vector<ScanRequest>> parse_scan_body(std::string_view body) {
    const json in = parse_or_discarded(body);
    if (in.is_discarded()) {
        return make_error(Errc::invalid_argument, "the body is not JSON");
    }
    if (!in.is_object()) {
        return make_error(Errc::invalid_argument, "the body must be a JSON object");
    }
    ScanRequest common;
    std::vector<std::string> targets;
    std::optional<ScanRequest> vm;
    for (const auto& [key, value] : in.items()) {
        if (key == "targets") {
            auto parsed = parse_targets(value);
            if (!parsed) {
                return std::unexpected(parsed.error());
            }
            targets = std::move(*parsed);
        } else if (key == "vm") {
            auto parsed = parse_vm(value);
            if (!parsed) {
                return std::unexpected(parsed.error());
            }
            vm = std::move(*parsed);
        } else if (auto parsed = parse_common_key(key, value, common); !parsed) {
            return std::unexpected(parsed.error());
        }
    }
    if (vm && !targets.empty()) {
        return make_error(Errc::invalid_argument, "a request names targets or one vm, not both");
    }
    if (vm) {
        if (!common.format.empty()) {
            return make_error(Errc::invalid_argument,
                              "a vm gives each disk's format in vm.disks, not format");
        }
        common.target = std::move(vm->target);
        common.disks = std::move(vm->disks);
        return std::vector<ScanRequest>{std::move(common)};
    }
    if (targets.empty()) {
        return make_error(Errc::invalid_argument,
                          "targets must name at least one image or libvirt:DOMAIN (or give a vm)");
    }
    std::vector<ScanRequest> requests;
    requests.reserve(targets.size());
    for (auto& target : targets) {
        ScanRequest request = common;
        request.target = std::move(target);
        requests.push_back(std::move(request));
    }
    return requests;
}

std::string scan_body(const ScanSubmission& submission) {
    ordered_json out = ordered_json::object();
    if (submission.vm_disks.empty()) {
        out["targets"] = submission.targets;
    } else {
        ordered_json disks = ordered_json::array();
        for (const auto& disk : submission.vm_disks) {
            disks.push_back(ordered_json{{"path", disk.path}, {"format", disk.format}});
        }
        out["vm"] = ordered_json{{"name", submission.vm_name}, {"disks", std::move(disks)}};
    }
    out["priority"] = priority_name(submission.priority);
    out["snapshot"] = submission.snapshot;
    if (!submission.format.empty()) {
        out["format"] = submission.format;
    }
    out["host"] = submission.host;
    out["requested_by"] = submission.requested_by;
    if (submission.max_age) {
        out["max_age_seconds"] = std::max<std::int64_t>(submission.max_age->count(), 0);
    }
    return dump(out);
}

std::string error_body(std::string_view message) {
    return dump(ordered_json{{"error", std::string(message)}});
}

std::optional<std::string> error_message(std::string_view body) {
    const json in = parse_or_discarded(body);
    if (!in.is_object()) {
        return std::nullopt;
    }
    const auto found = in.find("error");
    if (found == in.end() || !found->is_string()) {
        return std::nullopt;
    }
    return found->get<std::string>();
}

int http_status(Errc code) {
    switch (code) {
    case Errc::invalid_argument:
        return 400;
    case Errc::not_found:
        return 404;
    case Errc::forbidden:
        return 403;
    case Errc::unsafe_image:
        return 422;
    case Errc::cancelled:
        return 503;
    case Errc::conflict:
        return 409;
    default:
        return 500;
    }
}

std::string job_body(const JobView& job) {
    return dump(job_json(job));
}

std::string jobs_body(const std::vector<JobView>& jobs) {
    ordered_json list = ordered_json::array();
    for (const auto& job : jobs) {
        list.push_back(job_json(job));
    }
    return dump(ordered_json{{"jobs", std::move(list)}});
}

std::string jobs_page_body(const std::vector<JobView>& jobs, std::size_t total, std::size_t offset,
                           std::optional<std::size_t> limit) {
    ordered_json list = ordered_json::array();
    for (const auto& job : jobs) {
        list.push_back(job_json(job));
    }
    return dump(ordered_json{{"total", total},
                             {"offset", offset},
                             {"limit", limit ? ordered_json(*limit) : ordered_json(nullptr)},
                             {"jobs", std::move(list)}});
}

std::string submitted_body(const std::vector<SubmittedJob>& jobs) {
    ordered_json list = ordered_json::array();
    for (const auto& submitted : jobs) {
        list.push_back(job_json(submitted.job));
    }
    return dump(ordered_json{{"jobs", std::move(list)}});
}

Expected<JobView> parse_job_body(std::string_view body) {
    const json in = parse_or_discarded(body);
    if (in.is_discarded()) {
        return make_error(Errc::invalid_argument, "the answer is not JSON");
    }
    return job_from_json(in);
}

Expected<std::vector<JobView>> parse_jobs_body(std::string_view body) {
    const json in = parse_or_discarded(body);
    if (!in.is_object() || !in.contains("jobs") || !in["jobs"].is_array()) {
        return make_error(Errc::invalid_argument, "the answer is not a list of jobs");
    }
    std::vector<JobView> jobs;
    for (const auto& item : in["jobs"]) {
        auto job = job_from_json(item);
        if (!job) {
            return std::unexpected(job.error());
        }
        jobs.push_back(std::move(*job));
    }
    return jobs;
}

std::string nodes_body(const std::vector<NodeView>& nodes) {
    ordered_json list = ordered_json::array();
    for (const auto& node : nodes) {
        list.push_back(ordered_json{
            {"name", node.name},
            {"version", node.version},
            {"signature_set", node.signature_set},
            {"started", format_iso8601(std::chrono::time_point_cast<Duration>(node.started))},
            {"heartbeat", format_iso8601(std::chrono::time_point_cast<Duration>(node.heartbeat))},
            {"running_jobs", node.running_jobs},
            {"datastores", node.datastores},
            {"alive", node.alive},
        });
    }
    return dump(ordered_json{{"nodes", std::move(list)}});
}

std::string hosts_body(const std::vector<HostView>& hosts, const std::vector<DatastoreView>& datastores) {
    ordered_json host_list = ordered_json::array();
    for (const auto& host : hosts) {
        host_list.push_back(ordered_json{
            {"name", host.spec.name},
            {"max_concurrent_scans", host.spec.max_concurrent_scans},
            {"max_read_per_second", host.spec.max_read_bytes_per_second},
            {"pressure_threshold", host.spec.pressure_threshold},
            {"running", host.running},
            {"queued", host.queued},
            {"pressure", host.pressure ? ordered_json(*host.pressure) : ordered_json(nullptr)},
            {"probe_error", host.probe_error},
            {"throttled", host.throttled},
            {"throttled_seconds", host.throttled_seconds},
            {"bytes_read", host.bytes_read},
        });
    }
    ordered_json datastore_list = ordered_json::array();
    for (const auto& datastore : datastores) {
        datastore_list.push_back(ordered_json{
            {"name", datastore.spec.name},
            {"roots", datastore.spec.roots},
            {"hosts", datastore.spec.hosts},
            {"max_concurrent_scans", datastore.spec.max_concurrent_scans},
            {"max_read_per_second", datastore.spec.max_read_bytes_per_second},
            {"running", datastore.running},
            {"bytes_read", datastore.bytes_read},
        });
    }
    return dump(ordered_json{{"hosts", std::move(host_list)}, {"datastores", std::move(datastore_list)}});
}

namespace {

std::string time_of_day(std::chrono::minutes minutes) {
    char text[8];
    std::snprintf(text, sizeof text, "%02d:%02d", static_cast<int>(minutes.count() / 60),
                  static_cast<int>(minutes.count() % 60));
    return text;
}

// {"start": "HH:MM", "end": "HH:MM", "days": ["Mon", ...]} (UTC; end <= start wraps past midnight).
ordered_json window_json(const Window& window) {
    static constexpr std::array<const char*, 7> k_days{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    ordered_json days = ordered_json::array();
    for (unsigned day = 0; day < 7; ++day) {
        if (window.days().contains(std::chrono::weekday{day})) {
            days.push_back(k_days[day]);
        }
    }
    return ordered_json{
        {"start", time_of_day(window.start())}, {"end", time_of_day(window.end())}, {"days", days}};
}

} // namespace

std::string plan_body(const Plan& plan) {
    ordered_json jobs = ordered_json::array();
    for (const auto& entry : plan.jobs) {
        jobs.push_back(ordered_json{
            {"id", entry.id},
            {"host", entry.host},
            {"datastore", entry.datastore},
            {"priority", priority_name(entry.priority)},
            {"state", to_string(entry.state)},
            {"start", optional_time(entry.start)},
            {"finish", optional_time(entry.finish)},
            {"estimated_seconds", std::chrono::duration<double>(entry.estimated_run_time).count()},
        });
    }
    ordered_json windows = ordered_json::array();
    for (const Window& window : plan.nightly_windows) {
        windows.push_back(window_json(window));
    }
    return dump(ordered_json{{"now", format_iso8601(plan.now)},
                             {"all_done", optional_time(plan.all_done)},
                             {"windows", std::move(windows)},
                             {"jobs", std::move(jobs)}});
}

std::string reload_body(std::string_view signature_set) {
    return dump(ordered_json{{"signature_set", std::string(signature_set)}});
}

std::string health_body(const ServiceHealth& health, const JobCounts& counts) {
    ordered_json jobs = ordered_json::object();
    for (const JobStatus status : k_job_statuses) {
        const auto found = counts.find(status);
        jobs[std::string(to_string(status))] = found == counts.end() ? 0 : found->second;
    }
    return dump(ordered_json{
        {"status", health.accepting ? "ok" : "draining"},
        {"accepting", health.accepting},
        {"signature_set", health.signature_set},
        {"signatures_loaded_at", health.signatures_loaded_at},
        {"jobs", std::move(jobs)},
        {"damaged_job_records", health.damaged_job_records},
    });
}

std::string escape_label_value(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (const char c : value) {
        switch (c) {
        case '\\':
            out += "\\\\";
            break;
        case '"':
            out += "\\\"";
            break;
        case '\n':
            out += "\\n";
            break;
        default:
            out += c;
        }
    }
    return out;
}

void node_metrics(Exposition& out, const std::vector<NodeView>& nodes) {
    if (nodes.empty()) {
        return;
    }
    std::size_t alive = 0;
    std::size_t running = 0;
    out.family("coldscan_node_running_jobs", "gauge",
               "Jobs each node of the fleet runs, as it last reported.");
    for (const auto& node : nodes) {
        out.sample("coldscan_node_running_jobs", "node", node.name, std::to_string(node.running_jobs));
        alive += node.alive ? 1 : 0;
        running += node.alive ? node.running_jobs : 0;
    }
    out.family("coldscan_nodes", "gauge",
               "Nodes of the fleet by state (silent: no report within its lease).");
    out.sample("coldscan_nodes", "state", "alive", std::to_string(alive));
    out.sample("coldscan_nodes", "state", "silent", std::to_string(nodes.size() - alive));
    out.family("coldscan_fleet_running_jobs", "gauge", "Jobs the fleet's alive nodes run.");
    out.sample("coldscan_fleet_running_jobs", std::to_string(running));
}

std::string metrics_text(const ServiceCounters& counters, const std::vector<HostView>& hosts,
                         const std::vector<DatastoreView>& datastores, const JobCounts& counts,
                         const std::vector<NodeView>& nodes) {
    Exposition out;
    out.family("coldscan_jobs", "gauge", "Jobs in the queue by state.");
    for (const JobStatus status : k_job_statuses) {
        const auto found = counts.find(status);
        out.sample("coldscan_jobs", "state", to_string(status),
                   std::to_string(found == counts.end() ? 0 : found->second));
    }
    out.counter("coldscan_jobs_submitted_total", "Jobs submitted since the service started.",
                counters.jobs_submitted);
    out.counter("coldscan_jobs_succeeded_total", "Jobs that finished their scan since the service started.",
                counters.jobs_succeeded);
    out.counter("coldscan_job_failures_total", "Scan attempts that failed since the service started.",
                counters.jobs_failed);
    out.counter("coldscan_files_scanned_total", "Files scanned since the service started.",
                counters.files_scanned);
    out.counter("coldscan_bytes_scanned_total", "Bytes scanned since the service started.",
                counters.bytes_scanned);
    out.counter("coldscan_cache_hits_total", "Files whose verdict came from the verdict cache.",
                counters.cache_hits);
    out.counter("coldscan_engine_scans_total", "Contents scanned by the engines.", counters.engine_scans);
    out.counter("coldscan_detections_total", "Detections since the service started.", counters.detections);
    out.counter("coldscan_signature_reloads_total", "Signature reloads that succeeded.",
                counters.signature_reloads);
    out.counter("coldscan_signature_reload_failures_total", "Signature reloads that failed.",
                counters.signature_reload_failures);
    out.counter("coldscan_job_queue_write_errors_total", "Job state changes the job queue could not record.",
                counters.job_queue_write_errors);

    out.family("coldscan_host_running_scans", "gauge", "Scans running on the host's images.");
    for (const auto& host : hosts) {
        out.sample("coldscan_host_running_scans", "host", host.spec.name, std::to_string(host.running));
    }
    out.family("coldscan_host_max_concurrent_scans", "gauge", "The host's cap on concurrent scans.");
    for (const auto& host : hosts) {
        out.sample("coldscan_host_max_concurrent_scans", "host", host.spec.name,
                   std::to_string(host.spec.max_concurrent_scans));
    }
    out.family("coldscan_host_pressure", "gauge",
               "The host's last load reading (0..1); absent when unknown.");
    for (const auto& host : hosts) {
        if (host.pressure) {
            out.sample("coldscan_host_pressure", "host", host.spec.name, number_text(*host.pressure));
        }
    }
    out.family("coldscan_host_throttled", "gauge", "1 while the host is above its pressure threshold.");
    for (const auto& host : hosts) {
        out.sample("coldscan_host_throttled", "host", host.spec.name, host.throttled ? "1" : "0");
    }
    out.family("coldscan_host_throttled_seconds_total", "counter", "Seconds the host spent throttled.");
    for (const auto& host : hosts) {
        out.sample("coldscan_host_throttled_seconds_total", "host", host.spec.name,
                   number_text(host.throttled_seconds));
    }
    out.family("coldscan_host_bytes_read_total", "counter", "Bytes scans read from the host's images.");
    for (const auto& host : hosts) {
        out.sample("coldscan_host_bytes_read_total", "host", host.spec.name, std::to_string(host.bytes_read));
    }
    out.family("coldscan_datastore_running_scans", "gauge", "Scans running on the datastore's images.");
    for (const auto& datastore : datastores) {
        out.sample("coldscan_datastore_running_scans", "datastore", datastore.spec.name,
                   std::to_string(datastore.running));
    }
    out.family("coldscan_datastore_bytes_read_total", "counter", "Bytes scans read from the datastore.");
    for (const auto& datastore : datastores) {
        out.sample("coldscan_datastore_bytes_read_total", "datastore", datastore.spec.name,
                   std::to_string(datastore.bytes_read));
    }
    node_metrics(out, nodes);
    return out.take();
}

int exit_status_of(const std::vector<JobView>& jobs) {
    if (jobs.empty()) {
        return 2;
    }
    bool complete = true;
    for (const auto& job : jobs) {
        if (job.verdict && (job.verdict->detections > 0 || job.verdict->exit_status == 1)) {
            return 1;
        }
        if (job.record.status != JobStatus::succeeded || !job.verdict || job.verdict->exit_status != 0) {
            complete = false;
        }
    }
    return complete ? 0 : 2;
}

} // namespace coldscan::scheduler::api
