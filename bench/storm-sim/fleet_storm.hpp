// The scan storm on a fleet of scanner nodes (issue 19): the storm model's hosts, datastores and jobs, but
// scheduled by N nodes, each with its own scheduler core (max_running = its scans at once), that adopt the
// fleet's queued jobs and start one only when the real fleet queue (fleet::PgJobQueue on a real PostgreSQL)
// grants the claim under the fleet's caps. So the caps that are checked after every event are the ones the
// claim transaction kept, not a model of it.
//
// What is simulated: time (the same processor-sharing read model as storm_model.hpp) and the nodes' loops,
// run one after another in one thread, in the order the service runs them: a node submits what arrives
// through it into its own scheduler; every adopt_s it renews its leases (hearing preemptions) and adopts the
// queued jobs; after every event it steps its scheduler and claims what the step starts; a refused claim
// drops the job until the next adoption and the node steps again. Leases are an hour long, so none runs out
// while a run lasts (a node's death is e2e.fleet-queue's business).
// Deterministic for one database state: every call is made in a fixed order; the node that steps first
// rotates from event to event.
// Thread rule: plain data and free functions; run_fleet uses its own connections.
#pragma once

#include "storm_model.hpp"

#include <string>
#include <vector>

namespace coldscan::bench {

struct FleetStormOptions {
    StormOptions storm;
    unsigned nodes = 20;
    unsigned node_scans = 4; // each node's [service] max_scans
    double adopt_s = 2.0;    // how often a node renews its leases and adopts queued jobs
    std::string database;    // libpq URI of an empty database (migrated here)
};

struct NodeOutcome {
    std::string name;
    unsigned completed = 0;
    unsigned peak_running = 0;
};

struct FleetResult {
    ArmResult arm; // arm.arm is Arm::scheduler; caps checked after every claim and event
    std::vector<NodeOutcome> nodes;
    unsigned claims_granted = 0;
    unsigned claims_caps_full = 0;
    unsigned claims_taken = 0;
    unsigned preemptions = 0;
    unsigned adoptions = 0;
    std::uint64_t adopted_rows = 0; // rows the adoptions read
    double wall_s = 0.0;            // real time the run took (the database's work, mostly)
};

// Errc::invalid_argument: bad options; Errc::io: the database refused the connection or the schema;
// Errc::internal: a call the model relies on failed (named).
[[nodiscard]] Expected<FleetResult> run_fleet(const FleetStormOptions& options,
                                              const std::vector<StormJob>& jobs);

} // namespace coldscan::bench
