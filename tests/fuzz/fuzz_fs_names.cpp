// Names and labels from filesystems (NTFS UTF-16LE names and labels, padded FAT/ext labels), and the
// escaping every guest name goes through on its way out (common/text.hpp). Oracles: the UTF-8 made from
// UTF-16 is valid and at most 3 bytes per code unit, and equals a reference decoder; trimmed() leaves no
// NUL and no trailing space; printable() output has no control byte and utf8_or_escaped() is valid UTF-8,
// and both keep valid UTF-8 without controls or backslashes as it is.
#include "coldscan/common/text.hpp"
#include "fs_names.hpp"
#include "fuzz_support.hpp"

#include <vector>

namespace {

// UTF-16LE -> code points, unpaired surrogates as U+FFFD, then UTF-8: the textbook way.
std::string reference_utf8(std::span<const std::uint8_t> bytes) {
    std::vector<std::uint32_t> units;
    for (std::size_t i = 0; i + 1 < bytes.size(); i += 2) {
        units.push_back(bytes[i] | (static_cast<std::uint32_t>(bytes[i + 1]) << 8U));
    }
    std::string out;
    for (std::size_t i = 0; i < units.size(); ++i) {
        std::uint32_t cp = units[i];
        if (cp >= 0xD800 && cp < 0xDC00 && i + 1 < units.size() && units[i + 1] >= 0xDC00 &&
            units[i + 1] < 0xE000) {
            cp = 0x10000 + ((cp - 0xD800) << 10U) + (units[i + 1] - 0xDC00);
            ++i;
        } else if (cp >= 0xD800 && cp < 0xE000) {
            cp = 0xFFFD;
        }
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6U));
            out += static_cast<char>(0x80 | (cp & 0x3FU));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xE0 | (cp >> 12U));
            out += static_cast<char>(0x80 | ((cp >> 6U) & 0x3FU));
            out += static_cast<char>(0x80 | (cp & 0x3FU));
        } else {
            out += static_cast<char>(0xF0 | (cp >> 18U));
            out += static_cast<char>(0x80 | ((cp >> 12U) & 0x3FU));
            out += static_cast<char>(0x80 | ((cp >> 6U) & 0x3FU));
            out += static_cast<char>(0x80 | (cp & 0x3FU));
        }
    }
    return out;
}

// C0 controls, DEL, and C1 controls (U+0080..U+009F, which drive terminals too).
bool has_control(std::string_view text) {
    for (std::size_t i = 0; i < text.size(); ++i) {
        const auto u = static_cast<unsigned char>(text[i]);
        if (u < 0x20 || u == 0x7F) {
            return true;
        }
        if (u == 0xC2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) < 0xA0 &&
            static_cast<unsigned char>(text[i + 1]) >= 0x80) {
            return true;
        }
    }
    return false;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> bytes(data, size);
    const std::string utf8 = coldscan::disk::detail::utf8_from_utf16le(bytes);
    FUZZ_CHECK(coldscan::is_valid_utf8(utf8));
    FUZZ_CHECK(utf8.size() <= 3 * (size / 2));
    FUZZ_CHECK(utf8 == reference_utf8(bytes));

    const std::string raw(reinterpret_cast<const char*>(data), size);
    const std::string label = coldscan::disk::detail::trimmed(raw);
    FUZZ_CHECK(label.find('\0') == std::string::npos);
    FUZZ_CHECK(label.empty() || label.back() != ' ');
    FUZZ_CHECK(raw.starts_with(label));

    const std::string shown = coldscan::printable(raw);
    FUZZ_CHECK(!has_control(shown));
    FUZZ_CHECK(coldscan::is_valid_utf8(shown));
    const std::string json_text = coldscan::utf8_or_escaped(raw);
    FUZZ_CHECK(coldscan::is_valid_utf8(json_text));
    if (coldscan::is_valid_utf8(raw)) {
        FUZZ_CHECK(json_text == raw);
        if (!has_control(raw) && raw.find('\\') == std::string::npos) {
            FUZZ_CHECK(shown == raw);
        }
    }
    FUZZ_CHECK(coldscan::hex_encode(raw).size() == 2 * size);
    return 0;
}
