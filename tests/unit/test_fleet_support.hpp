// A throwaway PostgreSQL server for the fleet tests (tests/fixtures/postgres-server.sh, Debian's
// postgresql-15), started at first use and stopped when the test process ends; each test gets a database of
// its own. No mock: the statements run on a real server.
#pragma once

#include "coldscan/common/subprocess.hpp"
#include "coldscan/common/temp_dir.hpp"
#include "coldscan/fleet/pg_connection.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <unistd.h>

namespace coldscan::test {

class TestPostgres {
public:
    static TestPostgres& instance() {
        static TestPostgres server;
        return server;
    }
    ~TestPostgres() {
        if (m_dir) {
            (void)run_bounded({script(), "stop", (m_dir->path() / "server").string()}, limits());
        }
    }
    // A URI of a new, empty database on the server.
    std::string fresh_database() {
        const std::string name = "t" + std::to_string(::getpid()) + "_" + std::to_string(m_next++);
        auto admin = fleet::PgConnection::open({.uri = m_uri});
        REQUIRE(admin.has_value());
        REQUIRE(admin->exec("CREATE DATABASE " + name).has_value());
        return uri_of(name);
    }
    [[nodiscard]] std::string uri_of(const std::string& database) const {
        std::string uri = m_uri;
        uri.replace(uri.find("/postgres?"), std::string("/postgres?").size(), "/" + database + "?");
        return uri;
    }

private:
    TestPostgres() {
        // A server the caller started (many test processes can share one): COLDSCAN_TEST_PG_URI.
        if (const char* given = std::getenv("COLDSCAN_TEST_PG_URI"); given != nullptr && *given != '\0') {
            m_uri = given;
            return;
        }
        auto dir = TempDir::create("coldscan-pg");
        REQUIRE(dir.has_value());
        m_dir = std::make_unique<TempDir>(std::move(*dir));
        // As root the server runs as nobody (postgres-server.sh), who must reach its folder inside ours.
        std::filesystem::permissions(m_dir->path(), std::filesystem::perms::others_exec,
                                     std::filesystem::perm_options::add);
        auto started = run_bounded({script(), "start", (m_dir->path() / "server").string()}, limits());
        REQUIRE(started.has_value());
        INFO(started->err);
        REQUIRE(started->exit_code == 0);
        m_uri = started->out.substr(0, started->out.find('\n'));
    }
    static std::string script() { return COLDSCAN_SOURCE_DIR "/tests/fixtures/postgres-server.sh"; }
    static ProcessLimits limits() {
        ProcessLimits l;
        l.wall_time = std::chrono::seconds(120);
        // The server is a daemon that inherits these limits: room for the whole test process's life.
        l.cpu_time = std::chrono::hours(24);
        l.address_space_bytes = 64ULL << 30;
        return l;
    }
    std::unique_ptr<TempDir> m_dir;
    std::string m_uri;
    std::atomic<int> m_next{0};
};

// A connection the test needs (fails the test when there is none).
inline fleet::PgConnection connect_to(const std::string& uri) {
    auto db = fleet::PgConnection::open({.uri = uri});
    REQUIRE(db.has_value());
    return std::move(*db);
}

} // namespace coldscan::test
