#include "tar_reader.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstring>
#include <poll.h>
#include <unistd.h>

namespace coldscan::disk::detail {
namespace {

constexpr std::size_t k_block = 512;
constexpr std::size_t k_buffer_size = 256U << 10;
// GNU long names, long links and pax records: real paths stay far below this; more is hostile.
constexpr std::uint64_t k_max_meta = 1U << 20;

// Header field offsets (ustar / GNU).
constexpr std::size_t k_name = 0;
constexpr std::size_t k_name_len = 100;
constexpr std::size_t k_size = 124;
constexpr std::size_t k_mtime = 136;
constexpr std::size_t k_checksum = 148;
constexpr std::size_t k_typeflag = 156;
constexpr std::size_t k_linkname = 157;
constexpr std::size_t k_linkname_len = 100;
constexpr std::size_t k_magic = 257;
constexpr std::size_t k_prefix = 345;
constexpr std::size_t k_prefix_len = 155;
// POSIX ustar magic and version; GNU headers say "ustar  \0" and use the prefix field for other things.
constexpr std::array<char, 8> k_posix_magic = {'u', 's', 't', 'a', 'r', '\0', '0', '0'};

using Block = std::array<std::byte, k_block>;

std::string_view field(const Block& block, std::size_t offset, std::size_t length) {
    const auto* begin = reinterpret_cast<const char*>(block.data()) + offset;
    const auto* nul = static_cast<const char*>(std::memchr(begin, '\0', length));
    return {begin, nul != nullptr ? static_cast<std::size_t>(nul - begin) : length};
}

std::uint64_t padding_for(std::uint64_t size) {
    return (k_block - size % k_block) % k_block;
}

bool is_zero_block(const Block& block) {
    return std::all_of(block.begin(), block.end(), [](std::byte b) { return b == std::byte{0}; });
}

// Octal (optionally space/NUL padded) or GNU base-256. Returns nullopt when malformed or out of range.
std::optional<std::int64_t> parse_number(const Block& block, std::size_t offset, std::size_t length) {
    const auto* p = reinterpret_cast<const unsigned char*>(block.data()) + offset;
    if ((p[0] & 0x80U) != 0) {
        // Base-256, two's complement, big-endian; bit 6 of the first byte is the sign.
        const bool negative = (p[0] & 0x40U) != 0;
        std::uint64_t value = negative ? ~std::uint64_t{0} : 0;
        for (std::size_t i = 0; i < length; ++i) {
            const unsigned byte = i == 0 ? (p[0] & 0x7FU) | (negative ? 0x80U : 0U) : p[i];
            if ((value >> 56) != (negative ? 0xFFU : 0U)) {
                return std::nullopt; // would not fit in 64 bits
            }
            value = (value << 8) | byte;
        }
        const auto result = static_cast<std::int64_t>(value);
        if (negative != (result < 0)) {
            return std::nullopt;
        }
        return result;
    }
    std::size_t i = 0;
    while (i < length && (p[i] == ' ' || p[i] == '\0')) {
        ++i;
    }
    std::uint64_t value = 0;
    bool any = false;
    for (; i < length && p[i] >= '0' && p[i] <= '7'; ++i) {
        if (value > (std::uint64_t{INT64_MAX} >> 3)) {
            return std::nullopt;
        }
        value = (value << 3) | (p[i] - '0');
        any = true;
    }
    for (; i < length; ++i) {
        if (p[i] != ' ' && p[i] != '\0') {
            return std::nullopt;
        }
    }
    if (!any) {
        return 0;
    }
    return static_cast<std::int64_t>(value);
}

bool checksum_ok(const Block& block) {
    const auto stored = parse_number(block, k_checksum, 8);
    if (!stored) {
        return false;
    }
    std::int64_t unsigned_sum = 0;
    std::int64_t signed_sum = 0; // some old writers summed signed chars
    for (std::size_t i = 0; i < k_block; ++i) {
        const bool in_checksum = i >= k_checksum && i < k_checksum + 8;
        const auto byte = in_checksum ? std::byte{' '} : block[i];
        unsigned_sum += std::to_integer<unsigned char>(byte);
        signed_sum += static_cast<signed char>(std::to_integer<unsigned char>(byte));
    }
    return *stored == unsigned_sum || *stored == signed_sum;
}

std::optional<std::uint64_t> parse_decimal(std::string_view text) {
    std::uint64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
        return std::nullopt;
    }
    return value;
}

// pax mtime: "[-]seconds[.fraction]"; only whole seconds are kept.
std::optional<std::int64_t> parse_pax_time(std::string_view text) {
    const auto dot = text.find('.');
    const std::string_view whole = text.substr(0, dot);
    std::int64_t value = 0;
    const auto [end, ec] = std::from_chars(whole.data(), whole.data() + whole.size(), value);
    if (ec != std::errc() || end != whole.data() + whole.size() || whole.empty()) {
        return std::nullopt;
    }
    return value;
}

struct PaxAttributes {
    std::optional<std::string> path;
    std::optional<std::string> linkpath;
    std::optional<std::uint64_t> size;
    std::optional<std::int64_t> mtime;
    bool sparse = false;
};

// Records are "<length> <key>=<value>\n", length counting the whole record.
std::optional<std::string> parse_pax(std::string_view data, PaxAttributes& attributes) {
    while (!data.empty()) {
        if (data.front() == '\0') {
            break; // trailing NUL padding some writers leave
        }
        const auto space = data.find(' ');
        if (space == std::string_view::npos) {
            return "pax record without a length";
        }
        const auto length = parse_decimal(data.substr(0, space));
        if (!length || *length <= space + 1 || *length > data.size()) {
            return "pax record with a bad length";
        }
        const std::string_view record = data.substr(0, *length);
        data.remove_prefix(*length);
        if (record.back() != '\n') {
            return "pax record not ending in a newline";
        }
        const std::string_view body = record.substr(space + 1, record.size() - space - 2);
        const auto equals = body.find('=');
        if (equals == std::string_view::npos) {
            return "pax record without '='";
        }
        const std::string_view key = body.substr(0, equals);
        const std::string_view value = body.substr(equals + 1);
        if (key == "path") {
            attributes.path = std::string(value);
        } else if (key == "linkpath") {
            attributes.linkpath = std::string(value);
        } else if (key == "size") {
            attributes.size = parse_decimal(value);
            if (!attributes.size || *attributes.size > static_cast<std::uint64_t>(INT64_MAX)) {
                return "pax size is not a number";
            }
        } else if (key == "mtime") {
            attributes.mtime = parse_pax_time(value); // a bad mtime is not worth failing the stream
        } else if (key.starts_with("GNU.sparse.")) {
            attributes.sparse = true;
        }
    }
    return std::nullopt;
}

} // namespace

std::string normalise_tar_path(std::string_view raw) {
    for (;;) {
        if (raw.starts_with("./")) {
            raw.remove_prefix(2);
        } else if (raw.starts_with('/')) {
            raw.remove_prefix(1);
        } else {
            break;
        }
    }
    while (raw.ends_with('/')) {
        raw.remove_suffix(1);
    }
    if (raw == ".") {
        raw = {};
    }
    std::string path = "/";
    path += raw;
    return path;
}

TarReader::TarReader(int fd, std::chrono::milliseconds stall_timeout)
    : m_fd(fd), m_stall_timeout(stall_timeout), m_buffer(k_buffer_size) {}

Expected<void> TarReader::wait_readable() {
    if (m_stall_timeout.count() <= 0) {
        return {};
    }
    pollfd ready{m_fd, POLLIN, 0};
    for (;;) {
        const int n =
            ::poll(&ready, 1, static_cast<int>(std::min<std::int64_t>(m_stall_timeout.count(), INT_MAX)));
        if (n > 0) {
            return {};
        }
        if (n == 0) {
            const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(m_stall_timeout).count();
            return fail("no data arrived for " + std::to_string(seconds) +
                        " s: the appliance looks hung, giving up on this filesystem");
        }
        if (errno != EINTR) {
            return fail(errno_message("waiting for the tar stream"));
        }
    }
}

std::unexpected<Error> TarReader::fail(std::string message) {
    m_failure = Error{Errc::io, std::move(message)};
    m_remaining = 0;
    m_padding = 0;
    return std::unexpected(*m_failure);
}

Expected<std::size_t> TarReader::read_some(std::span<std::byte> out) {
    if (out.empty()) {
        return 0;
    }
    if (m_begin == m_end) {
        if (auto ready = wait_readable(); !ready) {
            return std::unexpected(ready.error());
        }
        if (out.size() >= m_buffer.size()) {
            for (;;) { // big reads bypass the buffer
                const ssize_t n = ::read(m_fd, out.data(), out.size());
                if (n >= 0) {
                    m_stream_read += static_cast<std::uint64_t>(n);
                    return static_cast<std::size_t>(n);
                }
                if (errno != EINTR) {
                    return fail(errno_message("reading the tar stream"));
                }
            }
        }
        for (;;) {
            const ssize_t n = ::read(m_fd, m_buffer.data(), m_buffer.size());
            if (n >= 0) {
                m_begin = 0;
                m_end = static_cast<std::size_t>(n);
                m_stream_read += static_cast<std::uint64_t>(n);
                break;
            }
            if (errno != EINTR) {
                return fail(errno_message("reading the tar stream"));
            }
        }
        if (m_end == 0) {
            return 0;
        }
    }
    const std::size_t n = std::min(out.size(), m_end - m_begin);
    std::memcpy(out.data(), m_buffer.data() + m_begin, n);
    m_begin += n;
    return n;
}

Expected<bool> TarReader::read_block(std::span<std::byte, 512> block) {
    std::size_t done = 0;
    while (done < block.size()) {
        auto n = read_some(block.subspan(done));
        if (!n) {
            return std::unexpected(n.error());
        }
        if (*n == 0) {
            if (done == 0) {
                return false;
            }
            return fail("the tar stream ended inside a header block");
        }
        done += *n;
    }
    return true;
}

Expected<void> TarReader::skip(std::uint64_t bytes) {
    // What is buffered first; then a file (an OVA package) seeks past the rest instead of reading it.
    const auto buffered = static_cast<std::size_t>(std::min<std::uint64_t>(bytes, m_end - m_begin));
    m_begin += buffered;
    bytes -= buffered;
    if (bytes > 0 && bytes <= static_cast<std::uint64_t>(INT64_MAX) &&
        ::lseek(m_fd, static_cast<off_t>(bytes), SEEK_CUR) != -1) {
        m_stream_read += bytes;
        return {};
    }
    std::array<std::byte, 64U << 10> sink{};
    while (bytes > 0) {
        const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(bytes, sink.size()));
        auto n = read_some(std::span(sink).first(want));
        if (!n) {
            return std::unexpected(n.error());
        }
        if (*n == 0) {
            return fail("the tar stream ended inside " + m_current_path + " (" + std::to_string(bytes) +
                        " bytes missing)");
        }
        bytes -= *n;
    }
    return {};
}

Expected<std::string> TarReader::read_meta(std::uint64_t size, std::string_view what) {
    if (size > k_max_meta) {
        return fail("tar " + std::string(what) + " record of " + std::to_string(size) +
                    " bytes is too large");
    }
    std::string data(static_cast<std::size_t>(size), '\0');
    std::size_t done = 0;
    while (done < data.size()) {
        auto n = read_some(std::as_writable_bytes(std::span(data)).subspan(done));
        if (!n) {
            return std::unexpected(n.error());
        }
        if (*n == 0) {
            return fail("the tar stream ended inside a " + std::string(what) + " record");
        }
        done += *n;
    }
    if (auto skipped = skip(padding_for(size)); !skipped) {
        return std::unexpected(skipped.error());
    }
    return data;
}

Expected<std::optional<TarMember>> TarReader::next() {
    if (m_failure) {
        return std::unexpected(*m_failure);
    }
    if (m_at_end) {
        return std::nullopt;
    }
    if (auto skipped = skip(m_remaining + m_padding); !skipped) {
        return std::unexpected(skipped.error());
    }
    m_remaining = 0;
    m_padding = 0;

    std::optional<std::string> long_name;
    std::optional<std::string> long_link;
    PaxAttributes pax;
    Block block{};
    for (;;) {
        auto got = read_block(block);
        if (!got) {
            return std::unexpected(got.error());
        }
        if (!*got) {
            return fail("the tar stream ended without an end-of-archive marker");
        }
        if (is_zero_block(block)) {
            if (long_name || long_link || pax.path || pax.size) {
                return fail("the tar stream ended after a metadata record");
            }
            m_at_end = true;
            return std::nullopt;
        }
        if (!checksum_ok(block)) {
            return fail("corrupt tar header (bad checksum)");
        }
        const auto typeflag = std::to_integer<char>(block[k_typeflag]);
        const auto header_size = parse_number(block, k_size, 12);
        if (!header_size || *header_size < 0) {
            return fail("corrupt tar header (bad size)");
        }
        const auto size = static_cast<std::uint64_t>(*header_size);
        if (typeflag == 'L' || typeflag == 'K' || typeflag == 'x') {
            auto data = read_meta(size, typeflag == 'x' ? "pax" : "GNU long name");
            if (!data) {
                return std::unexpected(data.error());
            }
            if (typeflag == 'x') {
                if (auto problem = parse_pax(*data, pax)) {
                    return fail("corrupt tar stream: " + *problem);
                }
                continue;
            }
            const auto nul = data->find('\0');
            (typeflag == 'L' ? long_name : long_link) = data->substr(0, nul);
            continue;
        }
        if (typeflag == 'g' || typeflag == 'V') { // pax global header, volume label: nothing to keep
            m_current_path = typeflag == 'g' ? "a pax global header" : "a volume label";
            if (auto skipped = skip(size + padding_for(size)); !skipped) {
                return std::unexpected(skipped.error());
            }
            continue;
        }

        TarMember member;
        if (pax.path) {
            member.path = normalise_tar_path(*pax.path);
        } else if (long_name) {
            member.path = normalise_tar_path(*long_name);
        } else {
            std::string name(field(block, k_name, k_name_len));
            const bool posix_ustar =
                std::memcmp(block.data() + k_magic, k_posix_magic.data(), k_posix_magic.size()) == 0;
            const std::string_view prefix = field(block, k_prefix, k_prefix_len);
            if (posix_ustar && !prefix.empty()) {
                name = std::string(prefix) + "/" + name;
            }
            member.path = normalise_tar_path(name);
        }
        const std::string raw_link = pax.linkpath ? *pax.linkpath
                                     : long_link  ? *long_link
                                                  : std::string(field(block, k_linkname, k_linkname_len));
        member.size = pax.size ? *pax.size : size;
        const auto header_mtime = parse_number(block, k_mtime, 12);
        member.mtime = pax.mtime ? *pax.mtime : header_mtime.value_or(0);

        switch (typeflag) {
        case '1':
            member.type = TarMemberType::hard_link;
            member.link_target = normalise_tar_path(raw_link);
            break;
        case '2':
            member.type = TarMemberType::symlink;
            member.link_target = raw_link;
            break;
        case '3':
        case '4':
        case '6':
            member.type = TarMemberType::special;
            break;
        case '5':
        case 'D': // GNU dumpdir: a folder with its listing as data
            member.type = TarMemberType::directory;
            break;
        case 'S':
            member.type = TarMemberType::unsupported;
            member.unsupported_reason = "GNU sparse tar member (not supported)";
            break;
        case 'M':
            member.type = TarMemberType::unsupported;
            member.unsupported_reason = "multi-volume tar member (not supported)";
            break;
        default:
            member.type = TarMemberType::regular;
            break;
        }
        if (pax.sparse && member.type == TarMemberType::regular) {
            member.type = TarMemberType::unsupported;
            member.unsupported_reason = "pax sparse tar member (not supported)";
        }
        // As GNU tar reads: data follows every member but a plain directory (GNU tar never writes any).
        const std::uint64_t data_size = typeflag == '5' ? 0 : member.size;
        if (data_size > static_cast<std::uint64_t>(INT64_MAX) - k_block) {
            return fail("corrupt tar header (bad size)");
        }
        m_remaining = data_size;
        m_padding = padding_for(data_size);
        m_current_path = member.path;
        return member;
    }
}

Expected<std::size_t> TarReader::read(std::span<std::byte> out) {
    if (m_failure) {
        return std::unexpected(*m_failure);
    }
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), m_remaining));
    if (want == 0) {
        return 0;
    }
    auto n = read_some(out.first(want));
    if (!n) {
        return std::unexpected(n.error());
    }
    if (*n == 0) {
        return fail("the tar stream ended inside " + m_current_path + " (" + std::to_string(m_remaining) +
                    " bytes missing)");
    }
    m_remaining -= *n;
    return *n;
}

Expected<void> TarReader::drain(std::uint64_t limit) {
    if (m_failure) {
        return std::unexpected(*m_failure);
    }
    std::array<std::byte, 64U << 10> sink{};
    std::uint64_t drained = 0;
    for (;;) {
        auto n = read_some(sink);
        if (!n) {
            return std::unexpected(n.error());
        }
        if (*n == 0) {
            return {};
        }
        drained += *n;
        if (drained > limit) {
            return fail("more than " + std::to_string(limit) + " bytes follow the tar end-of-archive marker");
        }
    }
}

} // namespace coldscan::disk::detail
