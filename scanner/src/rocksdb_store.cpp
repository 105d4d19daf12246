// The RocksDB backend of KvStore. One column family per key space (a store made before a key space existed
// gets it at open); the write-ahead log stays on and sync() fsyncs it, so a verdict the scan reported is on
// disk. RocksDB's own log goes into ours (spdlog) instead of a LOG file of its own. Corruption and I/O
// errors come back as errors: the cache above treats them as misses, never as verdicts.
//
// Damage found at open, and what it becomes (tests/e2e/cache-corrupt.sh):
// - A damaged write-ahead log (cut, or a record whose checksum fails) is replayed up to the damage
//   (RocksDB's point-in-time recovery): every record before it passed its checksum, the ones after it are
//   gone. The store opens, and open_problem() says what was dropped. Not refused: a power cut during a scan
//   leaves a torn unsynced tail, and throwing a whole cache (or a job queue) away for it would be worse.
// - A MANIFEST that was cut is read by RocksDB as far as it is whole, without a word; the table files it
//   no longer names would then be deleted as obsolete by the open. When it lost even our key spaces (what
//   every coldscan store has had since the first release), the store is refused as corrupt before RocksDB
//   opens it for writing, so nothing is deleted.
// - A missing CURRENT over an existing store: RocksDB refuses it while a log file is left, but without one
//   starts a new, empty store and deletes the old MANIFEST. Refused as corrupt either way, and so is a file
//   the store names that is not there (RocksDB says "path not found").
// - Damaged table files (flipped bytes) are found by checksums when a read reaches them: Errc::corrupt.
#include "coldscan/common/log.hpp"
#include "coldscan/scanner/kv_store.hpp"

#include <algorithm>
#include <array>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/options.h>
#include <string>
#include <utility>
#include <vector>

namespace coldscan::scanner {
namespace {

// Routes RocksDB's messages into spdlog: warnings and errors as such, the chatter at debug.
class SpdlogRocksLogger final : public rocksdb::Logger {
public:
    SpdlogRocksLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {}
    using rocksdb::Logger::Logv;
    void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list args) override {
        std::array<char, 1024> buffer{};
        std::vsnprintf(buffer.data(), buffer.size(), format, args);
        // Table files written before RocksDB recorded unique IDs (or after a crash) are still checksummed.
        const bool noise = std::strstr(buffer.data(), "without unique ID to verify") != nullptr;
        // The only sign RocksDB gives of a damaged write-ahead log it recovered past ("LOG: dropping N
        // bytes; Corruption: ..."): kept for open_problem().
        if (level >= rocksdb::InfoLogLevel::WARN_LEVEL && std::strstr(buffer.data(), "dropping") != nullptr &&
            std::strstr(buffer.data(), "Corruption") != nullptr) {
            std::lock_guard lock(m_mutex);
            if (m_dropped.empty()) {
                m_dropped = buffer.data();
            }
        }
        if (noise) {
            spdlog::debug("cache: {}", buffer.data());
        } else if (level >= rocksdb::InfoLogLevel::ERROR_LEVEL) {
            spdlog::error("cache: {}", buffer.data());
        } else if (level == rocksdb::InfoLogLevel::WARN_LEVEL) {
            spdlog::warn("cache: {}", buffer.data());
        } else {
            spdlog::debug("cache: {}", buffer.data());
        }
    }
    void Logv(const char* format, va_list args) override {
        Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, args);
    }
    // The first "dropping ... Corruption" message since the last call, or "".
    std::string take_dropped() {
        std::lock_guard lock(m_mutex);
        return std::exchange(m_dropped, std::string());
    }

private:
    std::mutex m_mutex;
    std::string m_dropped;
};

Error to_error(const rocksdb::Status& status, std::string_view what) {
    std::string message = "cache: ";
    message += what;
    message += ": ";
    message += status.ToString();
    // A file the store names that is not there is damage, like a checksum mismatch (a lock held by another
    // process, a permission or a full disk are io).
    const bool damaged = status.IsCorruption() || status.IsPathNotFound();
    return Error{damaged ? Errc::corrupt : Errc::io, std::move(message)};
}

bool any_file_like(const std::filesystem::path& folder, std::string_view prefix, std::string_view suffix) {
    std::error_code ec;
    for (std::filesystem::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (name.starts_with(prefix) && name.ends_with(suffix)) {
            return true;
        }
    }
    return false;
}

class RocksStore final : public KvStore {
public:
    RocksStore(std::unique_ptr<rocksdb::DB> db, std::vector<rocksdb::ColumnFamilyHandle*> handles,
               std::string open_problem)
        : m_db(std::move(db)), m_handles(std::move(handles)), m_open_problem(std::move(open_problem)) {}

    ~RocksStore() override {
        // Memtables to table files: the next open has no log to replay, and `cache verify` sees everything.
        rocksdb::FlushOptions flush;
        flush.allow_write_stall = true;
        if (const auto status = m_db->Flush(flush, m_handles); !status.ok()) {
            spdlog::debug("cache: flush at close failed: {}", status.ToString());
        }
        for (auto* handle : m_handles) {
            m_db->DestroyColumnFamilyHandle(handle);
        }
        m_db->Close();
    }
    RocksStore(const RocksStore&) = delete;
    RocksStore& operator=(const RocksStore&) = delete;

    Expected<std::optional<std::string>> get(KeySpace space, std::string_view key) const override {
        rocksdb::ReadOptions options;
        options.verify_checksums = true;
        std::string value;
        const auto status = m_db->Get(options, family(space), rocksdb::Slice(key.data(), key.size()), &value);
        if (status.IsNotFound()) {
            return std::optional<std::string>{};
        }
        if (!status.ok()) {
            return std::unexpected(to_error(status, "read failed"));
        }
        return std::optional<std::string>(std::move(value));
    }

    Expected<void> put(KeySpace space, std::string_view key, std::string_view value) override {
        const auto status =
            m_db->Put(rocksdb::WriteOptions(), family(space), rocksdb::Slice(key.data(), key.size()),
                      rocksdb::Slice(value.data(), value.size()));
        if (!status.ok()) {
            return std::unexpected(to_error(status, "write failed"));
        }
        return {};
    }

    Expected<void> erase(KeySpace space, std::string_view key) override {
        const auto status =
            m_db->Delete(rocksdb::WriteOptions(), family(space), rocksdb::Slice(key.data(), key.size()));
        if (!status.ok()) {
            return std::unexpected(to_error(status, "delete failed"));
        }
        return {};
    }

    Expected<void>
    for_each(KeySpace space,
             const std::function<bool(std::string_view, std::string_view)>& visit) const override {
        rocksdb::ReadOptions options;
        options.verify_checksums = true;
        std::unique_ptr<rocksdb::Iterator> it(m_db->NewIterator(options, family(space)));
        for (it->SeekToFirst(); it->Valid(); it->Next()) {
            const auto key = it->key();
            const auto value = it->value();
            if (!visit(std::string_view(key.data(), key.size()),
                       std::string_view(value.data(), value.size()))) {
                break;
            }
        }
        if (!it->status().ok()) {
            return std::unexpected(to_error(it->status(), "iteration failed"));
        }
        return {};
    }

    Expected<void> sync() override {
        const auto status = m_db->SyncWAL();
        if (!status.ok()) {
            return std::unexpected(to_error(status, "sync failed"));
        }
        return {};
    }

    Expected<void> verify_checksums() const override {
        const auto status = m_db->VerifyChecksum();
        if (!status.ok()) {
            return std::unexpected(to_error(status, "checksum verification failed"));
        }
        return {};
    }

    std::string open_problem() const override { return m_open_problem; }

    Expected<void> compact() override {
        for (std::size_t i = 1; i < m_handles.size(); ++i) {
            const auto status =
                m_db->CompactRange(rocksdb::CompactRangeOptions(), m_handles[i], nullptr, nullptr);
            if (!status.ok()) {
                return std::unexpected(to_error(status, "compaction failed"));
            }
        }
        return {};
    }

private:
    rocksdb::ColumnFamilyHandle* family(KeySpace space) const {
        return m_handles[static_cast<std::size_t>(space) + 1]; // [0] is RocksDB's "default"
    }

    std::unique_ptr<rocksdb::DB> m_db;
    std::vector<rocksdb::ColumnFamilyHandle*> m_handles;
    std::string m_open_problem;
};

} // namespace

Expected<std::unique_ptr<KvStore>> open_rocksdb_store(const std::filesystem::path& folder) {
    std::error_code ec;
    std::filesystem::create_directories(folder, ec);
    if (ec) {
        return make_error(Errc::io, "cache: cannot create " + folder.string() + ": " + ec.message());
    }
    rocksdb::DBOptions options;
    options.create_if_missing = true;
    options.create_missing_column_families = true;
    options.paranoid_checks = true;
    auto logger = std::make_shared<SpdlogRocksLogger>();
    options.info_log = logger;
    options.keep_log_file_num = 1;

    // RocksDB opens a store only when every column family it holds is named. Ours come first, in enum
    // order (family() counts on it); one a store made before its key space existed lacks is created
    // (create_missing_column_families). Families this version does not know (a newer coldscan's) are opened
    // and left alone, so going back a version does not lock the store.
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    families.emplace_back(rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions());
    for (const KeySpace space : k_key_spaces) {
        families.emplace_back(std::string(to_string(space)), rocksdb::ColumnFamilyOptions());
    }
    std::error_code ec_current;
    const bool has_current = std::filesystem::exists(folder / "CURRENT", ec_current);
    if (!has_current && (any_file_like(folder, "MANIFEST-", "") || any_file_like(folder, "", ".sst"))) {
        return make_error(Errc::corrupt, "cache: cannot open " + folder.string() +
                                             ": Corruption: its CURRENT file is missing (RocksDB would start "
                                             "an empty store over it)");
    }
    std::vector<std::string> existing;
    // Fails for a store not made yet; a damaged one fails again, with its reason, in Open below.
    if (const auto listed = rocksdb::DB::ListColumnFamilies(options, folder.string(), &existing);
        listed.ok()) {
        // Every store since the first release has these; a MANIFEST without them, beside table files, was
        // cut (see above). Without table files it may be a store whose first open was killed: nothing to
        // lose.
        const bool has_tables = any_file_like(folder, "", ".sst");
        for (const KeySpace space : {KeySpace::file_identity, KeySpace::content_verdict, KeySpace::meta}) {
            if (has_tables &&
                std::find(existing.begin(), existing.end(), to_string(space)) == existing.end()) {
                return make_error(Errc::corrupt,
                                  "cache: cannot open " + folder.string() +
                                      ": Corruption: its MANIFEST no longer names the key space " +
                                      std::string(to_string(space)) + " (damaged)");
            }
        }
        for (const auto& name : existing) {
            const bool known = std::any_of(families.begin(), families.end(),
                                           [&](const auto& family) { return family.name == name; });
            if (!known) {
                families.emplace_back(name, rocksdb::ColumnFamilyOptions());
            }
        }
    } else if (has_current && (listed.IsCorruption() || listed.IsPathNotFound())) {
        return std::unexpected(to_error(listed, "cannot open " + folder.string()));
    }
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    std::error_code ec_lock;
    const bool had_lock = std::filesystem::exists(folder / "LOCK", ec_lock);
    const auto status = rocksdb::DB::Open(options, folder.string(), families, &handles, &raw);
    if (!status.ok()) {
        // Open takes its LOCK file before it reads the MANIFEST: a damaged store is left as it was found
        // (a lock held by another process is an IO error, never removed here).
        if (!had_lock && status.IsCorruption()) {
            std::filesystem::remove(folder / "LOCK", ec_lock);
        }
        return std::unexpected(to_error(status, "cannot open " + folder.string()));
    }
    std::string problem;
    if (const auto dropped = logger->take_dropped(); !dropped.empty()) {
        problem = "cache: the write-ahead log of " + folder.string() +
                  " was damaged; the records before the damage were kept, the ones after it are lost (" +
                  dropped + ")";
    }
    return std::make_unique<RocksStore>(std::unique_ptr<rocksdb::DB>(raw), std::move(handles),
                                        std::move(problem));
}

} // namespace coldscan::scanner
