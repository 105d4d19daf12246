// The JSON and query strings of GET /v1/findings and GET /v1/stats (api_json.hpp).
#include "coldscan/scheduler/api_json.hpp"

#include <charconv>
#include <nlohmann/json.hpp>

namespace coldscan::scheduler::api {
namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

std::string dump(const ordered_json& value) {
    return value.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
}

std::string percent_encoded(std::string_view text) {
    static constexpr char k_hex[] = "0123456789ABCDEF";
    std::string out;
    for (const unsigned char c : text) {
        if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += k_hex[c >> 4];
            out += k_hex[c & 15];
        }
    }
    return out;
}

std::vector<FindingCount> counts_of(const json& list, std::string_view key) {
    std::vector<FindingCount> out;
    for (const auto& entry : list) {
        out.push_back(FindingCount{entry.at(std::string(key)).get<std::string>(),
                                   entry.at("count").get<std::size_t>()});
    }
    return out;
}

ordered_json counts_json(const std::vector<FindingCount>& counts, std::string_view key) {
    ordered_json list = ordered_json::array();
    for (const auto& count : counts) {
        list.push_back(ordered_json{{std::string(key), count.key}, {"count", count.count}});
    }
    return list;
}

} // namespace

Expected<std::size_t> count_parameter(std::string_view name, const std::string& text) {
    std::size_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size()) {
        return make_error(Errc::invalid_argument,
                          std::string(name) + " must be a number, not \"" + text + "\"");
    }
    return value;
}

Expected<FindingQuery> finding_query(const std::multimap<std::string, std::string>& params) {
    FindingQuery query;
    for (const auto& [name, value] : params) {
        if (name == "signature") {
            query.signature = value;
        } else if (name == "image") {
            query.image = value;
        } else if (name == "host") {
            query.host = value;
        } else if (name == "path") {
            query.path_contains = value;
        } else if (name == "kind") {
            query.kind = value;
        } else if (name == "since" || name == "until") {
            const auto time = parse_iso8601(value);
            if (!time) {
                return make_error(Errc::invalid_argument,
                                  name +
                                      " must be an ISO 8601 UTC time such as 2026-11-23T10:00:00Z, not \"" +
                                      value + "\"");
            }
            (name == "since" ? query.since : query.until) = *time;
        } else if (name == "offset" || name == "limit") {
            auto number = count_parameter(name, value);
            if (!number) {
                return std::unexpected(number.error());
            }
            if (name == "limit" && (*number == 0 || *number > FindingQuery::k_max_limit)) {
                return make_error(Errc::invalid_argument,
                                  "limit must be 1.." + std::to_string(FindingQuery::k_max_limit));
            }
            (name == "offset" ? query.offset : query.limit) = *number;
        } else {
            return make_error(Errc::invalid_argument,
                              "unknown parameter \"" + name +
                                  "\" (signature, image, host, path, kind, since, until, "
                                  "offset, limit)");
        }
    }
    return query;
}

std::string finding_query_string(const FindingQuery& query) {
    std::string out;
    const auto add = [&](std::string_view name, const std::string& value) {
        out += out.empty() ? '?' : '&';
        out += std::string(name) + "=" + percent_encoded(value);
    };
    const std::pair<std::string_view, const std::optional<std::string>*> texts[] = {
        {"signature", &query.signature},
        {"image", &query.image},
        {"host", &query.host},
        {"path", &query.path_contains},
        {"kind", &query.kind}};
    for (const auto& [name, value] : texts) {
        if (*value) {
            add(name, **value);
        }
    }
    if (query.since) {
        add("since", format_iso8601(*query.since));
    }
    if (query.until) {
        add("until", format_iso8601(*query.until));
    }
    if (query.offset != 0) {
        add("offset", std::to_string(query.offset));
    }
    if (query.limit != FindingQuery{}.limit) {
        add("limit", std::to_string(query.limit));
    }
    return out;
}

std::string findings_body(const FindingPage& page, const FindingQuery& query) {
    ordered_json list = ordered_json::array();
    for (const auto& f : page.findings) {
        list.push_back(ordered_json{{"kind", f.kind},
                                    {"image", f.image},
                                    {"host", f.host},
                                    {"datastore", f.datastore},
                                    {"device", f.device},
                                    {"path", f.path},
                                    {"sha256", f.sha256},
                                    {"signature", f.signature},
                                    {"engine", f.engine},
                                    {"signature_set", f.signature_set},
                                    {"job", f.job},
                                    {"node", f.node},
                                    {"at", format_iso8601(f.at)}});
    }
    return dump(ordered_json{{"total", page.total},
                             {"offset", query.offset},
                             {"limit", query.limit},
                             {"findings", std::move(list)}});
}

Expected<FindingPage> parse_findings_body(std::string_view body) {
    try {
        const json in = json::parse(body);
        FindingPage page;
        page.total = in.at("total").get<std::size_t>();
        for (const auto& f : in.at("findings")) {
            const auto at = parse_iso8601(f.at("at").get<std::string>());
            if (!at) {
                return make_error(Errc::invalid_argument, "a finding's time is not ISO 8601");
            }
            page.findings.push_back(Finding{f.at("kind"), f.at("image"), f.at("host"), f.at("datastore"),
                                            f.at("device"), f.at("path"), f.at("sha256"), f.at("signature"),
                                            f.at("engine"), f.at("signature_set"), f.at("job"), f.at("node"),
                                            *at});
        }
        return page;
    } catch (const json::exception& e) {
        return make_error(Errc::invalid_argument, std::string("not a findings answer: ") + e.what());
    }
}

std::string stats_body(const FindingStats& stats) {
    return dump(ordered_json{{"total", stats.total},
                             {"per_day", counts_json(stats.per_day, "day")},
                             {"per_signature", counts_json(stats.per_signature, "signature")},
                             {"per_host", counts_json(stats.per_host, "host")}});
}

Expected<FindingStats> parse_stats_body(std::string_view body) {
    try {
        const json in = json::parse(body);
        return FindingStats{in.at("total").get<std::size_t>(), counts_of(in.at("per_day"), "day"),
                            counts_of(in.at("per_signature"), "signature"),
                            counts_of(in.at("per_host"), "host")};
    } catch (const json::exception& e) {
        return make_error(Errc::invalid_argument, std::string("not a stats answer: ") + e.what());
    }
}

} // namespace coldscan::scheduler::api
