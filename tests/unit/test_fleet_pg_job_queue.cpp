#include "coldscan/fleet/fleet_schema.hpp"
#include "coldscan/fleet/pg_job_queue.hpp"
#include "coldscan/scheduler/job_queue.hpp"
#include "test_fleet_support.hpp"

#include <fstream>
#include <mutex>
#include <set>
#include <thread>

using coldscan::Errc;
using coldscan::fleet::migrate_schema;
using coldscan::fleet::PgConnection;
using coldscan::fleet::PgJobQueue;
using coldscan::fleet::PgJobQueueOptions;
using coldscan::scheduler::ClaimOutcome;
using coldscan::scheduler::JobRequest;
using coldscan::scheduler::JobSlots;
using coldscan::scheduler::JobStatus;
using coldscan::scheduler::Priority;
using coldscan::scheduler::Rescan;
using coldscan::scheduler::Retry;
using coldscan::test::connect_to;
using coldscan::test::TestPostgres;

namespace {

struct Fleet {
    std::string uri = TestPostgres::instance().fresh_database();
    PgConnection admin = connect_to(uri);
    Fleet() { REQUIRE(migrate_schema(admin).has_value()); }

    std::unique_ptr<PgJobQueue> node(const std::string& name, int lease_seconds = 30, unsigned attempts = 3) {
        return std::make_unique<PgJobQueue>(connect_to(uri), connect_to(uri),
                                            PgJobQueueOptions{.node = name,
                                                              .lease = std::chrono::seconds(lease_seconds),
                                                              .max_attempts = attempts,
                                                              .keeper = false});
    }
    // Lets every lease of a job run out, as if its node had been silent for a lease and more.
    void expire(const std::string& id) {
        REQUIRE(admin
                    .exec("UPDATE coldscan_jobs SET lease_until = now() - interval '1 second' WHERE id = $1",
                          {id})
                    .has_value());
    }
    std::size_t running_on(const std::string& host) {
        auto rows =
            admin.exec("SELECT count(*) FROM coldscan_jobs WHERE host = $1 AND status = 'running' AND "
                       "lease_until > clock_timestamp()",
                       {host});
        REQUIRE(rows.has_value());
        return std::stoul(*rows->rows().front().front());
    }
};

JobSlots slots(const std::string& host = "esx-1", unsigned host_cap = 1, unsigned datastore_cap = 0) {
    return JobSlots{host, "nfs-a", host_cap, datastore_cap, 4096};
}

std::string submit(PgJobQueue& queue, const std::string& image, const JobSlots& where = slots()) {
    JobRequest request;
    request.target = image;
    request.priority = Priority::nightly;
    request.host = where.host;
    auto submitted = queue.submit(request, "identity of " + image, "sigs-1", Rescan{}, where);
    REQUIRE(submitted.has_value());
    return submitted->record.id;
}

} // namespace

TEST_CASE("PgJobQueue: a job submitted through two nodes is one job, and nodes adopt it by datastore",
          "[postgres]") {
    Fleet fleet;
    auto a = fleet.node("scan-a");
    auto b = fleet.node("scan-b");
    JobRequest request;
    request.target = "/vm/it's \"odd\".qcow2";
    request.host = "esx-1";
    request.disks = {{"/vm/d1.qcow2", "qcow2"}};
    auto first = a->submit(request, "identity", "sigs-1", Rescan{}, slots());
    auto second = b->submit(request, "identity", "sigs-1", Rescan{}, slots());
    REQUIRE(first.has_value());
    REQUIRE(second.has_value());
    CHECK(first->created);
    CHECK_FALSE(second->created);
    CHECK(second->record.id == first->record.id);
    CHECK(second->record.request.target == request.target);
    CHECK(second->record.request.disks == request.disks);
    CHECK(second->record.status == JobStatus::queued);

    auto on_nfs = b->adoptable({"nfs-a"});
    REQUIRE(on_nfs.has_value());
    REQUIRE(on_nfs->queued.size() == 1);
    CHECK(on_nfs->queued.front().id == first->record.id);
    CHECK(on_nfs->queued.front().slots.host == "esx-1");
    CHECK(on_nfs->queued.front().slots.estimated_bytes == 4096);
    auto elsewhere = b->adoptable({"iscsi-b"});
    REQUIRE(elsewhere.has_value());
    CHECK(elsewhere->queued.empty());

    auto listed = a->list(std::nullopt);
    REQUIRE(listed.has_value());
    CHECK(listed->size() == 1);
    CHECK(a->damaged_records() == 0);
}

TEST_CASE("PgJobQueue: a host cap holds across nodes, and a taken job cannot be claimed twice",
          "[postgres]") {
    Fleet fleet;
    auto a = fleet.node("scan-a");
    auto b = fleet.node("scan-b");
    const auto one = submit(*a, "/vm/one.qcow2");
    const auto two = submit(*b, "/vm/two.qcow2");
    const auto other_host = submit(*b, "/vm/three.qcow2", slots("esx-2"));

    auto claimed = a->claim(one, slots());
    REQUIRE(claimed.has_value());
    REQUIRE(claimed->outcome == ClaimOutcome::granted);
    CHECK(claimed->record->node == "scan-a");
    CHECK(claimed->record->status == JobStatus::running);
    CHECK(a->fence_of(one).has_value());

    auto full = b->claim(two, slots());
    REQUIRE(full.has_value());
    CHECK(full->outcome == ClaimOutcome::caps_full);
    auto again = b->claim(one, slots());
    REQUIRE(again.has_value());
    CHECK(again->outcome == ClaimOutcome::taken);
    auto elsewhere = b->claim(other_host, slots("esx-2"));
    REQUIRE(elsewhere.has_value());
    CHECK(elsewhere->outcome == ClaimOutcome::granted);

    // A datastore cap counts every host's jobs on it: esx-2 holds nfs-a's only slot.
    const auto four = submit(*a, "/vm/four.qcow2", slots("esx-3"));
    auto datastore_full = a->claim(four, slots("esx-3", 1, 2));
    REQUIRE(datastore_full.has_value());
    CHECK(datastore_full->outcome == ClaimOutcome::caps_full);

    // One finishes: its slot is free for the other node at once.
    REQUIRE(a->requeue(one).has_value());
    auto now_free = b->claim(two, slots());
    REQUIRE(now_free.has_value());
    CHECK(now_free->outcome == ClaimOutcome::granted);

    auto unknown = a->claim("j-000000000000000000000000", slots());
    REQUIRE_FALSE(unknown.has_value());
    CHECK(unknown.error().code == Errc::not_found);
}

TEST_CASE("PgJobQueue: after a lease runs out another node takes the job, and fencing refuses the first",
          "[postgres]") {
    Fleet fleet;
    auto a = fleet.node("scan-a");
    auto b = fleet.node("scan-b");
    std::vector<std::string> lost_by_a;
    a->set_lease_listener([&](const std::string& id) { lost_by_a.push_back(id); });
    const auto id = submit(*a, "/vm/one.qcow2");
    REQUIRE(a->claim(id, slots())->outcome == ClaimOutcome::granted);
    const auto first_fence = *a->fence_of(id);

    // While a's lease is live nobody may take the job, and renewing keeps it.
    auto live = b->adoptable({"nfs-a"});
    REQUIRE(live.has_value());
    CHECK(live->queued.empty());
    a->renew_leases();
    CHECK(lost_by_a.empty());

    // scan-a is paused past its lease: the job is queued again and scan-b takes it with a new fence.
    fleet.expire(id);
    auto rescued = b->adoptable({"nfs-a"});
    REQUIRE(rescued.has_value());
    REQUIRE(rescued->queued.size() == 1);
    auto taken = b->claim(id, slots());
    REQUIRE(taken.has_value());
    REQUIRE(taken->outcome == ClaimOutcome::granted);
    CHECK(taken->record->node == "scan-b");
    CHECK(*b->fence_of(id) > first_fence);
    CHECK(fleet.running_on("esx-1") == 1);

    // scan-a wakes up: every write of its old lease is refused, and its next renewal tells it.
    auto late_alert = a->record_alert(id, "alert-1", "{}");
    REQUIRE_FALSE(late_alert.has_value());
    CHECK(late_alert.error().code == Errc::conflict);
    a->renew_leases();
    CHECK(lost_by_a == std::vector<std::string>{id});
    auto late_result = a->mark_failed(id, "late", Retry::allowed);
    REQUIRE_FALSE(late_result.has_value());
    CHECK(late_result.error().code == Errc::conflict);
    auto state = b->get(id);
    REQUIRE(state.has_value());
    CHECK((*state)->status == JobStatus::running);
    CHECK((*state)->attempts == 0);
    CHECK((*state)->node == "scan-b");

    // The alert is raised once: by the lease holder, and not again by a rerun of the same scan.
    auto alert = b->record_alert(id, "alert-1", R"({"job":"x"})");
    REQUIRE(alert.has_value());
    CHECK(*alert);
    auto repeated = b->record_alert(id, "alert-1", R"({"job":"x"})");
    REQUIRE(repeated.has_value());
    CHECK_FALSE(*repeated);
}

TEST_CASE("PgJobQueue: racing claimers on four nodes never run more than the host's cap", "[postgres]") {
    Fleet fleet;
    std::vector<std::unique_ptr<PgJobQueue>> nodes;
    for (int i = 0; i < 4; ++i) {
        nodes.push_back(fleet.node("scan-" + std::to_string(i)));
    }
    std::vector<std::string> ids;
    for (int i = 0; i < 12; ++i) {
        ids.push_back(submit(*nodes[static_cast<std::size_t>(i) % 4], "/vm/" + std::to_string(i) + ".qcow2",
                             slots("esx-1", 2)));
    }
    std::mutex mutex;
    std::multiset<std::string> granted;
    std::vector<std::thread> claimers;
    for (std::size_t n = 0; n < nodes.size(); ++n) {
        claimers.emplace_back([&, n] {
            for (const auto& id : ids) {
                auto claim = nodes[n]->claim(id, slots("esx-1", 2));
                REQUIRE(claim.has_value());
                if (claim->outcome == ClaimOutcome::granted) {
                    std::lock_guard lock(mutex);
                    granted.insert(id);
                }
            }
        });
    }
    for (auto& claimer : claimers) {
        claimer.join();
    }
    CHECK(granted.size() == 2);
    CHECK(std::set<std::string>(granted.begin(), granted.end()).size() == granted.size());
    CHECK(fleet.running_on("esx-1") == 2);
}

TEST_CASE("PgJobQueue: failures, cancels and a restarted node keep the queue's lifecycle", "[postgres]") {
    Fleet fleet;
    auto a = fleet.node("scan-a", 30, 2);
    auto b = fleet.node("scan-b", 30, 2);
    std::vector<std::string> lost_by_a;
    a->set_lease_listener([&](const std::string& id) { lost_by_a.push_back(id); });

    const auto flaky = submit(*a, "/vm/flaky.qcow2", slots("esx-1", 0));
    REQUIRE(a->claim(flaky, slots("esx-1", 0))->outcome == ClaimOutcome::granted);
    auto retried = a->mark_failed(flaky, "datastore away", Retry::allowed);
    REQUIRE(retried.has_value());
    CHECK(retried->status == JobStatus::queued);
    CHECK(retried->attempts == 1);
    CHECK_FALSE(a->fence_of(flaky).has_value());
    REQUIRE(b->claim(flaky, slots("esx-1", 0))->outcome == ClaimOutcome::granted);
    auto dead = b->mark_failed(flaky, "datastore away", Retry::allowed);
    REQUIRE(dead.has_value());
    CHECK(dead->status == JobStatus::dead_letter);
    CHECK(dead->last_error == "datastore away");

    const auto running = submit(*a, "/vm/running.qcow2", slots("esx-1", 0));
    REQUIRE(a->claim(running, slots("esx-1", 0))->outcome == ClaimOutcome::granted);
    auto cancelled = b->cancel(running); // through another node's API
    REQUIRE(cancelled.has_value());
    CHECK(cancelled->status == JobStatus::cancelled);
    a->renew_leases();
    CHECK(lost_by_a == std::vector<std::string>{running});
    auto twice = b->cancel(running);
    REQUIRE(twice.has_value());
    CHECK(twice->status == JobStatus::cancelled);
    auto finished = b->cancel(flaky);
    REQUIRE_FALSE(finished.has_value());
    CHECK(finished.error().code == Errc::invalid_argument);

    // scan-a's process dies holding a job; its next process gives it back to the fleet at start.
    const auto held = submit(*a, "/vm/held.qcow2", slots("esx-1", 0));
    REQUIRE(a->claim(held, slots("esx-1", 0))->outcome == ClaimOutcome::granted);
    a.reset();
    auto restarted = fleet.node("scan-a");
    REQUIRE(restarted->recover().has_value());
    auto state = b->get(held);
    REQUIRE(state.has_value());
    CHECK((*state)->status == JobStatus::queued);
    CHECK((*state)->attempts == 0);
}

TEST_CASE(
    "PgJobQueue: a success stores the report for every node, and a lease is lost here before it runs out "
    "there",
    "[postgres]") {
    Fleet fleet;
    auto a = fleet.node("scan-a", 1); // a lease of 1 s leaves no time here: lost at the first look
    auto b = fleet.node("scan-b");
    const auto id = submit(*b, "/vm/one.qcow2");
    REQUIRE(b->claim(id, slots())->outcome == ClaimOutcome::granted);
    auto dir = coldscan::TempDir::create("coldscan-test");
    REQUIRE(dir.has_value());
    const auto report = dir->path() / "report.json";
    {
        std::ofstream out(report);
        out << R"({"status":"completed"})";
    }
    auto done = b->mark_succeeded(id, report.string());
    REQUIRE(done.has_value());
    CHECK(done->status == JobStatus::succeeded);
    auto text = a->report_text(*done);
    REQUIRE(text.has_value());
    CHECK(*text == R"({"status":"completed"})");

    std::vector<std::string> lost;
    a->set_lease_listener([&](const std::string& job) { lost.push_back(job); });
    const auto short_lease = submit(*a, "/vm/two.qcow2");
    REQUIRE(a->claim(short_lease, slots())->outcome == ClaimOutcome::granted);
    a->expire_leases();
    CHECK(lost == std::vector<std::string>{short_lease});
    auto late = a->mark_paused(short_lease);
    REQUIRE_FALSE(late.has_value());
    CHECK(late.error().code == Errc::conflict);
}

TEST_CASE("PgJobQueue: each renewal tells the load where this node holds leases, for its read-budget share",
          "[postgres]") {
    Fleet fleet;
    auto a = fleet.node("scan-a");
    auto b = fleet.node("scan-b");
    std::vector<coldscan::scheduler::FleetLoad> heard;
    a->set_load_listener([&](const coldscan::scheduler::FleetLoad& load) { heard.push_back(load); });
    const auto one = submit(*a, "/vm/one.qcow2", slots("esx-1", 0));
    const auto two = submit(*a, "/vm/two.qcow2", slots("esx-1", 0));
    const auto other = submit(*a, "/vm/three.qcow2", slots("esx-2", 0));
    REQUIRE(a->claim(one, slots("esx-1", 0))->outcome == ClaimOutcome::granted);
    REQUIRE(b->claim(two, slots("esx-1", 0))->outcome == ClaimOutcome::granted);
    REQUIRE(b->claim(other, slots("esx-2", 0))->outcome == ClaimOutcome::granted);
    a->renew_leases();
    REQUIRE(heard.size() == 1);
    REQUIRE(heard[0].hosts.size() == 1); // esx-2: no lease of scan-a there
    CHECK(heard[0].hosts[0].name == "esx-1");
    CHECK(heard[0].hosts[0].mine == 1);
    CHECK(heard[0].hosts[0].total == 2);
    REQUIRE(heard[0].datastores.size() == 1);
    CHECK(heard[0].datastores[0].name == "nfs-a");
    CHECK(heard[0].datastores[0].mine == 1);
    CHECK(heard[0].datastores[0].total == 3);
}

TEST_CASE("PgJobQueue: a gate job on a full host asks a nightly job elsewhere to make room", "[postgres]") {
    Fleet fleet;
    auto a = fleet.node("scan-a");
    auto b = fleet.node("scan-b");
    std::vector<std::string> asked;
    a->set_preempt_listener([&](const std::string& id) { asked.push_back(id); });
    const auto nightly = submit(*a, "/vm/nightly.qcow2");
    REQUIRE(a->claim(nightly, slots())->outcome == ClaimOutcome::granted);
    JobRequest gate_request;
    gate_request.target = "/vm/gate.qcow2";
    gate_request.priority = Priority::gate;
    auto gate = b->submit(gate_request, "identity of gate", "sigs-1", Rescan{}, slots());
    REQUIRE(gate.has_value());

    CHECK(b->claim(gate->record.id, slots())->outcome == ClaimOutcome::caps_full);
    a->renew_leases();
    CHECK(asked == std::vector<std::string>{nightly});
    REQUIRE(a->requeue(nightly).has_value()); // what the service does when it hears it
    CHECK(a->claim(nightly, slots())->outcome == ClaimOutcome::caps_full); // the waiting gate job goes first
    auto granted = b->claim(gate->record.id, slots());
    REQUIRE(granted.has_value());
    CHECK(granted->outcome == ClaimOutcome::granted);

    // The nightly job runs again once the gate job is done, and is not asked again by that old request.
    REQUIRE(b->mark_failed(gate->record.id, "done here", Retry::never).has_value());
    REQUIRE(a->claim(nightly, slots())->outcome == ClaimOutcome::granted);
    a->renew_leases();
    CHECK(asked.size() == 1);
}

TEST_CASE("PgJobQueue: an adoption reads what changed since the last, and offers a job refused for the caps "
          "once more",
          "[postgres]") {
    Fleet fleet;
    auto a = fleet.node("scan-a");
    auto b = fleet.node("scan-b");
    const auto one = submit(*a, "/vm/one.qcow2");
    const auto two = submit(*a, "/vm/two.qcow2");
    const auto three = submit(*a, "/vm/three.qcow2", slots("esx-2"));
    const auto ids = [](const auto& jobs) {
        std::set<std::string> out;
        for (const auto& job : jobs) {
            out.insert(job.id);
        }
        return out;
    };

    auto first = b->adoptable({"nfs-a"});
    REQUIRE(first.has_value());
    CHECK(ids(first->queued) == std::set<std::string>{one, two, three});
    auto unchanged = b->adoptable({"nfs-a"});
    REQUIRE(unchanged.has_value());
    CHECK(unchanged->queued.empty());
    CHECK(unchanged->dequeued.empty());

    // scan-a runs one: scan-b hears it left the queue; scan-a itself does not count it as gone.
    REQUIRE(a->adoptable({"nfs-a"}).has_value());
    REQUIRE(a->claim(one, slots())->outcome == ClaimOutcome::granted);
    auto after_claim = b->adoptable({"nfs-a"});
    REQUIRE(after_claim.has_value());
    CHECK(after_claim->queued.empty());
    CHECK(after_claim->dequeued == std::vector<std::string>{one});
    auto own = a->adoptable({"nfs-a"});
    REQUIRE(own.has_value());
    CHECK(own->dequeued.empty());

    // esx-1 is full (cap 1): scan-b's claim of two is refused, and two is offered again once.
    REQUIRE(b->claim(two, slots())->outcome == ClaimOutcome::caps_full);
    auto again = b->adoptable({"nfs-a"});
    REQUIRE(again.has_value());
    CHECK(ids(again->queued) == std::set<std::string>{two});
    CHECK(b->adoptable({"nfs-a"})->queued.empty());

    // one is queued again (its node gave it back): every node hears it.
    REQUIRE(a->requeue(one).has_value());
    CHECK(ids(b->adoptable({"nfs-a"})->queued) == std::set<std::string>{one});
}

TEST_CASE("PgJobQueue: a change committed after an adoption's snapshot is read by the next adoption",
          "[postgres]") {
    Fleet fleet;
    auto a = fleet.node("scan-a");
    const auto id = submit(*a, "/vm/one.qcow2");
    REQUIRE(a->adoptable({"nfs-a"})->queued.size() == 1);

    // Another transaction cancels the job but has not committed when scan-a reads.
    PgConnection other = connect_to(fleet.uri);
    REQUIRE(other.exec("BEGIN").has_value());
    REQUIRE(other.exec("UPDATE coldscan_jobs SET status = 'cancelled' WHERE id = $1", {id}).has_value());
    auto during = a->adoptable({"nfs-a"});
    REQUIRE(during.has_value());
    CHECK(during->dequeued.empty());
    // Something else changes and commits meanwhile (a later transaction than the open one).
    const auto later = submit(*a, "/vm/two.qcow2");
    auto newer = a->adoptable({"nfs-a"});
    REQUIRE(newer.has_value());
    REQUIRE(newer->queued.size() == 1);
    CHECK(newer->queued.front().id == later);

    REQUIRE(other.exec("COMMIT").has_value());
    auto after = a->adoptable({"nfs-a"});
    REQUIRE(after.has_value());
    CHECK(after->dequeued == std::vector<std::string>{id});
}

TEST_CASE("PgJobQueue: a job whose node stops while scanning it max_attempts times is a dead letter",
          "[postgres]") {
    Fleet fleet;
    auto a = fleet.node("scan-a", 30, 3);
    auto b = fleet.node("scan-b", 30, 3);
    const auto id = submit(*a, "/vm/crashes-its-node.qcow2");
    // Twice its node stops (its lease runs out) and another node takes it back; the third time the node's
    // next process gives it back: three take-backs.
    for (int stop = 0; stop < 2; ++stop) {
        auto& node = stop % 2 == 0 ? *a : *b;
        REQUIRE(node.adoptable({"nfs-a"}).has_value());
        REQUIRE(node.claim(id, slots())->outcome == ClaimOutcome::granted);
        fleet.expire(id);
        auto rescued = (stop % 2 == 0 ? *b : *a).adoptable({"nfs-a"});
        REQUIRE(rescued.has_value());
        auto job = a->get(id);
        REQUIRE(job.has_value());
        CHECK((*job)->status == JobStatus::queued);
        CHECK((*job)->attempts == 0);
    }
    REQUIRE(a->claim(id, slots())->outcome == ClaimOutcome::granted);
    auto restarted = fleet.node("scan-a", 30, 3); // scan-a's next process
    REQUIRE(restarted->recover().has_value());
    auto job = b->get(id);
    REQUIRE(job.has_value());
    CHECK((*job)->status == JobStatus::dead_letter);
    CHECK((*job)->last_error ==
          "its node stopped while scanning it 3 times (crashed, killed or cut off): not "
          "tried again");
    CHECK(b->adoptable({"nfs-a"})->queued.empty());

    // Submitted again, it starts afresh: the count starts again too.
    JobRequest request;
    request.target = "/vm/crashes-its-node.qcow2";
    request.host = "esx-1";
    auto again = a->submit(request, "identity of /vm/crashes-its-node.qcow2", "sigs-1", Rescan{}, slots());
    REQUIRE(again.has_value());
    CHECK(again->record.status == JobStatus::queued);
    REQUIRE(a->claim(id, slots())->outcome == ClaimOutcome::granted);
    fleet.expire(id);
    REQUIRE(b->adoptable({"nfs-a"}).has_value());
    CHECK((*b->get(id))->status == JobStatus::queued);
}
