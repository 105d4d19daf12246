// Storage behind the verdict cache: a few key spaces of byte strings, nothing cache-specific.
// Backends: RocksDB (the product; one column family per key space, WAL on) and memory (tests, runs without a
// cache). One test suite runs against both (tests/unit/test_scanner_kv_store.cpp).
// Thread rule: shared; every member is thread-safe.
#pragma once

#include "coldscan/common/error.hpp"

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace coldscan::scanner {

enum class KeySpace : std::uint8_t {
    file_identity,   // level 1: a file's identity in an image -> its content digest
    content_verdict, // level 2: content digest + signature set -> verdict
    meta,            // store schema version and bookkeeping
    jobs,            // the scan service's persistent job queue (scheduler::JobQueue)
    signature_sets,  // the lines of each detection set verdicts were made with (set_lineage.hpp)
    content_places,  // where each content was last seen (content_places.hpp)
};
// Every key space, in enum order (RocksDB's column families are opened in this order). A new space goes last.
inline constexpr std::array k_key_spaces{KeySpace::file_identity,  KeySpace::content_verdict,
                                         KeySpace::meta,           KeySpace::jobs,
                                         KeySpace::signature_sets, KeySpace::content_places};

[[nodiscard]] std::string_view to_string(KeySpace space);

class KvStore {
public:
    virtual ~KvStore() = default;
    // std::nullopt when the key is absent. Error: io (unreadable or corrupt store).
    [[nodiscard]] virtual Expected<std::optional<std::string>> get(KeySpace space,
                                                                   std::string_view key) const = 0;
    [[nodiscard]] virtual Expected<void> put(KeySpace space, std::string_view key,
                                             std::string_view value) = 0;
    [[nodiscard]] virtual Expected<void> erase(KeySpace space, std::string_view key) = 0;
    // Visits every pair of a key space in key order (bytewise) until visit returns false.
    [[nodiscard]] virtual Expected<void>
    for_each(KeySpace space,
             const std::function<bool(std::string_view key, std::string_view value)>& visit) const = 0;
    // Makes every earlier put durable (the write-ahead log reaches the disk).
    [[nodiscard]] virtual Expected<void> sync() = 0;
    // Reads everything stored and checks its checksums. Error: corrupt (what failed), io.
    [[nodiscard]] virtual Expected<void> verify_checksums() const = 0;
    // Gives the space of erased records back to the filesystem.
    [[nodiscard]] virtual Expected<void> compact() = 0;
    // What opening the store had to give up, for a warning and the report: "" when nothing (RocksDB: a
    // damaged write-ahead log replayed up to the damage; what followed it is lost).
    [[nodiscard]] virtual std::string open_problem() const { return {}; }
};

[[nodiscard]] std::unique_ptr<KvStore> open_memory_store();
// A handle on a store that others use too (the scan service's, shared by its job queue and every scan):
// forwards every call; the store lives as long as its last handle.
[[nodiscard]] std::unique_ptr<KvStore> share_store(std::shared_ptr<KvStore> store);
// Opens, or creates, a RocksDB store in folder; a key space the store lacks (made by an older coldscan) is
// added, one it has that this version does not know is kept. Errors: corrupt (damaged files: a checksum, a
// cut MANIFEST, a missing CURRENT or a missing file it names), io (cannot create it, locked by another
// process, unreadable; the message says which). A damaged write-ahead log is not an error: see
// open_problem().
[[nodiscard]] Expected<std::unique_ptr<KvStore>> open_rocksdb_store(const std::filesystem::path& folder);

} // namespace coldscan::scanner
