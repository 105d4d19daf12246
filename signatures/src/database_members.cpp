// Database files and container members as libclamav reads them (database_members.hpp).
#include "database_members.hpp"

#include "coldscan/common/read_fully.hpp"
#include "coldscan/common/sha256.hpp"
#include "coldscan/common/unique_fd.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <fcntl.h>
#include <optional>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

namespace coldscan::signatures::detail {
namespace {

constexpr std::size_t k_header_size = 512; // a container's "ClamAV-VDB:..." header, padded
constexpr std::size_t k_tar_block = 512;

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
Expected<void> visit_tar(std::span<const std::byte> tar, std::string_view name, const MemberVisitor& visit) {
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
            if (auto visited = visit(member, content); !visited) {
                return visited;
            }
        }
        at += std::min(tar.size() - at, k_tar_block + (static_cast<std::size_t>(*size) + k_tar_block - 1) /
                                                          k_tar_block * k_tar_block);
    }
    return {};
}

} // namespace

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

Origin origin_of_members(std::string_view container) {
    return extension_of(lower(container)) == ".cud" ? Origin::unsigned_container : Origin::signed_container;
}

Sha256Digest line_digest(LineKind kind, Origin origin, std::string_view text) {
    // LineKind values stay below both bits.
    constexpr std::uint8_t k_signed_bit = 0x80;
    constexpr std::uint8_t k_unsigned_bit = 0x40;
    const std::uint8_t bits = origin == Origin::signed_container     ? k_signed_bit
                              : origin == Origin::unsigned_container ? k_unsigned_bit
                                                                     : 0;
    const auto kind_byte = static_cast<std::byte>(static_cast<std::uint8_t>(kind) | bits);
    Sha256 hasher;
    hasher.update(std::span<const std::byte>(&kind_byte, 1));
    hasher.update(text);
    return hasher.finish();
}

void for_each_line(LineKind kind, Origin origin, std::string_view text, const LineVisitor& visit) {
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
        visit(CatalogueLine{line_digest(kind, origin, line), kind}, line);
    }
}

std::string_view as_text(std::span<const std::byte> bytes) {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

Expected<void> visit_container(std::string_view name, std::span<const std::byte> bytes,
                               const MemberVisitor& visit) {
    if (bytes.size() < k_header_size || !as_text(bytes.subspan(0, 11)).starts_with("ClamAV-VDB:")) {
        return make_error(Errc::invalid_argument, std::string(name) + ": no ClamAV-VDB header");
    }
    const auto payload = bytes.subspan(k_header_size);
    if (payload.size() >= 2 && payload[0] == std::byte{0x1f} && payload[1] == std::byte{0x8b}) {
        auto tar = gunzip(payload, name);
        if (!tar) {
            return std::unexpected(tar.error());
        }
        return visit_tar(*tar, name, visit);
    }
    return visit_tar(payload, name, visit);
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

} // namespace coldscan::signatures::detail
