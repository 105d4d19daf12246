#include "coldscan/fleet/pg_connection.hpp"

#include "coldscan/common/log.hpp"
#include "coldscan/common/text.hpp"

#include <algorithm>
#include <fstream>
#include <libpq-fe.h>
#include <sstream>
#include <sys/stat.h>

namespace coldscan::fleet {
namespace {

constexpr std::string_view k_sqlstate_prefix = "SQLSTATE ";
constexpr std::string_view k_connection_lost = "08006";

struct ConnDeleter {
    void operator()(PGconn* conn) const noexcept { PQfinish(conn); }
};
struct ResultDeleter {
    void operator()(PGresult* result) const noexcept { PQclear(result); }
};
using ConnPtr = std::unique_ptr<PGconn, ConnDeleter>;
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

Expected<std::string> read_password(const std::filesystem::path& file) {
    struct stat info {};
    if (::stat(file.c_str(), &info) != 0) {
        return make_error(Errc::invalid_argument, errno_message("[fleet] password_file " + file.string()));
    }
    if ((info.st_mode & (S_IROTH | S_IWOTH)) != 0) {
        return make_error(Errc::invalid_argument, "[fleet] password_file " + file.string() +
                                                      ": other users can read it (chmod o-rw " +
                                                      file.string() + ")");
    }
    std::ifstream in(file);
    std::string password;
    if (!in || !std::getline(in, password)) {
        return make_error(Errc::invalid_argument,
                          "[fleet] password_file " + file.string() + ": cannot read it");
    }
    return password;
}

// libpq's messages end with a newline and may span lines: one line for ours.
std::string one_line(const char* message) {
    std::string text = message != nullptr ? message : "";
    std::replace(text.begin(), text.end(), '\n', ' ');
    while (!text.empty() && text.back() == ' ') {
        text.pop_back();
    }
    return printable(text);
}

// The server's notices ("relation ... already exists, skipping") go to the debug log, not to stderr.
// Called from libpq's C code: nothing may escape it.
extern "C" void on_notice(void* /*context*/, const char* message) {
    try {
        spdlog::debug("PostgreSQL: {}", one_line(message));
    } catch (...) {
    }
}

std::string server_of(PGconn* conn) {
    const char* host = PQhost(conn);
    const char* port = PQport(conn);
    const char* db = PQdb(conn);
    return std::string(host != nullptr ? host : "?") + ":" + (port != nullptr ? port : "?") + "/" +
           (db != nullptr ? db : "?");
}

} // namespace

struct PgConnection::Impl {
    PgConnectOptions options;
    std::string password;
    ConnPtr conn;
    std::string server;
};

PgResult::PgResult(std::vector<std::string> columns, std::vector<Row> rows, std::uint64_t affected)
    : m_columns(std::move(columns)), m_rows(std::move(rows)), m_affected(affected) {}

Expected<std::optional<std::string>> PgResult::at(std::size_t row, std::string_view column) const {
    const auto found = std::find(m_columns.begin(), m_columns.end(), column);
    if (found == m_columns.end() || row >= m_rows.size()) {
        return make_error(Errc::not_found,
                          "no value at row " + std::to_string(row) + ", column " + std::string(column));
    }
    return m_rows[row][static_cast<std::size_t>(found - m_columns.begin())];
}

std::string PgResult::text(std::size_t row, std::string_view column) const {
    return at(row, column).value_or(std::nullopt).value_or("");
}

namespace {

Expected<ConnPtr> connect(const PgConnectOptions& options, const std::string& password) {
    const std::string timeout = std::to_string(options.connect_timeout.count());
    std::vector<const char*> keys = {"dbname", "application_name", "connect_timeout"};
    std::vector<const char*> values = {options.uri.c_str(), options.application_name.c_str(),
                                       timeout.c_str()};
    if (!password.empty()) {
        keys.push_back("password");
        values.push_back(password.c_str());
    }
    keys.push_back(nullptr);
    values.push_back(nullptr);
    ConnPtr conn(PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/1));
    if (!conn) {
        return make_error(Errc::io, "cannot connect to PostgreSQL: out of memory");
    }
    if (PQstatus(conn.get()) != CONNECTION_OK) {
        return make_error(Errc::io, "cannot connect to PostgreSQL at " + redacted_uri(options.uri) + ": " +
                                        one_line(PQerrorMessage(conn.get())));
    }
    PQsetNoticeProcessor(conn.get(), on_notice, nullptr);
    return conn;
}

} // namespace

Expected<PgConnection> PgConnection::open(const PgConnectOptions& options) {
    auto impl = std::make_unique<Impl>();
    impl->options = options;
    if (options.password_file) {
        auto password = read_password(*options.password_file);
        if (!password) {
            return std::unexpected(password.error());
        }
        impl->password = std::move(*password);
    }
    auto conn = connect(options, impl->password);
    if (!conn) {
        return std::unexpected(conn.error());
    }
    impl->server = server_of(conn->get());
    impl->conn = std::move(*conn);
    return PgConnection(std::move(impl));
}

PgConnection::PgConnection(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
PgConnection::PgConnection(PgConnection&&) noexcept = default;
PgConnection& PgConnection::operator=(PgConnection&&) noexcept = default;
PgConnection::~PgConnection() = default;

const std::string& PgConnection::server() const noexcept {
    return m_impl->server;
}

bool PgConnection::connected() const {
    return m_impl->conn && PQstatus(m_impl->conn.get()) == CONNECTION_OK;
}

Expected<PgResult> PgConnection::exec_reconnecting(std::string_view sql, const PgParams& params) {
    auto result = exec(sql, params);
    if (result || connected()) {
        return result;
    }
    if (auto reopened = reconnect(); !reopened) {
        return std::unexpected(reopened.error());
    }
    return exec(sql, params);
}

Expected<void> PgConnection::transaction(const std::function<Expected<void>()>& body) {
    for (int attempt = 0;; ++attempt) {
        if (!connected()) {
            if (auto reopened = reconnect(); !reopened) {
                return std::unexpected(reopened.error());
            }
        }
        auto begun = exec("BEGIN");
        Expected<void> done = begun ? body() : std::unexpected(begun.error());
        if (done) {
            if (auto committed = exec("COMMIT"); !committed) {
                done = std::unexpected(committed.error());
            } else {
                return {};
            }
        }
        if (connected()) {
            (void)exec("ROLLBACK"); // the error that made us stop is the one to report
            return done;
        }
        if (attempt > 0) {
            return done;
        }
    }
}

Expected<void> PgConnection::reconnect() {
    auto conn = connect(m_impl->options, m_impl->password);
    if (!conn) {
        return std::unexpected(conn.error());
    }
    m_impl->conn = std::move(*conn);
    return {};
}

namespace {

Error result_error(PGconn* conn, const PGresult* result) {
    if (PQstatus(conn) != CONNECTION_OK) {
        return Error{Errc::io,
                     std::string(k_sqlstate_prefix) + std::string(k_connection_lost) +
                         ": the connection to PostgreSQL is lost: " + one_line(PQerrorMessage(conn))};
    }
    const char* state = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
    const char* message = result != nullptr ? PQresultErrorMessage(result) : PQerrorMessage(conn);
    return Error{Errc::io, std::string(k_sqlstate_prefix) + (state != nullptr ? state : "XX000") + ": " +
                               one_line(message)};
}

PgResult to_result(const PGresult* result) {
    const int columns = PQnfields(result);
    const int rows = PQntuples(result);
    std::vector<std::string> names;
    names.reserve(static_cast<std::size_t>(columns));
    for (int c = 0; c < columns; ++c) {
        names.emplace_back(PQfname(result, c));
    }
    std::vector<PgResult::Row> values;
    values.reserve(static_cast<std::size_t>(rows));
    for (int r = 0; r < rows; ++r) {
        PgResult::Row row;
        row.reserve(static_cast<std::size_t>(columns));
        for (int c = 0; c < columns; ++c) {
            if (PQgetisnull(result, r, c) != 0) {
                row.emplace_back(std::nullopt);
            } else {
                row.emplace_back(std::string(PQgetvalue(result, r, c),
                                             static_cast<std::size_t>(PQgetlength(result, r, c))));
            }
        }
        values.push_back(std::move(row));
    }
    const char* tuples = PQcmdTuples(const_cast<PGresult*>(result));
    std::uint64_t affected = 0;
    if (tuples != nullptr && *tuples != '\0') {
        affected = std::stoull(tuples);
    }
    return PgResult(std::move(names), std::move(values), affected);
}

} // namespace

Expected<PgResult> PgConnection::exec(std::string_view sql, const PgParams& params) {
    if (!m_impl->conn) {
        return make_error(Errc::io, std::string(k_sqlstate_prefix) + std::string(k_connection_lost) +
                                        ": not connected");
    }
    const std::string statement(sql);
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& param : params) {
        values.push_back(param ? param->c_str() : nullptr);
    }
    ResultPtr result(PQexecParams(m_impl->conn.get(), statement.c_str(), static_cast<int>(values.size()),
                                  nullptr, values.data(), nullptr, nullptr, 0));
    const ExecStatusType status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        return std::unexpected(result_error(m_impl->conn.get(), result.get()));
    }
    return to_result(result.get());
}

Expected<void> PgConnection::exec_script(std::string_view sql) {
    if (!m_impl->conn) {
        return make_error(Errc::io, std::string(k_sqlstate_prefix) + std::string(k_connection_lost) +
                                        ": not connected");
    }
    const std::string script(sql);
    ResultPtr result(PQexec(m_impl->conn.get(), script.c_str()));
    const ExecStatusType status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        return std::unexpected(result_error(m_impl->conn.get(), result.get()));
    }
    return {};
}

std::string_view sqlstate_of(const Error& error) {
    const std::string_view message = error.message;
    if (!message.starts_with(k_sqlstate_prefix) || message.size() < k_sqlstate_prefix.size() + 5) {
        return {};
    }
    return message.substr(k_sqlstate_prefix.size(), 5);
}

std::string redacted_uri(std::string_view uri) {
    std::string out(uri);
    auto spans = uri_password_spans(uri);
    // From the last to the first, so that each replacement leaves the earlier offsets as they were.
    std::sort(spans.begin(), spans.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    for (const auto& [offset, length] : spans) {
        out.replace(offset, length, "***");
    }
    return out;
}

} // namespace coldscan::fleet
