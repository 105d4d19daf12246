#include "coldscan/fleet/fleet_schema.hpp"
#include "coldscan/fleet/pg_verdict_store.hpp"
#include "test_fleet_support.hpp"

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
