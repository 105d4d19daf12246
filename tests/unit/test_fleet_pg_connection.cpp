#include "coldscan/common/temp_dir.hpp"
#include "coldscan/fleet/pg_connection.hpp"
#include "test_fleet_support.hpp"
#include "test_support.hpp"

#include <sys/stat.h>

using coldscan::Errc;
using coldscan::fleet::PgConnection;
using coldscan::fleet::redacted_uri;
using coldscan::fleet::sqlstate_of;
using coldscan::test::TestPostgres;

TEST_CASE("PgConnection::exec sends values as parameters and reads rows back", "[postgres]") {
    auto db = PgConnection::open({.uri = TestPostgres::instance().fresh_database()});
    REQUIRE(db.has_value());
    REQUIRE(db->exec("CREATE TABLE t (id integer PRIMARY KEY, name text)").has_value());

    // A value that would break SQL spliced into the text stays a value.
    const std::string hostile = "x'); DROP TABLE t; --";
    auto inserted = db->exec("INSERT INTO t VALUES ($1::integer, $2), ($3::integer, $4)",
                             {"1", hostile, "2", std::nullopt});
    REQUIRE(inserted.has_value());
    CHECK(inserted->affected() == 2);

    auto rows = db->exec("SELECT id, name FROM t ORDER BY id");
    REQUIRE(rows.has_value());
    REQUIRE(rows->size() == 2);
    CHECK(rows->columns() == std::vector<std::string>{"id", "name"});
    CHECK(rows->at(0, "name").value() == hostile);
    CHECK(rows->at(1, "id").value() == "2");
    CHECK_FALSE(rows->at(1, "name").value().has_value()); // SQL NULL
    CHECK(rows->at(0, "missing").error().code == Errc::not_found);
    CHECK(rows->at(5, "id").error().code == Errc::not_found);
}

TEST_CASE("PgConnection::exec names the SQLSTATE of a refused statement", "[postgres]") {
    auto db = PgConnection::open({.uri = TestPostgres::instance().fresh_database()});
    REQUIRE(db.has_value());
    REQUIRE(
        db->exec_script("CREATE TABLE t (id integer PRIMARY KEY); INSERT INTO t VALUES (1);").has_value());

    auto duplicate = db->exec("INSERT INTO t VALUES ($1::integer)", {"1"});
    REQUIRE_FALSE(duplicate.has_value());
    CHECK(duplicate.error().code == Errc::io);
    CHECK(sqlstate_of(duplicate.error()) == "23505"); // unique_violation
    auto syntax = db->exec("SELEC 1");
    REQUIRE_FALSE(syntax.has_value());
    CHECK(sqlstate_of(syntax.error()) == "42601");
    CHECK(sqlstate_of(coldscan::Error{Errc::io, "plain"}).empty());
    // The connection is still usable after a refused statement.
    CHECK(db->exec("SELECT 1")->size() == 1);
}

TEST_CASE("PgConnection notices a lost connection and reconnects", "[postgres]") {
    const std::string uri = TestPostgres::instance().fresh_database();
    auto db = PgConnection::open({.uri = uri});
    auto admin = PgConnection::open({.uri = uri});
    REQUIRE(db.has_value());
    REQUIRE(admin.has_value());
    auto pid = db->exec("SELECT pg_backend_pid()");
    REQUIRE(pid.has_value());
    REQUIRE(admin->exec("SELECT pg_terminate_backend($1::integer)", {pid->rows()[0][0]}).has_value());

    auto lost = db->exec("SELECT 1");
    REQUIRE_FALSE(lost.has_value());
    const std::string_view state = sqlstate_of(lost.error());
    CHECK((state == "08006" || state == "57P01")); // lost, or told so by the server (admin_shutdown)
    CHECK_FALSE(db->connected());
    REQUIRE(db->reconnect().has_value());
    CHECK(db->connected());
    CHECK(db->exec("SELECT 1")->size() == 1);
}

TEST_CASE("PgConnection::open reports an unreachable server without the password", "[postgres]") {
    auto dir = coldscan::TempDir::create("coldscan-pg-test");
    REQUIRE(dir.has_value());
    const auto secret_file = dir->path() / "password";
    coldscan::test::write_file(secret_file, "s3cret-value\n");
    REQUIRE(::chmod(secret_file.c_str(), 0600) == 0);
    const std::string nowhere =
        "postgresql:///postgres?host=" + (dir->path() / "no-server").string() + "&user=coldscan";

    auto refused = PgConnection::open({.uri = nowhere, .password_file = secret_file});
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().code == Errc::io);
    CHECK(refused.error().message.find("no-server") != std::string::npos);
    CHECK(refused.error().message.find("s3cret") == std::string::npos);

    // A password file others can read is refused before anything is sent.
    REQUIRE(::chmod(secret_file.c_str(), 0644) == 0);
    auto exposed = PgConnection::open({.uri = nowhere, .password_file = secret_file});
    REQUIRE_FALSE(exposed.has_value());
    CHECK(exposed.error().code == Errc::invalid_argument);
    CHECK(exposed.error().message.find("chmod o-rw") != std::string::npos);
}

TEST_CASE("redacted_uri hides a password in the user part and in the query") {
    CHECK(redacted_uri("postgresql://scan:pa55@db.example:5432/coldscan") ==
          "postgresql://scan:***@db.example:5432/coldscan");
    CHECK(redacted_uri("postgresql://db.example/coldscan?user=scan&password=pa55&sslmode=require") ==
          "postgresql://db.example/coldscan?user=scan&password=***&sslmode=require");
    CHECK(redacted_uri("postgresql://scan@db.example/coldscan") == "postgresql://scan@db.example/coldscan");
    CHECK(redacted_uri("postgresql:///coldscan?host=/run/postgresql") ==
          "postgresql:///coldscan?host=/run/postgresql");
}
