// Shared verdicts (fleet mode): the scan store of a node's scans is its own RocksDB store in front of the
// fleet's tables. Two key spaces are shared: the content verdicts (coldscan_verdicts) and the signature-set
// lineage (coldscan_set_lineage: each set's manifest and line buckets, written by the node that recorded the
// set). A record this node lacks is looked up there and kept locally once found, so content one node scanned
// is not scanned by another, and a verdict made under a set another node recorded is re-checked by the
// set's changes instead of scanned again. Lookups are batched: the misses that arrive while a query is
// under way are asked together in the next one (one round trip for as many keys as the pipeline's workers
// missed meanwhile, with no added wait). Records this node writes are buffered and written in batches, at
// every sync (a scan's commit) or every 500. Every other key space stays this node's own: file identities
// and block keys name images by the host's device and inode numbers, which differ from node to node.
//
// Sharing is best effort: when the database is away, a lookup is a miss (the content is scanned, never
// called clean unscanned) and a batch is dropped with a warning; the local store goes on as always.
// Thread rule: shared; every member is thread-safe (the pipeline's workers look up concurrently; the
// database calls serialise on one connection).
#pragma once
#include "coldscan/fleet/pg_connection.hpp"
#include "coldscan/scanner/kv_store.hpp"

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
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

    // Records found in the fleet's tables that the local store lacked, since the start.
    [[nodiscard]] std::uint64_t shared_hits() const noexcept { return m_shared_hits.load(); }
    // Queries that looked keys up in the fleet's table, and the keys they asked for, since the start.
    [[nodiscard]] std::uint64_t lookup_batches() const;
    [[nodiscard]] std::uint64_t looked_up_keys() const;
    // Misses waiting for the next query (tests).
    [[nodiscard]] std::size_t waiting_lookups() const;

private:
    struct Lookup {
        scanner::KeySpace space;
        std::string key;
        std::optional<std::string> value; // found in the table
        bool done = false;                // under m_lookup_mutex
    };

    // The verdict of key in the fleet's table, asked with whatever other misses wait (nullopt: none, or the
    // database is away).
    std::optional<std::string> lookup_shared(scanner::KeySpace space, std::string_view key) const;
    // One query per table for a batch of misses; fills each one's value.
    void ask(const std::vector<std::shared_ptr<Lookup>>& batch) const;
    void ask_table(scanner::KeySpace space, const std::vector<std::shared_ptr<Lookup>>& batch) const;
    void flush();
    void warn_once(const Error& error) const;

    std::shared_ptr<scanner::KvStore> m_local;
    std::string m_node;
    mutable std::mutex m_db_mutex; // m_db, m_warned
    mutable PgConnection m_db;
    mutable bool m_warned = false;
    std::mutex m_buffer_mutex;
    struct Pending {
        scanner::KeySpace space;
        std::string key;
        std::string value;
    };
    std::vector<Pending> m_buffer;
    mutable std::atomic<std::uint64_t> m_shared_hits{0};
    mutable std::mutex m_lookup_mutex; // the members below
    mutable std::condition_variable m_lookup_done;
    mutable std::vector<std::shared_ptr<Lookup>> m_waiting; // not asked yet
    mutable bool m_asking = false;                          // a query is under way
    mutable std::uint64_t m_batches = 0;
    mutable std::uint64_t m_keys = 0;
};

} // namespace coldscan::fleet
