// One connection to PostgreSQL (libpq), for fleet mode (docs/fleet.md). Statements are sent with the extended
// protocol, every value as a text parameter ($1, $2, ...): no value is ever spliced into SQL text.
// Thread rule: one thread at a time per connection (libpq's PGconn); results are plain data.
#pragma once
#include "coldscan/common/error.hpp"

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace coldscan::fleet {

struct PgConnectOptions {
    std::string uri{};                                    // libpq URI, without a password
    std::optional<std::filesystem::path> password_file{}; // the password alone (a trailing newline is cut)
    std::string application_name = "coldscan";            // pg_stat_activity shows it
    std::chrono::seconds connect_timeout{10};
};

// A statement's rows, every value as text (nullopt for SQL NULL).
class PgResult {
public:
    using Row = std::vector<std::optional<std::string>>;
    PgResult() = default;
    PgResult(std::vector<std::string> columns, std::vector<Row> rows, std::uint64_t affected);
    [[nodiscard]] std::size_t size() const noexcept { return m_rows.size(); }
    [[nodiscard]] bool empty() const noexcept { return m_rows.empty(); }
    [[nodiscard]] const std::vector<Row>& rows() const noexcept { return m_rows; }
    [[nodiscard]] const std::vector<std::string>& columns() const noexcept { return m_columns; }
    // The value at (row, column name); nullopt for NULL. Errc::not_found: no such column or row.
    [[nodiscard]] Expected<std::optional<std::string>> at(std::size_t row, std::string_view column) const;
    // The value at (row, column name), "" for NULL or no such column or row.
    [[nodiscard]] std::string text(std::size_t row, std::string_view column) const;
    [[nodiscard]] std::uint64_t affected() const noexcept { return m_affected; } // INSERT/UPDATE/DELETE rows

private:
    std::vector<std::string> m_columns;
    std::vector<Row> m_rows;
    std::uint64_t m_affected = 0;
};

using PgParams = std::vector<std::optional<std::string>>;

class PgConnection {
public:
    // Errc::invalid_argument: the password file is unreadable by us or readable by others; Errc::io: the
    // server cannot be reached or refuses us (the message names the server, never a password).
    [[nodiscard]] static Expected<PgConnection> open(const PgConnectOptions& options);
    PgConnection(PgConnection&&) noexcept;
    PgConnection& operator=(PgConnection&&) noexcept;
    ~PgConnection();

    // One statement. Errc::io with "SQLSTATE xxxxx: message" when the server refuses it (sqlstate_of reads
    // it back), or when the connection is gone (sqlstate "08006").
    [[nodiscard]] Expected<PgResult> exec(std::string_view sql, const PgParams& params = {});
    // exec(), and once more on a new connection when the connection was lost (the server restarted, the
    // network dropped it). Not inside a transaction: the new connection has none.
    [[nodiscard]] Expected<PgResult> exec_reconnecting(std::string_view sql, const PgParams& params = {});
    // BEGIN; body; COMMIT (ROLLBACK when body or COMMIT fails: that error is returned). When the connection
    // was lost meanwhile, once more on a new one (a COMMIT whose answer was lost may have taken effect:
    // bodies must find their work done and say so).
    [[nodiscard]] Expected<void> transaction(const std::function<Expected<void>()>& body);
    // Several statements without parameters (schema scripts), in one round trip.
    [[nodiscard]] Expected<void> exec_script(std::string_view sql);
    // The connection is up (false after the server went away; reconnect() tries again).
    [[nodiscard]] bool connected() const;
    [[nodiscard]] Expected<void> reconnect();
    // The server as "host:port/dbname" (no user, no password), for messages.
    [[nodiscard]] const std::string& server() const noexcept;

private:
    struct Impl;
    explicit PgConnection(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> m_impl;
};

// The SQLSTATE an exec error carries ("40001" for a serialization failure), or "" for other errors.
[[nodiscard]] std::string_view sqlstate_of(const Error& error);

// A libpq URI with any password in it replaced by "***" (for logs, though [fleet] refuses such URIs).
[[nodiscard]] std::string redacted_uri(std::string_view uri);

} // namespace coldscan::fleet
