#include "gate_command.hpp"

#include "client.hpp"
#include "coldscan/common/log.hpp"
#include "coldscan/common/text.hpp"
#include "vm_targets.hpp"

#include <cstdio>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

namespace coldscan::cli {

struct GateCommandOptions {
    ClientOptions client;
    std::vector<std::string> targets;
    std::string domain_xml;
    std::string format;
    std::string max_age = "24h";
    std::string on_error = "deny";
    std::string timeout = "2h";
};

std::shared_ptr<GateCommandOptions> add_gate_command(CLI::App& app) {
    auto o = std::make_shared<GateCommandOptions>();
    auto* gate = app.add_subcommand(
        "gate",
        "Allow or deny a VM's start: scan its disks through the scan service (0 allow, 1 deny, 2 error)");
    gate->add_option("TARGET", o->targets, "Disk images or libvirt:DOMAIN");
    gate->add_option("--domain-xml", o->domain_xml,
                     "A libvirt domain's XML (- for stdin): gate every disk in it");
    gate->add_option("--format", o->format,
                     "Image format of every TARGET (default: safe detection; --domain-xml and "
                     "libvirt:DOMAIN disks: the XML's <driver type>)")
        ->check(CLI::IsMember({"qcow2", "vmdk", "vhdx", "vdi", "vpc", "qed", "raw"}));
    gate->add_option("--max-age", o->max_age, "Reuse a verdict younger than this (default 24h)");
    gate->add_option("--on-error", o->on_error, "deny (the default) or allow when no verdict can be had")
        ->check(CLI::IsMember({"deny", "allow"}));
    gate->add_option("--timeout", o->timeout, "Give up waiting for the scans after this long (default 2h)");
    add_client_options(*gate, o->client);
    return o;
}

namespace {

using nlohmann::json;
using scheduler::JobStatus;
using scheduler::JobView;

constexpr std::size_t k_detections_shown = 5;

// "DEVICE:PATH (DETAIL) in TARGET" for each entry of the job's report list `key` that `keep` accepts, DETAIL
// being the entry's `detail` field; one line saying so when the report cannot be read (count entries).
template <typename Keep>
std::vector<std::string> report_entries(ApiClient& client, const JobView& job, const char* key,
                                        const char* detail, std::uint64_t count, Keep&& keep) {
    const std::string target = printable(job.record.request.target);
    auto report = client.get("/v1/scans/" + job.record.id + "/report");
    const json parsed = report ? json::parse(*report, nullptr, false) : json();
    if (!parsed.is_object() || !parsed.contains(key) || !parsed[key].is_array()) {
        return {std::to_string(count) + " in " + target + " (its report could not be read" +
                (report ? std::string(")") : ": " + printable(report.error().message) + ")")};
    }
    std::vector<std::string> found;
    for (const auto& entry : parsed[key]) {
        if (!entry.is_object() || !keep(entry)) {
            continue;
        }
        const auto text = [&](const char* name) {
            return entry.contains(name) && entry[name].is_string() ? entry[name].get<std::string>()
                                                                   : std::string();
        };
        std::string where = text("device");
        where += (where.empty() ? "" : ":") + text("path");
        found.push_back(printable(where) + " (" + printable(text(detail)) + ") in " + target);
    }
    return found;
}

// "PATH (SIGNATURE) in TARGET" for each detection the job's report lists.
std::vector<std::string> detections_of(ApiClient& client, const JobView& job) {
    return report_entries(client, job, "detections", "signature", job.verdict ? job.verdict->detections : 0,
                          [](const json&) { return true; });
}

// "PATH (REASON) in TARGET" for each file the limits kept from being scanned in full.
std::vector<std::string> limit_hits_of(ApiClient& client, const JobView& job) {
    return report_entries(
        client, job, "errors", "reason", job.verdict ? job.verdict->limit_exceeded : 0,
        [](const json& entry) { return entry.contains("outcome") && entry["outcome"] == "LIMIT_EXCEEDED"; });
}

// "DEVICE: REASON" for each filesystem the job's report says failed (not read, so never clean).
std::vector<std::string> failed_filesystems_of(ApiClient& client, const JobView& job) {
    auto report = client.get("/v1/scans/" + job.record.id + "/report");
    const json parsed = report ? json::parse(*report, nullptr, false) : json();
    std::vector<std::string> failed;
    if (!parsed.is_object() || !parsed.contains("targets") || !parsed["targets"].is_array()) {
        return failed;
    }
    for (const auto& target : parsed["targets"]) {
        if (!target.is_object() || !target.contains("filesystems") || !target["filesystems"].is_array()) {
            continue;
        }
        for (const auto& fs : target["filesystems"]) {
            if (fs.is_object() && fs.value("status", "") == "failed") {
                failed.push_back(printable(fs.value("device", "")) + ": " +
                                 printable(fs.value("reason", "")));
            }
        }
    }
    return failed;
}

// "N things: a, b, c, and M more".
std::string listed(const std::vector<std::string>& items, std::size_t shown) {
    std::string line;
    for (std::size_t i = 0; i < items.size() && i < shown; ++i) {
        line += (i == 0 ? "" : ", ") + items[i];
    }
    if (items.size() > shown) {
        line += ", and " + std::to_string(items.size() - shown) + " more";
    }
    return line;
}

// Why finished jobs are no verdict: the first few problems (a filesystem not read says why).
std::string problems_of(ApiClient& client, const std::vector<JobView>& jobs) {
    std::vector<std::string> problems;
    for (const auto& job : jobs) {
        const std::string target = printable(job.record.request.target);
        switch (job.record.status) {
        case JobStatus::failed:
        case JobStatus::dead_letter:
            problems.push_back(target + ": the scan failed: " + printable(job.record.last_error));
            break;
        case JobStatus::cancelled:
            problems.push_back(target + ": the scan was cancelled");
            break;
        case JobStatus::succeeded:
            if (!job.verdict) {
                problems.push_back(target + ": no verdict");
            } else if (job.verdict->exit_status != 0) {
                const auto failed = failed_filesystems_of(client, job);
                problems.push_back(
                    target + ": not fully scanned (" + std::to_string(job.verdict->not_fully_scanned) +
                    " files" +
                    (failed.empty() ? std::string() : "; filesystems not read: " + listed(failed, 2)) + "; " +
                    printable(job.verdict->status) + ")");
            }
            break;
        default:
            problems.push_back(target + ": " + std::string(to_string(job.record.status)));
        }
    }
    std::string text;
    for (std::size_t i = 0; i < problems.size() && i < 3; ++i) {
        text += (i == 0 ? "" : "; ") + problems[i];
    }
    if (problems.size() > 3) {
        text += "; and " + std::to_string(problems.size() - 3) + " more";
    }
    return text.empty() ? std::string("no verdict") : text;
}

// The allow line, and one warning line for the files the limits kept from being scanned in full (the
// service's [limits] policy = "warn": they do not deny, and are never called clean either).
void allow(ApiClient& client, const std::vector<JobView>& jobs) {
    std::uint64_t files = 0;
    std::uint64_t limited = 0;
    std::string targets;
    std::vector<std::string> hits;
    for (const auto& job : jobs) {
        files += job.verdict ? job.verdict->files : 0;
        targets += (targets.empty() ? "" : ", ") + printable(job.record.request.target);
        if (job.verdict && job.verdict->limit_exceeded > 0) {
            limited += job.verdict->limit_exceeded;
            auto found = limit_hits_of(client, job);
            hits.insert(hits.end(), found.begin(), found.end());
        }
    }
    std::printf(
        "allow: %zu disk image%s clean (%llu files%s): %s\n", jobs.size(), jobs.size() == 1 ? "" : "s",
        static_cast<unsigned long long>(files),
        limited == 0 ? "" : ("; " + std::to_string(limited) + " not fully scanned, see the warning").c_str(),
        targets.c_str());
    if (limited > 0) {
        std::printf("warning: %llu file%s not scanned in full (limits): %s\n",
                    static_cast<unsigned long long>(limited), limited == 1 ? "" : "s",
                    listed(hits, k_detections_shown).c_str());
    }
}

} // namespace

int run_gate(const GateCommandOptions& o, const std::atomic<bool>& stop) {
    const auto max_age = parse_seconds_or_duration(o.max_age);
    const auto timeout = parse_seconds_or_duration(o.timeout);
    if (!max_age || !timeout) {
        std::printf("error: %s: '%s' is not a duration (seconds, or like 90s, 15m, 2h, 7d)\n",
                    !max_age ? "--max-age" : "--timeout",
                    printable(!max_age ? o.max_age : o.timeout).c_str());
        return 2;
    }
    if (o.targets.empty() && o.domain_xml.empty()) {
        std::printf("error: name an image, libvirt:DOMAIN or --domain-xml FILE\n");
        return 2;
    }
    const bool allow_on_error = o.on_error == "allow";
    const auto fail = [&](const std::string& reason) {
        const std::string shown = printable(reason);
        if (allow_on_error) {
            spdlog::warn("gate: {}; allowed by --on-error allow", shown);
            std::printf("allow: no verdict (%s); --on-error allow\n", shown.c_str());
            return 0;
        }
        std::printf("error: %s\n", shown.c_str());
        return 2;
    };

    // One submission per format: the API's format applies to every target of a request. A domain XML is one
    // more submission, of one VM (its volume groups may span its disks).
    std::map<std::string, scheduler::api::ScanSubmission> submissions;
    const auto submission_for = [&](const std::string& key) -> scheduler::api::ScanSubmission& {
        auto& submission = submissions[key];
        submission.priority = scheduler::Priority::gate;
        submission.max_age = *max_age;
        submission.requested_by = "gate " + requester();
        return submission;
    };
    for (const auto& target : o.targets) {
        const std::string format = target.starts_with("libvirt:") ? std::string() : o.format;
        auto& submission = submission_for("format " + format);
        submission.format = format;
        submission.targets.push_back(absolute_target(target));
    }
    if (!o.domain_xml.empty()) {
        auto vm = domain_xml_vm(o.domain_xml);
        if (!vm) {
            return fail(vm.error().message);
        }
        auto& submission = submission_for("vm");
        submission.vm_name = vm->name.empty() ? o.domain_xml : vm->name;
        for (auto& [source, format] : vm->disks) {
            submission.vm_disks.push_back(scheduler::JobDisk{absolute_target(source), format});
        }
    }
    auto client = ApiClient::create(o.client);
    if (!client) {
        return fail(client.error().message);
    }
    try {
        std::vector<std::string> ids;
        std::vector<JobView> submitted_jobs;
        for (const auto& [format, submission] : submissions) {
            auto submitted = submit(*client, submission);
            if (!submitted) {
                return fail(submitted.error().message);
            }
            for (auto& job : submitted->jobs) {
                ids.push_back(job.record.id);
                submitted_jobs.push_back(std::move(job));
            }
        }
        auto waited = wait_for_jobs(*client, ids, submitted_jobs, *timeout, stop);
        if (!waited) {
            return fail(waited.error().message);
        }
        if (waited->timed_out) {
            return fail("no verdict within " + o.timeout + " (the scans go on in the service)");
        }
        if (waited->interrupted) {
            return fail("interrupted before a verdict");
        }
        const auto& jobs = waited->jobs;
        const int status = scheduler::api::exit_status_of(jobs);
        if (status == 1) {
            std::vector<std::string> detections;
            for (const auto& job : jobs) {
                if (job.verdict && job.verdict->detections > 0) {
                    auto found = detections_of(*client, job);
                    detections.insert(detections.end(), found.begin(), found.end());
                }
            }
            std::string line = "deny: ";
            std::uint64_t total = 0;
            for (const auto& job : jobs) {
                total += job.verdict ? job.verdict->detections : 0;
            }
            line += std::to_string(total) + (total == 1 ? " detection: " : " detections: ");
            line += listed(detections, k_detections_shown);
            std::printf("%s\n", line.c_str());
            return 1;
        }
        if (status == 0) {
            allow(*client, jobs);
            return 0;
        }
        return fail(problems_of(*client, jobs));
    } catch (const std::exception& e) {
        return fail(e.what());
    }
}

} // namespace coldscan::cli
