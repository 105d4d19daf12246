#include "coldscan/common/temp_dir.hpp"
#include "coldscan/fleet/fleet_schema.hpp"
#include "coldscan/fleet/pg_finding_store.hpp"
#include "coldscan/fleet/pg_job_queue.hpp"
#include "test_fleet_support.hpp"

using coldscan::Errc;
using coldscan::fleet::migrate_schema;
using coldscan::fleet::PgFindingStore;
using coldscan::fleet::PgJobQueue;
using coldscan::fleet::PgJobQueueOptions;
using coldscan::scheduler::ClaimOutcome;
using coldscan::scheduler::Finding;
using coldscan::scheduler::FindingQuery;
using coldscan::scheduler::JobRequest;
using coldscan::scheduler::JobSlots;
using coldscan::scheduler::LocalFindingStore;
using coldscan::scheduler::Rescan;
using coldscan::test::connect_to;
using coldscan::test::TestPostgres;

namespace {

struct Node {
    std::shared_ptr<PgJobQueue> jobs;
    std::unique_ptr<PgFindingStore> findings;
};

Node node(const std::string& uri, const std::string& name) {
    auto jobs = std::make_shared<PgJobQueue>(connect_to(uri), connect_to(uri),
                                             PgJobQueueOptions{.node = name, .keeper = false});
    auto findings = std::make_unique<PgFindingStore>(
        connect_to(uri), name, [jobs](std::string_view job) { return jobs->fence_of(job); });
    return Node{jobs, std::move(findings)};
}

std::string claimed_job(PgJobQueue& jobs, const std::string& image) {
    JobRequest request;
    request.target = image;
    const JobSlots slots{"kvm01", "nfs-a", 0, 0, 0};
    auto submitted = jobs.submit(request, "identity " + image, "sigs-1", Rescan{}, slots);
    REQUIRE(submitted.has_value());
    REQUIRE(jobs.claim(submitted->record.id, slots)->outcome == ClaimOutcome::granted);
    return submitted->record.id;
}

// 1,000 findings over 20 images, 4 hosts, 5 signatures, 10 days, three kinds; paths with odd bytes.
std::vector<Finding> generated(const std::string& job) {
    std::vector<Finding> out;
    for (int i = 0; i < 1000; ++i) {
        Finding f;
        f.kind = i % 7 == 0 ? "LIMIT_EXCEEDED" : i % 11 == 0 ? "ERROR" : "DETECTION";
        f.image = "/images/vm-" + std::to_string(i % 20) + ".qcow2";
        f.host = "kvm0" + std::to_string(i % 4);
        f.datastore = "nfs-a";
        f.device = "/dev/sda" + std::to_string(1 + i % 2);
        f.path = "/home/user " + std::to_string(i % 13) + "/file-'\"%_" + std::to_string(i) + ".exe";
        f.sha256 = std::to_string(i);
        f.signature = f.kind == "DETECTION" ? "Sig." + std::to_string(i % 5) : "reason";
        f.engine = f.kind == "DETECTION" ? "clamav" : "";
        f.signature_set = "sigs-1";
        f.job = job;
        f.node = "scan-a";
        f.at = 1796515200 + (i % 10) * 86400 + i % 3;
        out.push_back(std::move(f));
    }
    return out;
}

} // namespace

TEST_CASE("PgFindingStore: a run's findings once, only under a live lease", "[postgres]") {
    const std::string uri = TestPostgres::instance().fresh_database();
    auto admin = connect_to(uri);
    REQUIRE(migrate_schema(admin).has_value());
    auto a = node(uri, "scan-a");
    const auto job = claimed_job(*a.jobs, "/images/one.qcow2");
    std::vector<Finding> rows = generated(job);
    rows.resize(3);
    auto first = a.findings->record(job + ":1", rows);
    REQUIRE(first.has_value());
    CHECK(*first);
    auto again = a.findings->record(job + ":1", rows);
    REQUIRE(again.has_value());
    CHECK_FALSE(*again);
    CHECK(a.findings->search(FindingQuery{})->total == 3);

    // The lease runs out and another node takes the job: scan-a's late findings are refused.
    REQUIRE(admin.exec("UPDATE coldscan_jobs SET lease_until = now() - interval '1 second'").has_value());
    auto b = node(uri, "scan-b");
    REQUIRE(b.jobs->adoptable({"nfs-a"}).has_value());
    REQUIRE(b.jobs->claim(job, JobSlots{"kvm01", "nfs-a", 0, 0, 0})->outcome == ClaimOutcome::granted);
    auto late = a.findings->record(job + ":2", rows);
    REQUIRE_FALSE(late.has_value());
    CHECK(late.error().code == Errc::conflict);
    CHECK(b.findings->search(FindingQuery{})->total == 3);
}

TEST_CASE("PgFindingStore answers every search and count as the local store does over the same findings",
          "[postgres]") {
    const std::string uri = TestPostgres::instance().fresh_database();
    auto admin = connect_to(uri);
    REQUIRE(migrate_schema(admin).has_value());
    auto a = node(uri, "scan-a");
    const auto job = claimed_job(*a.jobs, "/images/many.qcow2");
    const auto rows = generated(job);
    REQUIRE(*a.findings->record(job + ":1", rows));
    auto dir = coldscan::TempDir::create("coldscan-test");
    REQUIRE(dir.has_value());
    auto local = LocalFindingStore::open((dir->path() / "findings.jsonl").string());
    REQUIRE(local.has_value());
    REQUIRE(*(*local)->record(job + ":1", rows));

    std::vector<FindingQuery> queries(8);
    queries[1].signature = "Sig.3";
    queries[2].image = "/images/vm-7.qcow2";
    queries[3].host = "kvm02";
    queries[3].kind = "DETECTION";
    queries[4].path_contains = "user 12/file-'\"%_";
    queries[5].since = 1796515200 + 3 * 86400;
    queries[5].until = 1796515200 + 6 * 86400;
    queries[6].offset = 990;
    queries[6].limit = 50;
    queries[7].offset = 120;
    queries[7].limit = 1000;
    for (std::size_t i = 0; i < queries.size(); ++i) {
        INFO("query " << i);
        auto expected = (*local)->search(queries[i]);
        auto found = a.findings->search(queries[i]);
        REQUIRE(found.has_value());
        CHECK(found->total == expected->total);
        CHECK(found->findings == expected->findings);
        auto expected_stats = (*local)->stats(queries[i]);
        auto stats = a.findings->stats(queries[i]);
        REQUIRE(stats.has_value());
        CHECK(stats->total == expected_stats->total);
        CHECK(stats->per_day == expected_stats->per_day);
        CHECK(stats->per_signature == expected_stats->per_signature);
        CHECK(stats->per_host == expected_stats->per_host);
    }
    CHECK(a.findings->search(queries[0])->total == 1000);
}
