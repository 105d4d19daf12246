#include "client_commands.hpp"

#include "client.hpp"
#include "coldscan/common/log.hpp"
#include "coldscan/common/text.hpp"
#include "vm_targets.hpp"

#include <cstdio>
#include <nlohmann/json.hpp>
#include <variant>

namespace coldscan::cli {

struct ClientCommandOptions {
    ClientOptions client;
    // submit
    std::vector<std::string> targets;
    std::string priority = "on-demand";
    std::string snapshot;
    std::string format;
    std::string host;
    bool one_vm = false;
    bool wait = false;
    // status, wait, cancel
    std::string status_id;
    std::vector<std::string> ids;
    std::string timeout;
    bool json = false;

    CLI::App* submit = nullptr;
    CLI::App* status = nullptr;
    CLI::App* wait_command = nullptr;
    CLI::App* cancel = nullptr;
    CLI::App* plan = nullptr;
    CLI::App* nodes = nullptr;
};

std::shared_ptr<ClientCommandOptions> add_client_commands(CLI::App& app) {
    auto o = std::make_shared<ClientCommandOptions>();
    const auto add_common = [&](CLI::App* command) { add_client_options(*command, o->client); };

    o->submit = app.add_subcommand("submit", "Ask the scan service to scan images");
    o->submit->add_option("TARGET", o->targets, "Image files (made absolute here) or libvirt:DOMAIN")
        ->required();
    o->submit->add_option("--priority", o->priority, "gate, on-demand (the default) or nightly")
        ->check(CLI::IsMember({"gate", "on-demand", "on_demand", "nightly"}));
    o->submit->add_option("--snapshot", o->snapshot, "A qcow2 internal snapshot to scan");
    o->submit
        ->add_option("--format", o->format,
                     "Image format of every TARGET (default: safe detection; libvirt:DOMAIN: the XML's)")
        ->check(CLI::IsMember({"qcow2", "vmdk", "vhdx", "vdi", "vpc", "qed", "raw"}));
    o->submit->add_option("--host", o->host, "The inventory host whose read budget the scans use");
    o->submit->add_flag("--one-vm", o->one_vm,
                        "The TARGETs are the disks of one VM, in the VM's order: one job of them all");
    o->submit->add_flag("--wait", o->wait, "Wait until every job has finished; exit like `coldscan wait`");
    o->submit->add_option("--timeout", o->timeout, "With --wait: give up after this long (90s, 15m, 2h, 7d)");
    o->submit->add_flag("--json", o->json, "Print the service's JSON");
    add_common(o->submit);

    o->status = app.add_subcommand("status", "Show the service's jobs, or one job");
    o->status->add_option("ID", o->status_id, "A job id");
    o->status->add_flag("--json", o->json, "Print the service's JSON");
    add_common(o->status);

    o->wait_command = app.add_subcommand("wait", "Wait until jobs have finished");
    o->wait_command->add_option("ID", o->ids, "Job ids")->required();
    o->wait_command->add_option("--timeout", o->timeout, "Give up after this long (90s, 15m, 2h, 7d)");
    o->wait_command->add_flag("--json", o->json, "Print the service's JSON");
    add_common(o->wait_command);

    o->cancel = app.add_subcommand("cancel", "Cancel jobs");
    o->cancel->add_option("ID", o->ids, "Job ids")->required();
    add_common(o->cancel);

    o->plan = app.add_subcommand("plan", "When each waiting or running job would start and finish");
    o->plan->add_flag("--json", o->json, "Print the service's JSON");
    add_common(o->plan);

    o->nodes = app.add_subcommand("nodes", "The scanner nodes: this service, or every node of its fleet");
    o->nodes->add_flag("--json", o->json, "Print the service's JSON");
    add_common(o->nodes);
    return o;
}

namespace {

using json = nlohmann::ordered_json; // the service's key order
using scheduler::JobView;

void print_job_lines(const std::vector<JobView>& jobs) {
    for (const auto& job : jobs) {
        std::printf("%s  %s  %s\n", printable(job.record.id).c_str(),
                    std::string(to_string(job.record.status)).c_str(),
                    printable(job.record.request.target).c_str());
    }
}

std::optional<std::chrono::seconds> timeout_option(const std::string& text, bool& bad) {
    bad = false;
    if (text.empty()) {
        return std::nullopt;
    }
    const auto parsed = parse_seconds_or_duration(text);
    if (!parsed) {
        spdlog::error("--timeout: '{}' is not a duration (seconds, or like 90s, 15m, 2h, 7d)",
                      printable(text));
        bad = true;
    }
    return parsed;
}

// The end of `wait` and `submit --wait`: one line per job (or the JSON), and the exit status.
int finish_wait(const WaitResult& result, bool as_json, const std::string& timeout_text) {
    if (as_json) {
        json list = json::array();
        for (const auto& body : result.bodies) {
            list.push_back(json::parse(body, nullptr, false));
        }
        std::printf("%s\n", json{{"jobs", list}}.dump(2, ' ', false, json::error_handler_t::replace).c_str());
    } else {
        for (const auto& job : result.jobs) {
            std::printf("%s  %s  %s: %s\n", printable(job.record.id).c_str(),
                        std::string(to_string(job.record.status)).c_str(),
                        printable(job.record.request.target).c_str(), job_summary(job).c_str());
        }
    }
    std::size_t unfinished = 0;
    for (const auto& job : result.jobs) {
        unfinished += scheduler::is_finished(job.record.status) ? 0 : 1;
    }
    if (result.timed_out) {
        spdlog::error("timed out after {}: {} job(s) not finished (they go on in the service)", timeout_text,
                      unfinished);
        return 2;
    }
    if (result.interrupted) {
        spdlog::error("interrupted: {} job(s) not finished (they go on in the service)", unfinished);
        return 2;
    }
    return scheduler::api::exit_status_of(result.jobs);
}

int run_submit(const ClientCommandOptions& o, ApiClient& client, const std::atomic<bool>& stop) {
    bool bad_timeout = false;
    const auto timeout = timeout_option(o.timeout, bad_timeout);
    if (bad_timeout) {
        return 2;
    }
    scheduler::api::ScanSubmission submission;
    for (const auto& target : o.targets) {
        if (o.one_vm) {
            submission.vm_disks.push_back(scheduler::JobDisk{absolute_target(target), o.format});
        } else {
            submission.targets.push_back(absolute_target(target));
        }
    }
    if (o.one_vm) {
        submission.vm_name = vm_from_disks(o.targets).name.substr(3); // "vm:" + the disks' names
    }
    submission.priority = scheduler::parse_priority(o.priority).value_or(scheduler::Priority::on_demand);
    submission.snapshot = o.snapshot;
    submission.format = o.one_vm ? std::string() : o.format; // --one-vm: the format of each disk
    submission.host = o.host;
    submission.requested_by = requester();
    auto submitted = submit(client, submission);
    if (!submitted) {
        print_client_error(submitted.error());
        return 2;
    }
    if (!o.wait) {
        if (o.json) {
            print_json_text(submitted->body);
        } else {
            print_job_lines(submitted->jobs);
        }
        return 0;
    }
    std::vector<std::string> ids;
    for (const auto& job : submitted->jobs) {
        ids.push_back(job.record.id);
    }
    auto waited = wait_for_jobs(client, ids, submitted->jobs, timeout, stop);
    if (!waited) {
        print_client_error(waited.error());
        return 2;
    }
    return finish_wait(*waited, o.json, o.timeout);
}

void print_job_details(const JobView& job) {
    const auto& r = job.record;
    const auto line = [](const char* name, const std::string& value) {
        std::printf("%-14s %s\n", name, value.c_str());
    };
    line("id:", printable(r.id));
    line("target:", printable(r.request.target));
    if (!r.request.snapshot.empty()) {
        line("snapshot:", printable(r.request.snapshot));
    }
    if (!r.request.format.empty()) {
        line("format:", printable(r.request.format));
    }
    line("status:", std::string(to_string(r.status)));
    line("priority:", std::string(scheduler::api::priority_name(r.request.priority)));
    line("host:", printable(job.host.empty() ? std::string("-") : job.host) +
                      (job.datastore.empty() ? "" : " (datastore " + printable(job.datastore) + ")"));
    if (!r.request.requested_by.empty()) {
        line("requested by:", printable(r.request.requested_by));
    }
    line("submitted:", scheduler::api::format_iso8601(r.submitted_at));
    line("updated:", scheduler::api::format_iso8601(r.updated_at));
    line("attempts:", std::to_string(r.attempts) + " failed");
    if (!r.last_error.empty()) {
        line("last error:", printable(r.last_error));
    }
    line("signatures:", printable(r.signature_set));
    line("summary:", job_summary(job));
    if (job.verdict) {
        line("verdict:", printable(job.verdict->status) + ", exit status " +
                             std::to_string(job.verdict->exit_status) + ", " +
                             std::to_string(job.verdict->files) + " files, " +
                             std::to_string(job.verdict->detections) + " detections, " +
                             std::to_string(job.verdict->not_fully_scanned) + " not fully scanned (" +
                             std::to_string(job.verdict->limit_exceeded) + " by the limits)");
    }
}

int run_status(const ClientCommandOptions& o, ApiClient& client) {
    if (!o.status_id.empty()) {
        auto body = client.get("/v1/scans/" + o.status_id);
        if (!body) {
            print_client_error(body.error());
            return 2;
        }
        if (o.json) {
            print_json_text(*body);
            return 0;
        }
        auto job = scheduler::api::parse_job_body(*body);
        if (!job) {
            spdlog::error("the scan service's answer is not a job: {}", job.error().message);
            return 2;
        }
        print_job_details(*job);
        return 0;
    }
    auto body = client.get("/v1/scans");
    if (!body) {
        print_client_error(body.error());
        return 2;
    }
    if (o.json) {
        print_json_text(*body);
        return 0;
    }
    auto jobs = scheduler::api::parse_jobs_body(*body);
    if (!jobs) {
        spdlog::error("{}", jobs.error().message);
        return 2;
    }
    if (jobs->empty()) {
        std::printf("no jobs\n");
        return 0;
    }
    std::vector<std::vector<std::string>> rows{
        {"ID", "STATUS", "PRIORITY", "HOST", "NODE", "SUMMARY", "TARGET"}};
    const auto or_dash = [](const std::string& value) {
        return value.empty() ? std::string("-") : printable(value);
    };
    for (const auto& job : *jobs) {
        rows.push_back({printable(job.record.id), std::string(to_string(job.record.status)),
                        std::string(scheduler::api::priority_name(job.record.request.priority)),
                        or_dash(job.host), or_dash(job.record.node), job_summary(job),
                        printable(job.record.request.target)});
    }
    print_table(rows);
    return 0;
}

int run_wait(const ClientCommandOptions& o, ApiClient& client, const std::atomic<bool>& stop) {
    bool bad_timeout = false;
    const auto timeout = timeout_option(o.timeout, bad_timeout);
    if (bad_timeout) {
        return 2;
    }
    auto waited = wait_for_jobs(client, o.ids, {}, timeout, stop);
    if (!waited) {
        print_client_error(waited.error());
        return 2;
    }
    return finish_wait(*waited, o.json, o.timeout);
}

int run_cancel(const ClientCommandOptions& o, ApiClient& client) {
    int status = 0;
    for (const auto& id : o.ids) {
        auto body = client.remove("/v1/scans/" + id);
        if (!body) {
            print_client_error(body.error());
            if (ApiClient::unreachable(body.error())) {
                return 2;
            }
            status = 2;
            continue;
        }
        auto job = scheduler::api::parse_job_body(*body);
        if (!job) {
            spdlog::error("the scan service's answer is not a job: {}", job.error().message);
            status = 2;
            continue;
        }
        print_job_lines({*job});
    }
    return status;
}

std::string time_or_dash(const json& value) {
    return value.is_string() ? printable(value.get<std::string>()) : std::string("-");
}

// GET path. With --json the answer is printed as it came (exit 0); otherwise it is parsed and must be an
// object holding the array `list` (else an error is printed: exit 2). An int is the exit status to return
// now.
std::variant<int, json> get_listing(const ClientCommandOptions& o, ApiClient& client, const char* path,
                                    const char* list, const char* what) {
    auto body = client.get(path);
    if (!body) {
        print_client_error(body.error());
        return 2;
    }
    if (o.json) {
        print_json_text(*body);
        return 0;
    }
    json answer = json::parse(*body, nullptr, false);
    if (!answer.is_object() || !answer.contains(list) || !answer[list].is_array()) {
        spdlog::error("the scan service's answer is not {}", what);
        return 2;
    }
    return answer;
}

int run_plan(const ClientCommandOptions& o, ApiClient& client) {
    auto listing = get_listing(o, client, "/v1/plan", "jobs", "a plan");
    if (const int* status = std::get_if<int>(&listing)) {
        return *status;
    }
    const json& plan = std::get<json>(listing);
    std::printf("now %s; all done %s\n", time_or_dash(plan.value("now", json())).c_str(),
                plan.contains("all_done") && plan["all_done"].is_string()
                    ? time_or_dash(plan["all_done"]).c_str()
                    : "- (some job has no finish in sight)");
    if (plan["jobs"].empty()) {
        return 0;
    }
    std::vector<std::vector<std::string>> rows{
        {"START", "FINISH", "HOST", "DATASTORE", "PRIORITY", "STATE", "ID"}};
    const auto text = [](const json& entry, const char* key) {
        return entry.contains(key) && entry[key].is_string() ? printable(entry[key].get<std::string>())
                                                             : std::string("-");
    };
    for (const auto& entry : plan["jobs"]) {
        if (!entry.is_object()) {
            continue;
        }
        rows.push_back({time_or_dash(entry.value("start", json())),
                        time_or_dash(entry.value("finish", json())), text(entry, "host"),
                        text(entry, "datastore"), text(entry, "priority"), text(entry, "state"),
                        text(entry, "id")});
    }
    print_table(rows);
    return 0;
}

int run_nodes(const ClientCommandOptions& o, ApiClient& client) {
    auto listing = get_listing(o, client, "/v1/nodes", "nodes", "a list of nodes");
    if (const int* status = std::get_if<int>(&listing)) {
        return *status;
    }
    const json& answer = std::get<json>(listing);
    std::vector<std::vector<std::string>> rows{
        {"NODE", "STATE", "HEARTBEAT", "RUNNING", "SIGNATURES", "VERSION", "DATASTORES"}};
    const auto text = [](const json& entry, const char* key) {
        return entry.contains(key) && entry[key].is_string() ? printable(entry[key].get<std::string>())
                                                             : std::string("-");
    };
    for (const auto& node : answer["nodes"]) {
        if (!node.is_object()) {
            continue;
        }
        std::string datastores;
        for (const auto& name : node.value("datastores", json::array())) {
            if (name.is_string()) {
                datastores += (datastores.empty() ? "" : ",") + printable(name.get<std::string>());
            }
        }
        const auto running = node.value("running_jobs", json());
        rows.push_back({text(node, "name"), node.value("alive", false) ? "alive" : "silent",
                        time_or_dash(node.value("heartbeat", json())),
                        running.is_number_unsigned() ? std::to_string(running.get<std::uint64_t>()) : "-",
                        text(node, "signature_set").substr(0, 16), text(node, "version"),
                        datastores.empty() ? "-" : datastores});
    }
    print_table(rows);
    return 0;
}

} // namespace

std::optional<int> run_client_command(const ClientCommandOptions& o, const std::atomic<bool>& stop) {
    const bool chosen = o.submit->parsed() || o.status->parsed() || o.wait_command->parsed() ||
                        o.cancel->parsed() || o.plan->parsed() || o.nodes->parsed();
    if (!chosen) {
        return std::nullopt;
    }
    auto client = ApiClient::create(o.client);
    if (!client) {
        print_client_error(client.error());
        return 2;
    }
    try {
        if (o.submit->parsed()) {
            return run_submit(o, *client, stop);
        }
        if (o.status->parsed()) {
            return run_status(o, *client);
        }
        if (o.wait_command->parsed()) {
            return run_wait(o, *client, stop);
        }
        if (o.cancel->parsed()) {
            return run_cancel(o, *client);
        }
        if (o.nodes->parsed()) {
            return run_nodes(o, *client);
        }
        return run_plan(o, *client);
    } catch (const std::exception& e) { // nlohmann or httplib, should one throw after all
        spdlog::error("{}", e.what());
        return 2;
    }
}

} // namespace coldscan::cli
