// Layer digests (verdict.hpp): what hash signatures match, kept with verdicts.
#include "coldscan/common/sha256.hpp"
#include "coldscan/common/verdict.hpp"

#include <charconv>
#include <openssl/evp.h>

namespace coldscan {
namespace {

template <std::size_t N>
void digest_into(const EVP_MD* type, std::span<const std::byte> bytes, std::array<std::byte, N>& out) {
    unsigned int length = 0;
    EVP_Digest(bytes.data(), bytes.size(), reinterpret_cast<unsigned char*>(out.data()), &length, type,
               nullptr);
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

template <std::size_t N> bool from_hex(std::string_view text, std::array<std::byte, N>& out) {
    if (text.size() != 2 * N) {
        return false;
    }
    for (std::size_t i = 0; i < N; ++i) {
        const int high = hex_value(text[2 * i]);
        const int low = hex_value(text[2 * i + 1]);
        if (high < 0 || low < 0) {
            return false;
        }
        out[i] = static_cast<std::byte>(high * 16 + low);
    }
    return true;
}

// The next ':'-separated field of text.
std::string_view next_field(std::string_view& text) {
    const auto colon = text.find(':');
    const std::string_view field = text.substr(0, colon);
    text = colon == std::string_view::npos ? std::string_view{} : text.substr(colon + 1);
    return field;
}

} // namespace

LayerDigest digest_layer(std::span<const std::byte> bytes) {
    LayerDigest out;
    out.size = bytes.size();
    digest_into(EVP_md5(), bytes, out.md5);
    digest_into(EVP_sha1(), bytes, out.sha1);
    digest_into(EVP_sha256(), bytes, out.sha256);
    return out;
}

std::string to_text(const LayerDigest& layer) {
    return std::to_string(layer.size) + ":" + to_hex(layer.md5) + ":" + to_hex(layer.sha1) + ":" +
           to_hex(layer.sha256);
}

std::optional<LayerDigest> layer_digest_from_text(std::string_view text) {
    LayerDigest out;
    const std::string_view size = next_field(text);
    const auto parsed = std::from_chars(size.data(), size.data() + size.size(), out.size);
    if (parsed.ec != std::errc{} || parsed.ptr != size.data() + size.size() || size.empty()) {
        return std::nullopt;
    }
    if (!from_hex(next_field(text), out.md5) || !from_hex(next_field(text), out.sha1) ||
        !from_hex(next_field(text), out.sha256) || !text.empty()) {
        return std::nullopt;
    }
    return out;
}

} // namespace coldscan
