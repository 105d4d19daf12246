// The fleet's tables in PostgreSQL, created and migrated when a node starts (docs/fleet.md). Each migration
// runs once, in order, in one transaction under an advisory lock: nodes that start at the same moment wait
// for each other, and the one that comes second finds the work done. A database migrated by a newer coldscan
// (a version this one does not know) is refused, never written. Thread rule: free functions over a connection
// the caller owns (one thread at a time).
#pragma once
#include "coldscan/common/error.hpp"
#include "coldscan/fleet/pg_connection.hpp"

namespace coldscan::fleet {

// The schema version this coldscan writes.
[[nodiscard]] int schema_version() noexcept;

// Brings the database to schema_version(); returns the version it found (0: empty). Errc::unsupported: the
// database is newer than this coldscan; Errc::io: the server refused a statement.
[[nodiscard]] Expected<int> migrate_schema(PgConnection& connection);

} // namespace coldscan::fleet
