// Record layouts of the verdict cache. Keys are fixed-size binary structs (schema version first, then a kind
// byte), guarded by static_asserts; values are small: a digest for level 1, a JSON object for level 2 (so a
// verdict keeps YARA tags and meta). Both carry the time the record was last used, refreshed at most once a
// day so hits stay reads. A value that does not decode is a miss, never a verdict.
#include "coldscan/scanner/verdict_cache.hpp"

#include "coldscan/common/log.hpp"
#include "coldscan/scanner/content_places.hpp"
#include "record_fields.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <nlohmann/json.hpp>
#include <type_traits>
#include <vector>

namespace coldscan::scanner {
namespace {

using nlohmann::json;

constexpr char k_identity_kind = 'I';
constexpr char k_verdict_kind = 'V';
constexpr int k_verdict_record_version = 2; // v2: the detection set it was made with
constexpr std::int64_t k_refresh_after_seconds = 86400;

struct IdentityKey {
    std::uint8_t schema = k_cache_schema_version;
    char kind = k_identity_kind;
    Sha256Digest identity{};
};
static_assert(sizeof(IdentityKey) == 34 && std::is_trivially_copyable_v<IdentityKey>);

struct VerdictKey {
    std::uint8_t schema = k_cache_schema_version;
    char kind = k_verdict_kind;
    Sha256Digest content{};
    Sha256Digest context{};
};
static_assert(sizeof(VerdictKey) == 66 && std::is_trivially_copyable_v<VerdictKey>);

// Level-1 value: the content digest, the size it was computed over, and when it was last used.
struct IdentityValue {
    Sha256Digest content{};
    std::array<std::byte, 8> size_le{};
    std::array<std::byte, 8> used_le{};
};
static_assert(sizeof(IdentityValue) == 48 && std::is_trivially_copyable_v<IdentityValue>);

template <typename T> std::string_view bytes_of(const T& value) {
    return {reinterpret_cast<const char*>(&value), sizeof(T)};
}

using detail::add_field;
using detail::from_le;
using detail::to_le;

Sha256Digest identity_digest(const FileIdentity& id) {
    Sha256 hasher;
    add_field(hasher, id.image_identity);
    add_field(hasher, id.filesystem_uuid);
    add_field(hasher, id.path);
    add_field(hasher, id.inode);
    add_field(hasher, id.generation);
    add_field(hasher, id.size);
    add_field(hasher, static_cast<std::uint64_t>(id.mtime_ns));
    add_field(hasher, static_cast<std::uint64_t>(id.ctime_ns));
    return hasher.finish();
}

std::optional<IdentityValue> decode_identity(std::string_view value) {
    if (value.size() != sizeof(IdentityValue)) {
        return std::nullopt;
    }
    IdentityValue record;
    std::memcpy(&record, value.data(), sizeof(record));
    return record;
}

json detection_to_json(const Detection& d) {
    json meta = json::array();
    for (const auto& [key, value] : d.meta) {
        meta.push_back(json::array({key, value}));
    }
    return json{{"engine", to_string(d.engine)},
                {"signature", d.signature},
                {"namespace", d.yara_namespace},
                {"tags", d.tags},
                {"meta", std::move(meta)}};
}

Detection detection_from_json(const json& j) {
    Detection d;
    const std::string engine = j.at("engine").get<std::string>();
    if (engine != "clamav" && engine != "yara") {
        throw std::runtime_error("unknown engine " + engine);
    }
    d.engine = engine == "yara" ? Engine::yara : Engine::clamav;
    d.signature = j.at("signature").get<std::string>();
    d.yara_namespace = j.at("namespace").get<std::string>();
    d.tags = j.at("tags").get<std::vector<std::string>>();
    for (const auto& pair : j.at("meta")) {
        d.meta.emplace_back(pair.at(0).get<std::string>(), pair.at(1).get<std::string>());
    }
    return d;
}

// Verdict records hold names from guest-influenced engines' output (YARA meta of our rules, ClamAV names):
// the JSON is dumped with invalid UTF-8 replaced rather than throwing.
std::string encode_verdict(const Outcome& outcome, std::string_view detection_set, std::int64_t used) {
    json detections = json::array();
    for (const auto& detection : outcome.detections) {
        detections.push_back(detection_to_json(detection));
    }
    json record{{"v", k_verdict_record_version}, {"outcome", to_string(outcome.kind)},
                {"reason", outcome.reason},      {"detections", std::move(detections)},
                {"set", detection_set},          {"used", used}};
    if (outcome.layers.complete) {
        record["layer_sizes"] = outcome.layers.sizes;
        record["layer_types"] = outcome.layers.types;
    }
    if (outcome.layers.digests_complete) {
        json digests = json::array();
        for (const auto& digest : outcome.layers.digests) {
            digests.push_back(to_text(digest));
        }
        record["layer_digests"] = std::move(digests);
    }
    return record.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Sorted layer digests, or none when one does not parse or they are out of order (not recorded, then).
std::vector<LayerDigest> layer_digests_of(const json& texts) {
    std::vector<LayerDigest> out;
    for (const auto& text : texts) {
        const auto digest = layer_digest_from_text(text.get<std::string>());
        if (!digest) {
            return {};
        }
        out.push_back(*digest);
    }
    return std::ranges::is_sorted(out) ? out : std::vector<LayerDigest>{};
}

struct VerdictRecord {
    Outcome outcome;
    std::string detection_set;
    std::int64_t used = 0;
};

std::optional<VerdictRecord> decode_verdict(std::string_view value) {
    try {
        const json record = json::parse(value);
        if (record.at("v").get<int>() != k_verdict_record_version) {
            return std::nullopt;
        }
        VerdictRecord out;
        Outcome& outcome = out.outcome;
        const std::string kind = record.at("outcome").get<std::string>();
        if (kind == to_string(OutcomeKind::clean)) {
            outcome.kind = OutcomeKind::clean;
        } else if (kind == to_string(OutcomeKind::infected)) {
            outcome.kind = OutcomeKind::infected;
        } else if (kind == to_string(OutcomeKind::limit_exceeded)) {
            outcome.kind = OutcomeKind::limit_exceeded;
        } else {
            return std::nullopt;
        }
        outcome.reason = record.value("reason", std::string());
        for (const auto& detection : record.at("detections")) {
            outcome.detections.push_back(detection_from_json(detection));
        }
        // A record must agree with itself (what is_cacheable lets in).
        if (!VerdictCache::is_cacheable(outcome)) {
            return std::nullopt;
        }
        out.detection_set = record.at("set").get<std::string>();
        if (record.contains("layer_sizes")) {
            ScannedLayers& layers = outcome.layers;
            layers.sizes = record.at("layer_sizes").get<std::vector<std::uint64_t>>();
            layers.types = record.at("layer_types").get<std::vector<std::string>>();
            layers.complete = std::ranges::is_sorted(layers.sizes) && std::ranges::is_sorted(layers.types);
        }
        if (outcome.layers.complete && record.contains("layer_digests")) {
            outcome.layers.digests = layer_digests_of(record.at("layer_digests"));
            outcome.layers.digests_complete = !outcome.layers.digests.empty();
        }
        out.used = record.at("used").get<std::int64_t>();
        return out;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

// The last-use time of a record of either key space; nullopt when it does not decode or has another schema.
std::optional<std::int64_t> last_use(KeySpace space, std::string_view key, std::string_view value) {
    if (key.size() < 2 || static_cast<std::uint8_t>(key[0]) != k_cache_schema_version) {
        return std::nullopt;
    }
    if (space == KeySpace::file_identity) {
        if (key.size() != sizeof(IdentityKey) || key[1] != k_identity_kind) {
            return std::nullopt;
        }
        const auto record = decode_identity(value);
        return record ? std::optional(static_cast<std::int64_t>(from_le(record->used_le))) : std::nullopt;
    }
    if (space == KeySpace::content_places) {
        return place_last_use(key, value);
    }
    if (key.size() != sizeof(VerdictKey) || key[1] != k_verdict_kind) {
        return std::nullopt;
    }
    const auto record = decode_verdict(value);
    return record ? std::optional(record->used) : std::nullopt;
}

constexpr std::array k_record_spaces{KeySpace::file_identity, KeySpace::content_verdict,
                                     KeySpace::content_places};

KeySpaceStats& stats_of(CacheStats& stats, KeySpace space) {
    switch (space) {
    case KeySpace::file_identity:
        return stats.identities;
    case KeySpace::content_places:
        return stats.places;
    default:
        return stats.verdicts;
    }
}

} // namespace

std::int64_t system_seconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

VerdictCache::VerdictCache(KvStore& store, std::string context, CacheClock clock)
    : m_store(store), m_clock(std::move(clock)) {
    Sha256 hasher;
    add_field(hasher, "coldscan verdict context");
    add_field(hasher, context);
    m_context = hasher.finish();
}

Sha256Digest VerdictCache::context_for(std::string_view variant) const {
    if (variant.empty()) {
        return m_context;
    }
    Sha256 hasher;
    hasher.update(std::span<const std::byte>(m_context));
    add_field(hasher, variant);
    return hasher.finish();
}

bool VerdictCache::is_cacheable(const Outcome& outcome) {
    // An error or a time limit may end differently next time: never reused. A size, count or depth limit
    // stops the same bytes at the same place every time (the limits are part of the signature-set
    // fingerprint), so LIMIT_EXCEEDED is kept as LIMIT_EXCEEDED, with its reason: never as clean.
    if (outcome.transient) {
        return false;
    }
    switch (outcome.kind) {
    case OutcomeKind::clean:
        return outcome.reason.empty() && outcome.detections.empty();
    case OutcomeKind::infected:
        return !outcome.detections.empty();
    case OutcomeKind::limit_exceeded:
        return !outcome.reason.empty() && outcome.detections.empty();
    default:
        return false;
    }
}

Expected<std::optional<Sha256Digest>> VerdictCache::find_content(const FileIdentity& identity) {
    const IdentityKey key{k_cache_schema_version, k_identity_kind, identity_digest(identity)};
    auto value = m_store.get(KeySpace::file_identity, bytes_of(key));
    if (!value) {
        return std::unexpected(value.error());
    }
    const auto record = *value ? decode_identity(**value) : std::nullopt;
    if (!record || from_le(record->size_le) != identity.size) {
        if (*value) {
            m_counters.undecodable_records.fetch_add(1);
        }
        m_counters.identity_misses.fetch_add(1);
        return std::optional<Sha256Digest>{};
    }
    m_counters.identity_hits.fetch_add(1);
    const std::int64_t now = m_clock();
    if (now - static_cast<std::int64_t>(from_le(record->used_le)) > k_refresh_after_seconds) {
        IdentityValue refreshed = *record;
        refreshed.used_le = to_le(static_cast<std::uint64_t>(now));
        (void)m_store.put(KeySpace::file_identity, bytes_of(key), bytes_of(refreshed)); // best effort
    }
    return std::optional<Sha256Digest>(record->content);
}

Expected<void> VerdictCache::remember_content(const FileIdentity& identity, const Sha256Digest& content) {
    const IdentityKey key{k_cache_schema_version, k_identity_kind, identity_digest(identity)};
    const IdentityValue record{content, to_le(identity.size), to_le(static_cast<std::uint64_t>(m_clock()))};
    return m_store.put(KeySpace::file_identity, bytes_of(key), bytes_of(record));
}

void VerdictCache::follow_sets(std::string detection_set, SetLineage* lineage) {
    m_detection_set = std::move(detection_set);
    m_lineage = lineage;
}

// The pipeline may look a content up more than once (planning, after reading); each is counted once.
void VerdictCache::count_once(const Sha256Digest& content, std::atomic<std::uint64_t>& counter) {
    std::lock_guard lock(m_counted_mutex);
    if (m_counted.insert(content).second) {
        counter.fetch_add(1);
    }
}

std::pair<Recheck, std::shared_ptr<const SetChange>> VerdictCache::recheck_of(const Outcome& outcome,
                                                                              std::string_view made_with) {
    if (m_lineage == nullptr || made_with.empty()) {
        return {};
    }
    auto change = m_lineage->change(made_with, m_detection_set);
    if (!change) {
        spdlog::debug("cache: the signature lineage failed: {}", change.error().message);
        return {};
    }
    if (!*change) {
        return {};
    }
    return {plan_recheck(outcome, **change), std::move(*change)};
}

namespace {

// The stored record for a verdict key; nullopt for none, or one that does not decode (counted, when counters
// are given: find_pending reads again what find_verdict read and counted).
Expected<std::optional<VerdictRecord>> read_record(KvStore& store, std::string_view key,
                                                   CacheCounters* counters) {
    auto value = store.get(KeySpace::content_verdict, key);
    if (!value) {
        return std::unexpected(value.error());
    }
    if (!*value) {
        return std::optional<VerdictRecord>{};
    }
    auto record = decode_verdict(**value);
    if (!record && counters != nullptr) {
        counters->undecodable_records.fetch_add(1);
    }
    return record;
}

} // namespace

Expected<std::optional<Outcome>> VerdictCache::find_verdict(const Sha256Digest& content,
                                                            std::string_view variant) {
    const VerdictKey key{k_cache_schema_version, k_verdict_kind, content, context_for(variant)};
    auto record = read_record(m_store, bytes_of(key), &m_counters);
    if (!record) {
        return std::unexpected(record.error());
    }
    if (!*record) {
        m_counters.verdict_misses.fetch_add(1);
        return std::optional<Outcome>{};
    }
    const std::int64_t now = m_clock();
    if ((*record)->detection_set != m_detection_set) {
        const Recheck::Kind kind = recheck_of((*record)->outcome, (*record)->detection_set).first.kind;
        if (kind != Recheck::Kind::added_lines) { // those are counted once re-checked
            count_once(content, kind == Recheck::Kind::none ? m_counters.verdicts_carried
                                                            : m_counters.verdicts_outdated);
        }
        if (kind != Recheck::Kind::none) {
            m_counters.verdict_misses.fetch_add(1);
            return std::optional<Outcome>{};
        }
        (*record)->used = 0; // rewritten below under the current set, so the next lookup needs no lineage
    }
    m_counters.verdict_hits.fetch_add(1);
    if (now - (*record)->used > k_refresh_after_seconds) {
        (void)m_store.put(KeySpace::content_verdict, bytes_of(key),
                          encode_verdict((*record)->outcome, m_detection_set, now)); // best effort
    }
    return std::optional<Outcome>(std::move((*record)->outcome));
}

Expected<std::optional<PendingVerdict>> VerdictCache::find_pending(const Sha256Digest& content,
                                                                   std::string_view variant) {
    const VerdictKey key{k_cache_schema_version, k_verdict_kind, content, context_for(variant)};
    auto record = read_record(m_store, bytes_of(key), nullptr);
    if (!record) {
        return std::unexpected(record.error());
    }
    if (!*record || (*record)->detection_set == m_detection_set) {
        return std::optional<PendingVerdict>{};
    }
    auto [recheck, change] = recheck_of((*record)->outcome, (*record)->detection_set);
    if (recheck.kind != Recheck::Kind::added_lines) {
        return std::optional<PendingVerdict>{};
    }
    return PendingVerdict{std::move((*record)->outcome), std::move((*record)->detection_set),
                          std::move(change), recheck};
}

void VerdictCache::count_recheck(const Sha256Digest& content, bool stood) {
    count_once(content, stood ? m_counters.verdicts_rechecked : m_counters.verdicts_outdated);
}

Expected<bool> VerdictCache::remember_verdict(const Sha256Digest& content, const Outcome& outcome,
                                              std::string_view variant) {
    if (!is_cacheable(outcome)) {
        return false;
    }
    const VerdictKey key{k_cache_schema_version, k_verdict_kind, content, context_for(variant)};
    if (auto stored = m_store.put(KeySpace::content_verdict, bytes_of(key),
                                  encode_verdict(outcome, m_detection_set, m_clock()));
        !stored) {
        return std::unexpected(stored.error());
    }
    m_counters.verdicts_written.fetch_add(1);
    return true;
}

Expected<void> for_each_stored_verdict(const KvStore& store,
                                       const std::function<bool(const StoredVerdict&)>& visit) {
    return store.for_each(KeySpace::content_verdict, [&](std::string_view key, std::string_view value) {
        if (key.size() != sizeof(VerdictKey) || static_cast<std::uint8_t>(key[0]) != k_cache_schema_version ||
            key[1] != k_verdict_kind) {
            return true;
        }
        auto record = decode_verdict(value);
        if (!record) {
            return true;
        }
        VerdictKey parsed;
        std::memcpy(&parsed, key.data(), sizeof parsed);
        return visit(
            StoredVerdict{parsed.content, std::move(record->outcome), std::move(record->detection_set)});
    });
}

Expected<CacheStats> cache_stats(const KvStore& store) {
    CacheStats stats;
    for (const KeySpace space : k_record_spaces) {
        KeySpaceStats& out = stats_of(stats, space);
        auto visited = store.for_each(space, [&](std::string_view key, std::string_view value) {
            ++out.records;
            out.bytes += key.size() + value.size();
            const auto used = last_use(space, key, value);
            if (!used) {
                ++out.undecodable;
                return true;
            }
            out.oldest_use = std::min(out.oldest_use.value_or(*used), *used);
            out.newest_use = std::max(out.newest_use.value_or(*used), *used);
            return true;
        });
        if (!visited) {
            return std::unexpected(visited.error());
        }
    }
    return stats;
}

Expected<std::uint64_t> collect_garbage(KvStore& store, std::chrono::seconds older_than, std::int64_t now) {
    const std::int64_t cutoff = now - older_than.count();
    std::uint64_t removed = 0;
    for (const KeySpace space : k_record_spaces) {
        std::vector<std::string>
            doomed; // erased after the walk: the memory store holds a lock while it walks
        auto visited = store.for_each(space, [&](std::string_view key, std::string_view value) {
            const auto used = last_use(space, key, value);
            if (!used || *used < cutoff) {
                doomed.emplace_back(key);
            }
            return true;
        });
        if (!visited) {
            return std::unexpected(visited.error());
        }
        for (const auto& key : doomed) {
            if (auto erased = store.erase(space, key); !erased) {
                return std::unexpected(erased.error());
            }
            ++removed;
        }
    }
    if (removed > 0) {
        if (auto compacted = store.compact(); !compacted) {
            spdlog::warn("{}", compacted.error().message);
        }
    }
    return removed;
}

Expected<CacheCheck> verify_cache(const KvStore& store) {
    CacheCheck check;
    if (auto verified = store.verify_checksums(); !verified) {
        if (verified.error().code != Errc::corrupt) {
            return std::unexpected(verified.error());
        }
        check.checksum_error = verified.error().message;
    }
    for (const KeySpace space : k_record_spaces) {
        auto visited = store.for_each(space, [&](std::string_view key, std::string_view value) {
            ++check.records;
            if (!last_use(space, key, value)) {
                ++check.undecodable;
            }
            return true;
        });
        if (!visited) {
            if (visited.error().code != Errc::corrupt) {
                return std::unexpected(visited.error());
            }
            check.checksum_error = check.checksum_error.value_or(visited.error().message);
        }
    }
    return check;
}

} // namespace coldscan::scanner
