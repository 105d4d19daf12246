#include "coldscan/scheduler/finding_store.hpp"

#include "coldscan/common/log.hpp"
#include "coldscan/common/text.hpp"

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <fcntl.h>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <unistd.h>

namespace coldscan::scheduler {
namespace {

using json = nlohmann::json;

json encode(const Finding& f) {
    return json{{"kind", f.kind},     {"image", f.image},
                {"host", f.host},     {"datastore", f.datastore},
                {"device", f.device}, {"path", f.path},
                {"sha256", f.sha256}, {"signature", f.signature},
                {"engine", f.engine}, {"signature_set", f.signature_set},
                {"job", f.job},       {"node", f.node},
                {"at", f.at}};
}

Finding decode(const json& j) {
    Finding f;
    f.kind = j.at("kind").get<std::string>();
    f.image = j.at("image").get<std::string>();
    f.host = j.at("host").get<std::string>();
    f.datastore = j.at("datastore").get<std::string>();
    f.device = j.at("device").get<std::string>();
    f.path = j.at("path").get<std::string>();
    f.sha256 = j.at("sha256").get<std::string>();
    f.signature = j.at("signature").get<std::string>();
    f.engine = j.at("engine").get<std::string>();
    f.signature_set = j.at("signature_set").get<std::string>();
    f.job = j.at("job").get<std::string>();
    f.node = j.at("node").get<std::string>();
    f.at = j.at("at").get<std::int64_t>();
    return f;
}

bool newest_first(const Finding* a, const Finding* b) {
    return std::tie(b->at, a->image, a->device, a->path, a->signature) <
           std::tie(a->at, b->image, b->device, b->path, b->signature);
}

std::vector<FindingCount> counted(const std::map<std::string, std::size_t>& counts, bool most_first) {
    std::vector<FindingCount> out;
    for (const auto& [key, count] : counts) {
        out.push_back(FindingCount{key, count});
    }
    if (most_first) {
        std::stable_sort(out.begin(), out.end(),
                         [](const FindingCount& a, const FindingCount& b) { return a.count > b.count; });
    }
    return out;
}

Expected<void> append_line(const std::string& path, const std::string& line) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        return make_error(Errc::io, errno_message("findings: cannot open " + path));
    }
    const bool ok =
        ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && ::fsync(fd) == 0;
    const int err = errno;
    ::close(fd);
    if (!ok) {
        return make_error(Errc::io, errno_message("findings: cannot write " + path, err));
    }
    return {};
}

} // namespace

std::string findings_json(const std::vector<Finding>& findings) {
    json rows = json::array();
    for (const auto& finding : findings) {
        rows.push_back(encode(finding));
    }
    return rows.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string utc_day(std::int64_t unix_seconds) {
    const std::time_t time = unix_seconds;
    std::tm tm{};
    gmtime_r(&time, &tm);
    char day[16];
    std::strftime(day, sizeof day, "%Y-%m-%d", &tm);
    return day;
}

std::vector<Finding> findings_of(const reports::Report& report, const FindingContext& context) {
    std::vector<Finding> out;
    const auto base = [&] {
        Finding f;
        f.image = utf8_or_escaped(context.image);
        f.host = context.host;
        f.datastore = context.datastore;
        f.signature_set = report.signatures.fingerprint;
        f.job = context.job;
        f.node = context.node;
        f.at = context.at;
        return f;
    };
    for (const auto& detection : report.detections) {
        Finding f = base();
        f.kind = std::string(k_detection_kind);
        f.device = utf8_or_escaped(detection.device);
        f.path = utf8_or_escaped(detection.path);
        f.sha256 = detection.sha256;
        f.signature = utf8_or_escaped(detection.detection.signature);
        f.engine = std::string(to_string(detection.detection.engine));
        out.push_back(std::move(f));
    }
    for (const auto& issue : report.errors) {
        Finding f = base();
        f.kind = issue.outcome;
        f.device = utf8_or_escaped(issue.device);
        f.path = utf8_or_escaped(issue.path);
        f.signature = utf8_or_escaped(issue.reason);
        out.push_back(std::move(f));
    }
    return out;
}

bool matches(const Finding& finding, const FindingQuery& query) {
    return (!query.signature || finding.signature == *query.signature) &&
           (!query.image || finding.image == *query.image) && (!query.host || finding.host == *query.host) &&
           (!query.kind || finding.kind == *query.kind) &&
           (!query.path_contains || finding.path.find(*query.path_contains) != std::string::npos) &&
           (!query.since || finding.at >= *query.since) && (!query.until || finding.at < *query.until);
}

Expected<std::unique_ptr<LocalFindingStore>> LocalFindingStore::open(std::string path) {
    auto store = std::unique_ptr<LocalFindingStore>(new LocalFindingStore(path));
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return store; // none yet
    }
    std::string line;
    std::uint64_t good_bytes = 0;
    bool damaged_tail = false;
    std::size_t skipped = 0;
    while (std::getline(in, line)) {
        if (in.eof()) { // no newline: a crash cut the last append short
            damaged_tail = true;
            break;
        }
        good_bytes += line.size() + 1;
        try {
            const json run = json::parse(line);
            for (const auto& finding : run.at("findings")) {
                store->m_findings.push_back(decode(finding));
            }
            store->m_runs.insert(run.at("run").get<std::string>());
        } catch (const json::exception&) {
            ++skipped;
        }
    }
    if (skipped > 0) {
        spdlog::warn("findings: {} damaged line(s) of {} skipped", skipped, path);
    }
    if (damaged_tail) {
        std::error_code ec;
        std::filesystem::resize_file(path, good_bytes, ec);
        spdlog::warn("findings: removed an incomplete last line of {}", path);
    }
    return store;
}

Expected<bool> LocalFindingStore::record(std::string_view run_id, const std::vector<Finding>& findings) {
    std::lock_guard lock(m_mutex);
    if (m_runs.contains(run_id)) {
        return false;
    }
    const json run_id_text = std::string(run_id);
    const std::string line = R"({"run":)" + run_id_text.dump(-1, ' ', false, json::error_handler_t::replace) +
                             R"(,"findings":)" + findings_json(findings) + "}\n";
    if (auto written = append_line(m_path, line); !written) {
        return std::unexpected(written.error());
    }
    m_runs.insert(std::string(run_id));
    m_findings.insert(m_findings.end(), findings.begin(), findings.end());
    return true;
}

Expected<FindingPage> LocalFindingStore::search(const FindingQuery& query) const {
    std::lock_guard lock(m_mutex);
    std::vector<const Finding*> hits;
    for (const auto& finding : m_findings) {
        if (matches(finding, query)) {
            hits.push_back(&finding);
        }
    }
    FindingPage page;
    page.total = hits.size();
    const std::size_t begin = std::min(query.offset, hits.size());
    const std::size_t end = std::min(hits.size(), begin + std::min(query.limit, FindingQuery::k_max_limit));
    // Only the page is sorted: the ones before it are found in linear time (a deep page over 100,000
    // findings took 170 ms with a sort of everything before it).
    const auto first = hits.begin() + static_cast<std::ptrdiff_t>(begin);
    if (begin > 0 && begin < hits.size()) {
        std::nth_element(hits.begin(), first, hits.end(), newest_first);
    }
    std::partial_sort(first, hits.begin() + static_cast<std::ptrdiff_t>(end), hits.end(), newest_first);
    for (std::size_t i = begin; i < end; ++i) {
        page.findings.push_back(*hits[i]);
    }
    return page;
}

Expected<FindingStats> LocalFindingStore::stats(const FindingQuery& query) const {
    std::lock_guard lock(m_mutex);
    std::map<std::string, std::size_t> days;
    std::map<std::string, std::size_t> signatures;
    std::map<std::string, std::size_t> hosts;
    FindingStats stats;
    for (const auto& finding : m_findings) {
        if (!matches(finding, query)) {
            continue;
        }
        ++stats.total;
        ++days[utc_day(finding.at)];
        ++hosts[finding.host];
        if (finding.kind == k_detection_kind) {
            ++signatures[finding.signature];
        }
    }
    stats.per_day = counted(days, false);
    stats.per_signature = counted(signatures, true);
    stats.per_host = counted(hosts, true);
    return stats;
}

} // namespace coldscan::scheduler
