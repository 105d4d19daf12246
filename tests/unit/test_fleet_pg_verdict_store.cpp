#include "coldscan/common/sha256.hpp"
#include "coldscan/fleet/fleet_schema.hpp"
#include "coldscan/fleet/pg_verdict_store.hpp"
#include "coldscan/scanner/set_lineage.hpp"
#include "test_fleet_support.hpp"

#include <algorithm>
#include <thread>
#include <vector>

using coldscan::fleet::migrate_schema;
using coldscan::fleet::PgVerdictStore;
using coldscan::scanner::KeySpace;
using coldscan::scanner::open_memory_store;
using coldscan::test::connect_to;
using coldscan::test::TestPostgres;

TEST_CASE("PgVerdictStore: a verdict one node commits is found by another, and only verdicts are shared",
          "[postgres]") {
    const std::string uri = TestPostgres::instance().fresh_database();
    auto admin = connect_to(uri);
    REQUIRE(migrate_schema(admin).has_value());
    std::shared_ptr<coldscan::scanner::KvStore> local_a = open_memory_store();
    std::shared_ptr<coldscan::scanner::KvStore> local_b = open_memory_store();
    PgVerdictStore a(local_a, connect_to(uri), "scan-a");
    PgVerdictStore b(local_b, connect_to(uri), "scan-b");
    const std::string key("\x00\x01verdict-key\xff", 15);
    const std::string value("\x00clean\x80\x7f", 8);
    REQUIRE(a.put(KeySpace::content_verdict, key, value).has_value());
    REQUIRE(a.put(KeySpace::file_identity, key, "identity").has_value());
    auto before_sync = b.get(KeySpace::content_verdict, key);
    REQUIRE(before_sync.has_value());
    CHECK_FALSE(before_sync->has_value()); // buffered until a's scan commits (sync)
    REQUIRE(a.sync().has_value());

    auto found = b.get(KeySpace::content_verdict, key);
    REQUIRE(found.has_value());
    REQUIRE(found->has_value());
    CHECK(**found == value);
    CHECK(b.shared_hits() == 1);
    CHECK(**local_b->get(KeySpace::content_verdict, key) == value); // kept locally: the next lookup is local
    CHECK(b.get(KeySpace::content_verdict, key).value() == value);
    CHECK(b.shared_hits() == 1);
    CHECK_FALSE(b.get(KeySpace::file_identity, key)->has_value()); // a node's own

    // The table is gone (the database is away, say): a lookup is a miss, never an error.
    REQUIRE(admin.exec("DROP TABLE coldscan_verdicts").has_value());
    PgVerdictStore c(open_memory_store(), connect_to(uri), "scan-c");
    auto missing = c.get(KeySpace::content_verdict, key);
    REQUIRE(missing.has_value());
    CHECK_FALSE(missing->has_value());
    REQUIRE(c.put(KeySpace::content_verdict, key, value).has_value());
    CHECK(c.sync().has_value()); // the lost batch is a warning
}

TEST_CASE("PgVerdictStore: misses that arrive while a lookup is under way are asked in one batch",
          "[postgres]") {
    const std::string uri = TestPostgres::instance().fresh_database();
    auto admin = connect_to(uri);
    REQUIRE(migrate_schema(admin).has_value());
    {
        PgVerdictStore writer(open_memory_store(), connect_to(uri), "scan-a");
        for (int i = 0; i < 8; i += 2) { // verdicts for the even keys only
            REQUIRE(writer.put(KeySpace::content_verdict, "key-" + std::to_string(i), "v" + std::to_string(i))
                        .has_value());
        }
        REQUIRE(writer.sync().has_value());
    }
    PgVerdictStore reader(open_memory_store(), connect_to(uri), "scan-b");
    // Another session holds the table: the first lookup waits in the database while the others pile up.
    auto holder = connect_to(uri);
    REQUIRE(holder.exec("BEGIN").has_value());
    REQUIRE(holder.exec("LOCK TABLE coldscan_verdicts IN ACCESS EXCLUSIVE MODE").has_value());
    std::vector<std::optional<std::string>> answers(8);
    std::vector<std::thread> lookups;
    const auto look_up = [&](int i) {
        auto got = reader.get(KeySpace::content_verdict, "key-" + std::to_string(i));
        answers[static_cast<std::size_t>(i)] = got ? *got : std::optional<std::string>("error");
    };
    // The first to miss asks for its key alone and waits on the lock; the seven others pile up behind it.
    for (int i = 0; i < 8; ++i) {
        lookups.emplace_back(look_up, i);
    }
    while (reader.waiting_lookups() != 7) {
        std::this_thread::yield();
    }
    REQUIRE(holder.exec("COMMIT").has_value());
    for (auto& thread : lookups) {
        thread.join();
    }
    CHECK(reader.lookup_batches() == 2);
    CHECK(reader.looked_up_keys() == 8);
    for (int i = 0; i < 8; ++i) {
        INFO("key-" << i);
        const auto& answer = answers[static_cast<std::size_t>(i)];
        if (i % 2 == 0) {
            REQUIRE(answer.has_value());
            CHECK(*answer == "v" + std::to_string(i));
        } else {
            CHECK_FALSE(answer.has_value());
        }
    }
    CHECK(reader.shared_hits() == 4);
}

TEST_CASE("PgVerdictStore: a node re-checks a verdict by the changes from a set another node recorded",
          "[postgres]") {
    using coldscan::scanner::SetLineage;
    using coldscan::signatures::CatalogueLine;
    using coldscan::signatures::LineKind;
    const std::string uri = TestPostgres::instance().fresh_database();
    auto admin = connect_to(uri);
    REQUIRE(migrate_schema(admin).has_value());
    const auto line = [](const std::string& text) {
        coldscan::Sha256 hasher;
        hasher.update(text);
        return CatalogueLine{hasher.finish(), LineKind::hash};
    };
    std::vector<CatalogueLine> yesterday;
    for (int i = 0; i < 3000; ++i) {
        yesterday.push_back(line("sig-" + std::to_string(i)));
    }
    std::ranges::sort(yesterday);
    auto today = yesterday;
    const auto added = line("new-sig");
    today.insert(std::ranges::lower_bound(today, added), added);
    {
        PgVerdictStore a(open_memory_store(), connect_to(uri), "scan-a");
        SetLineage lineage(a);
        REQUIRE(lineage.record("yesterday", yesterday, 1000).has_value());
        REQUIRE(a.sync().has_value());
    }
    // scan-b never loaded yesterday's set: only the fleet's lineage tells it what changed since.
    PgVerdictStore b(open_memory_store(), connect_to(uri), "scan-b");
    SetLineage shared(b);
    REQUIRE(shared.record("today", today, 2000).has_value());
    auto change = shared.change("yesterday", "today");
    REQUIRE(change.has_value());
    REQUIRE(*change != nullptr);
    CHECK((*change)->delta.added == std::vector<CatalogueLine>{added});
    CHECK((*change)->delta.removed.empty());

    auto alone_store = open_memory_store();
    SetLineage alone(*alone_store);
    REQUIRE(alone.record("today", today, 2000).has_value());
    auto unknown = alone.change("yesterday", "today");
    REQUIRE(unknown.has_value());
    CHECK(*unknown == nullptr); // without the fleet: a miss, the content is scanned
}
