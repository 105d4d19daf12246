#include "coldscan/scanner/scan_cache.hpp"

#include "coldscan/common/log.hpp"

#include <filesystem>
#include <fstream>

namespace coldscan::scanner {
namespace {

std::string in_flight_key(const Sha256Digest& content, std::string_view variant) {
    std::string key(reinterpret_cast<const char*>(content.data()), content.size());
    key += variant;
    return key;
}

} // namespace

ScanCache::ScanCache(std::unique_ptr<KvStore> store, std::string context, IdentityUse identity,
                     std::string location)
    : m_store(std::move(store)), m_cache(*m_store, std::move(context)), m_identity(identity),
      m_location(std::move(location)) {}

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
    out.verdicts_written = m_cache.counters().verdicts_written.load();
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
    return out;
}

} // namespace coldscan::scanner
