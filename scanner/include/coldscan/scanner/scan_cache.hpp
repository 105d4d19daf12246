// The verdict cache as one scan run uses it.
//
// A store that fails (I/O error, corruption found by a checksum) is reported once, as a warning and in the
// report, and from then on every lookup is a miss: a broken cache can cost time, never produce "clean".
// Identical content that another worker is scanning right now is waited for, not scanned twice.
// Thread rule: shared by the pipeline's workers; every member is thread-safe.
#pragma once

#include "coldscan/common/sha256.hpp"
#include "coldscan/common/verdict.hpp"
#include "coldscan/reports/report.hpp"
#include "coldscan/scanner/content_places.hpp"
#include "coldscan/scanner/kv_store.hpp"
#include "coldscan/scanner/set_lineage.hpp"
#include "coldscan/scanner/verdict_cache.hpp"
#include "coldscan/signatures/signature_set.hpp"

#include <array>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace coldscan::scanner {

// Left in a persistent store's folder when a read found damage; the next open moves the store aside.
inline constexpr const char* k_damaged_marker = "coldscan-damaged";

enum class IdentityUse {
    trust,  // a level-1 hit stands for the file's content (the default)
    ignore, // --verify-content, or no persistent store: always read and hash (level 1 is still written)
};

class StagingStore; // scan_cache.cpp: holds a target's writes until the target is known to be consistent

class ScanCache {
public:
    // location: the store's folder for the report ("" for a memory store, which is not persistent).
    ScanCache(std::unique_ptr<KvStore> store, std::string context, IdentityUse identity,
              std::string location);
    ~ScanCache();
    ScanCache(const ScanCache&) = delete;
    ScanCache& operator=(const ScanCache&) = delete;

    // A target's records (level 1, block keys, verdicts, last-use refreshes) are held in memory from
    // begin_target on (lookups see them) and reach the store only after a checkpoint, at most every 250 ms,
    // at which unchanged() said the image is as it was when the scan began, and at commit_target. Once
    // unchanged() says no, or at discard_target (the image changed: its results must not be reused), what
    // is held is dropped. Without unchanged (folders, NBD exports) records are written as they come.
    void begin_target(std::function<bool()> unchanged = {});
    void commit_target();
    void discard_target();

    // Verdicts from now on are made with this set; a verdict made with an older one stands when the change
    // cannot alter it. A persistent store records the set's lines the first time it sees the set (read
    // again from its databases, ~1.5 s per million signatures); without them, or when that fails (a
    // warning), verdicts of other sets are misses. Call before the first lookup; signatures must outlive
    // this cache (the lineage reads the text of added lines from its databases).
    void follow_sets(const signatures::SignatureSet& signatures);

    [[nodiscard]] IdentityUse identity_use() const noexcept { return m_identity; }
    [[nodiscard]] bool persistent() const noexcept { return !m_location.empty(); }

    [[nodiscard]] std::optional<Sha256Digest> find_content(const FileIdentity& identity);
    void remember_content(const FileIdentity& identity, const Sha256Digest& content);
    // Records where a content was seen (content_places.hpp), staged with the target's level-1 records.
    void remember_place(const PlaceKey& key, ContentPlace place, const Sha256Digest& content);
    [[nodiscard]] std::optional<Outcome> find_verdict(const Sha256Digest& content, std::string_view variant);
    // After find_verdict missed: a verdict of an older set that a scan for the added lines alone can confirm.
    [[nodiscard]] std::optional<PendingVerdict> find_pending(const Sha256Digest& content,
                                                             std::string_view variant);
    // Counts a pending verdict's content once: stood after the added lines' scan, or scanned in full.
    void count_recheck(const Sha256Digest& content, bool stood);

    enum class Served {
        engines,      // scan ran
        same_content, // another worker was scanning the same content: its outcome
        cache,        // stored meanwhile by another worker that scanned the same content
    };
    // Runs scan, and stores its outcome when complete, unless a worker is scanning the same content right
    // now or has just stored its verdict: then that outcome is returned. served says which.
    [[nodiscard]] Outcome scan_once(const Sha256Digest& content, std::string_view variant,
                                    const std::function<Outcome()>& scan, Served& served);

    // Makes every verdict written so far durable. A failure is reported (the scan's results stand).
    void sync();
    // A problem found outside the cache's own calls (opening it): warned about and reported.
    void report_problem(std::string message);

    // Per-file events, counted by the pipeline for the report.
    enum class Event {
        identity_hit,
        identity_miss,
        verdict_hit,
        verdict_miss,
        not_read,    // with the file's size
        not_scanned, // with the file's size
        same_content_wait,
        engine_scan,
        block_hit,
        block_miss,
        reused_by_blocks, // with the file's size
    };
    void note(Event event, std::uint64_t bytes = 0) noexcept;
    [[nodiscard]] reports::CacheReport report() const;

private:
    struct InFlight {
        std::mutex mutex;
        std::condition_variable done_cv;
        bool done = false;
        Outcome outcome;
    };
    // Reports the first failure of the store and stops using it.
    void fail(const Error& error);
    [[nodiscard]] bool usable() const noexcept { return !m_failed.load(); }

    std::unique_ptr<KvStore> m_store;
    std::unique_ptr<SetLineage> m_lineage; // over m_store: lineage records are not a target's
    std::string m_detection_set;
    bool m_lineage_recorded = false;
    std::unique_ptr<StagingStore> m_staging; // over m_store; m_cache writes through it
    VerdictCache m_cache;
    IdentityUse m_identity;
    std::string m_location;
    std::atomic<bool> m_failed{false};
    mutable std::mutex m_mutex; // m_in_flight, m_problem
    std::map<std::string, std::shared_ptr<InFlight>> m_in_flight;
    std::string m_problem;
    std::array<std::atomic<std::uint64_t>, 11> m_events{};
    std::atomic<std::uint64_t> m_bytes_not_read{0};
    std::atomic<std::uint64_t> m_bytes_not_scanned{0};
    std::atomic<std::uint64_t> m_bytes_reused_by_blocks{0};
};

} // namespace coldscan::scanner
