// Record layouts of the lineage (KeySpace::signature_sets):
//   "M" + detection set (hex)  -> manifest: version byte, last use (8 bytes LE), line count (8 bytes LE),
//                                 then per non-empty bucket: its index (2 bytes LE) and its SHA-256 (32),
//                                 by increasing index
//   "B" + bucket SHA-256 (32)  -> the bucket's lines, each its digest (32) and its kind (1), sorted
// A bucket is checked against the digest it is stored under; a record that does not decode makes the set
// unknown (its verdicts are re-scanned), never a wrong difference.
#include "coldscan/scanner/set_lineage.hpp"

#include "coldscan/common/sha256.hpp"
#include "coldscan/signatures/signature_set.hpp"

#include <algorithm>
#include <cstring>
#include <set>
#include <tuple>
#include <vector>

namespace coldscan::scanner {
namespace {

using signatures::CatalogueDelta;
using signatures::CatalogueLine;
using signatures::LineKind;

constexpr std::uint8_t k_manifest_version = 1;
constexpr std::size_t k_manifest_header = 17;
constexpr std::size_t k_manifest_entry = 34;
constexpr std::size_t k_line_bytes = 33;
constexpr std::int64_t k_touch_after_seconds = 86400;
// libclamav's name for a PE layer: what section-hash and import-hash lines (.mdb .msb .imp) match inside.
constexpr std::string_view k_pe_type = "CL_TYPE_MSEXE";

struct Manifest {
    std::int64_t used = 0;
    std::uint64_t lines = 0;
    std::map<std::uint16_t, Sha256Digest> buckets;
};

std::string manifest_key(std::string_view detection_set) {
    return "M" + std::string(detection_set);
}

std::string bucket_key(const Sha256Digest& digest) {
    return "B" + std::string(reinterpret_cast<const char*>(digest.data()), digest.size());
}

void put_le(std::string& out, std::uint64_t value, std::size_t bytes) {
    for (std::size_t i = 0; i < bytes; ++i) {
        out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
    }
}

std::uint64_t get_le(std::string_view in, std::size_t bytes) {
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < bytes; ++i) {
        value |= static_cast<std::uint64_t>(static_cast<unsigned char>(in[i])) << (8 * i);
    }
    return value;
}

std::uint16_t bucket_of(const CatalogueLine& line) {
    const auto high = std::to_integer<unsigned>(line.digest[0]);
    const auto low = std::to_integer<unsigned>(line.digest[1]);
    return static_cast<std::uint16_t>((high << 6) | (low >> 2)); // the first 14 bits
}

std::string encode_manifest(const Manifest& manifest) {
    std::string out;
    out.reserve(k_manifest_header + manifest.buckets.size() * k_manifest_entry);
    out.push_back(static_cast<char>(k_manifest_version));
    put_le(out, static_cast<std::uint64_t>(manifest.used), 8);
    put_le(out, manifest.lines, 8);
    for (const auto& [index, digest] : manifest.buckets) {
        put_le(out, index, 2);
        out.append(reinterpret_cast<const char*>(digest.data()), digest.size());
    }
    return out;
}

std::optional<Manifest> decode_manifest(std::string_view in) {
    if (in.size() < k_manifest_header || static_cast<std::uint8_t>(in[0]) != k_manifest_version ||
        (in.size() - k_manifest_header) % k_manifest_entry != 0) {
        return std::nullopt;
    }
    Manifest manifest;
    manifest.used = static_cast<std::int64_t>(get_le(in.substr(1), 8));
    manifest.lines = get_le(in.substr(9), 8);
    for (std::size_t at = k_manifest_header; at < in.size(); at += k_manifest_entry) {
        const auto index = static_cast<std::uint16_t>(get_le(in.substr(at), 2));
        if (index >= SetLineage::k_buckets || manifest.buckets.contains(index)) {
            return std::nullopt;
        }
        Sha256Digest digest{};
        std::memcpy(digest.data(), in.data() + at + 2, digest.size());
        manifest.buckets.emplace(index, digest);
    }
    return manifest;
}

std::string encode_bucket(std::span<const CatalogueLine> lines) {
    std::string out;
    out.reserve(lines.size() * k_line_bytes);
    for (const auto& line : lines) {
        out.append(reinterpret_cast<const char*>(line.digest.data()), line.digest.size());
        out.push_back(static_cast<char>(line.kind));
    }
    return out;
}

std::optional<std::vector<CatalogueLine>> decode_bucket(std::string_view in, const Sha256Digest& expected) {
    Sha256 hasher;
    hasher.update(in);
    if (in.size() % k_line_bytes != 0 || hasher.finish() != expected) {
        return std::nullopt;
    }
    std::vector<CatalogueLine> lines(in.size() / k_line_bytes);
    for (std::size_t i = 0; i < lines.size(); ++i) {
        std::memcpy(lines[i].digest.data(), in.data() + i * k_line_bytes, lines[i].digest.size());
        const auto kind = static_cast<std::uint8_t>(in[i * k_line_bytes + 32]);
        if (kind > static_cast<std::uint8_t>(LineKind::allow_list)) {
            return std::nullopt;
        }
        lines[i].kind = static_cast<LineKind>(kind);
    }
    return lines;
}

Expected<std::optional<Manifest>> load_manifest(const KvStore& store, std::string_view detection_set) {
    auto value = store.get(KeySpace::signature_sets, manifest_key(detection_set));
    if (!value) {
        return std::unexpected(value.error());
    }
    return *value ? decode_manifest(**value) : std::nullopt;
}

// The lines of one bucket of a manifest (none when it has no such bucket); nullopt when it does not decode.
Expected<std::optional<std::vector<CatalogueLine>>>
load_bucket(const KvStore& store, const Manifest& manifest, std::uint16_t index) {
    const auto found = manifest.buckets.find(index);
    if (found == manifest.buckets.end()) {
        return std::optional<std::vector<CatalogueLine>>(std::vector<CatalogueLine>{});
    }
    auto value = store.get(KeySpace::signature_sets, bucket_key(found->second));
    if (!value) {
        return std::unexpected(value.error());
    }
    return *value ? decode_bucket(**value, found->second) : std::nullopt;
}

// Lines of `to` not in `from` and the reverse, over the buckets whose digests differ.
Expected<std::optional<CatalogueDelta>> difference_of(const KvStore& store, const Manifest& from,
                                                      const Manifest& to) {
    std::set<std::uint16_t> indices;
    for (const auto* manifest : {&from, &to}) {
        for (const auto& [index, digest] : manifest->buckets) {
            const auto& other = manifest == &from ? to.buckets : from.buckets;
            const auto twin = other.find(index);
            if (twin == other.end() || twin->second != digest) {
                indices.insert(index);
            }
        }
    }
    CatalogueDelta delta;
    for (const auto index : indices) {
        auto old_lines = load_bucket(store, from, index);
        auto new_lines = load_bucket(store, to, index);
        if (!old_lines || !new_lines) {
            return std::unexpected(!old_lines ? old_lines.error() : new_lines.error());
        }
        if (!*old_lines || !*new_lines) {
            return std::optional<CatalogueDelta>{};
        }
        std::ranges::set_difference(**new_lines, **old_lines, std::back_inserter(delta.added));
        std::ranges::set_difference(**old_lines, **new_lines, std::back_inserter(delta.removed));
    }
    return std::optional<CatalogueDelta>(std::move(delta));
}

} // namespace

SetLineage::SetLineage(KvStore& store, LineTextReader texts) : m_store(store), m_texts(std::move(texts)) {}

// What the added lines' texts tell: the sizes hash lines name, the targets pattern lines name. A text not
// found makes the change match anything.
SetChange SetLineage::with_line_facts(CatalogueDelta delta) const {
    SetChange change;
    std::vector<CatalogueLine> wanted;
    std::ranges::copy_if(delta.added, std::back_inserter(wanted), [](const CatalogueLine& line) {
        return line.kind == LineKind::hash || line.kind == LineKind::body || line.kind == LineKind::logical;
    });
    change.delta = std::move(delta);
    if (wanted.empty()) {
        return change;
    }
    auto texts = m_texts ? m_texts(wanted) : make_error(Errc::not_found, "no reader of line texts");
    if (!texts || texts->size() != wanted.size()) {
        change.hash_of_any_size = true;
        change.hash_texts_unknown = true;
        change.pattern_of_any_target = true;
        return change;
    }
    for (std::size_t i = 0; i < wanted.size(); ++i) {
        const auto& text = (*texts)[i];
        if (text.line != wanted[i]) { // not this set's text
            change.hash_of_any_size = true;
            change.hash_texts_unknown = true;
            change.pattern_of_any_target = true;
        } else if (text.line.kind == LineKind::hash) {
            const auto size = signatures::hash_line_size(text.text);
            change.hash_of_any_size = change.hash_of_any_size || !size;
            change.added_hash_sizes.push_back(size.value_or(0));
            auto digest = signatures::hash_line_digest(text.text);
            change.hash_texts_unknown = change.hash_texts_unknown || !digest;
            const auto name = signatures::hash_line_name(text.text);
            change.added_hashes.push_back(
                AddedHash{size, digest.value_or(std::vector<std::byte>{}),
                          name ? signatures::detection_name(*name, text.official) : std::string()});
        } else {
            const auto target = signatures::pattern_line_target(text.line.kind, text.text);
            change.pattern_of_any_target = change.pattern_of_any_target || !target;
            change.added_targets.push_back(target.value_or(0));
        }
    }
    std::ranges::sort(change.added_targets);
    change.added_targets.erase(std::ranges::unique(change.added_targets).begin(), change.added_targets.end());
    std::ranges::sort(change.added_hash_sizes);
    change.added_hash_sizes.erase(std::ranges::unique(change.added_hash_sizes).begin(),
                                  change.added_hash_sizes.end());
    return change;
}

bool hash_matches(const AddedHash& hash, const LayerDigest& layer) {
    if (hash.size && *hash.size != layer.size) {
        return false;
    }
    auto same = [&](std::span<const std::byte> digest) { return std::ranges::equal(digest, hash.digest); };
    return same(layer.md5) || same(layer.sha1) || same(layer.sha256);
}

Expected<void> SetLineage::follow(const signatures::SignatureSet& signatures, std::int64_t now) {
    auto known = knows(signatures.detection_set());
    if (!known) {
        return std::unexpected(known.error());
    }
    if (*known) {
        return touch(signatures.detection_set(), now);
    }
    auto lines = signatures.detection_lines();
    if (!lines) {
        return std::unexpected(lines.error());
    }
    return record(signatures.detection_set(), *lines, now);
}

Expected<bool> SetLineage::knows(std::string_view detection_set) const {
    auto manifest = load_manifest(m_store, detection_set);
    if (!manifest) {
        return std::unexpected(manifest.error());
    }
    return manifest->has_value();
}

Expected<void> SetLineage::record(std::string_view detection_set, std::span<const CatalogueLine> lines,
                                  std::int64_t now) {
    if (!std::ranges::is_sorted(lines)) {
        return make_error(Errc::invalid_argument, "the lines of a detection set must be sorted");
    }
    // One recording at a time in this process: forgetting old sets while another set's buckets are written
    // before its manifest would erase them (that set would then be unknown: re-scans, never a wrong change).
    static std::mutex recording;
    std::lock_guard lock(recording);
    Manifest manifest;
    manifest.used = now;
    manifest.lines = lines.size();
    for (std::size_t begin = 0; begin < lines.size();) {
        const auto index = bucket_of(lines[begin]);
        std::size_t end = begin;
        while (end < lines.size() && bucket_of(lines[end]) == index) {
            ++end;
        }
        const std::string bytes = encode_bucket(lines.subspan(begin, end - begin));
        Sha256 hasher;
        hasher.update(bytes);
        const auto digest = hasher.finish();
        const std::string key = bucket_key(digest);
        auto stored = m_store.get(KeySpace::signature_sets, key); // shared with an earlier set: kept
        if (!stored) {
            return std::unexpected(stored.error());
        }
        if (!*stored) {
            if (auto put = m_store.put(KeySpace::signature_sets, key, bytes); !put) {
                return put;
            }
        }
        manifest.buckets.emplace(index, digest);
        begin = end;
    }
    if (auto put =
            m_store.put(KeySpace::signature_sets, manifest_key(detection_set), encode_manifest(manifest));
        !put) {
        return put;
    }
    return forget_old_sets();
}

Expected<void> SetLineage::touch(std::string_view detection_set, std::int64_t now) {
    auto manifest = load_manifest(m_store, detection_set);
    if (!manifest) {
        return std::unexpected(manifest.error());
    }
    if (!*manifest || now - (*manifest)->used < k_touch_after_seconds) {
        return {};
    }
    (*manifest)->used = now;
    return m_store.put(KeySpace::signature_sets, manifest_key(detection_set), encode_manifest(**manifest));
}

Expected<std::shared_ptr<const SetChange>> SetLineage::change(std::string_view from, std::string_view to) {
    std::lock_guard lock(m_mutex);
    const auto memo_key = std::make_pair(std::string(from), std::string(to));
    if (const auto found = m_changes.find(memo_key); found != m_changes.end()) {
        return found->second;
    }
    auto old_manifest = load_manifest(m_store, from);
    auto new_manifest = load_manifest(m_store, to);
    if (!old_manifest || !new_manifest) {
        return std::unexpected(!old_manifest ? old_manifest.error() : new_manifest.error());
    }
    std::shared_ptr<const SetChange> result;
    if (*old_manifest && *new_manifest) {
        auto delta = difference_of(m_store, **old_manifest, **new_manifest);
        if (!delta) {
            return std::unexpected(delta.error());
        }
        if (*delta) {
            result = std::make_shared<const SetChange>(with_line_facts(std::move(**delta)));
        }
    }
    m_changes.emplace(memo_key, result);
    return result;
}

Expected<void> SetLineage::forget_old_sets() {
    struct Seen {
        std::int64_t used = 0;
        std::string key;
        std::optional<Manifest> manifest; // nullopt: does not decode, erased
    };
    std::vector<Seen> sets;
    std::vector<std::string> buckets;
    auto visited =
        m_store.for_each(KeySpace::signature_sets, [&](std::string_view key, std::string_view value) {
            if (key.starts_with("M")) {
                auto manifest = decode_manifest(value);
                const std::int64_t used = manifest ? manifest->used : 0;
                sets.push_back(Seen{used, std::string(key), std::move(manifest)});
            } else {
                buckets.emplace_back(key);
            }
            return true;
        });
    if (!visited) {
        return visited;
    }
    if (sets.size() <= k_kept_sets) {
        return {};
    }
    std::ranges::sort(sets, std::greater<>(), [](const Seen& seen) { return std::tie(seen.used, seen.key); });
    std::set<std::string> named;
    for (std::size_t i = 0; i < sets.size(); ++i) {
        if (i >= k_kept_sets || !sets[i].manifest) {
            if (auto erased = m_store.erase(KeySpace::signature_sets, sets[i].key); !erased) {
                return erased;
            }
            continue;
        }
        for (const auto& [index, digest] : sets[i].manifest->buckets) {
            named.insert(bucket_key(digest));
        }
    }
    for (const auto& key : buckets) {
        if (!named.contains(key)) {
            if (auto erased = m_store.erase(KeySpace::signature_sets, key); !erased) {
                return erased;
            }
        }
    }
    return {};
}

Expected<LineageStats> lineage_stats(const KvStore& store) {
    LineageStats stats;
    auto visited =
        store.for_each(KeySpace::signature_sets, [&](std::string_view key, std::string_view value) {
            stats.bytes += key.size() + value.size();
            if (!key.starts_with("M")) {
                ++stats.buckets;
                return true;
            }
            const auto manifest = decode_manifest(value);
            if (!manifest) {
                ++stats.undecodable;
                return true;
            }
            ++stats.sets;
            stats.oldest_use = std::min(stats.oldest_use.value_or(manifest->used), manifest->used);
            stats.newest_use = std::max(stats.newest_use.value_or(manifest->used), manifest->used);
            return true;
        });
    if (!visited) {
        return std::unexpected(visited.error());
    }
    return stats;
}

namespace {

// What the added lines of each kind ask of a CLEAN verdict with these layers.
struct AddedLineNeeds {
    bool full = false;
    bool clamav = false;
    bool yara = false;
};

// What the added hash lines ask of a verdict: nothing, a check by their engine, or (a recorded layer is
// now detected) a full scan. Digests answer with no read, unless libclamav derives unseen buffers in a layer.
struct HashNeeds {
    bool recheck = false;
    bool detected = false;
};

HashNeeds hash_needs(const ScannedLayers& layers, const SetChange& change) {
    const bool derived = !layers.complete || signatures::derives_unseen_buffers(layers.types);
    if (layers.digests_complete && !change.hash_texts_unknown && !derived) {
        return HashNeeds{false, std::ranges::any_of(change.added_hashes, [&](const AddedHash& hash) {
                             return std::ranges::any_of(layers.digests, [&](const LayerDigest& layer) {
                                 return hash_matches(hash, layer);
                             });
                         })};
    }
    const bool size_added =
        change.hash_of_any_size || derived || std::ranges::any_of(layers.sizes, [&](std::uint64_t size) {
            return std::ranges::binary_search(change.added_hash_sizes, size);
        });
    return HashNeeds{size_added, false};
}

AddedLineNeeds needs_of(const ScannedLayers& layers, const SetChange& change) {
    const HashNeeds hashes = hash_needs(layers, change);
    const bool has_pe =
        !layers.complete || std::ranges::binary_search(layers.types, std::string_view(k_pe_type));
    const bool target_met = change.pattern_of_any_target || !layers.complete ||
                            std::ranges::any_of(change.added_targets, [&](int target) {
                                return signatures::target_may_match(target, layers.types);
                            });
    AddedLineNeeds needs;
    for (const CatalogueLine& line : change.delta.added) {
        switch (line.kind) {
        case LineKind::allow_list:
            break;
        case LineKind::hash:
            needs.clamav = needs.clamav || hashes.recheck;
            needs.full = needs.full || hashes.detected;
            break;
        case LineKind::section_hash:
            needs.clamav = needs.clamav || has_pe;
            break;
        case LineKind::body:
        case LineKind::logical:
            needs.clamav = needs.clamav || target_met;
            break;
        case LineKind::container:
            needs.clamav = true;
            break;
        case LineKind::yara: // a rule file, or a YARA source in the ClamAV folder
            needs.clamav = true;
            needs.yara = true;
            break;
        case LineKind::icon:
        case LineKind::phishing:
            needs.full = true;
            break;
        }
    }
    return needs;
}

} // namespace

Recheck plan_recheck(const Outcome& outcome, const SetChange& change) {
    if (outcome.kind != OutcomeKind::clean && outcome.kind != OutcomeKind::limit_exceeded) {
        return {};
    }
    const bool allowing_removed = std::ranges::any_of(change.delta.removed, [](const CatalogueLine& line) {
        return line.kind == LineKind::allow_list || line.kind == LineKind::phishing;
    });
    const AddedLineNeeds needs = needs_of(outcome.layers, change);
    if (allowing_removed || needs.full) {
        return {};
    }
    if (!needs.clamav && !needs.yara) {
        return Recheck{Recheck::Kind::none, false, false};
    }
    if (outcome.kind != OutcomeKind::clean) {
        return {};
    }
    return Recheck{Recheck::Kind::added_lines, needs.clamav, needs.yara};
}

bool stands_without_work(const Outcome& outcome, const SetChange& change) {
    return plan_recheck(outcome, change).kind == Recheck::Kind::none;
}

} // namespace coldscan::scanner
