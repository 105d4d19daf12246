// What the cache's record layouts share (verdict_cache.cpp, content_places.cpp): little-endian integers and
// the length-prefixed fields their key digests are made of, so ("ab", "c") and ("a", "bc") never collide.
#pragma once

#include "coldscan/common/sha256.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace coldscan::scanner::detail {

inline std::array<std::byte, 8> to_le(std::uint64_t value) {
    std::array<std::byte, 8> out{};
    for (std::size_t i = 0; i < out.size(); ++i) {
        out[i] = static_cast<std::byte>((value >> (8 * i)) & 0xff);
    }
    return out;
}

inline std::uint64_t from_le(const std::array<std::byte, 8>& bytes) {
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        value |= std::to_integer<std::uint64_t>(bytes[i]) << (8 * i);
    }
    return value;
}

inline void add_field(Sha256& hasher, std::string_view text) {
    const auto length = to_le(text.size());
    hasher.update(std::span<const std::byte>(length));
    hasher.update(text);
}

inline void add_field(Sha256& hasher, std::uint64_t value) {
    const auto bytes = to_le(value);
    hasher.update(std::span<const std::byte>(bytes));
}

} // namespace coldscan::scanner::detail
