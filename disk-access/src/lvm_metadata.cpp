// LVM2 text metadata: a small config language (sections "name { ... }", "key = value" with integers,
// "strings" and [arrays], # comments), read by a bounded recursive-descent parser into a tree, then the
// volume group taken from the tree with every field checked.
#include "lvm_metadata.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <limits>
#include <optional>

namespace coldscan::disk::detail {

namespace {

constexpr std::size_t k_max_depth = 8;          // vg { logical_volumes { lv { segment { } } } }: 4 deep
constexpr std::size_t k_max_items = 200'000;    // values, array items and sections in all
constexpr std::size_t k_max_text = 64ULL << 20; // LVM's own metadata areas are 1 MiB by default
constexpr std::size_t k_max_segments = 100'000;
constexpr std::uint64_t k_max_extents = 1ULL << 40;

struct ConfigValue {
    enum class Kind { integer, text, array };
    Kind kind = Kind::integer;
    std::int64_t integer = 0;
    std::string text;
    std::vector<ConfigValue> items;
};

struct ConfigSection {
    std::string name;
    std::vector<std::pair<std::string, ConfigValue>> values;
    std::vector<ConfigSection> sections;

    [[nodiscard]] const ConfigValue* value(std::string_view key) const {
        const auto found = std::ranges::find(values, key, &std::pair<std::string, ConfigValue>::first);
        return found == values.end() ? nullptr : &found->second;
    }
    [[nodiscard]] const ConfigSection* section(std::string_view key) const {
        const auto found = std::ranges::find(sections, key, &ConfigSection::name);
        return found == sections.end() ? nullptr : &*found;
    }
};

class Parser {
public:
    explicit Parser(std::string_view text) : m_text(text) {}

    // The whole text as the root section's contents.
    Expected<ConfigSection> parse_all() {
        ConfigSection root;
        if (auto ok = parse_body(root, 0, false); !ok) {
            return std::unexpected(ok.error());
        }
        return root;
    }

private:
    Expected<void> parse_body(ConfigSection& into, std::size_t depth, bool closed_by_brace) {
        for (;;) {
            skip_space();
            if (at_end()) {
                return closed_by_brace ? fail("a section is not closed") : Expected<void>{};
            }
            if (peek() == '}') {
                if (!closed_by_brace) {
                    return fail("'}' without a section");
                }
                ++m_at;
                return {};
            }
            auto name = identifier();
            if (!name) {
                return std::unexpected(name.error());
            }
            if (auto counted = count_item(); !counted) {
                return counted;
            }
            skip_space();
            if (!at_end() && peek() == '{') {
                ++m_at;
                if (depth + 1 > k_max_depth) {
                    return fail("sections nested too deep");
                }
                ConfigSection child;
                child.name = std::move(*name);
                if (auto ok = parse_body(child, depth + 1, true); !ok) {
                    return ok;
                }
                into.sections.push_back(std::move(child));
            } else if (!at_end() && peek() == '=') {
                ++m_at;
                auto value = parse_value(depth);
                if (!value) {
                    return std::unexpected(value.error());
                }
                into.values.emplace_back(std::move(*name), std::move(*value));
            } else {
                return fail("expected '{' or '=' after " + *name);
            }
        }
    }

    Expected<ConfigValue> parse_value(std::size_t depth) {
        skip_space();
        if (at_end()) {
            return fail("a value is missing");
        }
        if (peek() == '"') {
            return quoted();
        }
        if (peek() == '[') {
            ++m_at;
            return array(depth);
        }
        return number();
    }

    Expected<ConfigValue> array(std::size_t depth) {
        if (depth + 1 > k_max_depth) {
            return fail("arrays nested too deep");
        }
        ConfigValue out;
        out.kind = ConfigValue::Kind::array;
        for (bool first = true;; first = false) {
            skip_space();
            if (at_end()) {
                return fail("an array is not closed");
            }
            if (peek() == ']') {
                ++m_at;
                return out;
            }
            if (!first) {
                if (peek() != ',') {
                    return fail("expected ',' in an array");
                }
                ++m_at;
            }
            if (auto counted = count_item(); !counted) {
                return std::unexpected(counted.error());
            }
            auto item = parse_value(depth + 1);
            if (!item) {
                return item;
            }
            out.items.push_back(std::move(*item));
        }
    }

    Expected<ConfigValue> quoted() {
        ++m_at; // the opening quote
        ConfigValue out;
        out.kind = ConfigValue::Kind::text;
        while (!at_end() && peek() != '"') {
            if (peek() == '\\' && m_at + 1 < m_text.size()) {
                ++m_at;
            }
            out.text += m_text[m_at++];
        }
        if (at_end()) {
            return fail("a string is not closed");
        }
        ++m_at;
        return out;
    }

    Expected<ConfigValue> number() {
        const std::size_t start = m_at;
        while (!at_end() && (std::isdigit(static_cast<unsigned char>(peek())) != 0 || peek() == '-' ||
                             peek() == '.' || peek() == '+')) {
            ++m_at;
        }
        const std::string_view token = m_text.substr(start, m_at - start);
        ConfigValue out;
        if (token.find('.') != std::string_view::npos) {
            out.kind = ConfigValue::Kind::text; // floats: kept as text, no field we use is one
            out.text = std::string(token);
            return out;
        }
        const auto [end, error] = std::from_chars(token.data(), token.data() + token.size(), out.integer);
        if (token.empty() || error != std::errc{} || end != token.data() + token.size()) {
            return fail("a value is neither a number, a string nor an array");
        }
        return out;
    }

    Expected<std::string> identifier() {
        const std::size_t start = m_at;
        while (!at_end() && is_name_char(peek())) {
            ++m_at;
        }
        if (m_at == start) {
            return fail("expected a name");
        }
        return std::string(m_text.substr(start, m_at - start));
    }

    static bool is_name_char(char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-' || c == '.' ||
               c == '+' || c == '/' || static_cast<unsigned char>(c) >= 0x80;
    }

    void skip_space() {
        while (!at_end()) {
            if (peek() == '#') {
                while (!at_end() && peek() != '\n') {
                    ++m_at;
                }
            } else if (std::isspace(static_cast<unsigned char>(peek())) != 0 || peek() == '\0') {
                ++m_at; // lvm pads the area after the text with NULs
            } else {
                return;
            }
        }
    }

    Expected<void> count_item() {
        if (++m_items > k_max_items) {
            return fail("too many items");
        }
        return {};
    }

    [[nodiscard]] bool at_end() const { return m_at >= m_text.size(); }
    [[nodiscard]] char peek() const { return m_text[m_at]; }
    [[nodiscard]] std::unexpected<Error> fail(const std::string& why) const {
        return make_error(Errc::corrupt, "LVM metadata: " + why + " (at byte " + std::to_string(m_at) + ")");
    }

    std::string_view m_text;
    std::size_t m_at = 0;
    std::size_t m_items = 0;
};

std::unexpected<Error> bad(const std::string& why) {
    return make_error(Errc::corrupt, "LVM metadata: " + why);
}

Expected<std::uint64_t> unsigned_field(const ConfigSection& section, std::string_view key,
                                       std::uint64_t max = k_max_extents) {
    const ConfigValue* value = section.value(key);
    if (value == nullptr || value->kind != ConfigValue::Kind::integer || value->integer < 0 ||
        static_cast<std::uint64_t>(value->integer) > max) {
        return bad(section.name + " has no valid " + std::string(key));
    }
    return static_cast<std::uint64_t>(value->integer);
}

Expected<std::string> text_field(const ConfigSection& section, std::string_view key) {
    const ConfigValue* value = section.value(key);
    if (value == nullptr || value->kind != ConfigValue::Kind::text) {
        return bad(section.name + " has no " + std::string(key));
    }
    return value->text;
}

bool has_flag(const ConfigSection& section, std::string_view key, std::string_view flag) {
    const ConfigValue* value = section.value(key);
    if (value == nullptr || value->kind != ConfigValue::Kind::array) {
        return false;
    }
    return std::ranges::any_of(value->items, [&](const ConfigValue& item) {
        return item.kind == ConfigValue::Kind::text && item.text == flag;
    });
}

std::string without_dashes(std::string id) {
    std::erase(id, '-');
    return id;
}

Expected<LvmSegment> segment_from(const ConfigSection& section) {
    LvmSegment segment;
    auto start = unsigned_field(section, "start_extent");
    auto count = unsigned_field(section, "extent_count");
    auto type = text_field(section, "type");
    if (!start || !count || !type) {
        return std::unexpected(!start ? start.error() : !count ? count.error() : type.error());
    }
    segment.start_extent = *start;
    segment.extent_count = *count;
    segment.type = std::move(*type);
    if (segment.type == "snapshot") {
        if (auto cow = text_field(section, "cow_store")) {
            segment.cow_store = std::move(*cow);
        }
    }
    if (segment.type != "striped") {
        return segment; // described, not mapped: the caller reports it
    }
    auto stripe_count = unsigned_field(section, "stripe_count", 128);
    if (!stripe_count || *stripe_count == 0) {
        return bad(section.name + " has no valid stripe_count");
    }
    if (*stripe_count > 1) {
        auto size = unsigned_field(section, "stripe_size", 1ULL << 32);
        if (!size || *size == 0) {
            return bad(section.name + " has no valid stripe_size");
        }
        segment.stripe_size = *size;
    }
    const ConfigValue* stripes = section.value("stripes");
    if (stripes == nullptr || stripes->kind != ConfigValue::Kind::array ||
        stripes->items.size() != 2 * *stripe_count) {
        return bad(section.name + " does not list its " + std::to_string(*stripe_count) + " stripes");
    }
    for (std::size_t i = 0; i < stripes->items.size(); i += 2) {
        const ConfigValue& pv = stripes->items[i];
        const ConfigValue& extent = stripes->items[i + 1];
        if (pv.kind != ConfigValue::Kind::text || extent.kind != ConfigValue::Kind::integer ||
            extent.integer < 0 || static_cast<std::uint64_t>(extent.integer) > k_max_extents) {
            return bad(section.name + " has a malformed stripe");
        }
        segment.stripes.push_back(LvmStripe{pv.text, static_cast<std::uint64_t>(extent.integer)});
    }
    return segment;
}

Expected<LvmLvEntry> lv_from(const ConfigSection& section, std::size_t& segments_seen) {
    LvmLvEntry lv;
    lv.name = section.name;
    lv.visible = has_flag(section, "status", "VISIBLE");
    for (const auto& child : section.sections) {
        if (!child.name.starts_with("segment")) {
            continue;
        }
        if (++segments_seen > k_max_segments) {
            return bad("too many segments");
        }
        auto segment = segment_from(child);
        if (!segment) {
            return std::unexpected(segment.error());
        }
        lv.segments.push_back(std::move(*segment));
    }
    std::ranges::sort(lv.segments, {}, &LvmSegment::start_extent);
    return lv;
}

Expected<LvmVolumeGroup> group_from(const ConfigSection& section) {
    LvmVolumeGroup vg;
    vg.name = section.name;
    auto id = text_field(section, "id");
    auto seqno = unsigned_field(section, "seqno", std::numeric_limits<std::uint32_t>::max());
    auto extent_size = unsigned_field(section, "extent_size", 1ULL << 32);
    if (!id || !seqno || !extent_size || *extent_size == 0) {
        return bad("the volume group " + vg.name + " lacks its id, seqno or extent_size");
    }
    vg.id = without_dashes(*id);
    vg.seqno = *seqno;
    vg.extent_size = *extent_size;
    if (const ConfigSection* pvs = section.section("physical_volumes")) {
        for (const auto& child : pvs->sections) {
            auto pv_id = text_field(child, "id");
            auto pe_start = unsigned_field(child, "pe_start", 1ULL << 54);
            auto pe_count = unsigned_field(child, "pe_count");
            if (!pv_id || !pe_start || !pe_count) {
                return bad("the physical volume " + child.name + " lacks its id, pe_start or pe_count");
            }
            vg.pvs.push_back(LvmPvEntry{child.name, without_dashes(*pv_id), *pe_start, *pe_count});
        }
    }
    std::size_t segments_seen = 0;
    if (const ConfigSection* lvs = section.section("logical_volumes")) {
        for (const auto& child : lvs->sections) {
            auto lv = lv_from(child, segments_seen);
            if (!lv) {
                return std::unexpected(lv.error());
            }
            vg.lvs.push_back(std::move(*lv));
        }
    }
    return vg;
}

constexpr std::array<std::uint32_t, 256> crc_table() {
    std::array<std::uint32_t, 256> table{};
    for (std::uint32_t i = 0; i < 256; ++i) {
        std::uint32_t c = i;
        for (int k = 0; k < 8; ++k) {
            c = (c & 1U) != 0 ? (c >> 1U) ^ 0xEDB88320U : c >> 1U;
        }
        table[i] = c;
    }
    return table;
}

} // namespace

Expected<LvmVolumeGroup> parse_lvm_metadata(std::string_view text) {
    if (text.size() > k_max_text) {
        return bad("the text is too big");
    }
    auto root = Parser(text).parse_all();
    if (!root) {
        return std::unexpected(root.error());
    }
    auto contents = text_field(*root, "contents");
    if (!contents || *contents != "Text Format Volume Group") {
        return bad("not a volume group's text format");
    }
    // The one top-level section is the volume group (named after it).
    if (root->sections.size() != 1) {
        return bad("expected one volume group, found " + std::to_string(root->sections.size()));
    }
    return group_from(root->sections.front());
}

std::uint32_t lvm_crc(std::uint32_t initial, std::string_view bytes) noexcept {
    static constexpr auto table = crc_table();
    std::uint32_t crc = initial;
    for (const char c : bytes) {
        crc = table[(crc ^ static_cast<unsigned char>(c)) & 0xFFU] ^ (crc >> 8U);
    }
    return crc;
}

} // namespace coldscan::disk::detail
