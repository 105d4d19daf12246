#include "coldscan/fleet/fleet_schema.hpp"
#include "test_fleet_support.hpp"

#include <thread>
#include <vector>

using coldscan::Errc;
using coldscan::fleet::migrate_schema;
using coldscan::fleet::PgConnection;
using coldscan::fleet::schema_version;
using coldscan::test::TestPostgres;

namespace {

int stored_version(PgConnection& db) {
    auto rows = db.exec("SELECT version FROM coldscan_schema");
    REQUIRE(rows.has_value());
    REQUIRE(rows->size() == 1);
    return std::stoi(*rows->rows()[0][0]);
}

} // namespace

TEST_CASE("migrate_schema creates the tables once", "[postgres]") {
    auto db = PgConnection::open({.uri = TestPostgres::instance().fresh_database()});
    REQUIRE(db.has_value());
    REQUIRE(schema_version() >= 1);

    auto first = migrate_schema(*db);
    REQUIRE(first.has_value());
    CHECK(*first == 0);
    CHECK(stored_version(*db) == schema_version());
    auto nodes = db->exec("INSERT INTO coldscan_nodes (name, instance, version, lease_seconds) "
                          "VALUES ($1, $2, $3, 30) RETURNING heartbeat_at",
                          {"node-a", "i-1", "0.1.0"});
    REQUIRE(nodes.has_value());
    CHECK(nodes->size() == 1);

    auto again = migrate_schema(*db);
    REQUIRE(again.has_value());
    CHECK(*again == schema_version());
    CHECK(db->exec("SELECT name FROM coldscan_nodes")->size() == 1); // nothing re-created
}

TEST_CASE("migrate_schema from nodes starting at once: one migrates, the others wait and find it done",
          "[postgres]") {
    const std::string uri = TestPostgres::instance().fresh_database();
    constexpr int k_nodes = 6;
    std::vector<PgConnection> connections;
    for (int i = 0; i < k_nodes; ++i) {
        auto db = PgConnection::open({.uri = uri});
        REQUIRE(db.has_value());
        connections.push_back(std::move(*db));
    }
    std::vector<coldscan::Expected<int>> found(k_nodes, coldscan::Expected<int>(-1));
    std::vector<std::thread> nodes;
    for (int i = 0; i < k_nodes; ++i) {
        nodes.emplace_back([&, i] {
            found[static_cast<std::size_t>(i)] = migrate_schema(connections[static_cast<std::size_t>(i)]);
        });
    }
    for (auto& node : nodes) {
        node.join();
    }
    int empty = 0;
    for (const auto& result : found) {
        INFO((result ? "" : result.error().message));
        REQUIRE(result.has_value());
        CHECK((*result == 0 || *result == schema_version()));
        empty += *result == 0 ? 1 : 0;
    }
    CHECK(empty == 1);
    CHECK(stored_version(connections.front()) == schema_version());
}

TEST_CASE("migrate_schema refuses a database a newer coldscan migrated", "[postgres]") {
    auto db = PgConnection::open({.uri = TestPostgres::instance().fresh_database()});
    REQUIRE(db.has_value());
    REQUIRE(migrate_schema(*db).has_value());
    const int newer = schema_version() + 1;
    REQUIRE(
        db->exec("UPDATE coldscan_schema SET version = $1::integer", {std::to_string(newer)}).has_value());

    auto refused = migrate_schema(*db);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().code == Errc::unsupported);
    CHECK(refused.error().message.find("upgrade this node") != std::string::npos);
    CHECK(stored_version(*db) == newer); // untouched, and the transaction was rolled back
    CHECK(db->exec("SELECT 1")->size() == 1);
}
