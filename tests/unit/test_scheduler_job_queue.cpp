// The persistent job queue, against both KvStore backends (memory and RocksDB in a temp folder).
#include "coldscan/common/temp_dir.hpp"
#include "coldscan/scanner/kv_store.hpp"
#include "coldscan/scheduler/job_queue.hpp"

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace coldscan;
using namespace coldscan::scheduler;
using coldscan::scanner::KeySpace;
using coldscan::scanner::KvStore;

namespace {

enum class Backend { memory, rocksdb };

// Forwards to a store and remembers whether every put was followed by a sync.
class SyncWatchingStore final : public KvStore {
public:
    explicit SyncWatchingStore(KvStore& inner) : m_inner(inner) {}

    Expected<std::optional<std::string>> get(KeySpace space, std::string_view key) const override {
        return m_inner.get(space, key);
    }
    Expected<void> put(KeySpace space, std::string_view key, std::string_view value) override {
        ++m_unsynced_puts;
        return m_inner.put(space, key, value);
    }
    Expected<void> erase(KeySpace space, std::string_view key) override { return m_inner.erase(space, key); }
    Expected<void>
    for_each(KeySpace space,
             const std::function<bool(std::string_view, std::string_view)>& visit) const override {
        return m_inner.for_each(space, visit);
    }
    Expected<void> sync() override {
        m_unsynced_puts = 0;
        ++m_syncs;
        return m_inner.sync();
    }
    Expected<void> verify_checksums() const override { return m_inner.verify_checksums(); }
    Expected<void> compact() override { return m_inner.compact(); }

    [[nodiscard]] int unsynced_puts() const { return m_unsynced_puts.load(); }
    [[nodiscard]] int syncs() const { return m_syncs.load(); }

private:
    KvStore& m_inner;
    std::atomic<int> m_unsynced_puts{0};
    std::atomic<int> m_syncs{0};
};

struct QueueUnderTest {
    Backend backend;
    TempDir dir = TempDir::create("coldscan-test").value();
    std::unique_ptr<KvStore> store;
    std::int64_t now = 1000;
    std::unique_ptr<JobQueue> queue;

    explicit QueueUnderTest(Backend b, unsigned max_attempts = 3) : backend(b) {
        open_store();
        make_queue(max_attempts);
    }

    void open_store() {
        if (backend == Backend::memory) {
            store = scanner::open_memory_store();
        } else {
            auto opened = scanner::open_rocksdb_store(dir.path() / "store");
            REQUIRE(opened);
            store = std::move(*opened);
        }
    }

    void make_queue(unsigned max_attempts = 3) {
        queue = std::make_unique<JobQueue>(*store, JobQueueOptions{max_attempts, [this] { return now; }});
    }

    // The process ends and starts again: the queue and the store are closed, then opened anew (RocksDB only;
    // a memory store would lose everything, as it should).
    void restart() {
        REQUIRE(backend == Backend::rocksdb);
        queue.reset();
        store.reset();
        open_store();
        make_queue();
    }
};

JobRequest request(std::string target, Priority priority = Priority::nightly, std::string snapshot = "") {
    return JobRequest{std::move(target), std::move(snapshot), priority, "tester", "", "", {}};
}

// Submits a job for target (its identity is "id:" + target) under signature set "sigs-1".
JobRecord submit(JobQueue& queue, const std::string& target, Priority priority = Priority::nightly) {
    auto submitted = queue.submit(request(target, priority), "id:" + target, "sigs-1");
    REQUIRE(submitted);
    return submitted->record;
}

JobRecord stored_record(const JobQueue& queue, const std::string& id) {
    auto record = queue.get(id);
    REQUIRE(record);
    REQUIRE(record->has_value());
    return **record;
}

std::vector<std::string> ids_of(const std::vector<JobRecord>& records) {
    std::vector<std::string> ids;
    for (const auto& record : records) {
        ids.push_back(record.id);
    }
    return ids;
}

std::vector<JobRecord> listed(const JobQueue& queue, std::optional<JobStatus> status = std::nullopt) {
    auto records = queue.list(status);
    REQUIRE(records);
    return *records;
}

// The key a record has in the jobs key space: schema version 1, kind 'J', the id.
std::string raw_key(const std::string& id, char schema = 1) {
    return std::string(1, schema) + "J" + id;
}

const char* name_of(Backend backend) {
    return backend == Backend::memory ? "memory" : "rocksdb";
}

} // namespace

TEST_CASE("to_string(JobStatus)", "[scheduler]") {
    CHECK(to_string(JobStatus::queued) == "queued");
    CHECK(to_string(JobStatus::running) == "running");
    CHECK(to_string(JobStatus::paused) == "paused");
    CHECK(to_string(JobStatus::succeeded) == "succeeded");
    CHECK(to_string(JobStatus::failed) == "failed");
    CHECK(to_string(JobStatus::cancelled) == "cancelled");
    CHECK(to_string(JobStatus::dead_letter) == "dead_letter");
}

TEST_CASE("parse_job_status", "[scheduler]") {
    for (const JobStatus status :
         {JobStatus::queued, JobStatus::running, JobStatus::paused, JobStatus::succeeded, JobStatus::failed,
          JobStatus::cancelled, JobStatus::dead_letter}) {
        CHECK(parse_job_status(to_string(status)) == status);
    }
    CHECK_FALSE(parse_job_status("Queued").has_value());
    CHECK_FALSE(parse_job_status("dead-letter").has_value());
    CHECK_FALSE(parse_job_status("").has_value());
}

TEST_CASE("is_finished", "[scheduler]") {
    CHECK_FALSE(is_finished(JobStatus::queued));
    CHECK_FALSE(is_finished(JobStatus::running));
    CHECK_FALSE(is_finished(JobStatus::paused));
    CHECK(is_finished(JobStatus::succeeded));
    CHECK(is_finished(JobStatus::failed));
    CHECK(is_finished(JobStatus::cancelled));
    CHECK(is_finished(JobStatus::dead_letter));
}

TEST_CASE("job_id", "[scheduler]") {
    const std::string id = job_id("/images/web.qcow2|dev 2049 ino 12", "nightly-1", "sigs-1");
    SECTION("j- and 24 lowercase hex digits") {
        REQUIRE(id.size() == 26);
        CHECK(id.starts_with("j-"));
        CHECK(std::all_of(id.begin() + 2, id.end(),
                          [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }));
    }
    SECTION("the same triple gives the same id") {
        CHECK(job_id("/images/web.qcow2|dev 2049 ino 12", "nightly-1", "sigs-1") == id);
    }
    SECTION("each field changes it") {
        CHECK(job_id("/images/web.qcow2|dev 2049 ino 13", "nightly-1", "sigs-1") != id);
        CHECK(job_id("/images/web.qcow2|dev 2049 ino 12", "nightly-2", "sigs-1") != id);
        CHECK(job_id("/images/web.qcow2|dev 2049 ino 12", "nightly-1", "sigs-2") != id);
    }
    SECTION("fields are length-prefixed: moving bytes between them changes it") {
        CHECK(job_id("ab", "c", "s") != job_id("a", "bc", "s"));
        CHECK(job_id("a", "", "bs") != job_id("a", "b", "s"));
    }
}

TEST_CASE("JobQueue::submit", "[scheduler]") {
    const Backend backend = GENERATE(Backend::memory, Backend::rocksdb);
    CAPTURE(name_of(backend));
    QueueUnderTest q(backend);
    JobQueue& queue = *q.queue;

    SECTION("a new job is stored queued, under the id of its triple") {
        auto submitted = queue.submit(request("/images/a.qcow2", Priority::gate, "snap-1"), "id:a", "sigs-1");
        REQUIRE(submitted);
        CHECK(submitted->created);
        const JobRecord& record = submitted->record;
        CHECK(record.id == job_id("id:a", "snap-1", "sigs-1"));
        CHECK(record.status == JobStatus::queued);
        CHECK(record.attempts == 0);
        CHECK(record.submitted_at == 1000);
        CHECK(record.updated_at == 1000);
        CHECK_FALSE(record.report_path.has_value());

        const JobRecord stored = stored_record(queue, record.id);
        CHECK(stored.request.target == "/images/a.qcow2");
        CHECK(stored.request.snapshot == "snap-1");
        CHECK(stored.request.priority == Priority::gate);
        CHECK(stored.request.requested_by == "tester");
        CHECK(stored.target_identity == "id:a");
        CHECK(stored.signature_set == "sigs-1");
        CHECK(stored.status == JobStatus::queued);
        CHECK(stored.submitted_at == 1000);
    }
    SECTION("the same triple again is the same job: not created, still one record") {
        const JobRecord first = submit(queue, "a", Priority::nightly);
        q.now = 2000;
        auto again = queue.submit(request("a", Priority::gate), "id:a", "sigs-1");
        REQUIRE(again);
        CHECK_FALSE(again->created);
        CHECK(again->record.id == first.id);
        CHECK(again->record.request.priority == Priority::nightly); // the first submission's
        CHECK(again->record.submitted_at == 1000);
        CHECK(ids_of(listed(queue)) == std::vector<std::string>{first.id});
    }
    SECTION("the format is stored with the job; the caller's identity, not the format, makes the id") {
        JobRequest as_raw = request("/images/a.img");
        as_raw.format = "raw";
        auto first = queue.submit(as_raw, "id:a|read as raw", "sigs-1");
        auto again = queue.submit(as_raw, "id:a|read as raw", "sigs-1");
        auto detected = queue.submit(request("/images/a.img"), "id:a", "sigs-1");
        JobRequest qcow2 = request("/images/a.img");
        qcow2.format = "qcow2"; // read as detection reads it: the same job, not a clash
        auto given_qcow2 = queue.submit(qcow2, "id:a", "sigs-1");
        REQUIRE(first);
        REQUIRE(again);
        REQUIRE(detected);
        REQUIRE(given_qcow2);
        CHECK(first->created);
        CHECK_FALSE(again->created);
        CHECK(again->record.id == first->record.id);
        CHECK(detected->created);
        CHECK(detected->record.id != first->record.id);
        CHECK_FALSE(given_qcow2->created);
        CHECK(stored_record(queue, first->record.id).request.format == "raw");
        CHECK(stored_record(queue, detected->record.id).request.format.empty());
    }
    SECTION("a new signature set or snapshot is a new job") {
        const JobRecord first = submit(queue, "a");
        auto new_sigs = queue.submit(request("a"), "id:a", "sigs-2");
        auto new_snapshot = queue.submit(request("a", Priority::nightly, "snap-2"), "id:a", "sigs-1");
        REQUIRE(new_sigs);
        REQUIRE(new_snapshot);
        CHECK(new_sigs->created);
        CHECK(new_snapshot->created);
        CHECK(new_sigs->record.id != first.id);
        CHECK(new_snapshot->record.id != first.id);
        CHECK(new_sigs->record.id != new_snapshot->record.id);
        CHECK(listed(queue).size() == 3);
    }
    SECTION("a running or succeeded job is answered as it is, not scanned again") {
        const JobRecord job = submit(queue, "a");
        REQUIRE(queue.mark_running(job.id));
        auto while_running = queue.submit(request("a"), "id:a", "sigs-1");
        REQUIRE(while_running);
        CHECK_FALSE(while_running->created);
        CHECK(while_running->record.status == JobStatus::running);

        REQUIRE(queue.mark_succeeded(job.id, "/reports/a.json"));
        auto after = queue.submit(request("a"), "id:a", "sigs-1");
        REQUIRE(after);
        CHECK_FALSE(after->created);
        CHECK(after->record.status == JobStatus::succeeded);
        CHECK(after->record.report_path == "/reports/a.json");
        CHECK(stored_record(queue, job.id).status == JobStatus::succeeded);
    }
    SECTION("a dead-lettered job submitted again is queued again from a clean slate") {
        QueueUnderTest one(backend, 1);
        const JobRecord job = submit(*one.queue, "a");
        REQUIRE(one.queue->mark_running(job.id));
        auto failed = one.queue->mark_failed(job.id, "appliance died");
        REQUIRE(failed);
        REQUIRE(failed->status == JobStatus::dead_letter);
        one.now = 5000;
        auto again = one.queue->submit(request("a", Priority::on_demand), "id:a", "sigs-1");
        REQUIRE(again);
        CHECK_FALSE(again->created);
        CHECK(again->record.id == job.id);
        CHECK(again->record.status == JobStatus::queued);
        CHECK(again->record.attempts == 0);
        CHECK(again->record.last_error == "appliance died");
        CHECK(again->record.request.priority == Priority::on_demand);
        CHECK(again->record.submitted_at == 5000);
        CHECK(stored_record(*one.queue, job.id).status == JobStatus::queued);
    }
    SECTION("a cancelled job submitted again is queued again") {
        const JobRecord job = submit(queue, "a");
        REQUIRE(queue.cancel(job.id));
        auto again = queue.submit(request("a"), "id:a", "sigs-1");
        REQUIRE(again);
        CHECK_FALSE(again->created);
        CHECK(again->record.status == JobStatus::queued);
        CHECK(stored_record(queue, job.id).status == JobStatus::queued);
    }
    SECTION("an empty target, target identity or signature set is refused") {
        auto no_target = queue.submit(request(""), "id:a", "sigs-1");
        auto no_identity = queue.submit(request("a"), "", "sigs-1");
        auto no_sigs = queue.submit(request("a"), "id:a", "");
        REQUIRE_FALSE(no_target);
        REQUIRE_FALSE(no_identity);
        REQUIRE_FALSE(no_sigs);
        CHECK(no_target.error().code == Errc::invalid_argument);
        CHECK(no_identity.error().code == Errc::invalid_argument);
        CHECK(no_sigs.error().code == Errc::invalid_argument);
        CHECK(listed(queue).empty());
    }
}

TEST_CASE("JobQueue::submit from many threads", "[scheduler]") {
    const Backend backend = GENERATE(Backend::memory, Backend::rocksdb);
    CAPTURE(name_of(backend));
    QueueUnderTest q(backend);
    std::atomic<int> created{0};
    std::atomic<int> failed{0}; // Catch2's assertions are not thread-safe: the threads count, the test checks
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 10; ++i) {
                auto submitted = q.queue->submit(request("a"), "id:a", "sigs-1");
                if (!submitted) {
                    ++failed;
                } else if (submitted->created) {
                    ++created;
                }
            }
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    CHECK(failed.load() == 0);
    CHECK(created.load() == 1);
    CHECK(listed(*q.queue).size() == 1);
}

TEST_CASE("JobQueue durability", "[scheduler]") {
    SECTION("every change is synced before the call returns") {
        auto memory = scanner::open_memory_store();
        SyncWatchingStore store(*memory);
        JobQueue queue(store);
        auto submitted = queue.submit(request("a"), "id:a", "sigs-1");
        REQUIRE(submitted);
        CHECK(store.syncs() == 1);
        CHECK(store.unsynced_puts() == 0);
        const std::string id = submitted->record.id;
        REQUIRE(queue.mark_running(id));
        CHECK(store.unsynced_puts() == 0);
        REQUIRE(queue.mark_paused(id));
        CHECK(store.unsynced_puts() == 0);
        REQUIRE(queue.recover());
        CHECK(store.unsynced_puts() == 0);
        REQUIRE(queue.mark_running(id));
        REQUIRE(queue.mark_failed(id, "boom"));
        CHECK(store.unsynced_puts() == 0);
        REQUIRE(queue.cancel(id));
        CHECK(store.unsynced_puts() == 0);
        const int before = store.syncs();
        REQUIRE(queue.submit(request("a"), "id:a", "sigs-1")); // queued again
        CHECK(store.unsynced_puts() == 0);
        CHECK(store.syncs() == before + 1);
    }
    SECTION("a job is still there after the store is closed and opened again") {
        QueueUnderTest q(Backend::rocksdb);
        auto submitted =
            q.queue->submit(request("/images/a.qcow2", Priority::gate, "snap"), "id:a", "sigs-1");
        REQUIRE(submitted);
        const std::string id = submitted->record.id;
        REQUIRE(q.queue->mark_running(id));
        q.restart();
        const JobRecord record = stored_record(*q.queue, id);
        CHECK(record.status == JobStatus::running);
        CHECK(record.request.target == "/images/a.qcow2");
        CHECK(record.request.snapshot == "snap");
        CHECK(record.request.priority == Priority::gate);
        CHECK(record.signature_set == "sigs-1");
        CHECK(record.request.disks.empty());
        auto again = q.queue->submit(request("/images/a.qcow2", Priority::gate, "snap"), "id:a", "sigs-1");
        REQUIRE(again);
        CHECK_FALSE(again->created);
        CHECK(listed(*q.queue).size() == 1);
    }
}

TEST_CASE("JobQueue keeps a VM's disks", "[scheduler]") {
    QueueUnderTest q(Backend::rocksdb);
    JobRequest vm = request("vm:web01", Priority::gate);
    vm.disks = {{"/images/web01-a.qcow2", "qcow2"}, {"/images/web01-b.img", "raw"}};
    auto submitted = q.queue->submit(vm, "vm|a;b;", "sigs-1");
    REQUIRE(submitted);
    q.restart();
    const JobRecord record = stored_record(*q.queue, submitted->record.id);
    CHECK(record.request.target == "vm:web01");
    CHECK(record.request.disks == vm.disks);
}

TEST_CASE("JobQueue::recover", "[scheduler]") {
    const Backend backend = GENERATE(Backend::memory, Backend::rocksdb);
    CAPTURE(name_of(backend));
    QueueUnderTest q(backend);
    // Submitted one second apart, in an order unlike their ids' order.
    q.now = 100;
    const JobRecord running = submit(*q.queue, "running");
    q.now = 101;
    const JobRecord queued = submit(*q.queue, "queued");
    q.now = 102;
    const JobRecord paused = submit(*q.queue, "paused");
    q.now = 103;
    const JobRecord done = submit(*q.queue, "done");
    q.now = 104;
    const JobRecord failed_once = submit(*q.queue, "failed-once");
    REQUIRE(q.queue->mark_running(running.id));
    REQUIRE(q.queue->mark_running(paused.id));
    REQUIRE(q.queue->mark_paused(paused.id));
    REQUIRE(q.queue->mark_running(done.id));
    REQUIRE(q.queue->mark_succeeded(done.id, "/reports/done.json"));
    REQUIRE(q.queue->mark_running(failed_once.id));
    REQUIRE(q.queue->mark_failed(failed_once.id, "first try"));
    REQUIRE(q.queue->mark_running(failed_once.id));

    if (backend == Backend::rocksdb) {
        q.restart();
    }
    q.now = 500;
    auto recovered = q.queue->recover();
    REQUIRE(recovered);
    CHECK(ids_of(*recovered) == std::vector<std::string>{running.id, queued.id, paused.id, failed_once.id});
    for (const auto& record : *recovered) {
        CAPTURE(record.request.target);
        CHECK(record.status == JobStatus::queued);
    }
    SECTION("running and paused jobs are queued again, stored, their attempts unchanged") {
        CHECK(stored_record(*q.queue, running.id).status == JobStatus::queued);
        CHECK(stored_record(*q.queue, running.id).updated_at == 500);
        CHECK(stored_record(*q.queue, paused.id).status == JobStatus::queued);
        CHECK(stored_record(*q.queue, failed_once.id).attempts == 1);
        CHECK(stored_record(*q.queue, failed_once.id).last_error == "first try");
        CHECK(stored_record(*q.queue, queued.id).updated_at == 101); // untouched
    }
    SECTION("finished jobs stay as they were") {
        const JobRecord record = stored_record(*q.queue, done.id);
        CHECK(record.status == JobStatus::succeeded);
        CHECK(record.report_path == "/reports/done.json");
    }
    SECTION("a second recover finds the same jobs and changes nothing") {
        q.now = 600;
        auto again = q.queue->recover();
        REQUIRE(again);
        CHECK(ids_of(*again) == ids_of(*recovered));
        CHECK(stored_record(*q.queue, running.id).updated_at == 500);
    }
}

TEST_CASE("JobQueue::mark_failed", "[scheduler]") {
    const Backend backend = GENERATE(Backend::memory, Backend::rocksdb);
    CAPTURE(name_of(backend));

    SECTION("retried until max_attempts failures, then dead_letter with the last error") {
        QueueUnderTest q(backend, 3);
        const std::string id = submit(*q.queue, "a").id;
        const std::vector<std::string> errors{"first", "second", "third"};
        std::vector<JobStatus> statuses;
        for (const auto& error : errors) {
            REQUIRE(q.queue->mark_running(id));
            auto failed = q.queue->mark_failed(id, error);
            REQUIRE(failed);
            statuses.push_back(failed->status);
        }
        CHECK(statuses ==
              std::vector<JobStatus>{JobStatus::queued, JobStatus::queued, JobStatus::dead_letter});
        const JobRecord record = stored_record(*q.queue, id);
        CHECK(record.status == JobStatus::dead_letter);
        CHECK(record.attempts == 3);
        CHECK(record.last_error == "third");
        CHECK(ids_of(listed(*q.queue, JobStatus::dead_letter)) == std::vector<std::string>{id});
        auto after = q.queue->mark_running(id);
        REQUIRE_FALSE(after);
        CHECK(after.error().code == Errc::invalid_argument);
    }
    SECTION("Retry::never fails the job at once") {
        QueueUnderTest q(backend, 3);
        const std::string id = submit(*q.queue, "a").id;
        REQUIRE(q.queue->mark_running(id));
        auto failed = q.queue->mark_failed(id, "unsafe image", Retry::never);
        REQUIRE(failed);
        CHECK(failed->status == JobStatus::failed);
        CHECK(failed->attempts == 1);
        CHECK(failed->last_error == "unsafe image");
    }
    SECTION("a paused job may fail too") {
        QueueUnderTest q(backend, 3);
        const std::string id = submit(*q.queue, "a").id;
        REQUIRE(q.queue->mark_running(id));
        REQUIRE(q.queue->mark_paused(id));
        auto failed = q.queue->mark_failed(id, "appliance died while paused");
        REQUIRE(failed);
        CHECK(failed->status == JobStatus::queued);
        CHECK(failed->attempts == 1);
    }
    SECTION("max_attempts 0 counts as 1") {
        QueueUnderTest q(backend, 0);
        CHECK(q.queue->max_attempts() == 1);
        const std::string id = submit(*q.queue, "a").id;
        REQUIRE(q.queue->mark_running(id));
        auto failed = q.queue->mark_failed(id, "once");
        REQUIRE(failed);
        CHECK(failed->status == JobStatus::dead_letter);
    }
}

TEST_CASE("JobQueue transitions", "[scheduler]") {
    const Backend backend = GENERATE(Backend::memory, Backend::rocksdb);
    CAPTURE(name_of(backend));
    QueueUnderTest q(backend);
    JobQueue& queue = *q.queue;
    const std::string id = submit(queue, "a").id;

    auto expect_refused = [&](const Expected<JobRecord>& result, JobStatus unchanged) {
        REQUIRE_FALSE(result);
        CHECK(result.error().code == Errc::invalid_argument);
        CHECK(result.error().message.find(id) != std::string::npos);
        CHECK(stored_record(queue, id).status == unchanged);
    };

    SECTION("the way through: queued, running, paused, running, succeeded") {
        q.now = 1100;
        auto started = queue.mark_running(id);
        REQUIRE(started);
        CHECK(started->status == JobStatus::running);
        CHECK(started->updated_at == 1100);
        auto paused = queue.mark_paused(id);
        REQUIRE(paused);
        CHECK(paused->status == JobStatus::paused);
        auto resumed = queue.mark_running(id);
        REQUIRE(resumed);
        CHECK(resumed->status == JobStatus::running);
        q.now = 1200;
        auto finished = queue.mark_succeeded(id, "/reports/a.json");
        REQUIRE(finished);
        CHECK(finished->status == JobStatus::succeeded);
        CHECK(finished->report_path == "/reports/a.json");
        const JobRecord stored = stored_record(queue, id);
        CHECK(stored.status == JobStatus::succeeded);
        CHECK(stored.report_path == "/reports/a.json");
        CHECK(stored.updated_at == 1200);
        CHECK(stored.submitted_at == 1000);
    }
    SECTION("a queued job cannot pause, succeed or fail") {
        expect_refused(queue.mark_paused(id), JobStatus::queued);
        expect_refused(queue.mark_succeeded(id, "/r"), JobStatus::queued);
        expect_refused(queue.mark_failed(id, "e"), JobStatus::queued);
        CHECK(stored_record(queue, id).attempts == 0);
    }
    SECTION("a running job cannot start again; a paused one cannot pause again or succeed") {
        REQUIRE(queue.mark_running(id));
        expect_refused(queue.mark_running(id), JobStatus::running);
        REQUIRE(queue.mark_paused(id));
        expect_refused(queue.mark_paused(id), JobStatus::paused);
        expect_refused(queue.mark_succeeded(id, "/r"), JobStatus::paused);
    }
    SECTION("a succeeded job cannot start, fail or be cancelled") {
        REQUIRE(queue.mark_running(id));
        REQUIRE(queue.mark_succeeded(id, "/r"));
        expect_refused(queue.mark_running(id), JobStatus::succeeded);
        expect_refused(queue.mark_failed(id, "e"), JobStatus::succeeded);
        expect_refused(queue.cancel(id), JobStatus::succeeded);
        expect_refused(queue.mark_succeeded(id, "/other"), JobStatus::succeeded);
        CHECK(stored_record(queue, id).report_path == "/r");
    }
    SECTION("cancel: from queued, running or paused; again is no error; a cancelled job does not start") {
        const std::string running = submit(queue, "b").id;
        const std::string paused = submit(queue, "c").id;
        REQUIRE(queue.mark_running(running));
        REQUIRE(queue.mark_running(paused));
        REQUIRE(queue.mark_paused(paused));
        for (const auto& job : {id, running, paused}) {
            auto cancelled = queue.cancel(job);
            REQUIRE(cancelled);
            CHECK(cancelled->status == JobStatus::cancelled);
        }
        q.now = 3000;
        auto again = queue.cancel(id);
        REQUIRE(again);
        CHECK(again->status == JobStatus::cancelled);
        CHECK(again->updated_at == 1000); // nothing was written
        expect_refused(queue.mark_running(id), JobStatus::cancelled);
        CHECK(listed(queue, JobStatus::cancelled).size() == 3);
    }
    SECTION("an unknown or malformed id is not_found") {
        const std::string unknown = job_id("id:nothing", "", "sigs-1");
        for (const std::string& missing : {unknown, std::string("j-xyz"), std::string()}) {
            CAPTURE(missing);
            auto started = queue.mark_running(missing);
            REQUIRE_FALSE(started);
            CHECK(started.error().code == Errc::not_found);
            auto cancelled = queue.cancel(missing);
            REQUIRE_FALSE(cancelled);
            CHECK(cancelled.error().code == Errc::not_found);
            auto record = queue.get(missing);
            REQUIRE(record);
            CHECK_FALSE(record->has_value());
        }
    }
}

TEST_CASE("JobQueue::list", "[scheduler]") {
    const Backend backend = GENERATE(Backend::memory, Backend::rocksdb);
    CAPTURE(name_of(backend));
    QueueUnderTest q(backend);
    std::vector<std::string> ids;
    for (const std::string target : {"z", "y", "x", "w"}) {
        ids.push_back(submit(*q.queue, target).id);
        ++q.now;
    }
    REQUIRE(q.queue->mark_running(ids[1]));
    REQUIRE(q.queue->mark_running(ids[3]));

    CHECK(ids_of(listed(*q.queue)) == ids); // oldest first, whatever the ids' order
    CHECK(ids_of(listed(*q.queue, JobStatus::running)) == std::vector<std::string>{ids[1], ids[3]});
    CHECK(ids_of(listed(*q.queue, JobStatus::queued)) == std::vector<std::string>{ids[0], ids[2]});
    CHECK(listed(*q.queue, JobStatus::dead_letter).empty());
    CHECK(q.queue->damaged_records() == 0);
}

TEST_CASE("JobQueue damaged records", "[scheduler]") {
    const Backend backend = GENERATE(Backend::memory, Backend::rocksdb);
    CAPTURE(name_of(backend));
    QueueUnderTest q(backend);
    const std::string first = submit(*q.queue, "a").id;
    ++q.now;
    const std::string second = submit(*q.queue, "b").id;
    REQUIRE(q.queue->mark_running(second));

    const std::string garbage_id = job_id("id:c", "", "sigs-1");
    const std::string other_version_id = job_id("id:d", "", "sigs-1");
    const std::string other_schema_id = job_id("id:e", "", "sigs-1");
    REQUIRE(q.store->put(KeySpace::jobs, raw_key(garbage_id), "{\"v\":1,\"id\":"));
    REQUIRE(q.store->put(KeySpace::jobs, raw_key(other_version_id),
                         "{\"v\":99,\"id\":\"" + other_version_id + "\"}"));
    REQUIRE(q.store->put(KeySpace::jobs, raw_key(other_schema_id, 9), "{}"));
    REQUIRE(q.store->put(KeySpace::jobs, "short key", "{}"));
    // A good record stored under another job's key disagrees with it.
    auto good = q.store->get(KeySpace::jobs, raw_key(first));
    REQUIRE(good);
    REQUIRE(good->has_value());
    REQUIRE(q.store->put(KeySpace::jobs, raw_key(job_id("id:f", "", "sigs-1")), **good));

    SECTION("list skips and counts them, and shows the others") {
        CHECK(ids_of(listed(*q.queue)) == std::vector<std::string>{first, second});
        CHECK(q.queue->damaged_records() == 5);
    }
    SECTION("recover skips them and recovers the others") {
        auto recovered = q.queue->recover();
        REQUIRE(recovered);
        CHECK(ids_of(*recovered) == std::vector<std::string>{first, second});
        CHECK(q.queue->damaged_records() == 5);
        CHECK(stored_record(*q.queue, second).status == JobStatus::queued);
    }
    SECTION("get and transitions of a damaged job are corrupt errors") {
        auto record = q.queue->get(garbage_id);
        REQUIRE_FALSE(record);
        CHECK(record.error().code == Errc::corrupt);
        auto started = q.queue->mark_running(other_version_id);
        REQUIRE_FALSE(started);
        CHECK(started.error().code == Errc::corrupt);
    }
    SECTION("submitting the damaged job again replaces its record") {
        auto submitted = q.queue->submit(request("c"), "id:c", "sigs-1");
        REQUIRE(submitted);
        CHECK(submitted->created);
        CHECK(submitted->record.id == garbage_id);
        CHECK(stored_record(*q.queue, garbage_id).status == JobStatus::queued);
        CHECK(listed(*q.queue).size() == 3);
        CHECK(q.queue->damaged_records() == 4);
    }
}

TEST_CASE("JobQueue record layout", "[scheduler]") {
    auto store = scanner::open_memory_store();
    JobQueue queue(*store, JobQueueOptions{3, [] { return std::int64_t{42}; }});
    const std::string id = submit(queue, "a").id;
    std::vector<std::pair<std::string, std::string>> pairs;
    REQUIRE(store->for_each(KeySpace::jobs, [&](std::string_view key, std::string_view value) {
        pairs.emplace_back(key, value);
        return true;
    }));
    REQUIRE(pairs.size() == 1);
    CHECK(pairs[0].first == raw_key(id)); // schema 1, kind 'J', the id: 28 bytes
    CHECK(pairs[0].first.size() == 28);
    CHECK(pairs[0].second.starts_with("{"));
    CHECK(pairs[0].second.find("\"v\":1") != std::string::npos);
    CHECK(pairs[0].second.find("\"status\":\"queued\"") != std::string::npos);
    CHECK(pairs[0].second.find("\"submitted_at\":42") != std::string::npos);
}

TEST_CASE("JobQueue::requeue", "[scheduler]") {
    const Backend backend = GENERATE(Backend::memory, Backend::rocksdb);
    CAPTURE(name_of(backend));
    QueueUnderTest q(backend);
    JobQueue& queue = *q.queue;
    const JobRecord job = submit(queue, "a");

    SECTION("running and paused jobs go back to queued with their attempts unchanged") {
        REQUIRE(queue.mark_running(job.id));
        REQUIRE(queue.mark_failed(job.id, "first try"));
        REQUIRE(queue.mark_running(job.id));
        auto requeued = queue.requeue(job.id);
        REQUIRE(requeued);
        CHECK(requeued->status == JobStatus::queued);
        CHECK(requeued->attempts == 1);
        CHECK(stored_record(queue, job.id).status == JobStatus::queued);
        REQUIRE(queue.mark_running(job.id));
        REQUIRE(queue.mark_paused(job.id));
        CHECK(queue.requeue(job.id).has_value());
    }
    SECTION("queued and finished jobs cannot be queued again this way") {
        auto queued = queue.requeue(job.id);
        REQUIRE_FALSE(queued);
        CHECK(queued.error().code == Errc::invalid_argument);
        REQUIRE(queue.mark_running(job.id));
        REQUIRE(queue.mark_succeeded(job.id, "/r.json"));
        CHECK_FALSE(queue.requeue(job.id).has_value());
        CHECK(queue.requeue("j-000000000000000000000000").error().code == Errc::not_found);
    }
}

TEST_CASE("JobQueue::submit with Rescan and a host", "[scheduler]") {
    const Backend backend = GENERATE(Backend::memory, Backend::rocksdb);
    CAPTURE(name_of(backend));
    QueueUnderTest q(backend);
    JobQueue& queue = *q.queue;
    JobRequest first = request("a", Priority::nightly);
    first.host = "kvm01";
    auto submitted = queue.submit(first, "id:a", "sigs-1");
    REQUIRE(submitted);
    const std::string id = submitted->record.id;
    CHECK(stored_record(queue, id).request.host == "kvm01");
    REQUIRE(queue.mark_running(id));
    REQUIRE(queue.mark_succeeded(id, "/reports/a.json")); // updated_at 1000
    q.now = 5000;

    SECTION("a success newer than succeeded_before stands") {
        auto again = queue.submit(request("a", Priority::gate), "id:a", "sigs-1", Rescan{999});
        REQUIRE(again);
        CHECK(again->record.status == JobStatus::succeeded);
        CHECK(again->record.report_path == "/reports/a.json");
        CHECK(again->record.request.priority == Priority::nightly);
    }
    SECTION("one of the very second is stale too (a max age of 0 always rescans)") {
        auto again = queue.submit(request("a", Priority::gate), "id:a", "sigs-1", Rescan{1000});
        REQUIRE(again);
        CHECK(again->record.status == JobStatus::queued);
    }
    SECTION("an older one is stale: queued again with the new request") {
        JobRequest gate = request("a", Priority::gate);
        gate.host = "kvm02";
        auto again = queue.submit(gate, "id:a", "sigs-1", Rescan{1001});
        REQUIRE(again);
        CHECK_FALSE(again->created);
        CHECK(again->record.id == id);
        CHECK(again->record.status == JobStatus::queued);
        CHECK(again->record.request.priority == Priority::gate);
        CHECK(again->record.submitted_at == 5000);
        CHECK_FALSE(again->record.report_path.has_value());
        CHECK(stored_record(queue, id).request.host == "kvm02");
    }
    SECTION("without Rescan a success stands however old") {
        auto again = queue.submit(request("a"), "id:a", "sigs-1");
        REQUIRE(again);
        CHECK(again->record.status == JobStatus::succeeded);
    }
}
