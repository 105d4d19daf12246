// The service's retro-hunt (docs/signature-updates.md): after a signature reload, and on POST /v1/retro-hunt,
// the cache's verdicts are compared with the hash lines the current set added; every image that holds newly
// detected content gets an alert and a "retro_hunt" section in its latest report, so the power-on gate,
// which reads that report, refuses it as it would after a scan.
#include "coldscan/common/text.hpp"
#include "coldscan/reports/report.hpp"
#include "coldscan/scanner/retro_hunt.hpp"
#include "coldscan/scheduler/api_json.hpp"
#include "service_impl.hpp"

#include <fstream>
#include <nlohmann/json.hpp>

namespace coldscan::scheduler {
namespace {

using json = nlohmann::json;

// One newly detected content at one place, for an alert and a report.
struct HuntHit {
    const scanner::RetroHit* hit = nullptr;
    const scanner::ContentPlace* place = nullptr;
};

json finding_json(const HuntHit& finding, const std::string& signature) {
    json out{{"device", utf8_or_escaped(finding.place->device)},
             {"path", utf8_or_escaped(finding.place->path)},
             {"signature", utf8_or_escaped(signature)},
             {"sha256", to_hex(finding.hit->content)},
             {"seen", finding.place->seen}};
    if (!is_valid_utf8(finding.place->path)) {
        out["path_hex"] = hex_encode(finding.place->path);
    }
    return out;
}

bool names_target(const JobRecord& record, const std::string& target) {
    return record.request.target == target ||
           std::ranges::any_of(record.request.disks,
                               [&](const JobDisk& disk) { return disk.path == target; });
}

// Adds the findings to a report file (written whole under a temporary name, then renamed).
Expected<void> add_to_report(const std::filesystem::path& path, const json& entries) {
    std::ifstream in(path, std::ios::binary);
    json report = json::parse(in, nullptr, false);
    if (report.is_discarded() || !report.is_object()) {
        return make_error(Errc::corrupt, "report " + path.string() + " does not parse");
    }
    json& section = report["retro_hunt"];
    if (!section.is_array()) {
        section = json::array();
    }
    for (const auto& entry : entries) {
        section.push_back(entry);
    }
    auto temporary = path;
    temporary += ".partial";
    {
        std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
        out << report.dump(2, ' ', false, json::error_handler_t::replace) << '\n';
        if (!out.flush()) {
            return make_error(Errc::io, "cannot write " + temporary.string());
        }
    }
    std::error_code ec;
    std::filesystem::rename(temporary, path, ec);
    if (ec) {
        return make_error(Errc::io, "cannot rename " + temporary.string() + ": " + ec.message());
    }
    return {};
}

} // namespace

Expected<std::string> ScanService::Impl::retro_hunt() {
    std::shared_ptr<const signatures::SignatureSet> signatures;
    {
        std::lock_guard lock(m_mutex);
        signatures = m_signatures;
    }
    auto hunt = scanner::retro_hunt(*store, *signatures);
    if (!hunt) {
        return std::unexpected(hunt.error());
    }
    const std::string at = reports::utc_now_iso8601();
    std::map<std::string, std::vector<HuntHit>> by_target;
    for (const auto& hit : hunt->hits) {
        for (const auto& place : hit.places) {
            by_target[place.target].push_back(HuntHit{&hit, &place});
        }
    }
    std::uint64_t alerts = 0;
    json reports_updated = json::array();
    std::optional<std::vector<JobRecord>> succeeded; // listed once, when a report is first to be updated
    for (const auto& [target, findings] : by_target) {
        json fresh = json::array(); // findings not alerted before: into the alert and the report
        {
            std::lock_guard lock(m_alert_mutex);
            for (const HuntHit& finding : findings) {
                for (const auto& signature : finding.hit->signatures) {
                    const std::string id = "retro-hunt:" + target + ":" + finding.place->device + ":" +
                                           finding.place->path + ":" + to_hex(finding.hit->content) + ":" +
                                           signature;
                    if (m_alert_ids.contains(id)) {
                        continue;
                    }
                    json entry = finding_json(finding, signature);
                    const json alert{{"alert_id", id},
                                     {"kind", "retro_hunt"},
                                     {"target", utf8_or_escaped(target)},
                                     {"signature_set", signatures->fingerprint()},
                                     {"at", at},
                                     {"detections", json::array({entry})}};
                    if (append_alert_locked(id, alert.dump(-1, ' ', false, json::error_handler_t::replace))) {
                        ++alerts;
                        entry["found_at"] = at;
                        entry["signature_set"] = signatures->fingerprint();
                        fresh.push_back(std::move(entry));
                    }
                }
            }
        }
        if (fresh.empty()) {
            continue;
        }
        std::lock_guard lock(m_mutex);
        if (!succeeded) {
            auto records = queue->list(JobStatus::succeeded);
            if (!records) {
                return std::unexpected(records.error());
            }
            succeeded = std::move(*records);
        }
        const JobRecord* latest = nullptr;
        for (const auto& record : *succeeded) {
            if (record.report_path && names_target(record, target) &&
                (latest == nullptr || record.updated_at >= latest->updated_at)) {
                latest = &record;
            }
        }
        if (latest == nullptr) {
            continue; // scanned by the CLI into this cache, or its jobs were removed: the alert says it
        }
        if (auto added = add_to_report(*latest->report_path, fresh); !added) {
            spdlog::error("retro-hunt: job {}: {}", latest->id, added.error().message);
            continue;
        }
        m_verdicts.erase(latest->id); // read again: the gate sees the findings
        reports_updated.push_back(latest->id);
    }
    spdlog::info("retro-hunt: {} content(s) newly detected, {} alert(s) raised", hunt->hits.size(), alerts);
    json answer = json::parse(scanner::retro_hunt_json(*hunt));
    answer["alerts_raised"] = alerts;
    answer["reports_updated"] = std::move(reports_updated);
    {
        std::lock_guard lock(m_mutex);
        m_last_retro_hunt = json{{"at", api::format_iso8601(service_now())}, {"result", answer}}.dump();
    }
    return answer.dump(2);
}

} // namespace coldscan::scheduler
