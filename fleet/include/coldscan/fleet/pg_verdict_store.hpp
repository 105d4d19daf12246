// Shared verdicts (fleet mode): the scan store of a node's scans is its own RocksDB store in front of the
// fleet's table coldscan_verdicts. A content verdict this node lacks is looked up there (and kept locally
// once found), so content one node scanned is not scanned by another with the same signature set; verdicts
// this node writes are buffered and written to the table in batches, at every sync (a scan's commit) or
// every 500. Every other key space stays this node's own.
//
// Sharing is best effort: when the database is away, a lookup is a miss (the content is scanned, never
// called clean unscanned) and a batch is dropped with a warning; the local store goes on as always.
// Thread rule: shared; every member is thread-safe (the pipeline's workers look up concurrently; the
// database calls serialise on one connection).
#pragma once
#include "coldscan/fleet/pg_connection.hpp"
#include "coldscan/scanner/kv_store.hpp"

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace coldscan::fleet {

class PgVerdictStore final : public scanner::KvStore {
public:
    PgVerdictStore(std::shared_ptr<scanner::KvStore> local, PgConnection connection, std::string node);
    ~PgVerdictStore() override; // writes what is buffered

    Expected<std::optional<std::string>> get(scanner::KeySpace space, std::string_view key) const override;
    Expected<void> put(scanner::KeySpace space, std::string_view key, std::string_view value) override;
    Expected<void> erase(scanner::KeySpace space, std::string_view key) override;
    Expected<void>
    for_each(scanner::KeySpace space,
             const std::function<bool(std::string_view, std::string_view)>& visit) const override;
    Expected<void> sync() override;
    Expected<void> verify_checksums() const override;
    Expected<void> compact() override;
    std::string open_problem() const override;

    // Verdicts found in the fleet's table that the local store lacked, since the start.
    [[nodiscard]] std::uint64_t shared_hits() const noexcept { return m_shared_hits.load(); }

private:
    void flush();
    void warn_once(const Error& error) const;

    std::shared_ptr<scanner::KvStore> m_local;
    std::string m_node;
    mutable std::mutex m_db_mutex; // m_db, m_warned
    mutable PgConnection m_db;
    mutable bool m_warned = false;
    std::mutex m_buffer_mutex;
    std::vector<std::pair<std::string, std::string>> m_buffer; // key, value
    mutable std::atomic<std::uint64_t> m_shared_hits{0};
};

} // namespace coldscan::fleet
