#include "coldscan/reports/json_report.hpp"

#include "coldscan/common/replace_file.hpp"
#include "coldscan/common/text.hpp"

#include <cerrno>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unistd.h>

namespace coldscan::reports {
namespace {

using nlohmann::json;

// Guest-derived strings: valid UTF-8 as is; otherwise escaped, with the exact bytes in "<key>_hex".
void put_guest_string(json& object, const std::string& key, const std::string& value) {
    if (is_valid_utf8(value)) {
        object[key] = value;
        return;
    }
    object[key] = utf8_or_escaped(value);
    object[key + "_hex"] = hex_encode(value);
}

json counts_json(const Counts& c) {
    return json{{"files", c.files},
                {"bytes", c.bytes},
                {"clean", c.clean},
                {"infected", c.infected},
                {"limit_exceeded", c.limit_exceeded},
                {"errors", c.errors},
                {"skipped", c.skipped},
                {"hardlinks", c.hardlinks}};
}

json layers_json(const std::vector<LayerReport>& layers) {
    json out = json::array();
    for (const auto& layer : layers) {
        json l;
        put_guest_string(l, "path", layer.path);
        l["format"] = layer.format;
        l["virtual_size"] = layer.virtual_size;
        l["file_size"] = layer.file_size;
        out.push_back(std::move(l));
    }
    return out;
}

json target_json(const TargetReport& t) {
    json j;
    put_guest_string(j, "path", t.path);
    j["kind"] = to_string(t.kind);
    j["status"] = to_string(t.status);
    if (t.status == RunStatus::failed || t.status == RunStatus::inconsistent) {
        j["error"] = utf8_or_escaped(t.error);
    }
    if (t.kind == TargetKind::image) {
        j["format"] = t.format;
        j["virtual_size"] = t.virtual_size;
        j["backing_chain"] = layers_json(t.backing_chain);
        if (!t.disks.empty()) {
            j["disks"] = layers_json(t.disks);
        }
        j["accel"] = t.accel;
        json inspection = json::array();
        for (const auto& os : t.inspection) {
            json o;
            put_guest_string(o, "root", os.root);
            put_guest_string(o, "type", os.type);
            put_guest_string(o, "distro", os.distro);
            put_guest_string(o, "product_name", os.product_name);
            put_guest_string(o, "version", os.version);
            put_guest_string(o, "hostname", os.hostname);
            inspection.push_back(std::move(o));
        }
        j["inspection"] = std::move(inspection);
    }
    json filesystems = json::array();
    for (const auto& fs : t.filesystems) {
        json f;
        put_guest_string(f, "device", fs.device);
        put_guest_string(f, "type", fs.type);
        put_guest_string(f, "label", fs.label);
        put_guest_string(f, "uuid", fs.uuid);
        f["status"] = to_string(fs.status);
        if (!fs.reason.empty()) {
            f["reason"] = utf8_or_escaped(fs.reason);
        }
        f["files"] = fs.files;
        f["bytes"] = fs.bytes;
        f["timings"] = json{{"open_seconds", fs.open_seconds}, {"scan_seconds", fs.scan_seconds}};
        if (!fs.reader.empty()) {
            f["reader"] = fs.reader;
        }
        filesystems.push_back(std::move(f));
    }
    j["filesystems"] = std::move(filesystems);
    j["counts"] = counts_json(t.counts);
    j["timings"] = json{{"probe_seconds", t.probe_seconds},
                        {"launch_seconds", t.launch_seconds},
                        {"inspect_seconds", t.inspect_seconds},
                        {"scan_seconds", t.scan_seconds}};
    return j;
}

json detection_json(const DetectionRecord& d) {
    json j;
    put_guest_string(j, "target", d.target);
    put_guest_string(j, "device", d.device);
    put_guest_string(j, "path", d.path);
    j["engine"] = to_string(d.detection.engine);
    j["signature"] = utf8_or_escaped(d.detection.signature);
    if (d.detection.engine == Engine::yara) {
        json meta = json::object();
        for (const auto& [key, value] : d.detection.meta) {
            meta[utf8_or_escaped(key)] = utf8_or_escaped(value);
        }
        json tags = json::array();
        for (const auto& tag : d.detection.tags) {
            tags.push_back(utf8_or_escaped(tag));
        }
        j["yara"] = json{{"rule", utf8_or_escaped(d.detection.signature)},
                         {"namespace", utf8_or_escaped(d.detection.yara_namespace)},
                         {"tags", std::move(tags)},
                         {"meta", std::move(meta)}};
    }
    j["sha256"] = d.sha256;
    j["size"] = d.size;
    return j;
}

json issue_json(const IssueRecord& e) {
    json j;
    put_guest_string(j, "target", e.target);
    if (!e.device.empty()) {
        put_guest_string(j, "device", e.device);
    }
    if (!e.path.empty()) {
        put_guest_string(j, "path", e.path);
    }
    j["outcome"] = e.outcome;
    j["reason"] = utf8_or_escaped(e.reason);
    return j;
}

json signatures_json(const SignatureReport& s) {
    json j;
    j["fingerprint"] = s.fingerprint;
    j["engine_part"] = s.engine_part;
    j["detection_set"] = s.detection_set;
    if (s.clamav) {
        j["clamav"] = json{{"path", utf8_or_escaped(s.clamav->path)},
                           {"files", s.clamav->files},
                           {"signature_count", s.clamav->signature_count},
                           {"fingerprint", s.clamav->fingerprint},
                           {"engine_version", s.clamav->engine_version}};
    } else {
        j["clamav"] = nullptr;
    }
    if (s.yara) {
        j["yara"] = json{{"files", s.yara->files},
                         {"rule_count", s.yara->rule_count},
                         {"fingerprint", s.yara->fingerprint},
                         {"engine_version", s.yara->engine_version}};
    } else {
        j["yara"] = nullptr;
    }
    return j;
}

} // namespace

std::string signatures_to_json(const SignatureReport& signatures) {
    return signatures_json(signatures).dump();
}

std::string to_json(const Report& report) {
    json j;
    j["schema"] = "coldscan.report";
    j["schema_version"] = k_schema_version;
    j["tool"] = json{{"name", "coldscan"}, {"version", COLDSCAN_VERSION}};
    j["status"] = to_string(report.status);
    if (report.interrupted) {
        j["interrupted"] = true;
    }
    j["started_at"] = report.started_at;
    j["finished_at"] = report.finished_at;
    const auto& o = report.options;
    j["options"] = json{{"threads", o.threads},
                        {"accel", o.accel},
                        {"limits", json{{"max_file_size", o.max_file_size},
                                        {"max_scan_size", o.max_scan_size},
                                        {"max_recursion", o.max_recursion},
                                        {"max_files", o.max_files},
                                        {"max_scan_time_ms", o.max_scan_time_ms},
                                        {"yara_timeout_s", o.yara_timeout_s}}},
                        {"limit_policy", to_string(o.limit_policy)}};
    j["signatures"] = signatures_json(report.signatures);
    j["targets"] = json::array();
    for (const auto& target : report.targets) {
        j["targets"].push_back(target_json(target));
    }
    j["detections"] = json::array();
    for (const auto& detection : report.detections) {
        j["detections"].push_back(detection_json(detection));
    }
    j["counts"] = counts_json(report.counts);
    j["errors"] = json::array();
    for (const auto& issue : report.errors) {
        j["errors"].push_back(issue_json(issue));
    }
    const auto& cache = report.cache;
    j["cache"] = json{{"enabled", cache.enabled},
                      {"path", utf8_or_escaped(cache.path)},
                      {"problem", utf8_or_escaped(cache.problem)},
                      {"identity_hits", cache.identity_hits},
                      {"identity_misses", cache.identity_misses},
                      {"verdict_hits", cache.verdict_hits},
                      {"verdict_misses", cache.verdict_misses},
                      {"verdicts_written", cache.verdicts_written},
                      {"files_not_read", cache.files_not_read},
                      {"bytes_not_read", cache.bytes_not_read},
                      {"files_not_scanned", cache.files_not_scanned},
                      {"bytes_not_scanned", cache.bytes_not_scanned},
                      {"same_content_waits", cache.same_content_waits},
                      {"engine_scans", cache.engine_scans},
                      {"block_hits", cache.block_hits},
                      {"block_misses", cache.block_misses},
                      {"files_reused_by_blocks", cache.files_reused_by_blocks},
                      {"bytes_reused_by_blocks", cache.bytes_reused_by_blocks},
                      {"detection_set", cache.detection_set},
                      {"lineage", cache.lineage},
                      {"verdicts_carried", cache.verdicts_carried},
                      {"verdicts_rechecked", cache.verdicts_rechecked},
                      {"verdicts_outdated", cache.verdicts_outdated}};
    j["timings"] = json{{"total_seconds", report.total_seconds},
                        {"signature_load_seconds", report.signature_load_seconds},
                        {"signature_wait_seconds", report.signature_wait_seconds}};
    return j.dump(2) + "\n";
}

Expected<void> write_json_file(const Report& report, const std::filesystem::path& path) {
    if (auto written = replace_file(path, to_json(report)); !written) {
        return make_error(Errc::io, "cannot write the report: " + written.error().message);
    }
    return {};
}

std::string inventory_line(const InventoryRecord& r) {
    json j;
    put_guest_string(j, "target", r.target);
    put_guest_string(j, "device", r.device);
    put_guest_string(j, "path", r.path);
    j["size"] = r.size;
    j["sha256"] = r.sha256 ? json(*r.sha256) : json(nullptr);
    j["outcome"] = to_string(r.outcome);
    if (r.outcome != OutcomeKind::clean && r.outcome != OutcomeKind::infected) {
        j["reason"] = utf8_or_escaped(r.reason);
    }
    if (!r.signatures.empty()) {
        json signatures = json::array();
        for (const auto& s : r.signatures) {
            signatures.push_back(utf8_or_escaped(s));
        }
        j["signatures"] = std::move(signatures);
    }
    if (r.hardlink_of) {
        put_guest_string(j, "hardlink_of", *r.hardlink_of);
    }
    return j.dump() + "\n";
}

Expected<InventoryWriter> InventoryWriter::open(const std::filesystem::path& path) {
    std::FILE* file = std::fopen(path.c_str(), "we");
    if (file == nullptr) {
        return make_error(Errc::io, errno_message("cannot write the inventory " + path.string()));
    }
    return InventoryWriter(file, path);
}

InventoryWriter::InventoryWriter(InventoryWriter&& other) noexcept
    : m_file(std::exchange(other.m_file, nullptr)), m_path(std::move(other.m_path)),
      m_failed(other.m_failed) {}

InventoryWriter::~InventoryWriter() {
    if (m_file != nullptr) {
        std::fclose(m_file);
    }
}

void InventoryWriter::write(const InventoryRecord& record) {
    const std::string line = inventory_line(record);
    if (std::fwrite(line.data(), 1, line.size(), m_file) != line.size()) {
        m_failed = true;
    }
}

Expected<void> InventoryWriter::close() {
    if (m_file == nullptr) {
        return {};
    }
    const bool flushed = std::fflush(m_file) == 0 && ::fsync(::fileno(m_file)) == 0;
    const bool closed = std::fclose(m_file) == 0;
    m_file = nullptr;
    if (m_failed || !flushed || !closed) {
        return make_error(Errc::io, "cannot write the inventory " + m_path.string());
    }
    return {};
}

Expected<void> check_writable(const std::filesystem::path& path) {
    const std::filesystem::path folder = path.has_parent_path() ? path.parent_path() : ".";
    std::error_code ec;
    if (!std::filesystem::is_directory(folder, ec)) {
        return make_error(Errc::invalid_argument, "cannot write " + path.string() + ": folder " +
                                                      folder.string() + " does not exist");
    }
    if (std::filesystem::is_directory(path, ec)) {
        return make_error(Errc::invalid_argument, "cannot write " + path.string() + ": it is a folder");
    }
    if (::access(folder.c_str(), W_OK) != 0) {
        return make_error(Errc::invalid_argument, errno_message("cannot write " + path.string()));
    }
    return {};
}

} // namespace coldscan::reports
