// The RocksDB backend of KvStore. One column family per key space (a store made before a key space existed
// gets it at open); the write-ahead log stays on and sync() fsyncs it, so a verdict the scan reported is on
// disk. RocksDB's own log goes into ours (spdlog) instead of a LOG file of its own. Corruption and I/O
// errors come back as errors: the cache above treats them as misses, never as verdicts.
#include "coldscan/common/log.hpp"
#include "coldscan/scanner/kv_store.hpp"

#include <algorithm>
#include <array>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/options.h>
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
};

Error to_error(const rocksdb::Status& status, std::string_view what) {
    std::string message = "cache: ";
    message += what;
    message += ": ";
    message += status.ToString();
    return Error{status.IsCorruption() ? Errc::corrupt : Errc::io, std::move(message)};
}

class RocksStore final : public KvStore {
public:
    RocksStore(std::unique_ptr<rocksdb::DB> db, std::vector<rocksdb::ColumnFamilyHandle*> handles)
        : m_db(std::move(db)), m_handles(std::move(handles)) {}

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
    options.info_log = std::make_shared<SpdlogRocksLogger>();
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
    std::vector<std::string> existing;
    // Fails for a store not made yet; a damaged one fails again, with its reason, in Open below.
    if (rocksdb::DB::ListColumnFamilies(options, folder.string(), &existing).ok()) {
        for (const auto& name : existing) {
            const bool known = std::any_of(families.begin(), families.end(),
                                           [&](const auto& family) { return family.name == name; });
            if (!known) {
                families.emplace_back(name, rocksdb::ColumnFamilyOptions());
            }
        }
    }
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    const auto status = rocksdb::DB::Open(options, folder.string(), families, &handles, &raw);
    if (!status.ok()) {
        return std::unexpected(to_error(status, "cannot open " + folder.string()));
    }
    return std::make_unique<RocksStore>(std::unique_ptr<rocksdb::DB>(raw), std::move(handles));
}

} // namespace coldscan::scanner
