#include "../../disk-access/src/fs_names.hpp"

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

using coldscan::disk::detail::trimmed;
using coldscan::disk::detail::utf8_from_utf16le;

TEST_CASE("trimmed") {
    CHECK(trimmed("MYDISK     ") == "MYDISK");
    CHECK(trimmed(std::string("root\0\0\0\0", 8)) == "root");
    // Cut at the first NUL, then the spaces before it (found by tests/fuzz/fuzz_fs_names.cpp).
    CHECK(trimmed(std::string("ab \0junk ", 9)) == "ab");
    CHECK(trimmed("") == "");
}

TEST_CASE("utf8_from_utf16le") {
    const std::vector<std::uint8_t> cafe = {'c', 0, 'a', 0, 'f', 0, 0xE9, 0};
    CHECK(utf8_from_utf16le(cafe) == "caf\xC3\xA9");
    const std::vector<std::uint8_t> pair = {0x3D, 0xD8, 0x00, 0xDE}; // U+1F600
    CHECK(utf8_from_utf16le(pair) == "\xF0\x9F\x98\x80");
    const std::vector<std::uint8_t> lone = {0x00, 0xD8, 'A', 0, 0x41}; // unpaired, then an odd byte
    CHECK(utf8_from_utf16le(lone) == "\xEF\xBF\xBD"
                                     "A");
}
