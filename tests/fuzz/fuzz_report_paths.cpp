// Guest file names (arbitrary bytes) on their way into reports: the inventory line, the JSON report and the
// clamscan-style text lines. Oracles: the JSON parses back (nlohmann), and each guest string reads back to
// its exact bytes (as is when valid UTF-8, else from "<key>_hex"); an inventory record is one line; text
// lines hold no control character, so a name cannot forge or break a line.
#include "coldscan/common/text.hpp"
#include "coldscan/reports/json_report.hpp"
#include "coldscan/reports/text_report.hpp"
#include "fuzz_support.hpp"

#include <nlohmann/json.hpp>

using coldscan::fuzz::FuzzInput;
using nlohmann::json;
namespace reports = coldscan::reports;

namespace {

std::string unhex(const std::string& hex) {
    std::string out;
    FUZZ_CHECK(hex.size() % 2 == 0);
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
    }
    return out;
}

// The exact bytes a guest string stands for in a JSON object.
void check_guest_string(const json& object, const std::string& key, const std::string& original) {
    FUZZ_CHECK(object.contains(key) && object[key].is_string());
    if (object.contains(key + "_hex")) {
        FUZZ_CHECK(!coldscan::is_valid_utf8(original));
        FUZZ_CHECK(unhex(object[key + "_hex"].get<std::string>()) == original);
    } else {
        FUZZ_CHECK(object[key].get<std::string>() == original);
    }
}

bool has_control(std::string_view text) {
    for (const char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7F) {
            return true;
        }
    }
    return false;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzInput in(data, size);
    const std::string target = in.string();
    const std::string device = in.string();
    const std::string path = in.string();
    const std::string reason = in.string();
    const std::string signature = in.string();
    const auto outcome = static_cast<coldscan::OutcomeKind>(in.integer<std::uint8_t>() % 5);
    const auto kind =
        in.integer<std::uint8_t>() % 2 == 0 ? reports::TargetKind::image : reports::TargetKind::directory;

    reports::InventoryRecord record;
    record.target = target;
    record.device = device;
    record.path = path;
    record.size = size;
    record.outcome = outcome;
    record.reason = reason;
    record.signatures = {signature};
    record.hardlink_of = path + "/" + device;
    const std::string line = reports::inventory_line(record);
    FUZZ_CHECK(line.ends_with('\n') && line.find('\n') == line.size() - 1);
    const json inventory = json::parse(line);
    check_guest_string(inventory, "target", target);
    check_guest_string(inventory, "device", device);
    check_guest_string(inventory, "path", path);
    check_guest_string(inventory, "hardlink_of", *record.hardlink_of);
    FUZZ_CHECK(inventory["outcome"].get<std::string>() == coldscan::to_string(outcome));

    reports::Report report;
    reports::TargetReport target_report;
    target_report.path = target;
    target_report.kind = kind;
    reports::FilesystemReport filesystem;
    filesystem.device = device;
    filesystem.label = reason;
    filesystem.uuid = signature;
    target_report.filesystems.push_back(filesystem);
    report.targets.push_back(target_report);
    reports::DetectionRecord detection;
    detection.target = target;
    detection.device = device;
    detection.path = path;
    detection.detection.engine =
        in.integer<std::uint8_t>() % 2 == 0 ? coldscan::Engine::clamav : coldscan::Engine::yara;
    detection.detection.signature = signature;
    detection.detection.tags = {reason};
    detection.detection.meta = {{reason, path}};
    report.detections.push_back(detection);
    reports::IssueRecord issue{target, device, path, std::string(coldscan::to_string(outcome)), reason};
    report.errors.push_back(issue);

    const json whole = json::parse(reports::to_json(report));
    FUZZ_CHECK(whole["detections"].size() == 1 && whole["errors"].size() == 1);
    check_guest_string(whole["targets"][0], "path", target);
    check_guest_string(whole["detections"][0], "path", path);
    check_guest_string(whole["detections"][0], "device", device);
    check_guest_string(whole["errors"][0], "target", target);
    if (!path.empty()) {
        check_guest_string(whole["errors"][0], "path", path);
    }

    for (const std::string& text :
         {reports::display_location(kind, target, device, path), reports::detection_line(kind, detection),
          reports::issue_line(kind, issue), reports::summary(report)}) {
        // The summary is several lines of our own; no guest byte may add one.
        const std::string_view body = text;
        std::size_t begin = 0;
        while (begin <= body.size()) {
            const auto end = body.find('\n', begin);
            FUZZ_CHECK(!has_control(body.substr(begin, end - begin)));
            if (end == std::string_view::npos) {
                break;
            }
            begin = end + 1;
        }
    }
    FUZZ_CHECK(reports::detection_line(kind, detection).find('\n') == std::string::npos);
    FUZZ_CHECK(reports::issue_line(kind, issue).find('\n') == std::string::npos);
    return 0;
}
