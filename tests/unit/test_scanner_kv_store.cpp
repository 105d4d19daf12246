// One suite, both backends: what the verdict cache relies on must hold for RocksDB and memory alike.
#include "coldscan/common/temp_dir.hpp"
#include "coldscan/scanner/kv_store.hpp"
#include "test_support.hpp"

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <rocksdb/db.h>
#include <thread>
#include <vector>

using namespace coldscan;
using namespace coldscan::scanner;

namespace {

enum class Backend { memory, rocksdb };

struct StoreUnderTest {
    TempDir dir = TempDir::create("coldscan-test").value();
    std::unique_ptr<KvStore> store;

    explicit StoreUnderTest(Backend backend) {
        if (backend == Backend::memory) {
            store = open_memory_store();
        } else {
            auto opened = open_rocksdb_store(dir.path() / "cache");
            REQUIRE(opened);
            store = std::move(*opened);
        }
    }
};

std::optional<std::string> value_of(const KvStore& store, KeySpace space, std::string_view key) {
    auto value = store.get(space, key);
    REQUIRE(value.has_value());
    return *value;
}

// Stores as another coldscan version left them are made with RocksDB itself (the only place outside
// scanner/src that includes it): a store with exactly these column families besides "default", and one
// value in one of them.
void make_raw_store(const std::filesystem::path& folder, const std::vector<std::string>& names,
                    const std::string& family_with_value, const std::string& key, const std::string& value) {
    rocksdb::DBOptions options;
    options.create_if_missing = true;
    options.create_missing_column_families = true;
    std::vector<rocksdb::ColumnFamilyDescriptor> families{{rocksdb::kDefaultColumnFamilyName, {}}};
    for (const auto& name : names) {
        families.emplace_back(name, rocksdb::ColumnFamilyOptions());
    }
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    REQUIRE(rocksdb::DB::Open(options, folder.string(), families, &handles, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    for (std::size_t i = 0; i < families.size(); ++i) {
        if (families[i].name == family_with_value) {
            CHECK(db->Put(rocksdb::WriteOptions(), handles[i], key, value).ok());
        }
    }
    CHECK(db->Flush(rocksdb::FlushOptions(), handles).ok());
    for (auto* handle : handles) {
        CHECK(db->DestroyColumnFamilyHandle(handle).ok());
    }
    CHECK(db->Close().ok());
}

std::vector<std::string> raw_column_families(const std::filesystem::path& folder) {
    std::vector<std::string> names;
    REQUIRE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), folder.string(), &names).ok());
    std::sort(names.begin(), names.end());
    return names;
}

std::string raw_value(const std::filesystem::path& folder, const std::string& family,
                      const std::string& key) {
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    for (const auto& name : raw_column_families(folder)) {
        families.emplace_back(name, rocksdb::ColumnFamilyOptions());
    }
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    REQUIRE(
        rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(), folder.string(), families, &handles, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    std::string value;
    for (std::size_t i = 0; i < families.size(); ++i) {
        if (families[i].name == family) {
            CHECK(db->Get(rocksdb::ReadOptions(), handles[i], key, &value).ok());
        }
    }
    for (auto* handle : handles) {
        CHECK(db->DestroyColumnFamilyHandle(handle).ok());
    }
    return value;
}

} // namespace

TEST_CASE("KvStore::get") {
    const Backend backend = GENERATE(Backend::memory, Backend::rocksdb);
    CAPTURE(backend == Backend::memory ? "memory" : "rocksdb");
    StoreUnderTest s(backend);
    KvStore& store = *s.store;

    SECTION("an absent key is not an error") {
        CHECK_FALSE(value_of(store, KeySpace::content_verdict, "nothing").has_value());
    }
    SECTION("put then get, overwrite, erase") {
        REQUIRE(store.put(KeySpace::content_verdict, "k", "v1"));
        CHECK(value_of(store, KeySpace::content_verdict, "k") == "v1");
        REQUIRE(store.put(KeySpace::content_verdict, "k", "v2"));
        CHECK(value_of(store, KeySpace::content_verdict, "k") == "v2");
        REQUIRE(store.erase(KeySpace::content_verdict, "k"));
        CHECK_FALSE(value_of(store, KeySpace::content_verdict, "k").has_value());
        CHECK(store.erase(KeySpace::content_verdict, "never there"));
    }
    SECTION("key spaces are separate") {
        REQUIRE(store.put(KeySpace::file_identity, "same", "identity"));
        REQUIRE(store.put(KeySpace::content_verdict, "same", "verdict"));
        CHECK(value_of(store, KeySpace::file_identity, "same") == "identity");
        CHECK(value_of(store, KeySpace::content_verdict, "same") == "verdict");
        CHECK_FALSE(value_of(store, KeySpace::meta, "same").has_value());
        CHECK_FALSE(value_of(store, KeySpace::jobs, "same").has_value());
    }
    SECTION("every key space holds its own value under the same key") {
        for (const KeySpace space : k_key_spaces) {
            REQUIRE(store.put(space, "key", to_string(space)));
        }
        for (const KeySpace space : k_key_spaces) {
            CAPTURE(to_string(space));
            CHECK(value_of(store, space, "key") == std::string(to_string(space)));
        }
        REQUIRE(store.erase(KeySpace::jobs, "key"));
        CHECK_FALSE(value_of(store, KeySpace::jobs, "key").has_value());
        CHECK(value_of(store, KeySpace::meta, "key") == "meta");
    }
    SECTION("keys and values are bytes: NULs and high bytes survive") {
        const std::string key("a\0b\xff", 4);
        const std::string value("\0\x01\x02\xfe", 4);
        REQUIRE(store.put(KeySpace::meta, key, value));
        CHECK(value_of(store, KeySpace::meta, key) == value);
        CHECK_FALSE(value_of(store, KeySpace::meta, std::string("a\0b", 3)).has_value());
    }
}

TEST_CASE("KvStore::for_each") {
    const Backend backend = GENERATE(Backend::memory, Backend::rocksdb);
    StoreUnderTest s(backend);
    KvStore& store = *s.store;
    for (const std::string key : {"b", "a", "\xff", "c", "a\x01"}) {
        REQUIRE(store.put(KeySpace::file_identity, key, "v" + key));
    }
    REQUIRE(store.put(KeySpace::content_verdict, "other", "x"));

    SECTION("visits one key space in bytewise key order") {
        std::vector<std::string> keys;
        REQUIRE(store.for_each(KeySpace::file_identity, [&](std::string_view key, std::string_view value) {
            keys.emplace_back(key);
            CHECK(value == "v" + std::string(key));
            return true;
        }));
        CHECK(keys == std::vector<std::string>{"a", "a\x01", "b", "c", "\xff"});
    }
    SECTION("stops when the visitor says so") {
        int visited = 0;
        REQUIRE(store.for_each(KeySpace::file_identity,
                               [&](std::string_view, std::string_view) { return ++visited < 2; }));
        CHECK(visited == 2);
    }
}

TEST_CASE("to_string(KeySpace)") {
    // The names are RocksDB column family names: distinct, and never changed once released.
    CHECK(to_string(KeySpace::file_identity) == "file_identity");
    CHECK(to_string(KeySpace::content_verdict) == "content_verdict");
    CHECK(to_string(KeySpace::meta) == "meta");
    CHECK(to_string(KeySpace::jobs) == "jobs");
    CHECK(to_string(KeySpace::signature_sets) == "signature_sets");
    CHECK(to_string(KeySpace::content_places) == "content_places");
    CHECK(k_key_spaces.size() == 6);
    for (std::size_t i = 0; i < k_key_spaces.size(); ++i) {
        CHECK(static_cast<std::size_t>(k_key_spaces[i]) == i); // enum order: the column families' order
    }
}

TEST_CASE("KvStore::put from many threads") {
    const Backend backend = GENERATE(Backend::memory, Backend::rocksdb);
    StoreUnderTest s(backend);
    KvStore& store = *s.store;
    // Catch2's assertions are not thread-safe: the threads count, the test thread checks.
    std::atomic<int> failed_puts{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&store, &failed_puts, t] {
            for (int i = 0; i < 250; ++i) {
                const std::string key = std::to_string(t) + "/" + std::to_string(i);
                if (!store.put(KeySpace::content_verdict, key, key)) {
                    ++failed_puts;
                }
            }
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    CHECK(failed_puts.load() == 0);
    REQUIRE(store.sync());
    int count = 0;
    REQUIRE(store.for_each(KeySpace::content_verdict, [&](std::string_view key, std::string_view value) {
        CHECK(key == value);
        ++count;
        return true;
    }));
    CHECK(count == 1000);
}

TEST_CASE("open_rocksdb_store") {
    auto dir = TempDir::create("coldscan-test");
    REQUIRE(dir);
    const auto folder = dir->path() / "cache";
    SECTION("what was synced is there after reopening") {
        {
            auto store = open_rocksdb_store(folder);
            REQUIRE(store);
            REQUIRE((*store)->put(KeySpace::content_verdict, "digest", "CLEAN"));
            REQUIRE((*store)->sync());
        }
        auto reopened = open_rocksdb_store(folder);
        REQUIRE(reopened);
        CHECK(value_of(**reopened, KeySpace::content_verdict, "digest") == "CLEAN");
    }
    SECTION("a second open of a store in use is refused, not shared") {
        auto first = open_rocksdb_store(folder);
        REQUIRE(first);
        auto second = open_rocksdb_store(folder);
        REQUIRE_FALSE(second);
        CHECK(second.error().code == Errc::io);
        CHECK(second.error().message.find("lock") != std::string::npos);
    }
    SECTION("a place that cannot hold a store is an io error") {
        test::write_file(dir->path() / "a-file", "not a folder");
        auto store = open_rocksdb_store(dir->path() / "a-file");
        REQUIRE_FALSE(store);
        CHECK(store.error().code == Errc::io);
    }
    SECTION("a store made before the jobs, signature_sets and content_places key spaces existed opens, keeps "
            "its records, and gains them") {
        make_raw_store(folder, {"file_identity", "content_verdict", "meta"}, "content_verdict", "digest",
                       "CLEAN");
        {
            auto store = open_rocksdb_store(folder);
            REQUIRE(store);
            CHECK(value_of(**store, KeySpace::content_verdict, "digest") == "CLEAN");
            REQUIRE((*store)->put(KeySpace::jobs, "job", "queued"));
            REQUIRE((*store)->sync());
        }
        CHECK(raw_column_families(folder) == std::vector<std::string>{"content_places", "content_verdict",
                                                                      "default", "file_identity", "jobs",
                                                                      "meta", "signature_sets"});
        auto reopened = open_rocksdb_store(folder);
        REQUIRE(reopened);
        CHECK(value_of(**reopened, KeySpace::jobs, "job") == "queued");
        CHECK(value_of(**reopened, KeySpace::content_verdict, "digest") == "CLEAN");
    }
    SECTION("a store with a column family this version does not know (a newer one's) opens") {
        make_raw_store(folder, {"file_identity", "content_verdict", "meta", "jobs", "from_the_future"},
                       "from_the_future", "k", "v");
        {
            auto store = open_rocksdb_store(folder);
            REQUIRE(store);
            REQUIRE((*store)->put(KeySpace::meta, "k", "ours"));
            CHECK(value_of(**store, KeySpace::meta, "k") == "ours");
            CHECK_FALSE(value_of(**store, KeySpace::jobs, "k").has_value());
        }
        CHECK(raw_value(folder, "from_the_future", "k") == "v");
    }
    SECTION("a store with a damaged CURRENT file does not open") {
        {
            auto store = open_rocksdb_store(folder);
            REQUIRE(store);
        }
        test::write_file(folder / "CURRENT", "MANIFEST-999999\n");
        auto store = open_rocksdb_store(folder);
        REQUIRE_FALSE(store);
        CHECK(store.error().code == Errc::corrupt); // a file the store names is missing: damage
    }
}

namespace {

std::vector<std::filesystem::path> files_ending(const std::filesystem::path& folder, std::string_view suffix,
                                                std::string_view prefix = "") {
    std::vector<std::filesystem::path> out;
    for (const auto& entry : std::filesystem::directory_iterator(folder)) {
        const auto name = entry.path().filename().string();
        if (name.starts_with(prefix) && name.ends_with(suffix)) {
            out.push_back(entry.path());
        }
    }
    std::sort(out.begin(), out.end());
    return out;
}

// 300 verdict-sized records, keys "k000".."k299", values that tell their key.
void fill(KvStore& store) {
    for (int i = 0; i < 300; ++i) {
        const std::string key = "k" + std::to_string(1000 + i).substr(1);
        REQUIRE(store.put(KeySpace::content_verdict, key, key + ":" + std::string(200, 'v')));
    }
}

} // namespace

TEST_CASE("open_rocksdb_store on a damaged store") {
    auto dir = TempDir::create("coldscan-test");
    REQUIRE(dir);
    const auto folder = dir->path() / "cache";
    SECTION("flipped bytes in a table file: reads that reach them are corrupt, never another value") {
        {
            auto store = open_rocksdb_store(folder);
            REQUIRE(store);
            fill(**store);
        } // closed: flushed into a table file
        const auto tables = files_ending(folder, ".sst");
        REQUIRE_FALSE(tables.empty());
        for (const auto& table : tables) {
            auto bytes = test::read_text(table);
            for (std::size_t i = bytes.size() / 8; i < bytes.size() / 2; i += 97) {
                bytes[i] = static_cast<char>(~bytes[i]);
            }
            test::write_file(table, bytes);
        }
        auto store = open_rocksdb_store(folder);
        REQUIRE(store);
        int corrupt = 0;
        for (int i = 0; i < 300; ++i) {
            const std::string key = "k" + std::to_string(1000 + i).substr(1);
            auto value = (*store)->get(KeySpace::content_verdict, key);
            if (!value) {
                CHECK(value.error().code == Errc::corrupt);
                ++corrupt;
            } else {
                CHECK(*value == std::optional<std::string>(key + ":" + std::string(200, 'v')));
            }
        }
        CHECK(corrupt > 0);
    }
    SECTION("a write-ahead log cut short: the records before the cut, and open_problem() says so") {
        const auto copy = dir->path() / "crashed";
        {
            auto store = open_rocksdb_store(folder);
            REQUIRE(store);
            fill(**store);
            REQUIRE((*store)->sync());
            // What a kill -9 leaves: the files as they are now, memtables never flushed.
            std::filesystem::copy(folder, copy);
        }
        std::filesystem::remove(copy / "LOCK");
        const auto logs = files_ending(copy, ".log");
        REQUIRE(logs.size() == 1);
        const auto size = std::filesystem::file_size(logs[0]);
        REQUIRE(size > 30000);
        // Inside a record (the records are all of one size: a cut at half would fall between two, which no
        // reader can tell from a log that ended there).
        std::filesystem::resize_file(logs[0], size / 2 + 101);
        auto store = open_rocksdb_store(copy);
        REQUIRE(store);
        CHECK((*store)->open_problem().find("write-ahead log") != std::string::npos);
        CHECK(value_of(**store, KeySpace::content_verdict, "k000") == "k000:" + std::string(200, 'v'));
        CHECK_FALSE(value_of(**store, KeySpace::content_verdict, "k299").has_value());
    }
    SECTION("a clean store has no open problem") {
        {
            auto store = open_rocksdb_store(folder);
            REQUIRE(store);
            fill(**store);
        }
        auto store = open_rocksdb_store(folder);
        REQUIRE(store);
        CHECK((*store)->open_problem().empty());
        CHECK(value_of(**store, KeySpace::content_verdict, "k299").has_value());
    }
    SECTION("a MANIFEST cut short is corrupt, and its table files are left alone") {
        {
            auto store = open_rocksdb_store(folder);
            REQUIRE(store);
            fill(**store);
        }
        const auto tables = files_ending(folder, ".sst");
        REQUIRE_FALSE(tables.empty());
        const auto manifests = files_ending(folder, "", "MANIFEST-");
        REQUIRE(manifests.size() == 1);
        std::filesystem::resize_file(manifests[0], 60);
        auto store = open_rocksdb_store(folder);
        REQUIRE_FALSE(store);
        CHECK(store.error().code == Errc::corrupt);
        CHECK(files_ending(folder, ".sst") == tables);
    }
    SECTION("a missing CURRENT is corrupt, not a new empty store") {
        {
            auto store = open_rocksdb_store(folder);
            REQUIRE(store);
            fill(**store);
        }
        std::filesystem::remove(folder / "CURRENT");
        auto store = open_rocksdb_store(folder);
        REQUIRE_FALSE(store);
        CHECK(store.error().code == Errc::corrupt);
        CHECK(store.error().message.find("CURRENT") != std::string::npos);
    }
}
