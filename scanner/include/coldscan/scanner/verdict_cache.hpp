// The verdict cache: re-scans skip what did not change.
//
// Level 1 maps a file's identity in an image (image identity, filesystem UUID, path, inode, generation,
// size, mtime, ctime) to the SHA-256 of its content: a hit skips reading the file. Level 2 maps content
// (SHA-256) plus the verdict context (the signature set's engine part, which covers engine versions and
// limits, and the scan options) to a verdict and the detection set it was made with: a hit skips the
// engines, and a verdict made with an older detection set stands when the lineage shows the change cannot
// alter it (set_lineage.hpp). Only complete verdicts are stored (CLEAN, or
// INFECTED with nothing cut short); limits, timeouts, errors and partial reads never are. A record that does
// not decode is a miss, counted, never a verdict. Every record carries the time it was last used, for
// `coldscan cache gc`.
// Thread rule: shared; every member is thread-safe (the store is, and the counters are atomic).
#pragma once

#include "coldscan/common/error.hpp"
#include "coldscan/common/sha256.hpp"
#include "coldscan/common/verdict.hpp"
#include "coldscan/scanner/kv_store.hpp"
#include "coldscan/scanner/set_lineage.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>

namespace coldscan::scanner {

inline constexpr std::uint8_t k_cache_schema_version = 1;

struct FileIdentity {
    std::string image_identity; // path + format + identity of every backing layer, from the caller
    std::string filesystem_uuid;
    std::string path; // inside the filesystem: inode numbers repeat across btrfs subvolumes
    std::uint64_t inode = 0;
    std::uint64_t generation = 0; // 0 where the filesystem has none
    std::uint64_t size = 0;
    std::int64_t mtime_ns = 0;
    std::int64_t ctime_ns = 0;
};

struct CacheCounters {
    std::atomic<std::uint64_t> identity_hits{0};
    std::atomic<std::uint64_t> identity_misses{0};
    std::atomic<std::uint64_t> verdict_hits{0};
    std::atomic<std::uint64_t> verdict_misses{0};
    std::atomic<std::uint64_t> verdicts_written{0};
    std::atomic<std::uint64_t> undecodable_records{0};
    // Contents (each once) whose verdict was made with another detection set: standing under this one, or
    // to be scanned again.
    std::atomic<std::uint64_t> verdicts_carried{0};
    std::atomic<std::uint64_t> verdicts_rechecked{0}; // standing after a scan with the added lines alone
    std::atomic<std::uint64_t> verdicts_outdated{0};
};

// A verdict made with another detection set that stands if the lines added since find nothing in the bytes.
struct PendingVerdict {
    Outcome outcome;
    std::string made_with; // the detection set
    std::shared_ptr<const SetChange> change;
    Recheck recheck; // kind added_lines
};

// Seconds since the epoch; injectable so tests can age records.
using CacheClock = std::function<std::int64_t()>;
[[nodiscard]] std::int64_t system_seconds();

class VerdictCache {
public:
    // context: everything a verdict depends on besides the bytes and the detection lines (the signature set's
    // engine part, which covers engine versions and limits, plus the scan options). Verdicts under another
    // context are never used.
    VerdictCache(KvStore& store, std::string context, CacheClock clock = system_seconds);
    // The detection set verdicts are made with from now on, and the lineage that tells whether a verdict
    // made with another set still stands (nullptr: none does). Call before the first lookup.
    void follow_sets(std::string detection_set, SetLineage* lineage);

    // The content digest remembered for this identity. Error: io or corrupt (the store failed).
    [[nodiscard]] Expected<std::optional<Sha256Digest>> find_content(const FileIdentity& identity);
    [[nodiscard]] Expected<void> remember_content(const FileIdentity& identity, const Sha256Digest& content);
    // The verdict for these bytes under this cache's context, if a complete one was stored. variant: what
    // else the verdict depends on for this file (the guest path, when YARA rules read it), "" for nothing.
    [[nodiscard]] Expected<std::optional<Outcome>> find_verdict(const Sha256Digest& content,
                                                                std::string_view variant = {});
    // After find_verdict missed: the verdict that a scan with the added lines alone can confirm, if there is
    // one. Error: as find_verdict.
    [[nodiscard]] Expected<std::optional<PendingVerdict>> find_pending(const Sha256Digest& content,
                                                                       std::string_view variant = {});
    // Counts a pending verdict's content once, as re-checked (stood) or outdated (scanned in full).
    void count_recheck(const Sha256Digest& content, bool stood);
    // Stores a complete verdict; returns false (and stores nothing) for any outcome that is not one.
    [[nodiscard]] Expected<bool> remember_verdict(const Sha256Digest& content, const Outcome& outcome,
                                                  std::string_view variant = {});

    [[nodiscard]] static bool is_cacheable(const Outcome& outcome);
    [[nodiscard]] const CacheCounters& counters() const noexcept { return m_counters; }

private:
    [[nodiscard]] Sha256Digest context_for(std::string_view variant) const;
    // How a verdict made with another set is brought up to date (a full scan when the lineage cannot say).
    [[nodiscard]] std::pair<Recheck, std::shared_ptr<const SetChange>> recheck_of(const Outcome& outcome,
                                                                                  std::string_view made_with);
    void count_once(const Sha256Digest& content, std::atomic<std::uint64_t>& counter);

    KvStore& m_store;
    Sha256Digest m_context;
    CacheClock m_clock;
    CacheCounters m_counters;
    std::string m_detection_set;
    SetLineage* m_lineage = nullptr;
    std::mutex m_counted_mutex;
    std::set<Sha256Digest> m_counted; // contents counted in verdicts_carried or verdicts_outdated
};

// A stored verdict as a retro-hunt reads it.
struct StoredVerdict {
    Sha256Digest content;
    Outcome outcome;       // with the layers libclamav scanned
    std::string made_with; // the detection set
};
// Visits every verdict record that decodes, of every context, until visit returns false. Error: the store
// failed.
[[nodiscard]] Expected<void> for_each_stored_verdict(const KvStore& store,
                                                     const std::function<bool(const StoredVerdict&)>& visit);

// What `coldscan cache stats` prints: records per key space, their bytes, and when they were last used.
struct KeySpaceStats {
    std::uint64_t records = 0;
    std::uint64_t bytes = 0; // keys + values
    std::uint64_t undecodable = 0;
    std::optional<std::int64_t> oldest_use; // seconds since the epoch
    std::optional<std::int64_t> newest_use;
};
struct CacheStats {
    KeySpaceStats identities;
    KeySpaceStats verdicts;
    KeySpaceStats places; // content_places.hpp
};
[[nodiscard]] Expected<CacheStats> cache_stats(const KvStore& store);

// Removes records last used before now - older_than, and records that do not decode or belong to another
// schema version. Returns how many were removed.
[[nodiscard]] Expected<std::uint64_t> collect_garbage(KvStore& store, std::chrono::seconds older_than,
                                                      std::int64_t now = system_seconds());

// Checks every stored block's checksum and decodes every record. Error: the store could not be read.
struct CacheCheck {
    std::optional<std::string> checksum_error; // what RocksDB found, if anything
    std::uint64_t records = 0;
    std::uint64_t undecodable = 0;
};
[[nodiscard]] Expected<CacheCheck> verify_cache(const KvStore& store);

} // namespace coldscan::scanner
