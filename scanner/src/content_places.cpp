// Record layout of KeySpace::content_places. Key: schema version, 'P', SHA-256 of the target's name and the
// place's three identities (length-prefixed). Value: the content digest, when last seen (8 bytes
// little-endian), then target, device and path, each a 4-byte little-endian length and its bytes (guest paths
// are bytes, not always UTF-8).
#include "coldscan/scanner/content_places.hpp"

#include "coldscan/scanner/verdict_cache.hpp"
#include "record_fields.hpp"

#include <algorithm>
#include <cstring>
#include <type_traits>

namespace coldscan::scanner {
namespace {

constexpr char k_place_kind = 'P';
constexpr std::int64_t k_refresh_after_seconds = 86400;

struct PlaceRecordKey {
    std::uint8_t schema = k_cache_schema_version;
    char kind = k_place_kind;
    Sha256Digest place{};
};
static_assert(sizeof(PlaceRecordKey) == 34 && std::is_trivially_copyable_v<PlaceRecordKey>);

void put_uint(std::string& out, std::uint64_t value, std::size_t bytes) {
    for (std::size_t i = 0; i < bytes; ++i) {
        out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
    }
}

std::optional<std::uint64_t> take_uint(std::string_view& in, std::size_t bytes) {
    if (in.size() < bytes) {
        return std::nullopt;
    }
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < bytes; ++i) {
        value |= static_cast<std::uint64_t>(static_cast<unsigned char>(in[i])) << (8 * i);
    }
    in.remove_prefix(bytes);
    return value;
}

void put_text(std::string& out, std::string_view text) {
    put_uint(out, text.size(), 4);
    out.append(text);
}

std::optional<std::string> take_text(std::string_view& in) {
    const auto size = take_uint(in, 4);
    if (!size || in.size() < *size) {
        return std::nullopt;
    }
    std::string text(in.substr(0, *size));
    in.remove_prefix(*size);
    return text;
}

using detail::add_field;

std::string key_of(const PlaceKey& key, std::string_view target) {
    Sha256 hasher;
    add_field(hasher, "coldscan content place");
    add_field(hasher, target);
    add_field(hasher, key.image_identity);
    add_field(hasher, key.filesystem_identity);
    add_field(hasher, key.path);
    const PlaceRecordKey record{k_cache_schema_version, k_place_kind, hasher.finish()};
    return {reinterpret_cast<const char*>(&record), sizeof record};
}

std::string encode(const ContentPlace& place, const Sha256Digest& content) {
    std::string out(reinterpret_cast<const char*>(content.data()), content.size());
    put_uint(out, static_cast<std::uint64_t>(place.seen), 8);
    put_text(out, place.target);
    put_text(out, place.device);
    put_text(out, place.path);
    return out;
}

struct PlaceRecord {
    Sha256Digest content{};
    ContentPlace place;
};

std::optional<PlaceRecord> decode(std::string_view key, std::string_view value) {
    if (key.size() != sizeof(PlaceRecordKey) || static_cast<std::uint8_t>(key[0]) != k_cache_schema_version ||
        key[1] != k_place_kind || value.size() < Sha256Digest{}.size()) {
        return std::nullopt;
    }
    PlaceRecord record;
    std::memcpy(record.content.data(), value.data(), record.content.size());
    value.remove_prefix(record.content.size());
    const auto seen = take_uint(value, 8);
    auto target = take_text(value);
    auto device = take_text(value);
    auto path = take_text(value);
    if (!seen || !target || !device || !path || !value.empty()) {
        return std::nullopt;
    }
    record.place = ContentPlace{std::move(*target), std::move(*device), std::move(*path),
                                static_cast<std::int64_t>(*seen)};
    return record;
}

} // namespace

Expected<void> remember_place(KvStore& store, const PlaceKey& key, const ContentPlace& place,
                              const Sha256Digest& content) {
    const std::string record_key = key_of(key, place.target);
    auto stored = store.get(KeySpace::content_places, record_key);
    if (!stored) {
        return std::unexpected(stored.error());
    }
    if (*stored) {
        const auto known = decode(record_key, **stored);
        if (known && known->content == content && known->place.device == place.device &&
            place.seen - known->place.seen < k_refresh_after_seconds) {
            return {}; // known, and seen recently enough: hits stay reads
        }
    }
    return store.put(KeySpace::content_places, record_key, encode(place, content));
}

Expected<std::map<Sha256Digest, std::vector<ContentPlace>>>
places_of(const KvStore& store, const std::set<Sha256Digest>& contents) {
    std::map<Sha256Digest, std::vector<ContentPlace>> found;
    if (contents.empty()) {
        return found;
    }
    auto walked = store.for_each(KeySpace::content_places, [&](std::string_view key, std::string_view value) {
        auto record = decode(key, value);
        if (record && contents.contains(record->content)) {
            found[record->content].push_back(std::move(record->place));
        }
        return true;
    });
    if (!walked) {
        return std::unexpected(walked.error());
    }
    for (auto& [content, places] : found) {
        std::ranges::sort(places);
    }
    return found;
}

std::optional<std::int64_t> place_last_use(std::string_view key, std::string_view value) {
    const auto record = decode(key, value);
    return record ? std::optional(record->place.seen) : std::nullopt;
}

} // namespace coldscan::scanner
