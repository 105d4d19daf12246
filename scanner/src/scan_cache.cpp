#include "coldscan/scanner/scan_cache.hpp"

#include "coldscan/common/log.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <shared_mutex>

namespace coldscan::scanner {

// Why writes wait. A target's records are keyed by the image's identity as it was before the scan (level 1
// and block keys) or come from bytes read from it (verdicts). If the image changes while it is read, files
// are read from two states of the disk, and records of the new state may land under the old identity; when
// the change does not show in stat() (an NFS client's attribute cache, coarse timestamps) the next scan
// would trust them. So records are held here, in memory, and written only after a checkpoint found the
// image still as it was when the scan began (ScanCache::begin_target's `unchanged`): every record written
// was then made while the image was in the state its identity names. Checkpoints run at most every
// k_checkpoint_period, from whichever worker stores a record past it, so a crash or a kill -9 loses at
// most that much work, and a resumed scan still skips what was verdicted before. Once a checkpoint finds
// the image changed, everything held is dropped and nothing more of this target is kept. Lookups see what
// is held, so the same content twice in one target is still scanned once. Past k_max_staged_bytes the rest
// is dropped too (files read again next time: time lost, never a wrong verdict).
class StagingStore final : public KvStore {
public:
    static constexpr std::size_t k_max_staged_bytes = 256U << 20;
    static constexpr auto k_checkpoint_period = std::chrono::milliseconds(250);

    explicit StagingStore(KvStore& store) : m_store(store) {}

    void begin(std::function<bool()> unchanged) {
        std::lock_guard checkpoint(m_checkpoint_mutex);
        std::lock_guard lock(m_mutex);
        m_staging = static_cast<bool>(unchanged); // nothing to check against: written as they come
        m_changed = false;
        m_unchanged = std::move(unchanged);
        m_last_checkpoint = std::chrono::steady_clock::now();
        m_staged = {};
        m_bytes = 0;
        m_dropped_over_limit = 0;
    }
    // Writes what is held (unless a checkpoint found the image changed) and stops holding.
    Expected<void> commit() {
        std::lock_guard checkpoint(m_checkpoint_mutex);
        return write(take(false));
    }
    // Drops what is held and stops holding.
    void discard() {
        std::lock_guard checkpoint(m_checkpoint_mutex);
        {
            std::lock_guard lock(m_mutex);
            m_dropped_verdicts += m_staged[index(KeySpace::content_verdict)].size();
        }
        static_cast<void>(take(false));
        std::lock_guard lock(m_mutex);
        m_writing = {};
    }
    [[nodiscard]] std::uint64_t dropped_over_limit() const {
        std::shared_lock lock(m_mutex);
        return m_dropped_over_limit;
    }
    // Verdict records held and never written (a few may be last-use refreshes of older records).
    [[nodiscard]] std::uint64_t dropped_verdicts() const {
        std::shared_lock lock(m_mutex);
        return m_dropped_verdicts;
    }

    Expected<std::optional<std::string>> get(KeySpace space, std::string_view key) const override {
        {
            std::shared_lock lock(m_mutex); // lookups of every worker, at once
            for (const auto* held : {&m_staged, &m_writing}) {
                const auto& map = (*held)[index(space)];
                if (const auto found = map.find(key); found != map.end()) {
                    return std::optional<std::string>(found->second);
                }
            }
        }
        return m_store.get(space, key);
    }
    Expected<void> put(KeySpace space, std::string_view key, std::string_view value) override {
        {
            std::lock_guard lock(m_mutex);
            if (m_staging) {
                if (m_changed || m_bytes + key.size() + value.size() > k_max_staged_bytes) {
                    m_dropped_over_limit += m_changed ? 0 : 1;
                    m_dropped_verdicts += space == KeySpace::content_verdict ? 1 : 0;
                } else {
                    m_bytes += key.size() + value.size();
                    m_staged[index(space)].insert_or_assign(std::string(key), std::string(value));
                }
            }
        }
        if (!staging()) {
            return m_store.put(space, key, value);
        }
        return checkpoint_if_due();
    }
    Expected<void> erase(KeySpace space, std::string_view key) override {
        {
            std::lock_guard lock(m_mutex);
            m_staged[index(space)].erase(std::string(key));
        }
        return m_store.erase(space, key);
    }
    Expected<void>
    for_each(KeySpace space,
             const std::function<bool(std::string_view key, std::string_view value)>& visit) const override {
        return m_store.for_each(space, visit);
    }
    Expected<void> sync() override { return m_store.sync(); }
    Expected<void> verify_checksums() const override { return m_store.verify_checksums(); }
    Expected<void> compact() override { return m_store.compact(); }

private:
    using Maps = std::array<std::map<std::string, std::string, std::less<>>, k_key_spaces.size()>;
    static std::size_t index(KeySpace space) { return static_cast<std::size_t>(space); }

    bool staging() const {
        std::shared_lock lock(m_mutex);
        return m_staging;
    }
    // What is held, moved out to m_writing (still visible to lookups until written; dropped instead once the
    // image changed); keep_staging: the target goes on (a checkpoint), else it ends.
    Maps& take(bool keep_staging) {
        std::lock_guard lock(m_mutex);
        m_writing = m_changed ? Maps{} : std::exchange(m_staged, {});
        m_staged = {};
        m_bytes = 0;
        m_staging = keep_staging;
        if (!keep_staging) {
            m_unchanged = nullptr;
        }
        return m_writing;
    }
    // With m_checkpoint_mutex held.
    Expected<void> write(Maps& held) {
        Expected<void> result;
        for (std::size_t space = 0; space < held.size() && result; ++space) {
            for (const auto& [key, value] : held[space]) {
                if (auto put = m_store.put(k_key_spaces[space], key, value); !put) {
                    result = std::unexpected(put.error());
                    break;
                }
            }
        }
        std::lock_guard lock(m_mutex);
        m_writing = {};
        return result;
    }
    Expected<void> checkpoint_if_due() {
        std::unique_lock checkpoint(m_checkpoint_mutex, std::try_to_lock);
        if (!checkpoint.owns_lock()) {
            return {}; // another worker is at it
        }
        const auto now = std::chrono::steady_clock::now();
        {
            std::shared_lock lock(m_mutex);
            if (!m_staging || m_changed || now - m_last_checkpoint < k_checkpoint_period || !m_unchanged) {
                return {};
            }
        }
        m_last_checkpoint = now;
        if (!m_unchanged()) {
            std::lock_guard lock(m_mutex);
            m_changed = true;
            m_dropped_verdicts += m_staged[index(KeySpace::content_verdict)].size();
            m_staged = {};
            m_bytes = 0;
            return {};
        }
        return write(take(true));
    }

    KvStore& m_store;
    std::mutex m_checkpoint_mutex; // one checkpoint, commit or discard at a time; taken before m_mutex
    mutable std::shared_mutex m_mutex;
    bool m_staging = false;
    bool m_changed = false;
    std::function<bool()> m_unchanged;
    std::chrono::steady_clock::time_point m_last_checkpoint;
    Maps m_staged;
    Maps m_writing;
    std::size_t m_bytes = 0;
    std::uint64_t m_dropped_over_limit = 0;
    std::uint64_t m_dropped_verdicts = 0; // over the run
};

namespace {

std::string in_flight_key(const Sha256Digest& content, std::string_view variant) {
    std::string key(reinterpret_cast<const char*>(content.data()), content.size());
    key += variant;
    return key;
}

} // namespace

ScanCache::ScanCache(std::unique_ptr<KvStore> store, std::string context, IdentityUse identity,
                     std::string location)
    : m_store(std::move(store)), m_staging(std::make_unique<StagingStore>(*m_store)),
      m_cache(*m_staging, std::move(context)), m_identity(identity), m_location(std::move(location)) {}

ScanCache::~ScanCache() = default;

void ScanCache::follow_sets(const signatures::SignatureSet& signatures) {
    m_detection_set = signatures.detection_set();
    if (!persistent() || !usable()) {
        m_cache.follow_sets(m_detection_set, nullptr);
        return;
    }
    m_lineage = std::make_unique<SetLineage>(
        *m_store, [&signatures](std::span<const signatures::CatalogueLine> wanted) {
            return signatures.line_texts(wanted);
        });
    auto recorded = m_lineage->follow(signatures, system_seconds());
    if (!recorded) {
        spdlog::warn(
            "cache: the lines of this signature set were not recorded ({}); verdicts made with other "
            "sets are scanned again",
            recorded.error().message);
        m_lineage.reset();
    }
    m_lineage_recorded = recorded.has_value();
    m_cache.follow_sets(m_detection_set, m_lineage.get());
}

void ScanCache::begin_target(std::function<bool()> unchanged) {
    m_staging->begin(std::move(unchanged));
}

void ScanCache::commit_target() {
    auto committed = m_staging->commit();
    if (const auto dropped = m_staging->dropped_over_limit(); dropped > 0) {
        spdlog::warn("cache: {} records of this target were not kept (more than {} MiB waited for its end); "
                     "a later scan reads those files again",
                     dropped, StagingStore::k_max_staged_bytes >> 20);
    }
    if (!committed && usable()) {
        fail(committed.error());
    }
}

void ScanCache::discard_target() {
    m_staging->discard();
}

void ScanCache::fail(const Error& error) {
    if (m_failed.exchange(true)) {
        return;
    }
    if (error.code == Errc::corrupt && persistent()) {
        // Damaged blocks stay damaged: the next run moves this store aside and starts afresh.
        std::ofstream(std::filesystem::path(m_location) / k_damaged_marker) << error.message << "\n";
    }
    std::lock_guard lock(m_mutex);
    m_problem = error.message + "; the rest of this run does not use the cache";
    spdlog::warn("{}", m_problem);
}

std::optional<Sha256Digest> ScanCache::find_content(const FileIdentity& identity) {
    if (!usable() || m_identity == IdentityUse::ignore) {
        return std::nullopt;
    }
    auto found = m_cache.find_content(identity);
    if (!found) {
        fail(found.error());
        return std::nullopt;
    }
    return *found;
}

void ScanCache::remember_content(const FileIdentity& identity, const Sha256Digest& content) {
    if (!usable() || !persistent()) {
        return; // level 1 is only worth keeping across runs
    }
    if (auto stored = m_cache.remember_content(identity, content); !stored) {
        fail(stored.error());
    }
}

void ScanCache::remember_place(const PlaceKey& key, ContentPlace place, const Sha256Digest& content) {
    if (!usable() || !persistent()) {
        return; // a retro-hunt reads a persistent store
    }
    place.seen = system_seconds();
    if (auto stored = scanner::remember_place(*m_staging, key, place, content); !stored) {
        fail(stored.error());
    }
}

std::optional<Outcome> ScanCache::find_verdict(const Sha256Digest& content, std::string_view variant) {
    if (!usable()) {
        return std::nullopt;
    }
    auto found = m_cache.find_verdict(content, variant);
    if (!found) {
        fail(found.error());
        return std::nullopt;
    }
    return *found;
}

std::optional<PendingVerdict> ScanCache::find_pending(const Sha256Digest& content, std::string_view variant) {
    if (!usable()) {
        return std::nullopt;
    }
    auto found = m_cache.find_pending(content, variant);
    if (!found) {
        fail(found.error());
        return std::nullopt;
    }
    return std::move(*found);
}

void ScanCache::count_recheck(const Sha256Digest& content, bool stood) {
    m_cache.count_recheck(content, stood);
}

Outcome ScanCache::scan_once(const Sha256Digest& content, std::string_view variant,
                             const std::function<Outcome()>& scan, Served& served) {
    served = Served::engines;
    const std::string key = in_flight_key(content, variant);
    std::shared_ptr<InFlight> slot;
    bool owner = false;
    {
        std::lock_guard lock(m_mutex);
        auto& entry = m_in_flight[key];
        if (!entry) {
            entry = std::make_shared<InFlight>();
            owner = true;
        }
        slot = entry;
    }
    if (!owner) {
        std::unique_lock lock(slot->mutex);
        slot->done_cv.wait(lock, [&] { return slot->done; });
        served = Served::same_content;
        return slot->outcome;
    }
    // The verdict may have been stored between this worker's lookup and now (another file, same content).
    std::optional<Outcome> outcome = find_verdict(content, variant);
    if (outcome) {
        served = Served::cache;
    }
    try {
        if (!outcome) {
            outcome = scan();
            if (usable()) {
                if (auto stored = m_cache.remember_verdict(content, *outcome, variant); !stored) {
                    fail(stored.error());
                }
            }
        }
    } catch (const std::exception& e) {
        outcome = Outcome{OutcomeKind::error, std::string("scan failed: ") + e.what(), {}};
    }
    {
        std::lock_guard lock(slot->mutex);
        slot->outcome = *outcome;
        slot->done = true;
    }
    slot->done_cv.notify_all();
    std::lock_guard lock(m_mutex);
    m_in_flight.erase(key);
    return *outcome;
}

void ScanCache::report_problem(std::string message) {
    spdlog::warn("{}", message);
    std::lock_guard lock(m_mutex);
    m_problem = m_problem.empty() ? std::move(message) : m_problem + "; " + message;
}

void ScanCache::sync() {
    if (!usable() || !persistent()) {
        return;
    }
    if (auto synced = m_store->sync(); !synced) {
        fail(synced.error());
    }
}

void ScanCache::note(Event event, std::uint64_t bytes) noexcept {
    m_events[static_cast<std::size_t>(event)].fetch_add(1, std::memory_order_relaxed);
    if (event == Event::not_read) {
        m_bytes_not_read.fetch_add(bytes, std::memory_order_relaxed);
    } else if (event == Event::not_scanned) {
        m_bytes_not_scanned.fetch_add(bytes, std::memory_order_relaxed);
    } else if (event == Event::reused_by_blocks) {
        m_bytes_reused_by_blocks.fetch_add(bytes, std::memory_order_relaxed);
    }
}

reports::CacheReport ScanCache::report() const {
    auto count = [this](Event event) { return m_events[static_cast<std::size_t>(event)].load(); };
    reports::CacheReport out;
    out.enabled = persistent();
    out.path = m_location;
    {
        std::lock_guard lock(m_mutex);
        out.problem = m_problem;
    }
    out.identity_hits = count(Event::identity_hit);
    out.identity_misses = count(Event::identity_miss);
    out.verdict_hits = count(Event::verdict_hit);
    out.verdict_misses = count(Event::verdict_miss);
    // Verdicts held for a target and then dropped never reached the store.
    const auto computed = m_cache.counters().verdicts_written.load();
    out.verdicts_written = computed - std::min(computed, m_staging->dropped_verdicts());
    out.files_not_read = count(Event::not_read);
    out.bytes_not_read = m_bytes_not_read.load();
    out.files_not_scanned = count(Event::not_scanned);
    out.bytes_not_scanned = m_bytes_not_scanned.load();
    out.same_content_waits = count(Event::same_content_wait);
    out.engine_scans = count(Event::engine_scan);
    out.block_hits = count(Event::block_hit);
    out.block_misses = count(Event::block_miss);
    out.files_reused_by_blocks = count(Event::reused_by_blocks);
    out.bytes_reused_by_blocks = m_bytes_reused_by_blocks.load();
    out.detection_set = m_detection_set;
    out.lineage = m_lineage_recorded;
    out.verdicts_carried = m_cache.counters().verdicts_carried.load();
    out.verdicts_rechecked = m_cache.counters().verdicts_rechecked.load();
    out.verdicts_outdated = m_cache.counters().verdicts_outdated.load();
    return out;
}

} // namespace coldscan::scanner
