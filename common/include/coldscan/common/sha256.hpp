// SHA-256 of file contents (OpenSSL EVP underneath, private to sha256.cpp).
// Thread rule: one Sha256 per thread; the free functions are thread-safe.
#pragma once

#include "coldscan/common/content.hpp"
#include "coldscan/common/error.hpp"

#include <array>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace coldscan {

using Sha256Digest = std::array<std::byte, 32>;

class Sha256 {
public:
    Sha256();
    ~Sha256();
    Sha256(Sha256&&) noexcept;
    Sha256& operator=(Sha256&&) noexcept;

    void update(std::span<const std::byte> bytes);
    void update(std::string_view text);
    // Returns the digest; the object is reset for a new message.
    [[nodiscard]] Sha256Digest finish();

private:
    struct State;
    std::unique_ptr<State> m_state;
};

[[nodiscard]] std::string to_hex(std::span<const std::byte> bytes);
[[nodiscard]] std::string sha256_hex(std::string_view text);
// Digest of all of a content's bytes; an io error if a read fails.
[[nodiscard]] Expected<Sha256Digest> sha256_of(const Content& content);

} // namespace coldscan
