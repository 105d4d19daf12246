#include "coldscan/common/sha256.hpp"

#include "coldscan/common/text.hpp"

#include <cassert>
#include <openssl/evp.h>
#include <vector>

namespace coldscan {

struct Sha256::State {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    State() {
        assert(ctx != nullptr);
        EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
    }
    ~State() { EVP_MD_CTX_free(ctx); }
    State(const State&) = delete;
    State& operator=(const State&) = delete;
};

Sha256::Sha256() : m_state(std::make_unique<State>()) {}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(std::span<const std::byte> bytes) {
    EVP_DigestUpdate(m_state->ctx, bytes.data(), bytes.size());
}

void Sha256::update(std::string_view text) {
    EVP_DigestUpdate(m_state->ctx, text.data(), text.size());
}

Sha256Digest Sha256::finish() {
    Sha256Digest digest{};
    unsigned int length = 0;
    EVP_DigestFinal_ex(m_state->ctx, reinterpret_cast<unsigned char*>(digest.data()), &length);
    assert(length == digest.size());
    EVP_DigestInit_ex(m_state->ctx, EVP_sha256(), nullptr);
    return digest;
}

std::string to_hex(std::span<const std::byte> bytes) {
    return hex_encode(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

std::string sha256_hex(std::string_view text) {
    Sha256 hasher;
    hasher.update(text);
    const auto digest = hasher.finish();
    return to_hex(digest);
}

Expected<Sha256Digest> sha256_of(const Content& content) {
    Sha256 hasher;
    if (const auto memory = content.memory()) {
        hasher.update(*memory);
        return hasher.finish();
    }
    constexpr std::size_t k_chunk = 1U << 20;
    std::vector<std::byte> buffer(k_chunk);
    std::uint64_t offset = 0;
    while (offset < content.size()) {
        auto n = content.read_at(offset, buffer);
        if (!n) {
            return std::unexpected(n.error());
        }
        if (*n == 0) {
            return make_error(Errc::io, "file ended early while hashing");
        }
        hasher.update(std::span<const std::byte>(buffer).first(*n));
        offset += *n;
    }
    return hasher.finish();
}

} // namespace coldscan
