// The HTTP API: its wire format (api_json.hpp) as pure functions, and ApiServer over real sockets with a
// fake service behind it. The requests are written by hand on plain sockets, so what is checked is what a
// client sees on the wire (the unit tests do not compile against cpp-httplib).
#include "coldscan/common/temp_dir.hpp"
#include "coldscan/scheduler/api_json.hpp"
#include "coldscan/scheduler/api_server.hpp"

#include <arpa/inet.h>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

using namespace coldscan;
using namespace coldscan::scheduler;
using nlohmann::json;

namespace {

constexpr std::int64_t k_nov_23_2026 = 1795428000; // 2026-11-23T10:00:00Z

JobView sample_job(std::string id, JobStatus status) {
    JobView view;
    view.record.id = std::move(id);
    view.record.request.target = "/images/web01.qcow2";
    view.record.request.snapshot = "before-upgrade";
    view.record.request.priority = Priority::on_demand;
    view.record.request.requested_by = "alice";
    view.record.signature_set = "sigs-1";
    view.record.status = status;
    view.record.attempts = 1;
    view.record.last_error = "qemu-img timed out";
    view.record.submitted_at = k_nov_23_2026;
    view.record.updated_at = k_nov_23_2026 + 90;
    view.host = "kvm01";
    view.datastore = "nfs-a";
    return view;
}

HostView sample_host(std::string name) {
    HostView host;
    host.spec = HostSpec{std::move(name), 3, 100'000'000, 0.7};
    host.running = 2;
    host.queued = 5;
    host.pressure = 0.25;
    host.throttled = false;
    host.throttled_seconds = 12.5;
    host.bytes_read = 4096;
    return host;
}

DatastoreView sample_datastore() {
    DatastoreView datastore;
    datastore.spec = DatastoreSpec{"nfs-a", {"/images"}, {"kvm01", "kvm02"}, 6, 0};
    datastore.running = 2;
    datastore.bytes_read = 8192;
    return datastore;
}

// Why parse_scan_body refuses the body (it must, with invalid_argument).
std::string message(std::string_view body) {
    const auto result = api::parse_scan_body(body);
    REQUIRE_FALSE(result);
    CHECK(result.error().code == Errc::invalid_argument);
    return result.error().message;
}

} // namespace

std::vector<NodeView> sample_nodes() {
    const auto day = std::chrono::system_clock::time_point{} + std::chrono::seconds(k_nov_23_2026);
    NodeView a{"scan-a",           "0.1.0", "sigs-1", day, day + std::chrono::seconds(100), 2,
               {"nfs-a", "nfs-b"}, true};
    NodeView b{"scan-b", "0.1.0", "sigs-0", day, day + std::chrono::seconds(5), 0, {}, false};
    return {a, b};
}

TEST_CASE("parse_scan_body", "[scheduler]") {
    SECTION("every key") {
        const auto requests = api::parse_scan_body(
            R"({"targets": ["/images/a.qcow2", "libvirt:web01"], "priority": "gate", "snapshot": "s1",
                "host": "kvm01", "max_age_seconds": 86400, "requested_by": "hook", "format": "raw"})");
        REQUIRE(requests);
        REQUIRE(requests->size() == 2);
        CHECK((*requests)[0].target == "/images/a.qcow2");
        CHECK((*requests)[1].target == "libvirt:web01");
        for (const auto& request : *requests) {
            CHECK(request.priority == Priority::gate);
            CHECK(request.snapshot == "s1");
            CHECK(request.host == "kvm01");
            CHECK(request.requested_by == "hook");
            CHECK(request.format == "raw");
            REQUIRE(request.max_age.has_value());
            CHECK(request.max_age->count() == 86400);
        }
    }
    SECTION("defaults: on-demand, no max age; on_demand is read too") {
        const auto requests = api::parse_scan_body(R"({"targets": ["/images/a.qcow2"]})");
        REQUIRE(requests);
        REQUIRE(requests->size() == 1);
        CHECK((*requests)[0].priority == Priority::on_demand);
        CHECK_FALSE((*requests)[0].max_age.has_value());
        CHECK((*requests)[0].snapshot.empty());
        CHECK((*requests)[0].format.empty());
        const auto underscore = api::parse_scan_body(R"({"targets": ["/a"], "priority": "on_demand"})");
        REQUIRE(underscore);
        CHECK((*underscore)[0].priority == Priority::on_demand);
        const auto nightly = api::parse_scan_body(R"({"targets": ["/a"], "priority": "nightly"})");
        REQUIRE(nightly);
        CHECK((*nightly)[0].priority == Priority::nightly);
    }
    SECTION("refusals name what is wrong") {
        CHECK(message("{not json") == "the body is not JSON");
        CHECK(message(R"(["/a"])") == "the body must be a JSON object");
        CHECK(message("{}") == "targets must name at least one image or libvirt:DOMAIN (or give a vm)");
        CHECK(message(R"({"targets": []})") ==
              "targets must name at least one image or libvirt:DOMAIN (or give a vm)");
        CHECK(message(R"({"targets": "/a"})") == "targets must be an array of strings");
        CHECK(message(R"({"targets": ["/a", 7]})") == "targets must be an array of strings");
        CHECK(message(R"({"targets": ["/a", ""]})") == "targets[1] is empty or has a NUL byte");
        CHECK(message(R"({"targets": ["/a\u0000b"]})") == "targets[0] is empty or has a NUL byte");
        CHECK(message(R"({"targets": ["/a"], "priority": "urgent"})") ==
              "priority must be \"gate\", \"on-demand\" or \"nightly\"");
        CHECK(message(R"({"targets": ["/a"], "priority": 1})") ==
              "priority must be \"gate\", \"on-demand\" or \"nightly\"");
        CHECK(message(R"({"targets": ["/a"], "snapshot": 3})") == "snapshot must be a string");
        CHECK(message(R"({"targets": ["/a"], "max_age_seconds": -5})") ==
              "max_age_seconds must be a whole number of seconds >= 0");
        CHECK(message(R"({"targets": ["/a"], "max_age_seconds": 1.5})") ==
              "max_age_seconds must be a whole number of seconds >= 0");
        CHECK(message(R"({"targets": ["/a"], "max_age_seconds": "1h"})") ==
              "max_age_seconds must be a whole number of seconds >= 0");
        CHECK(message(R"({"targets": ["/a"], "taget": "/b"})") ==
              "unknown key \"taget\" (known: targets, vm, priority, snapshot, format, host, "
              "max_age_seconds, requested_by)");
        for (const char* body :
             {R"({"targets": ["/a"], "format": "iso"})", R"({"targets": ["/a"], "format": 3})",
              R"({"targets": ["/a"], "format": "file"})"}) {
            CHECK(message(body) == "format must be one of qcow2, vmdk, vhdx, vdi, vpc, qed, raw (or \"\")");
        }
    }
    SECTION("at most k_max_targets targets") {
        json body = {{"targets", json::array()}};
        for (std::size_t i = 0; i < api::k_max_targets; ++i) {
            body["targets"].push_back("/images/" + std::to_string(i));
        }
        const auto at_limit = api::parse_scan_body(body.dump());
        REQUIRE(at_limit);
        CHECK(at_limit->size() == api::k_max_targets);
        body["targets"].push_back("/images/one-more");
        const auto over = api::parse_scan_body(body.dump());
        REQUIRE_FALSE(over);
        CHECK(over.error().message == "too many targets: 1001 (at most 1000 per request)");
    }
}

TEST_CASE("parse_scan_body: one VM of several disks", "[scheduler]") {
    SECTION("named, each disk with its format; one request") {
        const auto requests = api::parse_scan_body(
            R"({"vm": {"name": "web01", "disks": [{"path": "/images/web01-a.qcow2", "format": "qcow2"},
                                                  {"path": "/images/web01-b.img", "format": "raw"},
                                                  {"path": "/images/web01-c.vmdk"}]},
                "priority": "gate", "max_age_seconds": 60})");
        REQUIRE(requests);
        REQUIRE(requests->size() == 1);
        const auto& vm = requests->front();
        CHECK(vm.target == "vm:web01");
        CHECK(vm.priority == Priority::gate);
        CHECK(vm.format.empty());
        const std::vector<JobDisk> want = {
            {"/images/web01-a.qcow2", "qcow2"}, {"/images/web01-b.img", "raw"}, {"/images/web01-c.vmdk", ""}};
        CHECK(vm.disks == want);
    }
    SECTION("no name: named after its first disk") {
        const auto requests = api::parse_scan_body(R"({"vm": {"disks": [{"path": "/images/x.qcow2"}]}})");
        REQUIRE(requests);
        CHECK(requests->front().target == "vm:/images/x.qcow2");
    }
    SECTION("refusals") {
        CHECK(message(R"({"vm": {"name": "a", "disks": [{"path": "/a"}]}, "targets": ["/b"]})") ==
              "a request names targets or one vm, not both");
        CHECK(message(R"({"vm": {"name": "a"}})") == "vm.disks must name at least one disk");
        CHECK(message(R"({"vm": {"name": "a", "disks": []}})") == "vm.disks must name at least one disk");
        CHECK(message(R"({"vm": ["/a"]})") == "vm must be an object {\"name\", \"disks\"}");
        CHECK(message(R"({"vm": {"name": "", "disks": [{"path": "/a"}]}})") ==
              "vm.name is empty or has a NUL byte");
        CHECK(message(R"({"vm": {"disks": [{"path": "/a"}, {"format": "raw"}]}})") ==
              "vm.disks[1] has no path");
        CHECK(message(R"({"vm": {"disks": ["/a"]}})") ==
              "vm.disks[0] must be an object {\"path\", \"format\"}");
        CHECK(message(R"({"vm": {"disks": [{"path": "/a", "format": "iso"}]}})") ==
              "vm.disks[0].format must be one of qcow2, vmdk, vhdx, vdi, vpc, qed, raw (or \"\")");
        CHECK(message(R"({"vm": {"disks": [{"path": "/a", "size": 1}]}})") ==
              "unknown key \"size\" in vm.disks[0] (known: path, format)");
        CHECK(message(R"({"vm": {"disks": [{"path": "/a"}], "host": "x"}})") ==
              "unknown key \"host\" in vm (known: name, disks)");
        CHECK(message(R"({"vm": {"disks": [{"path": "/a"}]}, "format": "raw"})") ==
              "a vm gives each disk's format in vm.disks, not format");
        json many = {{"vm", {{"disks", json::array()}}}};
        for (std::size_t i = 0; i <= api::k_max_vm_disks; ++i) {
            many["vm"]["disks"].push_back({{"path", "/d" + std::to_string(i)}});
        }
        CHECK(message(many.dump()) == "vm.disks must be an array of at most 64 disks");
    }
}

TEST_CASE("scan_body", "[scheduler]") {
    api::ScanSubmission submission;
    submission.targets = {"/images/a.qcow2", "/images/\"quoted\"\n.qcow2"};
    submission.priority = Priority::gate;
    submission.snapshot = "s";
    submission.format = "vmdk";
    submission.requested_by = "bob@host";
    submission.max_age = std::chrono::hours(24);
    const std::string body = api::scan_body(submission);
    CHECK(json::parse(body)["priority"] == "gate");
    const auto requests = api::parse_scan_body(body);
    REQUIRE(requests);
    REQUIRE(requests->size() == 2);
    CHECK((*requests)[1].target == "/images/\"quoted\"\n.qcow2");
    CHECK((*requests)[0].priority == Priority::gate);
    CHECK((*requests)[0].requested_by == "bob@host");
    CHECK((*requests)[0].format == "vmdk");
    REQUIRE((*requests)[0].max_age.has_value());
    CHECK((*requests)[0].max_age->count() == 86400);
    api::ScanSubmission no_age;
    no_age.targets = {"/a"};
    CHECK_FALSE(json::parse(api::scan_body(no_age)).contains("max_age_seconds"));
    CHECK_FALSE(json::parse(api::scan_body(no_age)).contains("format"));
    CHECK(json::parse(api::scan_body(no_age))["priority"] == "on-demand");
    api::ScanSubmission vm;
    vm.vm_name = "web01";
    vm.vm_disks = {{"/images/a.qcow2", "qcow2"}, {"/images/b.img", ""}};
    vm.priority = Priority::gate;
    const auto vm_requests = api::parse_scan_body(api::scan_body(vm));
    REQUIRE(vm_requests);
    REQUIRE(vm_requests->size() == 1);
    CHECK(vm_requests->front().target == "vm:web01");
    CHECK(vm_requests->front().disks == vm.vm_disks);
    CHECK_FALSE(json::parse(api::scan_body(vm)).contains("targets"));
}

TEST_CASE("format_iso8601 and parse_iso8601", "[scheduler]") {
    CHECK(api::format_iso8601(std::int64_t{0}) == "1970-01-01T00:00:00Z");
    CHECK(api::format_iso8601(k_nov_23_2026) == "2026-11-23T10:00:00Z");
    const TimePoint time = TimePoint{} + std::chrono::seconds(k_nov_23_2026) + std::chrono::milliseconds(999);
    CHECK(api::format_iso8601(time) == "2026-11-23T10:00:00Z");
    CHECK(api::parse_iso8601("2026-11-23T10:00:00Z") == k_nov_23_2026);
    CHECK(api::parse_iso8601("1970-01-01T00:00:00Z") == 0);
    CHECK_FALSE(api::parse_iso8601("2026-11-23T10:00:00"));
    CHECK_FALSE(api::parse_iso8601("2026-13-23T10:00:00Z"));
    CHECK_FALSE(api::parse_iso8601("2026-02-30T10:00:00Z"));
    CHECK_FALSE(api::parse_iso8601("2026-11-23 10:00:00Z"));
    CHECK_FALSE(api::parse_iso8601("2026-1a-23T10:00:00Z"));
    CHECK_FALSE(api::parse_iso8601(""));
}

TEST_CASE("job_body", "[scheduler]") {
    SECTION("a queued job: no progress, no verdict") {
        const json out = json::parse(api::job_body(sample_job("j-1", JobStatus::queued)));
        CHECK(out["id"] == "j-1");
        CHECK(out["target"] == "/images/web01.qcow2");
        CHECK(out["snapshot"] == "before-upgrade");
        CHECK(out["priority"] == "on-demand");
        CHECK(out["status"] == "queued");
        CHECK(out["attempts"] == 1);
        CHECK(out["last_error"] == "qemu-img timed out");
        CHECK(out["submitted_at"] == "2026-11-23T10:00:00Z");
        CHECK(out["updated_at"] == "2026-11-23T10:01:30Z");
        CHECK(out["host"] == "kvm01");
        CHECK(out["datastore"] == "nfs-a");
        CHECK(out["node"] == ""); // queued: no node runs it yet
        CHECK(out["requested_by"] == "alice");
        CHECK(out["signature_set"] == "sigs-1");
        CHECK(out["format"] == "");
        CHECK(out["progress"].is_null());
        CHECK(out["verdict"].is_null());
        CHECK(out["disks"] == json::array());
        CHECK(out.size() == 18);
    }
    SECTION("progress and verdict") {
        JobView job = sample_job("j-2", JobStatus::succeeded);
        job.progress = JobProgress{"scanning", 120, 1 << 20, 3.5};
        job.verdict = JobVerdict{"completed_with_issues", 2, 300, 0, 4, 1, "sigs-1"};
        const json out = json::parse(api::job_body(job));
        CHECK(out["progress"] ==
              json{{"phase", "scanning"}, {"files_done", 120}, {"bytes_done", 1 << 20}, {"seconds", 3.5}});
        CHECK(out["verdict"] == json{{"status", "completed_with_issues"},
                                     {"exit_status", 2},
                                     {"files", 300},
                                     {"detections", 0},
                                     {"not_fully_scanned", 4},
                                     {"limit_exceeded", 1},
                                     {"signature_set", "sigs-1"}});
    }
    SECTION("guest-derived strings are encoded, invalid UTF-8 replaced") {
        JobView job = sample_job("j-3", JobStatus::failed);
        job.record.request.target = "/images/\"x\"\n\xff.qcow2";
        const std::string body = api::job_body(job);
        CHECK(body.find('\n') == std::string::npos);
        CHECK(json::parse(body)["target"] == "/images/\"x\"\n\xEF\xBF\xBD.qcow2");
    }
    SECTION("the scheduled host wins over the requested one") {
        JobView job = sample_job("j-4", JobStatus::running);
        job.record.request.host = "";
        job.host = "kvm02";
        CHECK(json::parse(api::job_body(job))["host"] == "kvm02");
        job.host = "";
        job.record.request.host = "kvm03";
        CHECK(json::parse(api::job_body(job))["host"] == "kvm03");
    }
}

TEST_CASE("parse_job_body", "[scheduler]") {
    SECTION("reads back what job_body wrote") {
        JobView job = sample_job("j-5", JobStatus::succeeded);
        job.record.request.priority = Priority::gate;
        job.record.request.format = "qcow2";
        job.record.request.disks = {{"/images/a.qcow2", "qcow2"}, {"/images/b.img", ""}};
        job.record.node = "scan-b";
        job.progress = JobProgress{"reading", 7, 700, 1.25};
        job.verdict = JobVerdict{"completed", 1, 30, 2, 0, 0, "sigs-1"};
        const auto back = api::parse_job_body(api::job_body(job));
        REQUIRE(back);
        CHECK(back->record.id == "j-5");
        CHECK(back->record.status == JobStatus::succeeded);
        CHECK(back->record.request.target == "/images/web01.qcow2");
        CHECK(back->record.request.snapshot == "before-upgrade");
        CHECK(back->record.request.format == "qcow2");
        CHECK(back->record.request.disks == job.record.request.disks);
        CHECK(back->record.request.priority == Priority::gate);
        CHECK(back->record.request.requested_by == "alice");
        CHECK(back->record.attempts == 1);
        CHECK(back->record.last_error == "qemu-img timed out");
        CHECK(back->record.submitted_at == k_nov_23_2026);
        CHECK(back->record.updated_at == k_nov_23_2026 + 90);
        CHECK(back->record.signature_set == "sigs-1");
        CHECK(back->record.node == "scan-b");
        CHECK(back->host == "kvm01");
        CHECK(back->datastore == "nfs-a");
        REQUIRE(back->progress.has_value());
        CHECK(back->progress->phase == "reading");
        CHECK(back->progress->files_done == 7);
        CHECK(back->progress->bytes_done == 700);
        CHECK(back->progress->seconds == 1.25);
        REQUIRE(back->verdict.has_value());
        CHECK(back->verdict->status == "completed");
        CHECK(back->verdict->exit_status == 1);
        CHECK(back->verdict->files == 30);
        CHECK(back->verdict->detections == 2);
    }
    SECTION("a list, and what is not a job") {
        const auto jobs = api::parse_jobs_body(api::jobs_body(
            {sample_job("j-6", JobStatus::queued), sample_job("j-7", JobStatus::dead_letter)}));
        REQUIRE(jobs);
        REQUIRE(jobs->size() == 2);
        CHECK((*jobs)[1].record.id == "j-7");
        CHECK((*jobs)[1].record.status == JobStatus::dead_letter);
        CHECK_FALSE(api::parse_job_body("nope"));
        CHECK_FALSE(api::parse_job_body(R"({"id": "j-8", "status": "sleeping"})"));
        CHECK_FALSE(api::parse_job_body(R"({"status": "queued"})"));
        CHECK_FALSE(api::parse_jobs_body(R"({"jobs": {}})"));
        CHECK_FALSE(api::parse_jobs_body(R"({"error": "x"})"));
    }
}

TEST_CASE("error_body and error_message", "[scheduler]") {
    CHECK(json::parse(api::error_body("no \"such\" job")) == json{{"error", "no \"such\" job"}});
    CHECK(api::error_message(api::error_body("gone")) == "gone");
    CHECK_FALSE(api::error_message("<html>"));
    CHECK_FALSE(api::error_message(R"({"error": 3})"));
}

TEST_CASE("http_status", "[scheduler]") {
    CHECK(api::http_status(Errc::invalid_argument) == 400);
    CHECK(api::http_status(Errc::not_found) == 404);
    CHECK(api::http_status(Errc::forbidden) == 403);
    CHECK(api::http_status(Errc::unsafe_image) == 422);
    CHECK(api::http_status(Errc::cancelled) == 503);
    CHECK(api::http_status(Errc::io) == 500);
    CHECK(api::http_status(Errc::engine) == 500);
}

TEST_CASE("hosts_body", "[scheduler]") {
    HostView unknown = sample_host("kvm02");
    unknown.pressure.reset();
    unknown.probe_error = "connection refused";
    unknown.throttled = true;
    const json out = json::parse(api::hosts_body({sample_host("kvm01"), unknown}, {sample_datastore()}));
    REQUIRE(out["hosts"].size() == 2);
    CHECK(out["hosts"][0] == json{{"name", "kvm01"},
                                  {"max_concurrent_scans", 3},
                                  {"max_read_per_second", 100'000'000},
                                  {"pressure_threshold", 0.7},
                                  {"running", 2},
                                  {"queued", 5},
                                  {"pressure", 0.25},
                                  {"probe_error", ""},
                                  {"throttled", false},
                                  {"throttled_seconds", 12.5},
                                  {"bytes_read", 4096}});
    CHECK(out["hosts"][1]["pressure"].is_null());
    CHECK(out["hosts"][1]["probe_error"] == "connection refused");
    CHECK(out["hosts"][1]["throttled"] == true);
    CHECK(out["datastores"] == json::array({json{{"name", "nfs-a"},
                                                 {"roots", {"/images"}},
                                                 {"hosts", {"kvm01", "kvm02"}},
                                                 {"max_concurrent_scans", 6},
                                                 {"max_read_per_second", 0},
                                                 {"running", 2},
                                                 {"bytes_read", 8192}}}));
}

TEST_CASE("nodes_body", "[scheduler]") {
    const json out = json::parse(api::nodes_body(sample_nodes()));
    REQUIRE(out["nodes"].size() == 2);
    CHECK(out["nodes"][0] == json{{"name", "scan-a"},
                                  {"version", "0.1.0"},
                                  {"signature_set", "sigs-1"},
                                  {"started", "2026-11-23T10:00:00Z"},
                                  {"heartbeat", "2026-11-23T10:01:40Z"},
                                  {"running_jobs", 2},
                                  {"datastores", {"nfs-a", "nfs-b"}},
                                  {"alive", true}});
    CHECK(out["nodes"][1]["name"] == "scan-b");
    CHECK(out["nodes"][1]["alive"] == false);
    CHECK(out["nodes"][1]["datastores"] == json::array());
    CHECK(json::parse(api::nodes_body({}))["nodes"] == json::array());
}

TEST_CASE("plan_body", "[scheduler]") {
    const TimePoint now = TimePoint{} + std::chrono::seconds(k_nov_23_2026);
    Plan plan;
    plan.now = now;
    plan.jobs.push_back(PlanEntry{"j-1", "kvm01", "nfs-a", Priority::gate, JobState::running, now,
                                  now + std::chrono::minutes(2), std::chrono::milliseconds(120'500)});
    plan.jobs.push_back(PlanEntry{"j-2", "kvm02", "nfs-a", Priority::nightly, JobState::queued, std::nullopt,
                                  std::nullopt, std::chrono::milliseconds(60'000)});
    const json out = json::parse(api::plan_body(plan));
    CHECK(out["now"] == "2026-11-23T10:00:00Z");
    CHECK(out["all_done"].is_null());
    REQUIRE(out["jobs"].size() == 2);
    CHECK(out["jobs"][0] == json{{"id", "j-1"},
                                 {"host", "kvm01"},
                                 {"datastore", "nfs-a"},
                                 {"priority", "gate"},
                                 {"state", "running"},
                                 {"start", "2026-11-23T10:00:00Z"},
                                 {"finish", "2026-11-23T10:02:00Z"},
                                 {"estimated_seconds", 120.5}});
    CHECK(out["jobs"][1]["start"].is_null());
    CHECK(out["jobs"][1]["finish"].is_null());
    CHECK(out["jobs"][1]["priority"] == "nightly");
    CHECK(out["windows"] == json::array());
    plan.all_done = now + std::chrono::hours(1);
    plan.nightly_windows.push_back(
        Window::create(std::chrono::hours(22), std::chrono::hours(6) + std::chrono::minutes(30)).value());
    plan.nightly_windows.push_back(Window::create(std::chrono::hours(1), std::chrono::hours(5),
                                                  Weekdays{std::chrono::Saturday, std::chrono::Sunday})
                                       .value());
    const json later = json::parse(api::plan_body(plan));
    CHECK(later["all_done"] == "2026-11-23T11:00:00Z");
    CHECK(later["windows"] ==
          json::array({json{{"start", "22:00"},
                            {"end", "06:30"},
                            {"days", json::array({"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"})}},
                       json{{"start", "01:00"}, {"end", "05:00"}, {"days", json::array({"Sun", "Sat"})}}}));
}

TEST_CASE("health_body", "[scheduler]") {
    ServiceHealth health;
    health.accepting = true;
    health.signature_set = "sigs-1";
    health.signatures_loaded_at = "2026-11-23T09:00:00Z";
    health.damaged_job_records = 1;
    const json out = json::parse(api::health_body(health, {{JobStatus::queued, 4}, {JobStatus::running, 2}}));
    CHECK(out["status"] == "ok");
    CHECK(out["accepting"] == true);
    CHECK(out["signature_set"] == "sigs-1");
    CHECK(out["signatures_loaded_at"] == "2026-11-23T09:00:00Z");
    CHECK(out["damaged_job_records"] == 1);
    CHECK(out["jobs"] == json{{"queued", 4},
                              {"running", 2},
                              {"paused", 0},
                              {"succeeded", 0},
                              {"failed", 0},
                              {"cancelled", 0},
                              {"dead_letter", 0}});
    health.accepting = false;
    CHECK(json::parse(api::health_body(health, {}))["status"] == "draining");
}

TEST_CASE("metrics_text", "[scheduler]") {
    ServiceCounters counters;
    counters.jobs_submitted = 10;
    counters.jobs_succeeded = 7;
    counters.jobs_failed = 1;
    counters.files_scanned = 5000;
    counters.bytes_scanned = 1ULL << 40;
    counters.cache_hits = 4000;
    counters.engine_scans = 1000;
    counters.detections = 3;
    counters.signature_reloads = 2;
    counters.signature_reload_failures = 1;
    counters.job_queue_write_errors = 2;
    HostView odd = sample_host("odd\"host\\\nname");
    odd.pressure.reset();
    odd.throttled = true;
    const std::string text =
        api::metrics_text(counters, {sample_host("kvm01"), odd}, {sample_datastore()},
                          {{JobStatus::queued, 4}, {JobStatus::dead_letter, 1}}, sample_nodes());
    const auto has_line = [&](const std::string& line) {
        return text.find(line + "\n") != std::string::npos;
    };
    CHECK(text.starts_with("# HELP coldscan_jobs "));
    CHECK(has_line("# TYPE coldscan_jobs gauge"));
    CHECK(has_line(R"(coldscan_jobs{state="queued"} 4)"));
    CHECK(has_line(R"(coldscan_jobs{state="running"} 0)"));
    CHECK(has_line(R"(coldscan_jobs{state="dead_letter"} 1)"));
    CHECK(has_line("# TYPE coldscan_jobs_submitted_total counter"));
    CHECK(has_line("coldscan_jobs_submitted_total 10"));
    CHECK(has_line("coldscan_jobs_succeeded_total 7"));
    CHECK(has_line("coldscan_job_failures_total 1"));
    CHECK(has_line("coldscan_files_scanned_total 5000"));
    CHECK(has_line("coldscan_bytes_scanned_total 1099511627776"));
    CHECK(has_line("coldscan_cache_hits_total 4000"));
    CHECK(has_line("coldscan_engine_scans_total 1000"));
    CHECK(has_line("coldscan_detections_total 3"));
    CHECK(has_line("coldscan_signature_reloads_total 2"));
    CHECK(has_line("coldscan_signature_reload_failures_total 1"));
    CHECK(has_line("coldscan_job_queue_write_errors_total 2"));
    CHECK(has_line(R"(coldscan_nodes{state="alive"} 1)"));
    CHECK(has_line(R"(coldscan_nodes{state="silent"} 1)"));
    CHECK(has_line("coldscan_fleet_running_jobs " + std::to_string(sample_nodes()[0].running_jobs)));
    CHECK(has_line(R"(coldscan_host_running_scans{host="kvm01"} 2)"));
    CHECK(has_line(R"(coldscan_host_max_concurrent_scans{host="kvm01"} 3)"));
    CHECK(has_line(R"(coldscan_host_pressure{host="kvm01"} 0.25)"));
    CHECK(has_line(R"(coldscan_host_throttled{host="kvm01"} 0)"));
    CHECK(has_line(R"(coldscan_host_throttled_seconds_total{host="kvm01"} 12.5)"));
    CHECK(has_line(R"(coldscan_host_bytes_read_total{host="kvm01"} 4096)"));
    CHECK(has_line(R"(coldscan_host_throttled{host="odd\"host\\\nname"} 1)"));
    CHECK(text.find(R"(coldscan_host_pressure{host="odd)") == std::string::npos); // unknown: no sample
    CHECK(has_line(R"(coldscan_datastore_running_scans{datastore="nfs-a"} 2)"));
    CHECK(has_line(R"(coldscan_datastore_bytes_read_total{datastore="nfs-a"} 8192)"));
    // Every sample's family is declared before it, once (20 of the node, 3 of the fleet).
    std::size_t types = 0;
    std::size_t helps = 0;
    for (std::size_t at = text.find("# TYPE "); at != std::string::npos; at = text.find("# TYPE ", at + 1)) {
        ++types;
    }
    for (std::size_t at = text.find("# HELP "); at != std::string::npos; at = text.find("# HELP ", at + 1)) {
        ++helps;
    }
    CHECK(types == 23);
    CHECK(helps == 23);
    CHECK(api::escape_label_value("a\\b\"c\nd") == "a\\\\b\\\"c\\nd");
}

TEST_CASE("exit_status_of", "[scheduler]") {
    const auto finished = [](JobStatus status, std::optional<JobVerdict> verdict) {
        JobView job = sample_job("j", status);
        job.verdict = std::move(verdict);
        return job;
    };
    const JobVerdict clean{"completed", 0, 10, 0, 0, 0, "s"};
    const JobVerdict infected{"completed", 1, 10, 1, 0, 0, "s"};
    const JobVerdict partial{"completed_with_issues", 2, 10, 0, 3, 0, "s"};
    const JobVerdict limited{"completed_with_warnings", 0, 10, 0, 2, 2, "s"};
    CHECK(api::exit_status_of(
              {finished(JobStatus::succeeded, clean), finished(JobStatus::succeeded, limited)}) == 0);
    CHECK(api::exit_status_of(
              {finished(JobStatus::succeeded, clean), finished(JobStatus::succeeded, clean)}) == 0);
    CHECK(api::exit_status_of(
              {finished(JobStatus::succeeded, clean), finished(JobStatus::succeeded, infected)}) == 1);
    CHECK(api::exit_status_of(
              {finished(JobStatus::succeeded, clean), finished(JobStatus::succeeded, partial)}) == 2);
    CHECK(api::exit_status_of(
              {finished(JobStatus::succeeded, clean), finished(JobStatus::failed, std::nullopt)}) == 2);
    CHECK(api::exit_status_of({finished(JobStatus::cancelled, std::nullopt)}) == 2);
    CHECK(api::exit_status_of({finished(JobStatus::dead_letter, std::nullopt)}) == 2);
    CHECK(api::exit_status_of({finished(JobStatus::succeeded, std::nullopt)}) == 2);
    // A detection wins over a failure elsewhere, as `coldscan scan` exits.
    CHECK(api::exit_status_of(
              {finished(JobStatus::failed, std::nullopt), finished(JobStatus::succeeded, infected)}) == 1);
    CHECK(api::exit_status_of({}) == 2);
}

// ---- ApiServer over sockets ----

namespace {

// The service behind the API in these tests: jobs in a map, every call recorded.
class FakeService final : public ApiBackend {
public:
    Expected<std::vector<SubmittedJob>> submit(const std::vector<ScanRequest>& requests) override {
        std::lock_guard lock(m_mutex);
        if (submit_error) {
            return std::unexpected(*submit_error);
        }
        submissions.push_back(requests);
        std::vector<SubmittedJob> out;
        for (const auto& request : requests) {
            JobView job = sample_job("j-" + std::to_string(m_jobs.size() + 1), JobStatus::queued);
            job.record.request.target = request.target;
            job.record.request.priority = request.priority;
            m_jobs[job.record.id] = job;
            out.push_back(SubmittedJob{job, true});
        }
        return out;
    }
    Expected<JobView> job(std::string_view id) const override {
        std::lock_guard lock(m_mutex);
        const auto found = m_jobs.find(std::string(id));
        if (found == m_jobs.end()) {
            return make_error(Errc::not_found, "no job " + std::string(id));
        }
        return found->second;
    }
    Expected<std::vector<JobView>> jobs(std::optional<JobStatus> status) const override {
        std::lock_guard lock(m_mutex);
        std::vector<JobView> out;
        for (const auto& [id, job] : m_jobs) {
            if (!status || job.record.status == *status) {
                out.push_back(job);
            }
        }
        return out;
    }
    Expected<JobView> cancel(std::string_view id) override {
        std::lock_guard lock(m_mutex);
        const auto found = m_jobs.find(std::string(id));
        if (found == m_jobs.end()) {
            return make_error(Errc::not_found, "no job " + std::string(id));
        }
        if (is_finished(found->second.record.status)) {
            return make_error(Errc::invalid_argument, "the job has finished");
        }
        found->second.record.status = JobStatus::cancelled;
        return found->second;
    }
    Expected<std::string> report(std::string_view id) const override {
        std::lock_guard lock(m_mutex);
        const auto found = m_jobs.find(std::string(id));
        if (found == m_jobs.end() || found->second.record.status != JobStatus::succeeded) {
            return make_error(Errc::not_found, "no report for " + std::string(id));
        }
        return std::string(R"({"schema": "coldscan-report", "detections": []})");
    }
    std::vector<HostView> hosts() const override { return {sample_host("kvm01")}; }
    std::vector<DatastoreView> datastores() const override { return {sample_datastore()}; }
    Expected<std::vector<NodeView>> nodes() const override {
        if (nodes_error) {
            return std::unexpected(*nodes_error);
        }
        return sample_nodes();
    }
    // Answers with the findings that match, from a fixed list: the route's filters reach the store.
    Expected<FindingPage> findings(const FindingQuery& query) const override {
        FindingPage page;
        for (const auto& finding : stored_findings) {
            if (matches(finding, query)) {
                page.findings.push_back(finding);
            }
        }
        page.total = page.findings.size();
        return page;
    }
    Expected<FindingStats> finding_stats(const FindingQuery& query) const override {
        return FindingStats{findings(query)->total, {}, {}, {}};
    }
    Plan plan() const override {
        Plan plan;
        plan.now = TimePoint{} + std::chrono::seconds(k_nov_23_2026);
        plan.all_done = plan.now;
        return plan;
    }
    ServiceCounters counters() const override {
        ServiceCounters counters;
        counters.detections = 42;
        return counters;
    }
    ServiceHealth health() const override { return ServiceHealth{true, "sigs-1", "2026-11-23T09:00:00Z", 0}; }
    std::map<JobStatus, std::size_t> job_counts() const override {
        std::lock_guard lock(m_mutex);
        std::map<JobStatus, std::size_t> counts;
        for (const JobStatus status : api::k_job_statuses) {
            counts[status] = 0;
        }
        for (const auto& [id, job] : m_jobs) {
            ++counts[job.record.status];
        }
        return counts;
    }
    Expected<std::string> reload_signatures() override {
        if (reload_error) {
            return std::unexpected(*reload_error);
        }
        return std::string("sigs-2");
    }
    Expected<std::string> retro_hunt() override {
        if (reload_error) {
            return std::unexpected(*reload_error);
        }
        return std::string(R"({"hits": [], "alerts_raised": 0})");
    }
    std::string signatures() const override { return R"({"signature_set": "sigs-1"})"; }

    void add(JobView job) {
        std::lock_guard lock(m_mutex);
        m_jobs[job.record.id] = std::move(job);
    }

    std::optional<Error> submit_error;
    std::optional<Error> reload_error;
    std::optional<Error> nodes_error;
    std::vector<Finding> stored_findings{Finding{"DETECTION", "/images/a.qcow2", "kvm01", "nfs-a",
                                                 "/dev/sda1", "/x", "", "Eicar", "clamav", "s", "j", "n", 1},
                                         Finding{"ERROR", "/images/b.qcow2", "kvm02", "nfs-a", "/dev/sda1",
                                                 "/y", "", "io", "", "s", "j", "n", 2}};
    std::vector<std::vector<ScanRequest>> submissions;

private:
    mutable std::mutex m_mutex;
    std::map<std::string, JobView> m_jobs;
};

struct HttpAnswer {
    int status = 0;
    std::map<std::string, std::string> headers; // names in lower case; repeated ones joined by ", "
    std::string body;
};

int connect_to(const ListenAddress& where) {
    if (!where.unix_socket.empty()) {
        const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        const std::string path = where.unix_socket.string();
        std::copy(path.begin(), path.end(), address.sun_path);
        REQUIRE(::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
        return fd;
    }
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(where.port);
    REQUIRE(::inet_pton(AF_INET, where.address.c_str(), &address.sin_addr) == 1);
    REQUIRE(::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
    return fd;
}

// Sends raw request bytes and reads the answer until the server closes the connection (every request here
// says Connection: close) or 5 seconds pass.
HttpAnswer http_exchange(const ListenAddress& where, const std::string& request) {
    const int fd = connect_to(where);
    std::size_t sent = 0;
    while (sent < request.size()) {
        const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) {
            break; // the server may refuse before it read everything
        }
        sent += static_cast<std::size_t>(n);
    }
    std::string raw;
    char buffer[65536];
    for (int waited = 0; waited < 50;) {
        pollfd ready{fd, POLLIN, 0};
        if (::poll(&ready, 1, 100) == 0) {
            ++waited;
            continue;
        }
        const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n <= 0) {
            break;
        }
        raw.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fd);
    HttpAnswer answer;
    while (raw.starts_with("HTTP/1.1 1")) { // an interim answer (100 Continue)
        raw.erase(0, raw.find("\r\n\r\n") + 4);
    }
    const std::size_t head_end = raw.find("\r\n\r\n");
    REQUIRE(head_end != std::string::npos);
    answer.body = raw.substr(head_end + 4);
    const std::string head = raw.substr(0, head_end);
    REQUIRE(head.starts_with("HTTP/1.1 "));
    answer.status = std::stoi(head.substr(9, 3));
    std::size_t at = head.find("\r\n");
    while (at != std::string::npos) {
        const std::size_t next = head.find("\r\n", at + 2);
        const std::string line =
            head.substr(at + 2, next == std::string::npos ? std::string::npos : next - at - 2);
        const std::size_t colon = line.find(':');
        if (colon != std::string::npos) {
            std::string name = line.substr(0, colon);
            for (auto& c : name) {
                c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            }
            std::string& value = answer.headers[name]; // repeated headers joined, as HTTP reads them
            value += (value.empty() ? "" : ", ") + line.substr(line.find_first_not_of(' ', colon + 1));
        }
        at = next;
    }
    return answer;
}

std::string request_text(const std::string& method, const std::string& path, const std::string& body = "",
                         const std::string& extra_headers = "") {
    std::string text =
        method + " " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n" + extra_headers;
    if (!body.empty() || method == "POST") {
        text += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    }
    return text + "\r\n" + body;
}

HttpAnswer call(const ListenAddress& where, const std::string& method, const std::string& path,
                const std::string& body = "", const std::string& extra_headers = "") {
    return http_exchange(where, request_text(method, path, body, extra_headers));
}

ApiConfig loopback_config() {
    ApiConfig config;
    config.listen.address = "127.0.0.1";
    config.listen.port = 0; // any free port (the config parser does not allow 0; the server does)
    config.requests_per_second = 0;
    return config;
}

ListenAddress bound_address(const ApiServer& server) {
    const std::string address = server.address();
    ListenAddress where;
    if (address.starts_with("unix:")) {
        where.address.clear();
        where.unix_socket = address.substr(5);
        return where;
    }
    const std::size_t colon = address.rfind(':');
    where.address = address.substr(0, colon);
    where.port = static_cast<std::uint16_t>(std::stoi(address.substr(colon + 1)));
    return where;
}

} // namespace

TEST_CASE("ApiServer endpoints", "[scheduler]") {
    auto service = std::make_shared<FakeService>();
    service->add(sample_job("j-done", JobStatus::succeeded));
    auto server = ApiServer::start(service, loopback_config());
    REQUIRE(server);
    const ListenAddress where = bound_address(**server);
    CHECK(where.port != 0);
    CHECK((*server)->address() == "127.0.0.1:" + std::to_string(where.port));

    SECTION("POST /v1/scans submits one request per target in one call") {
        const auto answer = call(where, "POST", "/v1/scans",
                                 R"({"targets": ["/images/a.qcow2", "libvirt:web01"], "priority": "gate"})");
        CHECK(answer.status == 202);
        CHECK(answer.headers.at("content-type") == "application/json");
        const json body = json::parse(answer.body);
        REQUIRE(body["jobs"].size() == 2);
        CHECK(body["jobs"][0]["target"] == "/images/a.qcow2");
        CHECK(body["jobs"][1]["priority"] == "gate");
        REQUIRE(service->submissions.size() == 1);
        CHECK(service->submissions[0].size() == 2);
        CHECK(service->submissions[0][1].target == "libvirt:web01");
    }
    SECTION("POST /v1/scans refusals") {
        const auto bad = call(where, "POST", "/v1/scans", R"({"targets": []})");
        CHECK(bad.status == 400);
        CHECK(json::parse(bad.body)["error"] ==
              "targets must name at least one image or libvirt:DOMAIN (or give a vm)");
        const auto form = http_exchange(where, "POST /v1/scans HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                               "Content-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}");
        CHECK(form.status == 415);
        service->submit_error = Error{Errc::forbidden, "/etc/passwd is outside every datastore root"};
        const auto forbidden = call(where, "POST", "/v1/scans", R"({"targets": ["/etc/passwd"]})");
        CHECK(forbidden.status == 403);
        CHECK(json::parse(forbidden.body)["error"] == "/etc/passwd is outside every datastore root");
        service->submit_error = Error{Errc::unsafe_image, "backing file outside the roots"};
        CHECK(call(where, "POST", "/v1/scans", R"({"targets": ["/images/x"]})").status == 422);
        service->submit_error = Error{Errc::cancelled, "shutting down"};
        const auto draining = call(where, "POST", "/v1/scans", R"({"targets": ["/images/x"]})");
        CHECK(draining.status == 503);
        CHECK(draining.headers.count("retry-after") == 1);
        CHECK(service->submissions.empty());
    }
    SECTION("GET /v1/scans, with and without a status") {
        service->add(sample_job("j-queued", JobStatus::queued));
        const json all = json::parse(call(where, "GET", "/v1/scans").body);
        CHECK(all["jobs"].size() == 2);
        const auto queued = call(where, "GET", "/v1/scans?status=queued");
        CHECK(queued.status == 200);
        const json queued_body = json::parse(queued.body);
        REQUIRE(queued_body["jobs"].size() == 1);
        CHECK(queued_body["jobs"][0]["id"] == "j-queued");
        const auto unknown = call(where, "GET", "/v1/scans?status=sleeping");
        CHECK(unknown.status == 400);
        CHECK(
            json::parse(unknown.body)["error"].get<std::string>().starts_with("unknown status \"sleeping\""));
    }
    SECTION("GET, DELETE and report of one job") {
        service->add(sample_job("j-queued", JobStatus::queued));
        const auto one = call(where, "GET", "/v1/scans/j-done");
        CHECK(one.status == 200);
        CHECK(json::parse(one.body)["status"] == "succeeded");
        const auto missing = call(where, "GET", "/v1/scans/j-missing");
        CHECK(missing.status == 404);
        CHECK(json::parse(missing.body)["error"] == "no job j-missing");
        const auto cancelled = call(where, "DELETE", "/v1/scans/j-queued");
        CHECK(cancelled.status == 200);
        CHECK(json::parse(cancelled.body)["status"] == "cancelled");
        const auto finished = call(where, "DELETE", "/v1/scans/j-done");
        CHECK(finished.status == 409);
        CHECK(json::parse(finished.body)["error"] == "the job has finished");
        CHECK(call(where, "DELETE", "/v1/scans/j-missing").status == 404);
        const auto report = call(where, "GET", "/v1/scans/j-done/report");
        CHECK(report.status == 200);
        CHECK(report.body == R"({"schema": "coldscan-report", "detections": []})");
        CHECK(call(where, "GET", "/v1/scans/j-queued/report").status == 404);
    }
    SECTION("hosts, plan, reload, health, metrics") {
        const json hosts = json::parse(call(where, "GET", "/v1/hosts").body);
        CHECK(hosts["hosts"][0]["name"] == "kvm01");
        CHECK(hosts["datastores"][0]["name"] == "nfs-a");
        const auto nodes = call(where, "GET", "/v1/nodes");
        CHECK(nodes.status == 200);
        CHECK(json::parse(nodes.body)["nodes"][1]["name"] == "scan-b");
        CHECK(call(where, "POST", "/v1/nodes").status == 405);
        const auto eicar = call(where, "GET", "/v1/findings?signature=Eicar&limit=10");
        CHECK(eicar.status == 200);
        CHECK(json::parse(eicar.body)["total"] == 1);
        CHECK(json::parse(eicar.body)["findings"][0]["image"] == "/images/a.qcow2");
        CHECK(json::parse(call(where, "GET", "/v1/stats?host=kvm02").body)["total"] == 1);
        const auto bad_filter = call(where, "GET", "/v1/findings?since=yesterday");
        CHECK(bad_filter.status == 400);
        CHECK(json::parse(bad_filter.body)["error"].get<std::string>().find("ISO 8601") != std::string::npos);
        service->nodes_error = Error{Errc::io, "the fleet database is unreachable"};
        const auto unreachable = call(where, "GET", "/v1/nodes");
        CHECK(unreachable.status == 500);
        CHECK(json::parse(unreachable.body)["error"] == "the fleet database is unreachable");
        const json plan = json::parse(call(where, "GET", "/v1/plan").body);
        CHECK(plan["now"] == "2026-11-23T10:00:00Z");
        CHECK(plan["all_done"] == "2026-11-23T10:00:00Z");
        const auto reload = call(where, "POST", "/v1/signatures/reload");
        CHECK(reload.status == 200);
        CHECK(json::parse(reload.body)["signature_set"] == "sigs-2");
        const auto hunt = call(where, "POST", "/v1/retro-hunt");
        CHECK(hunt.status == 200);
        CHECK(json::parse(hunt.body)["alerts_raised"] == 0);
        service->reload_error = Error{Errc::engine, "main.cvd: malformed database"};
        const auto failed_reload = call(where, "POST", "/v1/signatures/reload");
        CHECK(failed_reload.status == 500);
        CHECK(call(where, "POST", "/v1/retro-hunt").status == 500);
        CHECK(json::parse(failed_reload.body)["error"] == "main.cvd: malformed database");
        for (const char* path : {"/v1/healthz", "/healthz"}) {
            const json health = json::parse(call(where, "GET", path).body);
            CHECK(health["status"] == "ok");
            CHECK(health["jobs"]["succeeded"] == 1);
        }
        for (const char* path : {"/v1/metrics", "/metrics"}) {
            const auto metrics = call(where, "GET", path);
            CHECK(metrics.status == 200);
            CHECK(metrics.headers.at("content-type") == "text/plain; version=0.0.4; charset=utf-8");
            CHECK(metrics.body.find("\ncoldscan_detections_total 42\n") != std::string::npos);
            CHECK(metrics.body.find("coldscan_jobs{state=\"succeeded\"} 1\n") != std::string::npos);
        }
    }
    SECTION("unknown paths are 404, other methods 405, with JSON errors") {
        const auto missing = call(where, "GET", "/v2/scans");
        CHECK(missing.status == 404);
        CHECK(json::parse(missing.body)["error"] == "no such endpoint: /v2/scans");
        CHECK(call(where, "GET", "/v1/scans/j-done/other").status == 404);
        CHECK(call(where, "GET", "/v1/scans/").status == 404);
        const auto put = call(where, "PUT", "/v1/scans", "{}");
        CHECK(put.status == 405);
        CHECK(put.headers.at("allow") == "GET, POST");
        CHECK(json::parse(put.body)["error"] == "PUT is not allowed on /v1/scans");
        CHECK(call(where, "POST", "/v1/hosts").status == 405);
        CHECK(call(where, "GET", "/v1/signatures/reload").headers.at("allow") == "POST");
        const auto signatures = call(where, "GET", "/v1/signatures");
        CHECK(signatures.status == 200);
        CHECK(json::parse(signatures.body)["signature_set"] == "sigs-1");
        CHECK(call(where, "POST", "/v1/signatures", "{}").status == 405);
        CHECK(call(where, "GET", "/v1/retro-hunt").headers.at("allow") == "POST");
        CHECK(call(where, "DELETE", "/v1/scans/j-done/report").status == 405);
    }
    SECTION("browsers: the console's own origin may call, no other page may") {
        const auto other = call(where, "POST", "/v1/scans", R"({"targets": ["/images/a"]})",
                                "Origin: https://evil.example\r\n");
        CHECK(other.status == 403);
        CHECK(json::parse(other.body)["error"] ==
              "requests from other web pages are not accepted (Origin https://evil.example)");
        const auto cross_site = call(where, "GET", "/v1/scans", "", "Sec-Fetch-Site: cross-site\r\n");
        CHECK(cross_site.status == 403);
        // DNS rebinding: a page under its own name that resolves to 127.0.0.1 is same-origin with itself.
        const auto rebound =
            http_exchange(where, "GET /v1/scans HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n"
                                 "Sec-Fetch-Site: same-origin\r\n\r\n");
        CHECK(rebound.status == 403);
        CHECK(service->submissions.empty());
        const auto own = call(where, "POST", "/v1/scans", R"({"targets": ["/images/a"]})",
                              "Origin: http://localhost\r\nSec-Fetch-Site: same-origin\r\n");
        CHECK(own.status == 202);
        CHECK(own.headers.at("cache-control") == "no-store");
        CHECK(service->submissions.size() == 1);
    }
    SECTION("the console: every view's URL is its page, static files with their types and ETags") {
        const auto page = call(where, "GET", "/");
        REQUIRE(page.status == 200);
        CHECK(page.headers.at("content-type") == "text/html; charset=utf-8");
        CHECK(page.body.find(R"(<script type="module" src="/static/app.js">)") != std::string::npos);
        CHECK(page.headers.at("content-security-policy").find("script-src 'self'") != std::string::npos);
        CHECK(page.headers.at("content-security-policy").find("unsafe-inline") == std::string::npos);
        CHECK(page.headers.at("x-frame-options") == "DENY");
        for (const char* view : {"/jobs", "/jobs/j-done", "/findings", "/plan", "/signatures", "/jobs/"}) {
            const auto deep = call(where, "GET", view);
            CHECK(deep.status == 200);
            CHECK(deep.body == page.body);
        }
        const auto script = call(where, "GET", "/static/app.js");
        REQUIRE(script.status == 200);
        CHECK(script.headers.at("content-type") == "text/javascript; charset=utf-8");
        const std::string etag = script.headers.at("etag");
        CHECK(etag.size() == 66); // a quoted SHA-256
        const auto again = call(where, "GET", "/static/app.js", "", "If-None-Match: " + etag + "\r\n");
        CHECK(again.status == 304);
        CHECK(again.body.empty());
        CHECK(call(where, "GET", "/static/vendor/preact.module.js").status == 200);
        CHECK(call(where, "GET", "/static/nothing.js").status == 404);
        CHECK(call(where, "GET", "/jobs/a/b").status == 404);
        CHECK(call(where, "POST", "/", "{}").status == 404);
    }
    SECTION("chunked bodies are refused unread") {
        const auto answer =
            http_exchange(where, "POST /v1/scans HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                 "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                                 "2\r\n{}\r\n0\r\n\r\n");
        CHECK(answer.status == 411);
        CHECK(service->submissions.empty());
    }
    (*server)->stop();
    (*server)->stop(); // idempotent
}

TEST_CASE("ApiServer request guard", "[scheduler]") {
    auto service = std::make_shared<FakeService>();
    service->add(sample_job("j-done", JobStatus::succeeded));
    ApiConfig config = loopback_config();

    SECTION("a bearer token") {
        config.auth_token = "0123456789abcdef-token";
        auto server = ApiServer::start(service, config);
        REQUIRE(server);
        const ListenAddress where = bound_address(**server);
        const auto none = call(where, "GET", "/v1/scans/j-done");
        CHECK(none.status == 401);
        // The console's files hold no data: served without the token (the console asks for it).
        CHECK(call(where, "GET", "/").status == 200);
        CHECK(call(where, "GET", "/static/app.js").status == 200);
        CHECK(none.headers.at("www-authenticate") == "Bearer");
        CHECK(json::parse(none.body)["error"] == "a bearer token is required (Authorization: Bearer TOKEN)");
        CHECK(call(where, "GET", "/v1/scans/j-done", "", "Authorization: Bearer wrong\r\n").status == 401);
        CHECK(call(where, "GET", "/v1/scans/j-done", "", "Authorization: Bearer 0123456789abcdef-token\r\n")
                  .status == 200);
    }
    SECTION("too big bodies: 413 before they are read, also with Expect: 100-continue") {
        config.max_request_bytes = 1024;
        auto server = ApiServer::start(service, config);
        REQUIRE(server);
        const ListenAddress where = bound_address(**server);
        const std::string big = R"({"targets": [")" + std::string(2000, 'a') + R"("]})";
        const auto answer = call(where, "POST", "/v1/scans", big);
        CHECK(answer.status == 413);
        CHECK(json::parse(answer.body)["error"] == "the request body is larger than 1024 bytes");
        CHECK(answer.headers.at("connection") == "close");
        // A client that waits for 100 Continue never sends its 10 GB.
        const auto expect =
            http_exchange(where, "POST /v1/scans HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                 "Content-Type: application/json\r\nContent-Length: 10000000000\r\n"
                                 "Expect: 100-continue\r\n\r\n");
        CHECK(expect.status == 413);
        CHECK(expect.headers.at("content-length") == std::to_string(expect.body.size()));
        CHECK(expect.headers.at("connection") == "close");
        CHECK(json::parse(expect.body)["error"] == "the request body is larger than 1024 bytes");
        // At the limit it is read and parsed.
        const std::string fits = R"({"targets": ["/)" + std::string(1024 - 18, 'a') + R"("]})";
        REQUIRE(fits.size() == 1024);
        CHECK(call(where, "POST", "/v1/scans", fits).status == 202);
        const auto small_expect = http_exchange(
            where, "POST /v1/scans HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                   "Content-Type: application/json\r\nContent-Length: 23\r\nExpect: 100-continue\r\n\r\n"
                   R"({"targets": ["/a.img"]})");
        CHECK(small_expect.status == 202);
        CHECK(service->submissions.size() == 2);
    }
    SECTION("a flood gets 429 with Retry-After") {
        config.requests_per_second = 1;
        config.request_burst = 2;
        auto server = ApiServer::start(service, config);
        REQUIRE(server);
        const ListenAddress where = bound_address(**server);
        CHECK(call(where, "GET", "/v1/scans/j-done").status == 200);
        CHECK(call(where, "GET", "/v1/scans/j-done").status == 200);
        const auto refused = call(where, "GET", "/v1/scans/j-done");
        CHECK(refused.status == 429);
        CHECK(refused.headers.at("retry-after") == "1");
        CHECK(json::parse(refused.body)["error"] == "too many requests from 127.0.0.1");
    }
}

TEST_CASE("ApiServer listening", "[scheduler]") {
    auto service = std::make_shared<FakeService>();
    service->add(sample_job("j-done", JobStatus::succeeded));

    SECTION("a port in use is an io error that says so") {
        auto first = ApiServer::start(service, loopback_config());
        REQUIRE(first);
        ApiConfig config = loopback_config();
        config.listen.port = bound_address(**first).port;
        auto second = ApiServer::start(service, config);
        REQUIRE_FALSE(second);
        CHECK(second.error().code == Errc::io);
        CHECK(second.error().message ==
              "cannot listen on " + (*first)->address() +
                  ": the address is already in use (is another coldscan serve running?)");
    }
    SECTION("a Unix socket: mode 0660, removed at stop; stale ones replaced, live ones kept") {
        auto dir = TempDir::create("coldscan-api-test");
        REQUIRE(dir);
        ApiConfig config;
        config.listen.address.clear();
        config.listen.unix_socket = dir->path() / "api.sock";
        config.requests_per_second = 0;
        const std::string path = config.listen.unix_socket.string();

        // A stale socket: bound once, its process gone.
        {
            const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
            sockaddr_un address{};
            address.sun_family = AF_UNIX;
            std::copy(path.begin(), path.end(), address.sun_path);
            REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
            ::close(fd);
        }
        auto server = ApiServer::start(service, config);
        REQUIRE(server);
        CHECK((*server)->address() == "unix:" + path);
        struct stat info {};
        REQUIRE(::lstat(path.c_str(), &info) == 0);
        CHECK(S_ISSOCK(info.st_mode));
        CHECK((info.st_mode & 07777) == 0660);
        const auto answer = call(bound_address(**server), "GET", "/v1/scans/j-done");
        CHECK(answer.status == 200);
        CHECK(json::parse(answer.body)["id"] == "j-done");
        // Only the socket is left in the folder (the private folder it was bound in is gone).
        CHECK(std::distance(std::filesystem::directory_iterator(dir->path()), {}) == 1);

        auto second = ApiServer::start(service, config);
        REQUIRE_FALSE(second);
        CHECK(second.error().code == Errc::io);
        CHECK(second.error().message ==
              "cannot listen on unix:" + path +
                  ": another service answers there (is another coldscan serve running?)");

        (*server)->stop();
        CHECK_FALSE(std::filesystem::exists(std::filesystem::symlink_status(path)));
    }
    SECTION("a file in the socket's place is left alone") {
        auto dir = TempDir::create("coldscan-api-test");
        REQUIRE(dir);
        ApiConfig config;
        config.listen.address.clear();
        config.listen.unix_socket = dir->path() / "api.sock";
        { std::ofstream(config.listen.unix_socket) << "data"; }
        auto server = ApiServer::start(service, config);
        REQUIRE_FALSE(server);
        CHECK(server.error().message == "cannot listen on unix:" + config.listen.unix_socket.string() +
                                            ": it exists and is not a socket");
        CHECK(std::filesystem::file_size(config.listen.unix_socket) == 4);
    }
}

TEST_CASE("job_list_query and job_list_body", "[scheduler]") {
    std::vector<JobView> jobs;
    for (int i = 0; i < 6; ++i) {
        JobView job = sample_job("j-" + std::to_string(i), JobStatus::queued);
        job.record.submitted_at = k_nov_23_2026 + i;
        job.record.request.target = "/images/web0" + std::to_string(i) + ".qcow2";
        job.record.request.priority = i % 2 == 0 ? Priority::nightly : Priority::gate;
        job.host = i < 3 ? "kvm01" : "kvm02";
        jobs.push_back(job);
    }
    const auto ids = [](const json& body) {
        std::vector<std::string> out;
        for (const auto& job : body["jobs"]) {
            out.push_back(job["id"]);
        }
        return out;
    };
    const auto list = [&](std::multimap<std::string, std::string> params) {
        auto query = api::job_list_query(params);
        REQUIRE(query.has_value());
        return json::parse(api::job_list_body(jobs, *query));
    };
    const json all = list({});
    CHECK(all["total"] == 6);
    CHECK(all["limit"].is_null());
    CHECK(ids(all) == std::vector<std::string>{"j-5", "j-4", "j-3", "j-2", "j-1", "j-0"}); // newest first
    CHECK(ids(list({{"priority", "gate"}, {"host", "kvm02"}})) == std::vector<std::string>{"j-5", "j-3"});
    CHECK(ids(list({{"image", "web02"}})) == std::vector<std::string>{"j-2"});
    CHECK(ids(list({{"datastore", "nfs-b"}})).empty());
    const json page = list({{"offset", "2"}, {"limit", "3"}});
    CHECK(page["total"] == 6);
    CHECK(page["offset"] == 2);
    CHECK(page["limit"] == 3);
    CHECK(ids(page) == std::vector<std::string>{"j-3", "j-2", "j-1"});
    CHECK(ids(list({{"offset", "9"}})).empty());
    for (const auto& [name, value, message] : std::vector<std::tuple<std::string, std::string, std::string>>{
             {"status", "sleeping", "unknown status \"sleeping\""},
             {"priority", "urgent", "unknown priority \"urgent\" (gate, on-demand, nightly)"},
             {"limit", "ten", "limit must be a number, not \"ten\""},
             {"colour", "red", "unknown parameter \"colour\""}}) {
        auto refused = api::job_list_query({{name, value}});
        REQUIRE_FALSE(refused.has_value());
        CHECK(refused.error().code == Errc::invalid_argument);
        CHECK(refused.error().message.starts_with(message));
    }
}
