#include "coldscan/common/text.hpp"

#include <array>
#include <charconv>
#include <cstdio>
#include <limits>

namespace coldscan {
namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 if it is not valid (overlongs, surrogates and
// code points above U+10FFFF are invalid).
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
    const auto c0 = static_cast<unsigned char>(s[i]);
    if (c0 < 0x80) {
        return 1;
    }
    std::size_t length = 0;
    unsigned min_second = 0x80;
    unsigned max_second = 0xBF;
    if (c0 >= 0xC2 && c0 <= 0xDF) {
        length = 2;
    } else if (c0 >= 0xE0 && c0 <= 0xEF) {
        length = 3;
        if (c0 == 0xE0) {
            min_second = 0xA0;
        } else if (c0 == 0xED) {
            max_second = 0x9F;
        }
    } else if (c0 >= 0xF0 && c0 <= 0xF4) {
        length = 4;
        if (c0 == 0xF0) {
            min_second = 0x90;
        } else if (c0 == 0xF4) {
            max_second = 0x8F;
        }
    } else {
        return 0;
    }
    if (i + length > s.size()) {
        return 0;
    }
    for (std::size_t k = 1; k < length; ++k) {
        const auto c = static_cast<unsigned char>(s[i + k]);
        const unsigned lo = k == 1 ? min_second : 0x80;
        const unsigned hi = k == 1 ? max_second : 0xBF;
        if (c < lo || c > hi) {
            return 0;
        }
    }
    return length;
}

void append_escape(std::string& out, unsigned char c) {
    std::array<char, 8> buffer{};
    std::snprintf(buffer.data(), buffer.size(), "\\x%02X", c);
    out += buffer.data();
}

} // namespace

bool is_valid_utf8(std::string_view bytes) {
    for (std::size_t i = 0; i < bytes.size();) {
        const std::size_t n = utf8_sequence_length(bytes, i);
        if (n == 0) {
            return false;
        }
        i += n;
    }
    return true;
}

namespace {

enum class Backslash { escape, keep };

std::string escape_controls(std::string_view bytes, Backslash backslash) {
    std::string out;
    out.reserve(bytes.size());
    for (std::size_t i = 0; i < bytes.size();) {
        const auto c = static_cast<unsigned char>(bytes[i]);
        const std::size_t n = utf8_sequence_length(bytes, i);
        if (n == 0 || c < 0x20 || c == 0x7F || (c == '\\' && backslash == Backslash::escape)) {
            append_escape(out, c);
            ++i;
            continue;
        }
        if (n == 2 && c == 0xC2 && static_cast<unsigned char>(bytes[i + 1]) < 0xA0) {
            // C1 control characters (U+0080..U+009F) can drive terminals too.
            append_escape(out, c);
            append_escape(out, static_cast<unsigned char>(bytes[i + 1]));
            i += 2;
            continue;
        }
        out.append(bytes.substr(i, n));
        i += n;
    }
    return out;
}

} // namespace

std::string printable(std::string_view bytes) {
    return escape_controls(bytes, Backslash::escape);
}

std::string without_controls(std::string_view bytes) {
    return escape_controls(bytes, Backslash::keep);
}

std::string utf8_or_escaped(std::string_view bytes) {
    if (is_valid_utf8(bytes)) {
        return std::string(bytes);
    }
    std::string out;
    for (std::size_t i = 0; i < bytes.size();) {
        const std::size_t n = utf8_sequence_length(bytes, i);
        if (n == 0) {
            append_escape(out, static_cast<unsigned char>(bytes[i]));
            ++i;
        } else {
            out.append(bytes.substr(i, n));
            i += n;
        }
    }
    return out;
}

std::string hex_encode(std::string_view bytes) {
    static constexpr char k_digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (const char ch : bytes) {
        const auto c = static_cast<unsigned char>(ch);
        out.push_back(k_digits[c >> 4]);
        out.push_back(k_digits[c & 0xf]);
    }
    return out;
}

std::string format_bytes(std::uint64_t bytes) {
    static constexpr std::array<const char*, 6> k_units = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    auto value = static_cast<double>(bytes);
    std::size_t unit = 0;
    while (value >= 1024.0 && unit + 1 < k_units.size()) {
        value /= 1024.0;
        ++unit;
    }
    std::array<char, 32> buffer{};
    if (unit == 0) {
        std::snprintf(buffer.data(), buffer.size(), "%llu B", static_cast<unsigned long long>(bytes));
    } else {
        std::snprintf(buffer.data(), buffer.size(), "%.1f %s", value, k_units[unit]);
    }
    return buffer.data();
}

std::optional<std::chrono::seconds> parse_duration(std::string_view text) {
    if (text.empty()) {
        return std::nullopt;
    }
    std::int64_t total = 0;
    while (!text.empty()) {
        std::int64_t value = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (ec != std::errc() || end == text.data() || value < 0 || end == text.data() + text.size()) {
            return std::nullopt; // a number without its unit is ambiguous
        }
        std::int64_t unit = 0;
        switch (*end) {
        case 'w':
            unit = 7 * 86400;
            break;
        case 'd':
            unit = 86400;
            break;
        case 'h':
            unit = 3600;
            break;
        case 'm':
            unit = 60;
            break;
        case 's':
            unit = 1;
            break;
        default:
            return std::nullopt;
        }
        if (value > (std::numeric_limits<std::int64_t>::max() - total) / unit) {
            return std::nullopt;
        }
        total += value * unit;
        text.remove_prefix(static_cast<std::size_t>(end - text.data()) + 1);
    }
    return std::chrono::seconds(total);
}

std::optional<std::chrono::seconds> parse_seconds_or_duration(std::string_view text) {
    std::int64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (!text.empty() && ec == std::errc() && end == text.data() + text.size()) {
        return value < 0 ? std::nullopt : std::optional<std::chrono::seconds>(value);
    }
    return parse_duration(text);
}

std::string format_duration(std::chrono::duration<double> d) {
    const double seconds = d.count() < 0 ? 0 : d.count();
    std::array<char, 32> buffer{};
    if (seconds < 60) {
        std::snprintf(buffer.data(), buffer.size(), "%.1fs", seconds);
    } else if (seconds < 3600) {
        const auto s = static_cast<long>(seconds);
        std::snprintf(buffer.data(), buffer.size(), "%ldm%02lds", s / 60, s % 60);
    } else {
        const auto s = static_cast<long>(seconds);
        std::snprintf(buffer.data(), buffer.size(), "%ldh%02ldm", s / 3600, (s % 3600) / 60);
    }
    return buffer.data();
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
    std::uint64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end == text.data()) {
        return std::nullopt;
    }
    std::string_view suffix(end, static_cast<std::size_t>(text.data() + text.size() - end));
    if (!suffix.empty() && (suffix.back() == 'B' || suffix.back() == 'b')) {
        suffix.remove_suffix(1);
    }
    if (suffix.size() == 2 && (suffix[1] == 'i' || suffix[1] == 'I')) {
        suffix.remove_suffix(1);
    }
    unsigned shift = 0;
    if (suffix.size() == 1) {
        switch (suffix[0]) {
        case 'k':
        case 'K':
            shift = 10;
            break;
        case 'm':
        case 'M':
            shift = 20;
            break;
        case 'g':
        case 'G':
            shift = 30;
            break;
        case 't':
        case 'T':
            shift = 40;
            break;
        default:
            return std::nullopt;
        }
    } else if (!suffix.empty()) {
        return std::nullopt;
    }
    if (shift != 0 && value > (std::numeric_limits<std::uint64_t>::max() >> shift)) {
        return std::nullopt;
    }
    return value << shift;
}

std::vector<std::pair<std::size_t, std::size_t>> uri_password_spans(std::string_view uri) {
    std::vector<std::pair<std::size_t, std::size_t>> spans;
    if (const auto scheme_end = uri.find("://"); scheme_end != std::string_view::npos) {
        const std::size_t start = scheme_end + 3;
        const std::string_view authority = uri.substr(start, uri.substr(start).find_first_of("/?"));
        const auto at = authority.rfind('@');
        const auto colon = authority.find(':');
        if (at != std::string_view::npos && colon < at) {
            spans.emplace_back(start + colon + 1, at - colon - 1);
        }
    }
    constexpr std::string_view k_key = "password=";
    for (auto pos = uri.find(k_key); pos != std::string_view::npos; pos = uri.find(k_key, pos + 1)) {
        const std::size_t value = pos + k_key.size();
        const auto end = uri.find('&', value);
        spans.emplace_back(value, (end == std::string_view::npos ? uri.size() : end) - value);
    }
    return spans;
}

} // namespace coldscan
