#include "coldscan/fleet/fleet_schema.hpp"
#include "coldscan/fleet/pg_node_directory.hpp"
#include "test_fleet_support.hpp"

using coldscan::Errc;
using coldscan::fleet::migrate_schema;
using coldscan::fleet::PgConnection;
using coldscan::fleet::PgNodeDirectory;
using coldscan::scheduler::NodeView;
using coldscan::test::connect_to;
using coldscan::test::TestPostgres;

namespace {

NodeView node_view(const std::string& name, std::size_t running) {
    NodeView view;
    view.name = name;
    view.version = "0.1.0";
    view.signature_set = "sigs-" + name;
    view.started = std::chrono::system_clock::now() - std::chrono::seconds(90);
    view.running_jobs = running;
    view.datastores = {"nfs-a", "it's \"quoted\""};
    return view;
}

} // namespace

TEST_CASE("PgNodeDirectory: every node sees every node, and a node whose lease ran out is not alive",
          "[postgres]") {
    const std::string uri = TestPostgres::instance().fresh_database();
    auto admin = connect_to(uri);
    REQUIRE(migrate_schema(admin).has_value());
    PgNodeDirectory a(connect_to(uri), "scan-a", std::chrono::seconds(30));
    PgNodeDirectory b(connect_to(uri), "scan-b", std::chrono::seconds(30));
    REQUIRE(a.claim(node_view("scan-a", 2)).has_value());
    REQUIRE(b.claim(node_view("scan-b", 0)).has_value());

    auto seen = b.nodes();
    REQUIRE(seen.has_value());
    REQUIRE(seen->size() == 2);
    const NodeView& first = seen->front();
    CHECK(first.name == "scan-a");
    CHECK(first.signature_set == "sigs-scan-a");
    CHECK(first.running_jobs == 2);
    CHECK(first.datastores == std::vector<std::string>{"nfs-a", "it's \"quoted\""});
    CHECK(first.alive);
    const auto age = std::chrono::system_clock::now() - first.started;
    CHECK(age >= std::chrono::seconds(89));
    CHECK(age < std::chrono::seconds(200));
    CHECK(std::chrono::abs(std::chrono::system_clock::now() - first.heartbeat) < std::chrono::seconds(60));

    // scan-a stops reporting: backdate its heartbeat past its lease.
    REQUIRE(
        admin
            .exec("UPDATE coldscan_nodes SET heartbeat_at = now() - interval '31 seconds' WHERE name = $1",
                  {"scan-a"})
            .has_value());
    seen = a.nodes();
    REQUIRE(seen.has_value());
    CHECK_FALSE(seen->at(0).alive);
    CHECK(seen->at(1).alive);
    // Its next report makes it alive again.
    REQUIRE(a.report(node_view("scan-a", 1)).has_value());
    CHECK(b.nodes()->at(0).alive);
    CHECK(b.nodes()->at(0).running_jobs == 1);
}

TEST_CASE("PgNodeDirectory: a node name belongs to one live process", "[postgres]") {
    const std::string uri = TestPostgres::instance().fresh_database();
    auto admin = connect_to(uri);
    REQUIRE(migrate_schema(admin).has_value());
    PgNodeDirectory first(connect_to(uri), "scan-a", std::chrono::seconds(30));
    PgNodeDirectory second(connect_to(uri), "scan-a", std::chrono::seconds(30));
    REQUIRE(first.claim(node_view("scan-a", 0)).has_value());

    auto refused = second.claim(node_view("scan-a", 0));
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().code == Errc::forbidden);
    CHECK(refused.error().message.find("scan-a") != std::string::npos);

    // The first one's lease runs out: the second takes the name, and the first is now refused.
    REQUIRE(admin.exec("UPDATE coldscan_nodes SET heartbeat_at = now() - interval '1 minute'").has_value());
    REQUIRE(second.claim(node_view("scan-a", 3)).has_value());
    auto late = first.report(node_view("scan-a", 0));
    REQUIRE_FALSE(late.has_value());
    CHECK(late.error().code == Errc::forbidden);
    CHECK(first.nodes()->at(0).running_jobs == 3);
}

TEST_CASE("PgNodeDirectory reconnects after losing its connection", "[postgres]") {
    const std::string uri = TestPostgres::instance().fresh_database();
    auto admin = connect_to(uri);
    REQUIRE(migrate_schema(admin).has_value());
    PgNodeDirectory directory(connect_to(uri), "scan-a", std::chrono::seconds(30));
    REQUIRE(directory.claim(node_view("scan-a", 0)).has_value());
    REQUIRE(admin
                .exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = current_database() AND pid <> pg_backend_pid()")
                .has_value());
    auto seen = directory.nodes();
    INFO((seen ? "" : seen.error().message));
    REQUIRE(seen.has_value());
    CHECK(seen->size() == 1);
}
