// Helpers every unit test may use (header-only; the test glob compiles only test_*.cpp).
#pragma once

#include "coldscan/common/content.hpp"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace coldscan::test {

// Writes bytes to path, creating its folders.
inline void write_file(const std::filesystem::path& path, std::string_view bytes) {
    std::filesystem::create_directories(path.parent_path());
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(out.good());
}

inline std::string read_text(const std::filesystem::path& path) {
    std::string text(std::filesystem::file_size(path), '\0');
    std::ifstream in(path, std::ios::binary);
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    REQUIRE(in.good());
    return text;
}

// All of a content's bytes as a string.
inline std::string content_bytes(const Content& content) {
    std::string bytes(content.size(), '\0');
    auto n =
        content.read_at(0, std::span<std::byte>(reinterpret_cast<std::byte*>(bytes.data()), bytes.size()));
    REQUIRE(n.has_value());
    REQUIRE(*n == bytes.size());
    return bytes;
}

} // namespace coldscan::test
