#include "coldscan/fleet/fleet_schema.hpp"

#include <array>
#include <string>
#include <string_view>

namespace coldscan::fleet {
namespace {

// pg_advisory_xact_lock's key: "coldscan" in ASCII, so that other applications sharing the database do not
// collide with it by accident.
constexpr std::string_view k_lock_key = "7165064710858170734";

// Migration N brings the schema from version N-1 to N. Never edit one that has shipped: add the next.
constexpr std::array<std::string_view, 8> k_migrations = {
    // 1: the nodes of the fleet, each with its last heartbeat. instance: a random id per process, so that a
    // second process under a live node's name is refused.
    R"sql(
CREATE TABLE coldscan_nodes (
    name          text PRIMARY KEY,
    instance      text NOT NULL,
    version       text NOT NULL,
    signature_set text NOT NULL DEFAULT '',
    datastores    text[] NOT NULL DEFAULT '{}',
    running_jobs  integer NOT NULL DEFAULT 0,
    lease_seconds integer NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    heartbeat_at  timestamptz NOT NULL DEFAULT now()
);
)sql",
    // 2: the shared job queue. A running or paused job has a node, a lease (renewed by that node) and a
    // fencing number (fence, new at every claim): writes of its result and alerts name the fence, so a node
    // whose lease ran out and was taken over writes nothing. request: the JobRequest as JSON.
    R"sql(
CREATE SEQUENCE coldscan_fence;
CREATE TABLE coldscan_jobs (
    id              text PRIMARY KEY,
    request         text NOT NULL,
    target          text NOT NULL,
    target_identity text NOT NULL,
    signature_set   text NOT NULL,
    priority        text NOT NULL,
    host            text NOT NULL,
    datastore       text NOT NULL,
    estimated_bytes bigint NOT NULL DEFAULT 0,
    status          text NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text NOT NULL DEFAULT '',
    submitted_at    bigint NOT NULL,
    updated_at      bigint NOT NULL,
    node            text,
    fence           bigint NOT NULL DEFAULT 0,
    lease_until     timestamptz,
    report_path     text,
    report          text
);
CREATE INDEX coldscan_jobs_by_status ON coldscan_jobs (status, submitted_at, id);
CREATE INDEX coldscan_jobs_leased ON coldscan_jobs (host, datastore) WHERE status = 'running';
CREATE TABLE coldscan_alerts (
    alert_id text PRIMARY KEY,
    job      text NOT NULL,
    fence    bigint NOT NULL,
    node     text NOT NULL,
    alert    text NOT NULL,
    at       timestamptz NOT NULL DEFAULT now()
);
)sql",
    // 3: findings, each run's once (coldscan_finding_runs: the run id is the job's alert id, or that of a
    // failed attempt); written under the job's fence like its result.
    R"sql(
CREATE TABLE coldscan_finding_runs (
    run_id text PRIMARY KEY,
    job    text NOT NULL,
    fence  bigint NOT NULL,
    node   text NOT NULL
);
CREATE TABLE coldscan_findings (
    id            bigserial PRIMARY KEY,
    run_id        text NOT NULL REFERENCES coldscan_finding_runs (run_id),
    kind          text NOT NULL,
    image         text NOT NULL,
    host          text NOT NULL,
    datastore     text NOT NULL,
    device        text NOT NULL,
    path          text NOT NULL,
    sha256        text NOT NULL,
    signature     text NOT NULL,
    engine        text NOT NULL,
    signature_set text NOT NULL,
    job           text NOT NULL,
    node          text NOT NULL,
    at            bigint NOT NULL
);
CREATE INDEX coldscan_findings_by_time ON coldscan_findings (at DESC, image, device, path, signature);
CREATE INDEX coldscan_findings_by_signature ON coldscan_findings (signature, at DESC);
CREATE INDEX coldscan_findings_by_image ON coldscan_findings (image, at DESC);
CREATE INDEX coldscan_findings_by_host ON coldscan_findings (host, at DESC);
)sql",
    // 4: content verdicts every node shares (the verdict cache's level 2: content digest and signature-set
    // context -> verdict record, as the local RocksDB holds them).
    R"sql(
CREATE TABLE coldscan_verdicts (
    key   bytea PRIMARY KEY,
    value bytea NOT NULL,
    node  text NOT NULL,
    at    timestamptz NOT NULL DEFAULT now()
);
)sql",
    // 5: a gate job whose host or datastore is full asks a nightly job there to make room (preempt): the
    // node that runs it queues it again at its next renewal.
    R"sql(
ALTER TABLE coldscan_jobs ADD COLUMN preempt boolean NOT NULL DEFAULT false;
)sql",
    // 6: nodes adopt only what changed: a job's row names the transaction that last changed its status, and a
    // node reads the rows changed since the oldest transaction running at its previous read.
    R"sql(
ALTER TABLE coldscan_jobs ADD COLUMN changed_xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX coldscan_jobs_by_change ON coldscan_jobs (changed_xid);
CREATE FUNCTION coldscan_jobs_status_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.changed_xid := pg_current_xact_id();
    RETURN NEW;
END
$$;
CREATE TRIGGER coldscan_jobs_status_changed BEFORE UPDATE ON coldscan_jobs FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION coldscan_jobs_status_changed();
)sql",
    // 7: the signature-set lineage every node shares (the cache's signature_sets records: each set's manifest
    // and line buckets), so a verdict made under a set another node recorded can be re-checked by its
    // changes.
    R"sql(
CREATE TABLE coldscan_set_lineage (
    key   bytea PRIMARY KEY,
    value bytea NOT NULL,
    node  text NOT NULL,
    at    timestamptz NOT NULL DEFAULT now()
);
)sql",
    // 8: how often a job was taken back from a node that stopped while it ran it (its lease ran out, or the
    // node's next process gave it back): a job that kills its node every time goes to the dead letters
    // instead of taking the fleet's nodes down one after another.
    R"sql(
ALTER TABLE coldscan_jobs ADD COLUMN rescues integer NOT NULL DEFAULT 0;
)sql",
};

Expected<int> current_version(PgConnection& connection) {
    if (auto made = connection.exec("CREATE TABLE IF NOT EXISTS coldscan_schema (version integer NOT NULL)");
        !made) {
        return std::unexpected(made.error());
    }
    auto found = connection.exec("SELECT version FROM coldscan_schema");
    if (!found) {
        return std::unexpected(found.error());
    }
    if (found->empty()) {
        if (auto seeded = connection.exec("INSERT INTO coldscan_schema (version) VALUES (0)"); !seeded) {
            return std::unexpected(seeded.error());
        }
        return 0;
    }
    const auto& value = found->rows().front().front();
    return value ? std::stoi(*value) : 0;
}

Expected<int> migrate_locked(PgConnection& connection) {
    if (auto locked = connection.exec("SELECT pg_advisory_xact_lock(" + std::string(k_lock_key) + ")");
        !locked) {
        return std::unexpected(locked.error());
    }
    const auto found = current_version(connection);
    if (!found) {
        return std::unexpected(found.error());
    }
    if (*found > schema_version()) {
        return make_error(Errc::unsupported, "the fleet database " + connection.server() +
                                                 " has schema version " + std::to_string(*found) +
                                                 ", newer than this coldscan's " +
                                                 std::to_string(schema_version()) + ": upgrade this node");
    }
    for (int version = *found + 1; version <= schema_version(); ++version) {
        if (auto applied = connection.exec_script(k_migrations[static_cast<std::size_t>(version - 1)]);
            !applied) {
            return make_error(Errc::io, "schema migration " + std::to_string(version) + " failed on " +
                                            connection.server() + ": " + applied.error().message);
        }
    }
    if (auto stored = connection.exec("UPDATE coldscan_schema SET version = $1::integer",
                                      {std::to_string(schema_version())});
        !stored) {
        return std::unexpected(stored.error());
    }
    return *found;
}

} // namespace

int schema_version() noexcept {
    return static_cast<int>(k_migrations.size());
}

Expected<int> migrate_schema(PgConnection& connection) {
    if (auto begun = connection.exec("BEGIN"); !begun) {
        return std::unexpected(begun.error());
    }
    auto found = migrate_locked(connection);
    if (!found) {
        (void)connection.exec("ROLLBACK"); // the error that made us stop is the one to report
        return std::unexpected(found.error());
    }
    if (auto committed = connection.exec("COMMIT"); !committed) {
        return std::unexpected(committed.error());
    }
    return found;
}

} // namespace coldscan::fleet
