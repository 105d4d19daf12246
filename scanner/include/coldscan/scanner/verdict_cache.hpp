// The verdict cache (issue 3, being built): re-scans skip what did not change.
//
// Level 1 maps a file's identity in an image (image identity, filesystem UUID, inode, generation, size,
// mtime, ctime) to the SHA-256 of its content: a hit skips reading the file. Level 2 maps content (SHA-256)
// plus the verdict context (signature-set fingerprint, engine versions, limits, scan options) to a verdict: a
// hit skips the engines. Only complete verdicts are stored (CLEAN, or INFECTED with nothing cut short);
// limits, timeouts, errors and partial reads never are. A record that does not decode is a miss, counted,
// never a verdict. Thread rule: shared; every member is thread-safe (the store is, and the counters are
// atomic).
#pragma once

#include "coldscan/common/error.hpp"
#include "coldscan/common/sha256.hpp"
#include "coldscan/common/verdict.hpp"
#include "coldscan/scanner/kv_store.hpp"

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>

namespace coldscan::scanner {

inline constexpr std::uint8_t k_cache_schema_version = 1;

struct FileIdentity {
    std::string image_identity; // path + format + identity of every backing layer, from the caller
    std::string filesystem_uuid;
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
};

class VerdictCache {
public:
    // context: everything a verdict depends on besides the bytes (signature-set fingerprint, which covers
    // engine versions and limits, plus the scan options). Verdicts under another context are never used.
    VerdictCache(KvStore& store, std::string context);

    // The content digest remembered for this identity. Error: io (the store failed).
    [[nodiscard]] Expected<std::optional<Sha256Digest>> find_content(const FileIdentity& identity);
    [[nodiscard]] Expected<void> remember_content(const FileIdentity& identity, const Sha256Digest& content);
    // The verdict for these bytes under this cache's context, if a complete one was stored.
    [[nodiscard]] Expected<std::optional<Outcome>> find_verdict(const Sha256Digest& content);
    // Stores a complete verdict; returns false (and stores nothing) for any outcome that is not one.
    [[nodiscard]] Expected<bool> remember_verdict(const Sha256Digest& content, const Outcome& outcome);

    [[nodiscard]] static bool is_cacheable(const Outcome& outcome);
    [[nodiscard]] const CacheCounters& counters() const noexcept { return m_counters; }

private:
    KvStore& m_store;
    Sha256Digest m_context;
    CacheCounters m_counters;
};

} // namespace coldscan::scanner
