// Reading the service's TOML config: toml++ parses the syntax, the Reader below checks every key.
//
// The Reader collects problems instead of stopping at the first, so one run tells an admin everything that
// is wrong with the file; each problem carries the line of the value (or of its section, for a missing key),
// and the lines are sorted at the end because toml++ hands a table's keys over in name order, not in file
// order. Values that fail a check are left at their defaults: nothing is returned once any check failed.
#include "coldscan/scheduler/service_config.hpp"

#include "coldscan/common/read_fully.hpp"
#include "coldscan/common/text.hpp"
#include "coldscan/common/unique_fd.hpp"
#include "coldscan/disk/image_probe.hpp"
#include "coldscan/reports/report.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <array>
#include <cassert>
#include <charconv>
#include <fcntl.h>
#include <limits>
#include <span>
#include <sys/socket.h>
#include <sys/stat.h>
#include <toml++/toml.h>
#include <unistd.h>

namespace coldscan::scheduler {
namespace {

using std::chrono::minutes;

constexpr std::size_t k_min_token_length = 16;
constexpr std::uint64_t k_max_config_bytes = 4ULL << 20;
constexpr std::int64_t k_max_scans = 1024;
constexpr std::int64_t k_max_u32 = std::numeric_limits<std::uint32_t>::max();
constexpr std::int64_t k_day_seconds = 86'400;
// By std::chrono::weekday::c_encoding(): 0 is Sunday.
constexpr std::array<std::string_view, 7> k_day_names = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

constexpr std::array<std::string_view, 9> k_sections = {
    "service", "api", "signatures", "limits", "libvirt", "fleet", "host", "datastore", "nightly_window"};
constexpr std::array<std::string_view, 5> k_service_keys = {"state_dir", "threads", "max_scans",
                                                            "max_attempts", "shutdown_grace"};
constexpr std::array<std::string_view, 5> k_api_keys = {"listen", "auth_token", "max_request_bytes",
                                                        "requests_per_second", "request_burst"};
constexpr std::array<std::string_view, 3> k_signature_keys = {"clamav_db", "yara_rules", "sandbox"};
constexpr std::array<std::string_view, 7> k_limit_keys = {"max_file_size", "max_scan_size", "max_recursion",
                                                          "max_files",     "max_scan_time", "yara_timeout",
                                                          "policy"};
constexpr std::array<std::string_view, 1> k_libvirt_keys = {"uri"};
constexpr std::array<std::string_view, 4> k_fleet_keys = {"database", "password_file", "node",
                                                          "lease_seconds"};
constexpr std::array<std::string_view, 5> k_host_keys = {
    "name", "max_concurrent_scans", "max_read_per_second", "pressure_threshold", "load_probe"};
constexpr std::array<std::string_view, 7> k_datastore_keys = {
    "name", "roots", "hosts", "max_concurrent_scans", "max_read_per_second", "images", "images_format"};
constexpr std::array<std::string_view, 2> k_window_keys = {"time", "days"};

std::string in_quotes(std::string_view text) {
    std::string out = "'";
    out += printable(text);
    out += "'";
    return out;
}

std::string_view type_name(const toml::node& node) {
    switch (node.type()) {
    case toml::node_type::table:
        return "a table";
    case toml::node_type::array:
        return "an array";
    case toml::node_type::string:
        return "a string";
    case toml::node_type::integer:
        return "an integer";
    case toml::node_type::floating_point:
        return "a float";
    case toml::node_type::boolean:
        return "a boolean";
    case toml::node_type::date:
        return "a date";
    case toml::node_type::time:
        return "a time";
    case toml::node_type::date_time:
        return "a date-time";
    case toml::node_type::none:
        break;
    }
    return "nothing";
}

// Levenshtein distance, for "did you mean" hints on short key names.
std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) {
        row[j] = j;
    }
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t above = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diagonal = above;
        }
    }
    return row[b.size()];
}

// A name for a host or datastore: non-empty, valid UTF-8, no control characters.
bool valid_name(std::string_view name) {
    return !name.empty() && is_valid_utf8(name) && std::none_of(name.begin(), name.end(), [](char c) {
        const auto byte = static_cast<unsigned char>(c);
        return byte < 0x20 || byte == 0x7f;
    });
}

// An absolute path without ".", ".." or empty components (one trailing '/' is fine): roots are matched
// as text against canonical image paths.
bool plain_absolute(std::string_view path) {
    if (!path.starts_with('/')) {
        return false;
    }
    std::size_t start = 1;
    while (start < path.size()) {
        std::size_t end = path.find('/', start);
        if (end == std::string_view::npos) {
            end = path.size();
        }
        const std::string_view component = path.substr(start, end - start);
        if ((component.empty() && end != path.size() - 1) || component == "." || component == "..") {
            return false;
        }
        start = end + 1;
    }
    return true;
}

// A glob pattern relative to a datastore root that cannot leave it.
bool relative_inside(std::string_view pattern) {
    if (pattern.empty() || pattern.starts_with('/')) {
        return false;
    }
    std::size_t start = 0;
    while (start <= pattern.size()) {
        std::size_t end = pattern.find('/', start);
        if (end == std::string_view::npos) {
            end = pattern.size();
        }
        const std::string_view component = pattern.substr(start, end - start);
        if (component.empty() || component == "." || component == "..") {
            return false;
        }
        start = end + 1;
    }
    return true;
}

std::optional<unsigned> parse_number(std::string_view text) {
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
        return std::nullopt;
    }
    return value;
}

// "6:00", "22:30"; "24:00" only when end_of_day is allowed.
std::optional<minutes> parse_time_of_day(std::string_view text, bool end_of_day) {
    const auto colon = text.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon > 2 || text.size() != colon + 3) {
        return std::nullopt;
    }
    const auto hour = parse_number(text.substr(0, colon));
    const auto minute = parse_number(text.substr(colon + 1));
    if (!hour || !minute || *minute > 59) {
        return std::nullopt;
    }
    if (*hour == 24 && *minute == 0 && end_of_day) {
        return minutes(0); // the next midnight: "20:00-24:00" wraps to it, "00:00-24:00" is a whole day
    }
    if (*hour > 23) {
        return std::nullopt;
    }
    return minutes(*hour * 60 + *minute);
}

std::optional<std::pair<minutes, minutes>> parse_time_range(std::string_view text) {
    const auto dash = text.find('-');
    if (dash == std::string_view::npos) {
        return std::nullopt;
    }
    const auto start = parse_time_of_day(text.substr(0, dash), false);
    const auto end = parse_time_of_day(text.substr(dash + 1), true);
    if (!start || !end) {
        return std::nullopt;
    }
    return std::pair{*start, *end};
}

// "mon" -> 1 (c_encoding), case-insensitive.
std::optional<unsigned> parse_day(std::string_view text) {
    if (text.size() != 3) {
        return std::nullopt;
    }
    std::string lower(text);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; });
    for (unsigned i = 0; i < k_day_names.size(); ++i) {
        if (k_day_names[i] == lower) {
            return i;
        }
    }
    return std::nullopt;
}

Inventory empty_inventory() {
    auto inventory = Inventory::create({}, {});
    assert(inventory.has_value());
    return std::move(*inventory);
}

// Where a value lives, for error lines: "[api]", "[[host]] 'esx1'", "the top level".
struct Scope {
    const toml::table* table = nullptr; // null: the section is absent (every key takes its default)
    std::string name;
};

// A string value with its line.
struct Text {
    std::string value;
    std::uint32_t line = 0;
};

// Checks values and collects problems. Thread rule: one per parse.
class Reader {
public:
    explicit Reader(std::string_view source) : m_source(source) {}

    // Records a problem at line (0: none known).
    void fail(std::uint32_t line, std::string text) { m_problems.push_back({line, std::move(text)}); }
    void fail(const toml::node& node, std::string text) { fail(node.source().begin.line, std::move(text)); }
    [[nodiscard]] bool failed() const noexcept { return !m_problems.empty(); }

    // Every problem, sorted by line, one per line.
    [[nodiscard]] Error error() {
        std::stable_sort(m_problems.begin(), m_problems.end(),
                         [](const Problem& a, const Problem& b) { return a.line < b.line; });
        std::string message;
        for (const Problem& problem : m_problems) {
            if (!message.empty()) {
                message += '\n';
            }
            message += m_source;
            if (problem.line != 0) {
                message += ':';
                message += std::to_string(problem.line);
            }
            message += ": ";
            message += problem.text;
        }
        return Error{Errc::invalid_argument, std::move(message)};
    }

    // Refuses every key of the scope's table that is not in known.
    void check_keys(const Scope& scope, std::span<const std::string_view> known) {
        if (scope.table == nullptr) {
            return;
        }
        for (auto&& [key, node] : *scope.table) {
            if (std::find(known.begin(), known.end(), key.str()) != known.end()) {
                continue;
            }
            std::string text = "unknown key " + in_quotes(key.str()) + " in " + scope.name;
            std::string_view closest;
            std::size_t closest_distance = 3; // suggest only within two edits
            for (std::string_view candidate : known) {
                const std::size_t distance = edit_distance(key.str(), candidate);
                if (distance < closest_distance) {
                    closest = candidate;
                    closest_distance = distance;
                }
            }
            if (!closest.empty()) {
                text += " (did you mean " + in_quotes(closest) + "?)";
            }
            fail(key.source().begin.line, std::move(text));
        }
    }

    // The section [name] of root; nullopt when it is absent or not a table (reported).
    std::optional<Scope> section(const toml::table& root, std::string_view name) {
        const toml::node* node = root.get(name);
        if (node == nullptr) {
            return std::nullopt;
        }
        const toml::table* table = node->as_table();
        if (table == nullptr) {
            fail(*node, std::string(name) + ": expected a section [" + std::string(name) + "], got " +
                            std::string(type_name(*node)));
            return std::nullopt;
        }
        return Scope{table, "[" + std::string(name) + "]"};
    }

    // The tables [[name]] of root, with their 1-based numbers in the names ("[[host]] #2").
    std::vector<Scope> table_array(const toml::table& root, std::string_view name) {
        std::vector<Scope> scopes;
        const toml::node* node = root.get(name);
        if (node == nullptr) {
            return scopes;
        }
        const std::string header = "[[" + std::string(name) + "]]";
        const toml::array* array = node->as_array();
        if (array == nullptr) {
            fail(*node, std::string(name) + ": expected " + header + " tables, got " +
                            std::string(type_name(*node)));
            return scopes;
        }
        for (std::size_t i = 0; i < array->size(); ++i) {
            const toml::table* table = (*array)[i].as_table();
            if (table == nullptr) {
                fail((*array)[i], std::string(name) + ": expected " + header + " tables, got " +
                                      std::string(type_name((*array)[i])));
                continue;
            }
            scopes.push_back(Scope{table, header + " #" + std::to_string(i + 1)});
        }
        return scopes;
    }

    // The line of a scope's key, else of its table (0 when the section is absent).
    [[nodiscard]] static std::uint32_t line_of(const Scope& scope, std::string_view key) {
        if (scope.table == nullptr) {
            return 0;
        }
        const toml::node* node = scope.table->get(key);
        return (node != nullptr ? node->source() : scope.table->source()).begin.line;
    }

    [[nodiscard]] static const toml::node* find(const Scope& scope, std::string_view key) {
        return scope.table == nullptr ? nullptr : scope.table->get(key);
    }

    void fail_value(const toml::node& node, const Scope& scope, std::string_view key, std::string_view text) {
        fail(node, scope.name + " " + std::string(key) + ": " + std::string(text));
    }

    void fail_type(const toml::node& node, const Scope& scope, std::string_view key,
                   std::string_view expected) {
        fail_value(node, scope, key,
                   "expected " + std::string(expected) + ", got " + std::string(type_name(node)));
    }

    void fail_missing(const Scope& scope, std::string_view key) {
        fail(line_of(scope, key), "missing required key " + in_quotes(key) + " in " + scope.name);
    }

    // A non-empty string; nullopt when absent or bad (reported).
    std::optional<Text> string(const Scope& scope, std::string_view key) {
        const toml::node* node = find(scope, key);
        if (node == nullptr) {
            return std::nullopt;
        }
        return string_value(*node, scope, key);
    }

    std::optional<Text> string_value(const toml::node& node, const Scope& scope, std::string_view key) {
        const auto* value = node.as_string();
        if (value == nullptr) {
            fail_type(node, scope, key, "a string");
            return std::nullopt;
        }
        if (value->get().empty()) {
            fail_value(node, scope, key, "must not be empty");
            return std::nullopt;
        }
        return Text{value->get(), node.source().begin.line};
    }

    // An array of non-empty strings (possibly empty); nullopt when absent or bad (reported).
    std::optional<std::vector<Text>> strings(const Scope& scope, std::string_view key) {
        const toml::node* node = find(scope, key);
        if (node == nullptr) {
            return std::nullopt;
        }
        const toml::array* array = node->as_array();
        if (array == nullptr) {
            fail_type(*node, scope, key, "an array of strings");
            return std::nullopt;
        }
        std::vector<Text> texts;
        bool good = true;
        for (const toml::node& element : *array) {
            auto text = string_value(element, scope, key);
            if (text) {
                texts.push_back(std::move(*text));
            } else {
                good = false;
            }
        }
        return good ? std::optional(std::move(texts)) : std::nullopt;
    }

    std::optional<bool> boolean(const Scope& scope, std::string_view key) {
        const toml::node* node = find(scope, key);
        if (node == nullptr) {
            return std::nullopt;
        }
        const auto* value = node->as_boolean();
        if (value == nullptr) {
            fail_type(*node, scope, key, "true or false");
            return std::nullopt;
        }
        return value->get();
    }

    std::optional<std::int64_t> integer(const Scope& scope, std::string_view key, std::int64_t min,
                                        std::int64_t max) {
        const toml::node* node = find(scope, key);
        if (node == nullptr) {
            return std::nullopt;
        }
        const auto* value = node->as_integer();
        if (value == nullptr) {
            fail_type(*node, scope, key, "an integer");
            return std::nullopt;
        }
        return in_range(*node, scope, key, value->get(), min, max, "");
    }

    // An integer or a float within [min, max].
    std::optional<double> number(const Scope& scope, std::string_view key, double min, double max) {
        const toml::node* node = find(scope, key);
        if (node == nullptr) {
            return std::nullopt;
        }
        double value = 0.0;
        if (const auto* floating = node->as_floating_point()) {
            value = floating->get();
        } else if (const auto* integral = node->as_integer()) {
            value = static_cast<double>(integral->get());
        } else {
            fail_type(*node, scope, key, "a number");
            return std::nullopt;
        }
        if (!(value >= min && value <= max)) {
            fail_value(*node, scope, key,
                       "must lie in " + format_number(min) + ".." + format_number(max) + " (got " +
                           format_number(value) + ")");
            return std::nullopt;
        }
        return value;
    }

    // A size: "256M", "1GiB", "4096" as parse_size reads them, or an integer of bytes; at least 1.
    std::optional<std::uint64_t> size(const Scope& scope, std::string_view key) {
        const toml::node* node = find(scope, key);
        if (node == nullptr) {
            return std::nullopt;
        }
        std::uint64_t bytes = 0;
        if (const auto* text = node->as_string()) {
            const auto parsed = parse_size(text->get());
            if (!parsed) {
                fail_value(*node, scope, key,
                           in_quotes(text->get()) + " is not a size (like 256M, 1G or 4096)");
                return std::nullopt;
            }
            bytes = *parsed;
        } else if (const auto* integral = node->as_integer()) {
            if (integral->get() < 0) {
                fail_value(*node, scope, key,
                           "must be more than 0 (got " + std::to_string(integral->get()) + ")");
                return std::nullopt;
            }
            bytes = static_cast<std::uint64_t>(integral->get());
        } else {
            fail_type(*node, scope, key, "a size like \"256M\" or a number of bytes");
            return std::nullopt;
        }
        if (bytes == 0) {
            fail_value(*node, scope, key, "must be more than 0");
            return std::nullopt;
        }
        return bytes;
    }

    // Seconds: an integer, or a duration like "90s", "2m", "1h" (parse_duration).
    std::optional<std::chrono::seconds> seconds(const Scope& scope, std::string_view key, std::int64_t min,
                                                std::int64_t max) {
        const toml::node* node = find(scope, key);
        if (node == nullptr) {
            return std::nullopt;
        }
        std::int64_t count = 0;
        if (const auto* text = node->as_string()) {
            const auto parsed = parse_duration(text->get());
            if (!parsed) {
                fail_value(*node, scope, key,
                           in_quotes(text->get()) + " is not a duration (seconds, or like 90s, 2m, 1h)");
                return std::nullopt;
            }
            count = parsed->count();
        } else if (const auto* integral = node->as_integer()) {
            count = integral->get();
        } else {
            fail_type(*node, scope, key, "seconds or a duration like \"2m\"");
            return std::nullopt;
        }
        const auto checked = in_range(*node, scope, key, count, min, max, " seconds");
        if (!checked) {
            return std::nullopt;
        }
        return std::chrono::seconds(*checked);
    }

    // An absolute path (the file system is not consulted).
    std::optional<std::filesystem::path> absolute_path(const Scope& scope, std::string_view key) {
        const auto text = string(scope, key);
        if (!text) {
            return std::nullopt;
        }
        return absolute_path_value(*text, scope, key);
    }

    std::optional<std::filesystem::path> absolute_path_value(const Text& text, const Scope& scope,
                                                             std::string_view key) {
        if (!text.value.starts_with('/')) {
            fail(text.line, scope.name + " " + std::string(key) + ": " + in_quotes(text.value) +
                                " is not an absolute path");
            return std::nullopt;
        }
        return std::filesystem::path(text.value);
    }

private:
    struct Problem {
        std::uint32_t line = 0;
        std::string text;
    };

    static std::string format_number(double value) {
        char buffer[32];
        const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
        return ec == std::errc() ? std::string(buffer, end) : std::string("?");
    }

    std::optional<std::int64_t> in_range(const toml::node& node, const Scope& scope, std::string_view key,
                                         std::int64_t value, std::int64_t min, std::int64_t max,
                                         std::string_view unit) {
        if (value < min) {
            fail_value(
                node, scope, key,
                (min == 1 ? std::string("must be more than 0") : "must be at least " + std::to_string(min)) +
                    std::string(unit) + " (got " + std::to_string(value) + ")");
            return std::nullopt;
        }
        if (value > max) {
            fail_value(node, scope, key,
                       "must be at most " + std::to_string(max) + std::string(unit) + " (got " +
                           std::to_string(value) + ")");
            return std::nullopt;
        }
        return value;
    }

    std::string m_source;
    std::vector<Problem> m_problems;
};

template <typename T, typename U> void assign_if(std::optional<T> value, U& target) {
    if (value) {
        target = static_cast<U>(*value);
    }
}

void read_service(Reader& reader, const std::optional<Scope>& section, ServiceConfig& config) {
    const Scope scope = section.value_or(Scope{nullptr, "[service]"});
    reader.check_keys(scope, k_service_keys);
    if (Reader::find(scope, "state_dir") == nullptr) {
        reader.fail_missing(scope, "state_dir");
    }
    assign_if(reader.absolute_path(scope, "state_dir"), config.state_dir);
    assign_if(reader.integer(scope, "threads", 0, k_max_scans), config.threads);
    assign_if(reader.integer(scope, "max_scans", 0, k_max_scans), config.max_scans);
    assign_if(reader.integer(scope, "max_attempts", 1, 1000), config.max_attempts);
    assign_if(reader.seconds(scope, "shutdown_grace", 0, k_day_seconds), config.shutdown_grace);
}

void read_api(Reader& reader, const std::optional<Scope>& section, ApiConfig& api) {
    const Scope scope = section.value_or(Scope{nullptr, "[api]"});
    reader.check_keys(scope, k_api_keys);
    if (const auto listen = reader.string(scope, "listen")) {
        if (auto address = parse_listen_address(listen->value)) {
            api.listen = std::move(*address);
        } else {
            reader.fail(listen->line, "[api] listen: " + in_quotes(listen->value) +
                                          " is not an address like 127.0.0.1:8731, [::1]:8731 or "
                                          "unix:/run/coldscan/api.sock");
        }
    }
    // The token is a secret: no message repeats it.
    if (const auto token = reader.string(scope, "auth_token")) {
        if (token->value.size() < k_min_token_length) {
            reader.fail(token->line, "[api] auth_token: must be at least " +
                                         std::to_string(k_min_token_length) + " characters long");
        } else if (!std::all_of(token->value.begin(), token->value.end(),
                                [](char c) { return c > 0x20 && c < 0x7f; })) {
            reader.fail(token->line, "[api] auth_token: must hold only visible ASCII characters (no spaces)");
        } else {
            api.auth_token = token->value;
        }
    }
    if (!api.listen.loopback() && Reader::find(scope, "auth_token") == nullptr) {
        reader.fail(Reader::line_of(scope, "listen"),
                    "[api] listen: " + api.listen.to_string() +
                        " is not a loopback address, so [api] auth_token is required");
    }
    assign_if(reader.size(scope, "max_request_bytes"), api.max_request_bytes);
    assign_if(reader.integer(scope, "requests_per_second", 1, 1'000'000), api.requests_per_second);
    assign_if(reader.integer(scope, "request_burst", 1, 1'000'000), api.request_burst);
}

void read_signatures(Reader& reader, const std::optional<Scope>& section, ServiceConfig& config) {
    if (!section) {
        return;
    }
    reader.check_keys(*section, k_signature_keys);
    if (auto path = reader.absolute_path(*section, "clamav_db")) {
        config.clamav_db = std::move(*path);
    }
    assign_if(reader.boolean(*section, "sandbox"), config.sandbox);
    if (const auto rules = reader.strings(*section, "yara_rules")) {
        for (const Text& rule : *rules) {
            if (auto path = reader.absolute_path_value(rule, *section, "yara_rules")) {
                config.yara_rules.push_back(std::move(*path));
            }
        }
    }
}

void read_limits(Reader& reader, const std::optional<Scope>& section, signatures::ScanLimits& limits,
                 reports::LimitPolicy& policy) {
    if (!section) {
        return;
    }
    reader.check_keys(*section, k_limit_keys);
    if (const auto text = reader.string(*section, "policy")) {
        if (const auto parsed = reports::limit_policy_from(text->value)) {
            policy = *parsed;
        } else {
            reader.fail(text->line,
                        "[limits] policy: " + in_quotes(text->value) +
                            " is not warn (limit hits are warnings) or fail (they fail the scan)");
        }
    }
    assign_if(reader.size(*section, "max_file_size"), limits.max_file_size);
    assign_if(reader.size(*section, "max_scan_size"), limits.max_scan_size);
    assign_if(reader.integer(*section, "max_recursion", 1, k_max_u32), limits.max_recursion);
    assign_if(reader.integer(*section, "max_files", 1, k_max_u32), limits.max_files);
    if (const auto time = reader.seconds(*section, "max_scan_time", 1, k_day_seconds)) {
        limits.max_scan_time = *time;
    }
    assign_if(reader.seconds(*section, "yara_timeout", 1, k_day_seconds), limits.yara_timeout);
}

void read_libvirt(Reader& reader, const std::optional<Scope>& section, ServiceConfig& config) {
    if (!section) {
        return;
    }
    reader.check_keys(*section, k_libvirt_keys);
    if (Reader::find(*section, "uri") == nullptr) {
        reader.fail_missing(*section, "uri");
    }
    const auto uri = reader.string(*section, "uri");
    if (!uri) {
        return;
    }
    // A driver scheme ("qemu", "qemu+ssh", "test") and "://".
    const auto separator = uri->value.find("://");
    const std::string_view scheme = std::string_view(uri->value).substr(0, separator);
    const bool good = separator != std::string::npos && !scheme.empty() && scheme[0] >= 'a' &&
                      scheme[0] <= 'z' && std::all_of(scheme.begin(), scheme.end(), [](char c) {
                          return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '-';
                      });
    if (!good) {
        reader.fail(uri->line, "[libvirt] uri: " + in_quotes(uri->value) +
                                   " is not a libvirt URI like qemu:///system or test:///path/node.xml");
        return;
    }
    config.libvirt_uri = uri->value;
}

// A libpq URI: postgresql:// or postgres://, with no password in it (the file must not hold the secret).
std::optional<std::string> fleet_database(Reader& reader, const Text& uri) {
    const std::string_view text = uri.value;
    const bool scheme = text.starts_with("postgresql://") || text.starts_with("postgres://");
    if (!scheme) {
        reader.fail(uri.line,
                    "[fleet] database: not a PostgreSQL URI like postgresql://coldscan@db.example/coldscan");
        return std::nullopt;
    }
    // The secret never appears in a message: only where it was found.
    if (!uri_password_spans(text).empty()) {
        reader.fail(uri.line,
                    "[fleet] database: holds a password; put it in password_file, or give it to libpq "
                    "as PGPASSWORD or in a PGPASSFILE");
        return std::nullopt;
    }
    return std::string(text);
}

bool valid_node_name(std::string_view name) {
    return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
               c == '-' || c == '_';
    });
}

} // namespace

std::string default_node_name() {
    std::array<char, 256> name{};
    if (gethostname(name.data(), name.size() - 1) != 0 || !valid_node_name(name.data())) {
        return "node";
    }
    return name.data();
}

namespace {

void read_fleet(Reader& reader, const std::optional<Scope>& section, ServiceConfig& config) {
    if (!section) {
        return;
    }
    reader.check_keys(*section, k_fleet_keys);
    if (Reader::find(*section, "database") == nullptr) {
        reader.fail_missing(*section, "database");
    }
    FleetConfig fleet;
    if (const auto uri = reader.string(*section, "database")) {
        fleet.database = fleet_database(reader, *uri).value_or("");
    }
    if (auto path = reader.absolute_path(*section, "password_file")) {
        fleet.password_file = std::move(*path);
    }
    fleet.node = default_node_name();
    if (const auto node = reader.string(*section, "node")) {
        if (valid_node_name(node->value)) {
            fleet.node = node->value;
        } else {
            reader.fail(node->line, "[fleet] node: " + in_quotes(node->value) +
                                        " is not a name of 1 to 64 letters, digits, '.', '-' and '_'");
        }
    }
    assign_if(reader.seconds(*section, "lease_seconds", 5, 3600), fleet.lease);
    config.fleet = std::move(fleet);
}

// The name of a [[host]] or [[datastore]]; renames the scope after it when it is good.
std::optional<Text> read_name(Reader& reader, Scope& scope) {
    if (Reader::find(scope, "name") == nullptr) {
        reader.fail_missing(scope, "name");
        return std::nullopt;
    }
    auto name = reader.string(scope, "name");
    if (!name) {
        return std::nullopt;
    }
    if (!valid_name(name->value)) {
        reader.fail(name->line, scope.name + " name: " + in_quotes(name->value) +
                                    " is not a name (UTF-8 without control characters)");
        return std::nullopt;
    }
    scope.name = scope.name.substr(0, scope.name.find(" #")) + " " + in_quotes(name->value);
    return name;
}

std::optional<LoadProbe> read_load_probe(Reader& reader, const Scope& scope) {
    const toml::node* node = Reader::find(scope, "load_probe");
    if (node == nullptr) {
        return std::nullopt;
    }
    const auto refuse = [&](std::string_view text) {
        reader.fail_value(*node, scope, "load_probe",
                          in_quotes(text) + " is not \"psi\", an http:// or https:// URL, or a command "
                                            "starting with an absolute path");
    };
    if (node->is_array()) {
        auto argv = reader.strings(scope, "load_probe");
        if (!argv) {
            return std::nullopt;
        }
        if (argv->empty()) {
            reader.fail_value(*node, scope, "load_probe", "an empty command");
            return std::nullopt;
        }
        if (!argv->front().value.starts_with('/')) {
            refuse(argv->front().value);
            return std::nullopt;
        }
        CommandProbe command;
        for (Text& arg : *argv) {
            command.argv.push_back(std::move(arg.value));
        }
        return command;
    }
    const auto text = reader.string(scope, "load_probe");
    if (!text) {
        return std::nullopt;
    }
    const std::string& value = text->value;
    if (value == "psi") {
        return PsiProbe{};
    }
    for (std::string_view scheme : {"http://", "https://"}) {
        if (value.starts_with(scheme)) {
            const bool has_host = value.size() > scheme.size() && value[scheme.size()] != '/';
            const bool no_space = std::none_of(value.begin(), value.end(), [](char c) {
                return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f;
            });
            if (!has_host || !no_space) {
                refuse(value);
                return std::nullopt;
            }
            return HttpProbe{value};
        }
    }
    if (value.starts_with('/')) {
        CommandProbe command;
        std::size_t start = 0;
        while (start < value.size()) {
            const std::size_t end = std::min(value.find_first_of(" \t", start), value.size());
            if (end > start) {
                command.argv.emplace_back(value.substr(start, end - start));
            }
            start = end + 1;
        }
        return command;
    }
    refuse(value);
    return std::nullopt;
}

struct InventoryDraft {
    std::vector<HostSpec> hosts;
    std::vector<DatastoreSpec> datastores;
    std::map<std::string, std::uint32_t, std::less<>> host_lines; // by name: where it is defined
};

void read_hosts(Reader& reader, const toml::table& root, InventoryDraft& draft, ServiceConfig& config) {
    std::optional<std::pair<std::string, std::uint32_t>> psi_host; // "psi" reads this machine: one host only
    for (Scope scope : reader.table_array(root, "host")) {
        const auto name = read_name(reader, scope);
        reader.check_keys(scope, k_host_keys);
        HostSpec host;
        assign_if(reader.integer(scope, "max_concurrent_scans", 1, k_max_scans), host.max_concurrent_scans);
        assign_if(reader.size(scope, "max_read_per_second"), host.max_read_bytes_per_second);
        assign_if(reader.number(scope, "pressure_threshold", 0.0, 1.0), host.pressure_threshold);
        auto probe = read_load_probe(reader, scope);
        if (!name) {
            continue;
        }
        host.name = name->value;
        const auto [previous, added] = draft.host_lines.emplace(host.name, name->line);
        if (!added) {
            reader.fail(name->line, scope.name + " name: already used by the [[host]] on line " +
                                        std::to_string(previous->second));
            continue;
        }
        if (probe && std::holds_alternative<PsiProbe>(*probe)) {
            if (psi_host) {
                reader.fail(Reader::line_of(scope, "load_probe"),
                            scope.name +
                                " load_probe: \"psi\" reads this machine's /proc/pressure, and host " +
                                in_quotes(psi_host->first) + " (line " + std::to_string(psi_host->second) +
                                ") already uses it");
            } else {
                psi_host.emplace(host.name, Reader::line_of(scope, "load_probe"));
            }
        }
        if (probe) {
            config.load_probes.emplace(host.name, std::move(*probe));
        }
        draft.hosts.push_back(std::move(host));
    }
}

void read_datastores(Reader& reader, const toml::table& root, InventoryDraft& draft, ServiceConfig& config) {
    std::map<std::string, std::pair<std::string, std::uint32_t>, std::less<>>
        root_owner; // root -> (name, line)
    std::map<std::string, std::uint32_t, std::less<>> names;
    for (Scope scope : reader.table_array(root, "datastore")) {
        const auto name = read_name(reader, scope);
        reader.check_keys(scope, k_datastore_keys);
        DatastoreSpec datastore;
        if (name) {
            datastore.name = name->value;
            const auto [previous, added] = names.emplace(datastore.name, name->line);
            if (!added) {
                reader.fail(name->line, scope.name + " name: already used by the [[datastore]] on line " +
                                            std::to_string(previous->second));
            }
        }
        assign_if(reader.integer(scope, "max_concurrent_scans", 1, k_max_scans),
                  datastore.max_concurrent_scans);
        assign_if(reader.size(scope, "max_read_per_second"), datastore.max_read_bytes_per_second);

        if (Reader::find(scope, "roots") == nullptr) {
            reader.fail_missing(scope, "roots");
        } else if (const auto roots = reader.strings(scope, "roots")) {
            if (roots->empty()) {
                reader.fail(Reader::line_of(scope, "roots"),
                            scope.name + " roots: must name at least one folder");
            }
            for (const Text& folder : *roots) {
                if (!plain_absolute(folder.value)) {
                    reader.fail(folder.line, scope.name + " roots: " + in_quotes(folder.value) +
                                                 " is not an absolute path without '.', '..' or '//'");
                    continue;
                }
                std::string key = folder.value;
                if (key.size() > 1 && key.back() == '/') {
                    key.pop_back();
                }
                const auto [owner, added] = root_owner.emplace(key, std::pair{datastore.name, folder.line});
                if (!added) {
                    reader.fail(folder.line, scope.name + " roots: " + in_quotes(folder.value) +
                                                 " already belongs to datastore " +
                                                 in_quotes(owner->second.first) + " (line " +
                                                 std::to_string(owner->second.second) + ")");
                    continue;
                }
                datastore.roots.push_back(folder.value);
            }
        }

        if (Reader::find(scope, "hosts") == nullptr) {
            reader.fail_missing(scope, "hosts");
        } else if (const auto hosts = reader.strings(scope, "hosts")) {
            if (hosts->empty()) {
                reader.fail(Reader::line_of(scope, "hosts"),
                            scope.name + " hosts: must name at least one host");
            }
            for (const Text& host : *hosts) {
                if (!draft.host_lines.contains(host.value)) {
                    reader.fail(host.line, scope.name + " hosts: unknown host " + in_quotes(host.value) +
                                               " (not a [[host]] name)");
                } else if (std::find(datastore.hosts.begin(), datastore.hosts.end(), host.value) !=
                           datastore.hosts.end()) {
                    reader.fail(host.line,
                                scope.name + " hosts: " + in_quotes(host.value) + " is listed twice");
                } else {
                    datastore.hosts.push_back(host.value);
                }
            }
        }

        if (const auto images = reader.strings(scope, "images")) {
            std::vector<std::string> patterns;
            for (const Text& pattern : *images) {
                if (!relative_inside(pattern.value)) {
                    reader.fail(pattern.line, scope.name + " images: " + in_quotes(pattern.value) +
                                                  " must be relative to the datastore's roots, without '.', "
                                                  "'..' or '//'");
                    continue;
                }
                patterns.push_back(pattern.value);
            }
            if (name && !patterns.empty()) {
                config.image_patterns.emplace(name->value, std::move(patterns));
            }
        }
        if (const auto format = reader.string(scope, "images_format")) {
            if (!disk::is_supported_format(format->value)) {
                reader.fail(format->line, scope.name + " images_format: " + in_quotes(format->value) +
                                              " is not a format coldscan opens (qcow2, vmdk, vhdx, vdi, "
                                              "vpc, qed, raw)");
            } else if (name) {
                config.image_formats.emplace(name->value, format->value);
            }
        }
        draft.datastores.push_back(std::move(datastore));
    }
}

void read_windows(Reader& reader, const toml::table& root, ServiceConfig& config) {
    for (const Scope& scope : reader.table_array(root, "nightly_window")) {
        reader.check_keys(scope, k_window_keys);
        std::optional<std::pair<minutes, minutes>> times;
        if (Reader::find(scope, "time") == nullptr) {
            reader.fail_missing(scope, "time");
        } else if (const auto text = reader.string(scope, "time")) {
            times = parse_time_range(text->value);
            if (!times) {
                reader.fail(text->line, scope.name + " time: " + in_quotes(text->value) +
                                            " is not a time range like \"22:00-06:00\" (HH:MM, UTC; the end "
                                            "may be 24:00)");
            }
        }
        std::array<bool, 7> chosen{};
        bool days_good = true;
        if (Reader::find(scope, "days") == nullptr) {
            chosen.fill(true);
        } else if (const auto days = reader.strings(scope, "days")) {
            if (days->empty()) {
                reader.fail(Reader::line_of(scope, "days"),
                            scope.name + " days: no day (omit the key for every day)");
                days_good = false;
            }
            for (const Text& day : *days) {
                const auto dash = day.value.find('-');
                const auto first = parse_day(std::string_view(day.value).substr(0, dash));
                const auto last = dash == std::string::npos
                                      ? first
                                      : parse_day(std::string_view(day.value).substr(dash + 1));
                if (!first || !last) {
                    reader.fail(day.line, scope.name + " days: " + in_quotes(day.value) +
                                              " is not a day (mon, tue, wed, thu, fri, sat, sun) or a range "
                                              "like mon-fri");
                    days_good = false;
                    continue;
                }
                // A range may wrap past Sunday: "fri-mon" is fri, sat, sun, mon.
                for (unsigned d = *first;; d = (d + 1) % 7) {
                    chosen[d] = true;
                    if (d == *last) {
                        break;
                    }
                }
            }
        } else {
            days_good = false;
        }
        if (!times || !days_good) {
            continue;
        }
        // Weekdays has no setter; its constructor skips a weekday that is not ok() (8 is not).
        const auto pick = [&](unsigned d) { return std::chrono::weekday(chosen[d] ? d : 8U); };
        const Weekdays weekdays{pick(0), pick(1), pick(2), pick(3), pick(4), pick(5), pick(6)};
        auto window = Window::create(times->first, times->second, weekdays);
        if (!window) {
            reader.fail(Reader::line_of(scope, "time"), scope.name + ": " + window.error().message);
            continue;
        }
        config.nightly_windows.push_back(*window);
    }
}

} // namespace

bool ListenAddress::loopback() const {
    if (!unix_socket.empty()) {
        return true;
    }
    // Bytes in network order: 127.0.0.0/8 starts with 127; ::1 is fifteen zeros and a one; an IPv4-mapped
    // address (::ffff:a.b.c.d) is ten zeros, two 0xff and the IPv4 address.
    if (address.find(':') == std::string::npos) {
        std::array<unsigned char, 4> v4{};
        return inet_pton(AF_INET, address.c_str(), v4.data()) == 1 && v4[0] == 127;
    }
    std::array<unsigned char, 16> v6{};
    if (inet_pton(AF_INET6, address.c_str(), v6.data()) != 1) {
        return false;
    }
    const auto zeros = [&](std::size_t count) {
        return std::all_of(v6.begin(), v6.begin() + static_cast<std::ptrdiff_t>(count),
                           [](unsigned char b) { return b == 0; });
    };
    return (zeros(15) && v6[15] == 1) || (zeros(10) && v6[10] == 0xff && v6[11] == 0xff && v6[12] == 127);
}

std::string ListenAddress::to_string() const {
    if (!unix_socket.empty()) {
        return "unix:" + unix_socket.string();
    }
    std::string text = address.find(':') == std::string::npos ? address : "[" + address + "]";
    text += ':';
    text += std::to_string(port);
    return text;
}

std::optional<ListenAddress> parse_listen_address(std::string_view text) {
    if (text.starts_with("unix:")) {
        const std::string_view path = text.substr(5);
        if (!path.starts_with('/') || path.size() < 2 || path.back() == '/') {
            return std::nullopt;
        }
        return ListenAddress{"", 0, std::filesystem::path(path)};
    }
    std::string_view host;
    std::string_view port;
    if (text.starts_with('[')) {
        const auto close = text.find("]:");
        if (close == std::string_view::npos) {
            return std::nullopt;
        }
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
        std::array<unsigned char, 16> v6{};
        if (inet_pton(AF_INET6, std::string(host).c_str(), v6.data()) != 1) {
            return std::nullopt;
        }
    } else {
        const auto colon = text.find(':');
        if (colon == std::string_view::npos || text.find(':', colon + 1) != std::string_view::npos) {
            return std::nullopt;
        }
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        std::array<unsigned char, 4> v4{};
        if (inet_pton(AF_INET, std::string(host).c_str(), v4.data()) != 1) {
            return std::nullopt;
        }
    }
    const auto number = parse_number(port);
    if (!number || *number == 0 || *number > 65535) {
        return std::nullopt;
    }
    return ListenAddress{std::string(host), static_cast<std::uint16_t>(*number), {}};
}

Expected<ServiceConfig> parse_service_config(std::string_view toml_text, std::string_view source_name) {
    toml::table root;
    // toml++ quotes the character it stopped at, which may be a line break: printable() keeps one line.
#if TOML_EXCEPTIONS
    try {
        root = toml::parse(toml_text, source_name);
    } catch (const toml::parse_error& error) {
        return make_error(Errc::invalid_argument, std::string(source_name) + ":" +
                                                      std::to_string(error.source().begin.line) + ":" +
                                                      std::to_string(error.source().begin.column) + ": " +
                                                      printable(error.description()));
    }
#else
    auto parsed = toml::parse(toml_text, source_name);
    if (!parsed) {
        const auto& error = parsed.error();
        return make_error(Errc::invalid_argument, std::string(source_name) + ":" +
                                                      std::to_string(error.source().begin.line) + ":" +
                                                      std::to_string(error.source().begin.column) + ": " +
                                                      printable(error.description()));
    }
    root = std::move(parsed).table();
#endif

    Reader reader(source_name);
    ServiceConfig config(empty_inventory());
    reader.check_keys(Scope{&root, "the top level"}, k_sections);
    read_service(reader, reader.section(root, "service"), config);
    read_api(reader, reader.section(root, "api"), config.api);
    read_signatures(reader, reader.section(root, "signatures"), config);
    read_limits(reader, reader.section(root, "limits"), config.limits, config.limit_policy);
    read_libvirt(reader, reader.section(root, "libvirt"), config);
    read_fleet(reader, reader.section(root, "fleet"), config);
    InventoryDraft draft;
    read_hosts(reader, root, draft, config);
    read_datastores(reader, root, draft, config);
    if (draft.hosts.empty() && !root.contains("host")) {
        reader.fail(0, "no [[host]]: the service needs at least one host and one [[datastore]]");
    }
    if (draft.datastores.empty() && !root.contains("datastore")) {
        reader.fail(0, "no [[datastore]]: the service needs at least one datastore its hosts mount");
    }
    read_windows(reader, root, config);
    if (reader.failed()) {
        return std::unexpected(reader.error());
    }
    // Every rule Inventory::create checks was checked above with lines; this is the last word all the same.
    auto inventory = Inventory::create(std::move(draft.hosts), std::move(draft.datastores));
    if (!inventory) {
        return make_error(Errc::invalid_argument,
                          std::string(source_name) + ": " + inventory.error().message);
    }
    config.inventory = std::move(*inventory);
    return config;
}

Expected<ServiceConfig> load_service_config(const std::filesystem::path& file) {
    UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (!fd) {
        return make_error(Errc::io, errno_message("cannot open " + file.string()));
    }
    struct stat info {};
    if (::fstat(fd.get(), &info) != 0) {
        return make_error(Errc::io, errno_message("cannot stat " + file.string()));
    }
    if (!S_ISREG(info.st_mode)) {
        return make_error(Errc::invalid_argument, file.string() + ": not a regular file");
    }
    if (static_cast<std::uint64_t>(info.st_size) > k_max_config_bytes) {
        return make_error(Errc::invalid_argument, file.string() + ": " +
                                                      format_bytes(static_cast<std::uint64_t>(info.st_size)) +
                                                      " is too large for a config file");
    }
    std::string text(static_cast<std::size_t>(info.st_size), '\0');
    int error = 0;
    const std::size_t got =
        read_fully(fd.get(), 0, std::as_writable_bytes(std::span(text.data(), text.size())), error);
    if (error != 0) {
        return make_error(Errc::io, errno_message("cannot read " + file.string(), error));
    }
    text.resize(got);
    auto config = parse_service_config(text, file.string());
    if (config && config->api.auth_token && (info.st_mode & S_IROTH) != 0) {
        return make_error(Errc::invalid_argument,
                          file.string() + ": holds [api] auth_token but other users can read it (chmod o-r " +
                              file.string() + ")");
    }
    return config;
}

} // namespace coldscan::scheduler
