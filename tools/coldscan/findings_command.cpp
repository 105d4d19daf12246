#include "findings_command.hpp"

#include "client.hpp"
#include "coldscan/common/log.hpp"
#include "coldscan/common/text.hpp"

#include <cstdio>

namespace coldscan::cli {

struct FindingsOptions {
    ClientOptions client;
    std::string signature;
    std::string image;
    std::string host;
    std::string path;
    std::string kind;
    std::string since;
    std::string until;
    std::size_t offset = 0;
    std::size_t limit = 100;
    bool stats = false;
    bool json = false;
};

std::shared_ptr<FindingsOptions> add_findings_command(CLI::App& app) {
    auto o = std::make_shared<FindingsOptions>();
    auto* command = app.add_subcommand(
        "findings", "Search the service's findings: detections, files not fully scanned, failed scans");
    command->add_option("--signature", o->signature, "Only this signature (exact)");
    command->add_option("--image", o->image, "Only this image or VM target (exact)");
    command->add_option("--host", o->host, "Only this inventory host");
    command->add_option("--path", o->path, "Only paths that contain this text");
    command->add_option("--kind", o->kind,
                        "DETECTION, LIMIT_EXCEEDED, ERROR, SKIPPED, TARGET_FAILED, JOB_FAILED, ...");
    command->add_option("--since", o->since, "From this time on (2026-11-23T10:00:00Z)");
    command->add_option("--until", o->until, "Before this time (2026-11-23T10:00:00Z)");
    command->add_option("--offset", o->offset, "Skip this many (newest first)");
    command->add_option("--limit", o->limit, "At most this many (1..1000, default 100)");
    command->add_flag("--stats", o->stats, "Count them per day, signature and host instead");
    command->add_flag("--json", o->json, "Print the service's JSON");
    add_client_options(*command, o->client);
    return o;
}

namespace {

// The filters as the API reads them (its checks are the ones that count: one message for both).
std::multimap<std::string, std::string> params_of(const FindingsOptions& o) {
    std::multimap<std::string, std::string> params;
    const std::pair<const char*, const std::string*> texts[] = {
        {"signature", &o.signature}, {"image", &o.image}, {"host", &o.host},  {"path", &o.path},
        {"kind", &o.kind},           {"since", &o.since}, {"until", &o.until}};
    for (const auto& [name, value] : texts) {
        if (!value->empty()) {
            params.emplace(name, *value);
        }
    }
    if (!o.stats) {
        params.emplace("offset", std::to_string(o.offset));
        params.emplace("limit", std::to_string(o.limit));
    }
    return params;
}

void print_counts(const char* title, const std::vector<scheduler::FindingCount>& counts) {
    std::vector<std::vector<std::string>> rows{{title, "COUNT"}};
    for (const auto& count : counts) {
        rows.push_back(
            {count.key.empty() ? std::string("-") : printable(count.key), std::to_string(count.count)});
    }
    print_table(rows);
}

int print_stats(const std::string& body) {
    auto stats = scheduler::api::parse_stats_body(body);
    if (!stats) {
        spdlog::error("{}", stats.error().message);
        return 2;
    }
    std::printf("%zu finding(s)\n", stats->total);
    print_counts("DAY", stats->per_day);
    print_counts("SIGNATURE", stats->per_signature);
    print_counts("HOST", stats->per_host);
    return 0;
}

int print_page(const std::string& body, const scheduler::FindingQuery& query) {
    auto page = scheduler::api::parse_findings_body(body);
    if (!page) {
        spdlog::error("{}", page.error().message);
        return 2;
    }
    std::vector<std::vector<std::string>> rows{
        {"AT", "KIND", "HOST", "IMAGE", "DEVICE", "PATH", "SIGNATURE"}};
    for (const auto& f : page->findings) {
        rows.push_back({scheduler::api::format_iso8601(f.at), printable(f.kind), printable(f.host),
                        printable(f.image), f.device.empty() ? "-" : printable(f.device),
                        f.path.empty() ? "-" : printable(f.path), printable(f.signature)});
    }
    print_table(rows);
    const std::size_t shown_to = query.offset + page->findings.size();
    std::printf("%zu-%zu of %zu finding(s)\n", page->findings.empty() ? 0 : query.offset + 1, shown_to,
                page->total);
    return 0;
}

} // namespace

int run_findings(const FindingsOptions& o) {
    auto query = scheduler::api::finding_query(params_of(o));
    if (!query) {
        spdlog::error("{}", query.error().message);
        return 2;
    }
    auto client = ApiClient::create(o.client);
    if (!client) {
        print_client_error(client.error());
        return 2;
    }
    const std::string path =
        std::string(o.stats ? "/v1/stats" : "/v1/findings") + scheduler::api::finding_query_string(*query);
    auto body = client->get(path);
    if (!body) {
        print_client_error(body.error());
        return 2;
    }
    if (o.json) {
        print_json_text(*body);
        return 0;
    }
    return o.stats ? print_stats(*body) : print_page(*body, *query);
}

} // namespace coldscan::cli
