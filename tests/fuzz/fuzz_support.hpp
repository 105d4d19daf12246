// What the fuzz targets share: an oracle check that stops with a message (libFuzzer saves the input), and
// a reader that splits one input into the values a target needs.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>

namespace coldscan::fuzz {

[[noreturn]] inline void oracle_failed(const char* condition, const char* file, int line) {
    std::fprintf(stderr, "%s:%d: oracle failed: %s\n", file, line, condition);
    std::abort();
}

// An invariant of the code under test; aborts (a crash libFuzzer reports) when it does not hold.
#define FUZZ_CHECK(condition)                                                                                \
    do {                                                                                                     \
        if (!(condition)) {                                                                                  \
            ::coldscan::fuzz::oracle_failed(#condition, __FILE__, __LINE__);                                 \
        }                                                                                                    \
    } while (false)

// Takes values from the front of the input; past the end everything is zero or empty.
class FuzzInput {
public:
    FuzzInput(const std::uint8_t* data, std::size_t size) : m_bytes(data, size) {}

    [[nodiscard]] bool empty() const noexcept { return m_bytes.empty(); }
    [[nodiscard]] std::size_t size() const noexcept { return m_bytes.size(); }

    template <typename T> [[nodiscard]] T integer() {
        T value = 0;
        for (std::size_t i = 0; i < sizeof(T) && !m_bytes.empty(); ++i) {
            value = static_cast<T>((static_cast<std::uint64_t>(value) << 8U) | m_bytes.front());
            m_bytes = m_bytes.subspan(1);
        }
        return value;
    }
    // A string of up to max_length bytes (its length is the next byte).
    [[nodiscard]] std::string string(std::size_t max_length = 255) {
        const std::size_t length = std::min<std::size_t>(integer<std::uint8_t>(), max_length);
        return bytes(length);
    }
    [[nodiscard]] std::string bytes(std::size_t length) {
        length = std::min(length, m_bytes.size());
        std::string out(reinterpret_cast<const char*>(m_bytes.data()), length);
        m_bytes = m_bytes.subspan(length);
        return out;
    }
    // Everything not taken yet.
    [[nodiscard]] std::string rest() { return bytes(m_bytes.size()); }

private:
    std::span<const std::uint8_t> m_bytes;
};

} // namespace coldscan::fuzz
