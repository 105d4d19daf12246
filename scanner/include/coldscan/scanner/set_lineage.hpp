// The lines of every detection set the cache holds verdicts for, so that a verdict made with an older set is
// checked against exactly what changed since (docs/signature-updates.md) instead of being thrown away.
//
// Stored in KeySpace::signature_sets. A set's lines are split into k_buckets buckets by the first bits of
// their digest; each bucket is stored once, under its own SHA-256, and a set is a manifest of its buckets'
// digests. Consecutive sets share every bucket an update did not touch: a daily update of ~1,000 lines to a
// set of a million stores ~1,000 buckets of ~70 lines, not the million again. The k_kept_sets sets used
// last are kept; older manifests and the buckets only they named are erased.
// Thread rule: shared; every member is thread-safe (the store is; the memo of differences is under a mutex).
#pragma once

#include "coldscan/common/error.hpp"
#include "coldscan/common/verdict.hpp"
#include "coldscan/scanner/kv_store.hpp"
#include "coldscan/signatures/signature_catalogue.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace coldscan::signatures {
class SignatureSet;
} // namespace coldscan::signatures

namespace coldscan::scanner {

// A hash line added: what it matches.
struct AddedHash {
    std::optional<std::uint64_t> size; // nullopt: any size
    std::vector<std::byte> digest;     // MD5, SHA-1 or SHA-256, by its length
    std::string name;                  // the detection a scan reports for it ("" when the line names none)
};

// Whether a hash line matches a layer exactly as libclamav compares them: size and digest.
[[nodiscard]] bool hash_matches(const AddedHash& hash, const LayerDigest& layer);

// What changed between two detection sets, and what the added hash lines can match.
struct SetChange {
    signatures::CatalogueDelta delta;
    std::vector<std::uint64_t> added_hash_sizes; // sorted, unique: the sizes the added hash lines name
    bool hash_of_any_size = false;       // an added hash line matches any size, or its text was not found
    std::vector<AddedHash> added_hashes; // every added hash line, unless hash_texts_unknown
    bool hash_texts_unknown = false;     // an added hash line's text was not found or does not parse
    std::vector<int> added_targets;      // sorted, unique: the target types added body and logical lines name
    bool pattern_of_any_target = false;  // an added pattern line names none, or its text was not found
};

// The text of lines of the current set (SignatureSet::line_texts), for the sizes added hash lines name.
using LineTextReader = std::function<Expected<std::vector<signatures::LineText>>(
    std::span<const signatures::CatalogueLine> wanted)>;

class SetLineage {
public:
    static constexpr std::size_t k_buckets = 1U << 14;
    static constexpr std::size_t k_kept_sets = 30;

    // texts: reads lines of the set verdicts are now made with (none: an added hash line matches anything).
    explicit SetLineage(KvStore& store, LineTextReader texts = {});

    // Whether the set's lines are stored. Error: the store failed.
    [[nodiscard]] Expected<bool> knows(std::string_view detection_set) const;
    // Stores the set's lines (sorted, unique: SignatureSet::detection_lines) as used at `now`, then forgets
    // the sets beyond the k_kept_sets used last. Error: the store failed.
    [[nodiscard]] Expected<void> record(std::string_view detection_set,
                                        std::span<const signatures::CatalogueLine> lines, std::int64_t now);
    // Marks a known set as used at `now` (kept among the last sets). Error: the store failed.
    [[nodiscard]] Expected<void> touch(std::string_view detection_set, std::int64_t now);
    // Records the set's lines (read again from its databases) if it is not stored, else touches it.
    // Error: the store failed, or the databases could not be read again.
    [[nodiscard]] Expected<void> follow(const signatures::SignatureSet& signatures, std::int64_t now);
    // What changed from one set to another (`to`: the one texts reads); nullptr when either is not stored
    // (never recorded, forgotten, or a record that does not decode). Each pair is computed once.
    [[nodiscard]] Expected<std::shared_ptr<const SetChange>> change(std::string_view from,
                                                                    std::string_view to);

private:
    [[nodiscard]] Expected<void> forget_old_sets();
    [[nodiscard]] SetChange with_line_facts(signatures::CatalogueDelta delta) const;

    KvStore& m_store;
    LineTextReader m_texts;
    std::mutex m_mutex; // m_changes; held while a change is computed, so each pair is computed once
    std::map<std::pair<std::string, std::string>, std::shared_ptr<const SetChange>, std::less<>> m_changes;
};

// What `coldscan cache stats` prints of the lineage.
struct LineageStats {
    std::uint64_t sets = 0;    // detection sets whose lines are kept
    std::uint64_t buckets = 0; // line buckets they share
    std::uint64_t bytes = 0;   // keys + values
    std::uint64_t undecodable = 0;
    std::optional<std::int64_t> oldest_use; // seconds since the epoch, of the sets
    std::optional<std::int64_t> newest_use;
};
[[nodiscard]] Expected<LineageStats> lineage_stats(const KvStore& store);

// How a verdict made with another detection set is brought up to date (docs/signature-updates.md).
struct Recheck {
    enum class Kind {
        none,        // it stands with no work
        added_lines, // it stands when the lines added since find nothing in the bytes
        full,        // the bytes are scanned again with the whole set
    };
    Kind kind = Kind::full;
    bool clamav = false; // added_lines: ClamAV's added lines may match one of its layers
    bool yara = false;   // added_lines: YARA rule files were added
};

// Never less than a full scan for INFECTED (all matches are reported: any change may change its
// detections), nor when an allow-list or phishing line (.wdb allows URLs) was removed, nor for added icon
// lines (logical signatures of the old set name icon groups) or phishing lines. A CLEAN verdict (or
// LIMIT_EXCEEDED, clean where it was read) stands when every added line is an allow-list line, a hash line of
// a size none of the layers libclamav scanned has (and no layer libclamav derives unseen buffers from, as it
// does from text and HTML), a PE section or import hash while no layer was a PE, or
// a body or logical line whose target type no layer had. Otherwise a CLEAN verdict is checked against the
// added lines alone (LIMIT_EXCEEDED is scanned in full: where the limits cut, only the whole set can say).
[[nodiscard]] Recheck plan_recheck(const Outcome& outcome, const SetChange& change);
[[nodiscard]] bool stands_without_work(const Outcome& outcome, const SetChange& change);

} // namespace coldscan::scanner
