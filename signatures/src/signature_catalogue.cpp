#include "coldscan/signatures/signature_catalogue.hpp"

#include "coldscan/common/read_fully.hpp"
#include "coldscan/common/unique_fd.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <optional>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>
#include <zlib.h>

namespace coldscan::signatures {
namespace {

constexpr std::size_t k_header_size = 512; // a container's "ClamAV-VDB:..." header, padded
constexpr std::size_t k_tar_block = 512;

std::string lower(std::string_view text) {
    std::string out(text);
    std::ranges::transform(out, out.begin(),
                           [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

std::string_view extension_of(std::string_view name) {
    const auto dot = name.rfind('.');
    return dot == std::string_view::npos ? std::string_view{} : name.substr(dot);
}

// What a database file (or a container member) is, by its extension.
enum class Part { lines, engine, container, ignored };

struct Classified {
    Part part = Part::engine;
    LineKind kind = LineKind::hash;
};

Classified classify(std::string_view name) {
    static constexpr std::array<std::pair<std::string_view, LineKind>, 24> k_lines = {{
        {".hdb", LineKind::hash},         {".hsb", LineKind::hash},         {".hdu", LineKind::hash},
        {".hsu", LineKind::hash},         {".mdb", LineKind::section_hash}, {".msb", LineKind::section_hash},
        {".mdu", LineKind::section_hash}, {".msu", LineKind::section_hash}, {".imp", LineKind::section_hash},
        {".ndb", LineKind::body},         {".ndu", LineKind::body},         {".db", LineKind::body},
        {".sdb", LineKind::body},         {".ldb", LineKind::logical},      {".ldu", LineKind::logical},
        {".idb", LineKind::icon},         {".pdb", LineKind::phishing},     {".gdb", LineKind::phishing},
        {".wdb", LineKind::phishing},     {".cdb", LineKind::container},    {".yar", LineKind::yara},
        {".yara", LineKind::yara},        {".fp", LineKind::allow_list},    {".sfp", LineKind::allow_list},
    }};
    const std::string lowered = lower(name);
    const std::string_view extension = extension_of(lowered);
    if (extension == ".ign" || extension == ".ign2") {
        return {Part::lines, LineKind::allow_list};
    }
    for (const auto& [suffix, kind] : k_lines) {
        if (extension == suffix) {
            return {Part::lines, kind};
        }
    }
    if (extension == ".cvd" || extension == ".cld" || extension == ".cud") {
        return {Part::container, LineKind::hash};
    }
    // A container's own description and licence: not what the engine loads.
    if (extension == ".info" || lowered == "copying") {
        return {Part::ignored, LineKind::hash};
    }
    return {Part::engine, LineKind::hash}; // .cbc .ftm .cfg .crb .cat .pwdb .ioc ... and anything unknown
}

void add_lines(LineKind kind, std::string_view text, CatalogueSink& sink) {
    Sha256 hasher;
    while (!text.empty()) {
        const auto end = text.find('\n');
        std::string_view line = text.substr(0, end);
        text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
            line.remove_suffix(1);
        }
        // libclamav's loaders skip empty lines and comments; YARA source is kept whole below.
        if (line.empty() || line.front() == '#') {
            continue;
        }
        const auto kind_byte = static_cast<std::byte>(kind);
        hasher.update(std::span<const std::byte>(&kind_byte, 1));
        hasher.update(line);
        sink.on_line_text(CatalogueLine{hasher.finish(), kind}, line);
    }
}

std::string_view as_text(std::span<const std::byte> bytes) {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// The gzip stream's content, at most k_max_unpacked bytes.
Expected<std::vector<std::byte>> gunzip(std::span<const std::byte> packed, std::string_view name) {
    z_stream stream{};
    if (inflateInit2(&stream, 16 + MAX_WBITS) != Z_OK) {
        return make_error(Errc::internal, std::string(name) + ": cannot start zlib");
    }
    std::vector<std::byte> out;
    stream.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(packed.data()));
    stream.avail_in = static_cast<uInt>(std::min<std::size_t>(packed.size(), UINT32_MAX));
    int rc = Z_OK;
    while (rc == Z_OK) {
        if (out.size() >= k_max_unpacked) {
            inflateEnd(&stream);
            return make_error(Errc::invalid_argument, std::string(name) + ": unpacks to more than " +
                                                          std::to_string(k_max_unpacked >> 30) + " GiB");
        }
        const std::size_t before = out.size();
        out.resize(before + (1U << 20));
        stream.next_out = reinterpret_cast<Bytef*>(out.data() + before);
        stream.avail_out = 1U << 20;
        rc = inflate(&stream, Z_NO_FLUSH);
        out.resize(before + (1U << 20) - stream.avail_out);
    }
    inflateEnd(&stream);
    if (rc != Z_STREAM_END) {
        return make_error(Errc::invalid_argument, std::string(name) + ": a broken gzip stream");
    }
    return out;
}

std::optional<std::uint64_t> octal(std::span<const std::byte> field) {
    std::uint64_t value = 0;
    bool digits = false;
    for (const std::byte b : field) {
        const auto c = static_cast<char>(b);
        if (c >= '0' && c <= '7') {
            if (value > (UINT64_MAX >> 3)) {
                return std::nullopt;
            }
            value = value * 8 + static_cast<std::uint64_t>(c - '0');
            digits = true;
        } else if (c == ' ' || c == '\0') {
            if (digits) {
                break;
            }
        } else {
            return std::nullopt;
        }
    }
    return value;
}

// Every regular member of the tar, by its name without folders.
Expected<void> add_tar(std::span<const std::byte> tar, std::string_view name, CatalogueSink& sink) {
    // sigtool and freshclam end a container's tar with its last member: no end-of-archive blocks needed.
    std::size_t at = 0;
    while (at < tar.size()) {
        if (tar.size() - at < k_tar_block) {
            return make_error(Errc::invalid_argument, std::string(name) + ": a broken tar member header");
        }
        const auto header = tar.subspan(at, k_tar_block);
        if (std::ranges::all_of(header, [](std::byte b) { return b == std::byte{0}; })) {
            return {}; // the end-of-archive block
        }
        const auto size = octal(header.subspan(124, 12));
        if (!size || *size > tar.size() - at - k_tar_block) {
            return make_error(Errc::invalid_argument, std::string(name) + ": a broken tar member header");
        }
        const auto type = static_cast<char>(header[156]);
        std::string member(
            as_text(header.subspan(0, 100)).substr(0, as_text(header.subspan(0, 100)).find('\0')));
        member = member.substr(member.rfind('/') == std::string::npos ? 0 : member.rfind('/') + 1);
        const auto content = tar.subspan(at + k_tar_block, static_cast<std::size_t>(*size));
        if ((type == '0' || type == '\0') && !member.empty()) {
            if (classify(member).part == Part::container) {
                return make_error(Errc::invalid_argument,
                                  std::string(name) + ": a container inside a container");
            }
            if (auto added = add_database(member, content, sink); !added) {
                return added;
            }
        }
        at += std::min(tar.size() - at, k_tar_block + (static_cast<std::size_t>(*size) + k_tar_block - 1) /
                                                          k_tar_block * k_tar_block);
    }
    return {};
}

Expected<void> add_container(std::string_view name, std::span<const std::byte> bytes, CatalogueSink& sink) {
    if (bytes.size() < k_header_size || !as_text(bytes.subspan(0, 11)).starts_with("ClamAV-VDB:")) {
        return make_error(Errc::invalid_argument, std::string(name) + ": no ClamAV-VDB header");
    }
    const auto payload = bytes.subspan(k_header_size);
    if (payload.size() >= 2 && payload[0] == std::byte{0x1f} && payload[1] == std::byte{0x8b}) {
        auto tar = gunzip(payload, name);
        if (!tar) {
            return std::unexpected(tar.error());
        }
        return add_tar(*tar, name, sink);
    }
    return add_tar(payload, name, sink);
}

Expected<std::vector<std::byte>> read_file(const std::filesystem::path& path) {
    const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st {};
    if (!fd || ::fstat(fd.get(), &st) != 0) {
        return make_error(Errc::io, errno_message("cannot read " + path.string()));
    }
    std::vector<std::byte> bytes(static_cast<std::size_t>(st.st_size));
    int error = 0;
    if (read_fully(fd.get(), 0, bytes, error) != bytes.size()) {
        return make_error(Errc::io, error != 0 ? errno_message("cannot read " + path.string(), error)
                                               : path.string() + ": shorter than it was a moment ago");
    }
    return bytes;
}

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

Expected<void> add_database(std::string_view name, std::span<const std::byte> bytes, CatalogueSink& sink) {
    const Classified what = classify(name);
    switch (what.part) {
    case Part::container:
        return add_container(name, bytes, sink);
    case Part::ignored:
        return {};
    case Part::lines:
        if (what.kind == LineKind::yara) {
            // A YARA source is one unit: its rules are not lines.
            Sha256 hasher;
            const auto kind_byte = static_cast<std::byte>(LineKind::yara);
            hasher.update(std::span<const std::byte>(&kind_byte, 1));
            hasher.update(bytes);
            sink.on_line(CatalogueLine{hasher.finish(), LineKind::yara});
        } else {
            add_lines(what.kind, as_text(bytes), sink);
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
    void on_line_text(const CatalogueLine& line, std::string_view text) override {
        if (std::ranges::binary_search(m_wanted, line)) {
            m_found.try_emplace(line, text); // the first of repeated lines
        }
    }
    void on_engine_file(std::string /*entry*/) override {}
    std::vector<LineText> take() {
        std::vector<LineText> out;
        for (const auto& line : m_wanted) {
            if (auto found = m_found.find(line); found != m_found.end()) {
                out.push_back(LineText{line, std::move(found->second)});
            }
        }
        return out;
    }

private:
    std::span<const CatalogueLine> m_wanted;
    std::map<CatalogueLine, std::string> m_found;
};

} // namespace

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

CatalogueDelta difference(const SignatureCatalogue& from, const SignatureCatalogue& to) {
    CatalogueDelta delta;
    std::ranges::set_difference(to.lines, from.lines, std::back_inserter(delta.added));
    std::ranges::set_difference(from.lines, to.lines, std::back_inserter(delta.removed));
    return delta;
}

} // namespace coldscan::signatures
