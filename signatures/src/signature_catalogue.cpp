#include "coldscan/signatures/signature_catalogue.hpp"

#include "database_members.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <utility>
#include <vector>

namespace coldscan::signatures {
namespace {

using detail::Classified;
using detail::classify;
using detail::Part;
using detail::read_file;

// Keeps every line (read_catalogue).
class CollectingSink final : public CatalogueSink {
public:
    explicit CollectingSink(SignatureCatalogue& catalogue) : m_catalogue(catalogue) {}
    void on_line(const CatalogueLine& line) override {
        m_catalogue.lines.push_back(line);
        m_catalogue.sum.add(line);
    }
    void on_engine_file(std::string entry) override { m_catalogue.engine_files.push_back(std::move(entry)); }

private:
    SignatureCatalogue& m_catalogue;
};

// Keeps the sums only (digest_catalogue).
struct SummingSink final : CatalogueSink {
    void on_line(const CatalogueLine& line) override {
        sum.add(line);
        ++lines;
    }
    void on_engine_file(std::string entry) override { engine_files.push_back(std::move(entry)); }
    LineSum sum;
    std::uint64_t lines = 0;
    std::vector<std::string> engine_files;
};

} // namespace

std::string_view to_string(LineKind kind) {
    switch (kind) {
    case LineKind::hash:
        return "hash";
    case LineKind::section_hash:
        return "section_hash";
    case LineKind::body:
        return "body";
    case LineKind::logical:
        return "logical";
    case LineKind::icon:
        return "icon";
    case LineKind::phishing:
        return "phishing";
    case LineKind::container:
        return "container";
    case LineKind::yara:
        return "yara";
    case LineKind::allow_list:
        return "allow_list";
    }
    return "unknown";
}

namespace {

Expected<void> add_entry(std::string_view name, std::span<const std::byte> bytes, detail::Origin origin,
                         CatalogueSink& sink) {
    const Classified what = classify(name);
    switch (what.part) {
    case Part::container:
        return detail::visit_container(
            name, bytes, [&](std::string_view member, std::span<const std::byte> content) {
                return add_entry(member, content, detail::origin_of_members(name), sink);
            });
    case Part::ignored:
        return {};
    case Part::lines:
        if (what.kind == LineKind::yara) { // a YARA source is one unit: its rules are not lines
            sink.on_line(CatalogueLine{detail::line_digest(LineKind::yara, origin, detail::as_text(bytes)),
                                       LineKind::yara});
        } else {
            detail::for_each_line(what.kind, origin, detail::as_text(bytes),
                                  [&](const CatalogueLine& line, std::string_view text) {
                                      sink.on_line_text(line, text,
                                                        origin == detail::Origin::signed_container);
                                  });
        }
        return {};
    case Part::engine: {
        Sha256 hasher;
        hasher.update(bytes);
        sink.on_engine_file(std::string(name) + " " + to_hex(hasher.finish()));
        return {};
    }
    }
    return {};
}

} // namespace

Expected<void> add_database(std::string_view name, std::span<const std::byte> bytes, CatalogueSink& sink) {
    return add_entry(name, bytes, detail::Origin::plain_file, sink);
}

Expected<void> add_database(std::string_view name, std::span<const std::byte> bytes,
                            SignatureCatalogue& catalogue) {
    CollectingSink sink(catalogue);
    return add_database(name, bytes, sink);
}

void LineSum::add(const CatalogueLine& line) {
    // The line's digest (which covers its kind) as four little-endian words, added with carries.
    unsigned carry = 0;
    for (std::size_t i = 0; i < words.size(); ++i) {
        std::uint64_t word = 0;
        std::memcpy(&word, line.digest.data() + i * 8, 8);
        const std::uint64_t with_word = words[i] + word;
        const unsigned carry_a = with_word < word ? 1U : 0U;
        const std::uint64_t total = with_word + carry;
        const unsigned carry_b = total < with_word ? 1U : 0U;
        words[i] = total;
        carry = carry_a + carry_b;
    }
}

std::string LineSum::hex() const {
    std::array<std::byte, 32> bytes{};
    std::memcpy(bytes.data(), words.data(), bytes.size());
    return to_hex(bytes);
}

void finish_catalogue(SignatureCatalogue& catalogue) {
    std::ranges::sort(catalogue.lines);
    const auto repeats = std::ranges::unique(catalogue.lines);
    catalogue.lines.erase(repeats.begin(), repeats.end());
    std::ranges::sort(catalogue.engine_files);
    Sha256 hasher;
    hasher.update("coldscan engine part v1\n");
    for (const auto& file : catalogue.engine_files) {
        hasher.update(file);
        hasher.update("\n");
    }
    catalogue.engine_part = to_hex(hasher.finish());
    catalogue.detection_set = catalogue.sum.hex();
}

namespace {

Expected<void> add_files(const std::vector<std::filesystem::path>& files, CatalogueSink& sink) {
    for (const auto& file : files) {
        auto bytes = read_file(file);
        if (!bytes) {
            return std::unexpected(bytes.error());
        }
        if (auto added = add_database(file.filename().string(), *bytes, sink); !added) {
            return added;
        }
    }
    return {};
}

} // namespace

Expected<SignatureCatalogue> read_catalogue(const std::vector<std::filesystem::path>& files) {
    SignatureCatalogue catalogue;
    CollectingSink sink(catalogue);
    if (auto added = add_files(files, sink); !added) {
        return std::unexpected(added.error());
    }
    finish_catalogue(catalogue);
    return catalogue;
}

Expected<CatalogueDigest> digest_catalogue(const std::vector<std::filesystem::path>& files) {
    SummingSink sink;
    if (auto added = add_files(files, sink); !added) {
        return std::unexpected(added.error());
    }
    // The engine part exactly as finish_catalogue computes it.
    SignatureCatalogue engine;
    engine.engine_files = std::move(sink.engine_files);
    finish_catalogue(engine);
    return CatalogueDigest{engine.engine_part, sink.sum.hex(), sink.lines};
}

namespace {

// Keeps the text of the wanted lines only.
class LineTextSink final : public CatalogueSink {
public:
    explicit LineTextSink(std::span<const CatalogueLine> wanted) : m_wanted(wanted) {}
    void on_line(const CatalogueLine& /*line*/) override {}
    void on_line_text(const CatalogueLine& line, std::string_view text, bool official) override {
        if (std::ranges::binary_search(m_wanted, line)) {
            m_found.try_emplace(line, std::string(text), official); // the first of repeated lines
        }
    }
    void on_engine_file(std::string /*entry*/) override {}
    std::vector<LineText> take() {
        std::vector<LineText> out;
        for (const auto& line : m_wanted) {
            if (auto found = m_found.find(line); found != m_found.end()) {
                out.push_back(LineText{line, std::move(found->second.first), found->second.second});
            }
        }
        return out;
    }

private:
    std::span<const CatalogueLine> m_wanted;
    std::map<CatalogueLine, std::pair<std::string, bool>> m_found; // text, official
};

// Every line of one kind with its text.
class KindTextSink final : public CatalogueSink {
public:
    explicit KindTextSink(LineKind kind) : m_kind(kind) {}
    void on_line(const CatalogueLine& /*line*/) override {}
    void on_line_text(const CatalogueLine& line, std::string_view text, bool official) override {
        if (line.kind == m_kind && m_seen.insert(line).second) {
            m_found.push_back(LineText{line, std::string(text), official});
        }
    }
    void on_engine_file(std::string /*entry*/) override {}
    std::vector<LineText> take() { return std::move(m_found); }

private:
    LineKind m_kind;
    std::set<CatalogueLine> m_seen;
    std::vector<LineText> m_found;
};

} // namespace

Expected<std::vector<LineText>> find_texts_of_kind(const std::vector<std::filesystem::path>& files,
                                                   LineKind kind) {
    KindTextSink sink(kind);
    if (auto added = add_files(files, sink); !added) {
        return std::unexpected(added.error());
    }
    return sink.take();
}

Expected<std::vector<LineText>> find_line_texts(const std::vector<std::filesystem::path>& files,
                                                std::span<const CatalogueLine> wanted) {
    LineTextSink sink(wanted);
    if (auto added = add_files(files, sink); !added) {
        return std::unexpected(added.error());
    }
    return sink.take();
}

std::optional<std::uint64_t> hash_line_size(std::string_view text) {
    const auto first = text.find(':');
    if (first == std::string_view::npos) {
        return std::nullopt;
    }
    const auto second = text.find(':', first + 1);
    const std::string_view size = text.substr(
        first + 1, second == std::string_view::npos ? std::string_view::npos : second - first - 1);
    std::uint64_t value = 0;
    const auto parsed = std::from_chars(size.data(), size.data() + size.size(), value);
    if (parsed.ec != std::errc{} || parsed.ptr != size.data() + size.size() || size.empty()) {
        return std::nullopt;
    }
    return value;
}

std::string detection_name(std::string_view name, bool official) {
    return official ? std::string(name) : std::string(name) + ".UNOFFICIAL";
}

std::optional<std::string_view> hash_line_name(std::string_view text) {
    const auto first = text.find(':');
    const auto second = first == std::string_view::npos ? first : text.find(':', first + 1);
    if (second == std::string_view::npos) {
        return std::nullopt;
    }
    const std::string_view name = text.substr(second + 1, text.find(':', second + 1) - second - 1);
    return name.empty() ? std::nullopt : std::optional(name);
}

std::optional<std::vector<std::byte>> hash_line_digest(std::string_view text) {
    const std::string_view hex = text.substr(0, text.find(':'));
    if (hex.size() != 32 && hex.size() != 40 && hex.size() != 64) {
        return std::nullopt;
    }
    std::vector<std::byte> out;
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        unsigned value = 0;
        const auto parsed = std::from_chars(hex.data() + i, hex.data() + i + 2, value, 16);
        if (parsed.ec != std::errc{} || parsed.ptr != hex.data() + i + 2) {
            return std::nullopt;
        }
        out.push_back(static_cast<std::byte>(value));
    }
    return out;
}

namespace {

std::optional<int> small_number(std::string_view text) {
    int value = 0;
    const auto parsed = std::from_chars(text.data(), text.data() + text.size(), value);
    if (parsed.ec != std::errc{} || parsed.ptr != text.data() + text.size() || text.empty() || value < 0) {
        return std::nullopt;
    }
    return value;
}

// "Engine:51-255,Target:1,FileSize:..." -> 1
std::optional<int> target_in_description(std::string_view block) {
    while (!block.empty()) {
        const auto comma = block.find(',');
        const std::string_view entry = block.substr(0, comma);
        block = comma == std::string_view::npos ? std::string_view{} : block.substr(comma + 1);
        if (entry.starts_with("Target:")) {
            return small_number(entry.substr(7));
        }
    }
    return std::nullopt;
}

} // namespace

std::optional<int> pattern_line_target(LineKind kind, std::string_view text) {
    if (kind == LineKind::logical) {
        const auto first = text.find(';');
        if (first == std::string_view::npos) {
            return std::nullopt;
        }
        const auto second = text.find(';', first + 1);
        return target_in_description(text.substr(
            first + 1, second == std::string_view::npos ? std::string_view::npos : second - first - 1));
    }
    if (kind != LineKind::body) {
        return std::nullopt;
    }
    const auto first = text.find(':');
    const auto equals = text.find('=');
    if (first == std::string_view::npos || (equals != std::string_view::npos && equals < first)) {
        return std::nullopt; // .db: NAME=HEX
    }
    const auto second = text.find(':', first + 1);
    if (second == std::string_view::npos) {
        return std::nullopt;
    }
    return small_number(text.substr(first + 1, second - first - 1));
}

bool target_may_match(int target, std::span<const std::string> layer_types) {
    // libclamav's cli_mtargets (matcher.h): the layer types each target's matcher runs on.
    static const std::map<int, std::vector<std::string_view>> k_exclusive = {
        {1, {"CL_TYPE_MSEXE"}},
        {2, {"CL_TYPE_MSOLE2"}},
        {5, {"CL_TYPE_GRAPHICS", "CL_TYPE_GIF", "CL_TYPE_PNG", "CL_TYPE_JPEG", "CL_TYPE_TIFF"}},
        {6, {"CL_TYPE_ELF"}},
        {9, {"CL_TYPE_MACHO", "CL_TYPE_MACHO_UNIBIN"}},
        {10, {"CL_TYPE_PDF"}},
        {11, {"CL_TYPE_SWF"}},
        {12, {"CL_TYPE_JAVA"}},
    };
    const auto found = k_exclusive.find(target);
    if (found == k_exclusive.end()) {
        return true;
    }
    return std::ranges::any_of(found->second, [&](std::string_view type) {
        return std::ranges::binary_search(layer_types, type, std::less<>{});
    });
}

bool derives_unseen_buffers(std::span<const std::string> layer_types) {
    // libclamav's callers of cli_scan_desc (a pushed map, hash-checked, no inspection callback).
    static constexpr std::array<std::string_view, 9> k_deriving = {
        "CL_TYPE_HTML",         "CL_TYPE_HTML_UTF16",   "CL_TYPE_MSEXE",
        "CL_TYPE_MSOLE2",       "CL_TYPE_PDF",          "CL_TYPE_TEXT_ASCII",
        "CL_TYPE_TEXT_UTF16BE", "CL_TYPE_TEXT_UTF16LE", "CL_TYPE_TEXT_UTF8"};
    return std::ranges::any_of(k_deriving, [&](std::string_view type) {
        return std::ranges::binary_search(layer_types, type, std::less<>{});
    });
}

CatalogueDelta difference(const SignatureCatalogue& from, const SignatureCatalogue& to) {
    CatalogueDelta delta;
    std::ranges::set_difference(to.lines, from.lines, std::back_inserter(delta.added));
    std::ranges::set_difference(from.lines, to.lines, std::back_inserter(delta.removed));
    return delta;
}

} // namespace coldscan::signatures
