#include "coldscan/common/temp_dir.hpp"
#include "coldscan/scanner/verdict_cache.hpp"

#include <catch2/catch.hpp>

using namespace coldscan;
using namespace coldscan::scanner;

namespace {

struct Stores {
    TempDir dir = TempDir::create("coldscan-test").value();
    std::unique_ptr<KvStore> store;

    explicit Stores(bool rocksdb) {
        if (rocksdb) {
            store = open_rocksdb_store(dir.path() / "cache").value();
        } else {
            store = open_memory_store();
        }
    }
};

Sha256Digest digest_of(std::string_view text) {
    Sha256 hasher;
    hasher.update(text);
    return hasher.finish();
}

FileIdentity sample_identity() {
    return FileIdentity{"/images/vm1.qcow2|qcow2|layer:2049:131:4096",
                        "5c0d5ca4",
                        "/usr/bin/ls",
                        131,
                        7,
                        544,
                        1'700'000'000'000,
                        1'700'000'100'000};
}

Outcome infected() {
    return Outcome{
        OutcomeKind::infected,
        "",
        {Detection{Engine::clamav, "Coldscan.Test.Eicar.UNOFFICIAL", "", {}, {}},
         Detection{Engine::yara, "Ransom_Note", "demo", {"ransom", "note"}, {{"author", "coldscan"}}}}};
}

} // namespace

TEST_CASE("VerdictCache::remember_verdict") {
    const bool rocksdb = GENERATE(false, true);
    CAPTURE(rocksdb);
    Stores s(rocksdb);
    VerdictCache cache(*s.store, "signature set A");
    const auto content = digest_of("the bytes of a file");

    SECTION("a complete verdict comes back whole, detections and YARA details included") {
        REQUIRE(cache.remember_verdict(content, infected()) == true);
        auto found = cache.find_verdict(content);
        REQUIRE(found);
        REQUIRE(found->has_value());
        const Outcome& outcome = **found;
        CHECK(outcome.kind == OutcomeKind::infected);
        REQUIRE(outcome.detections.size() == 2);
        CHECK(outcome.detections[0].signature == "Coldscan.Test.Eicar.UNOFFICIAL");
        CHECK(outcome.detections[1].engine == Engine::yara);
        CHECK(outcome.detections[1].yara_namespace == "demo");
        CHECK(outcome.detections[1].tags == std::vector<std::string>{"ransom", "note"});
        CHECK(outcome.detections[1].meta[0].second == "coldscan");
        CHECK(cache.counters().verdict_hits == 1);
    }
    SECTION("clean is cached as clean") {
        REQUIRE(cache.remember_verdict(content, Outcome{OutcomeKind::clean, "", {}}) == true);
        auto found = cache.find_verdict(content);
        REQUIRE(found);
        REQUIRE(found->has_value());
        CHECK((*found)->kind == OutcomeKind::clean);
    }
    SECTION("a size, count or depth limit is stored as LIMIT_EXCEEDED with its reason, never as clean") {
        const Outcome limit{OutcomeKind::limit_exceeded, "ClamAV: Heuristics.Limits.Exceeded.MaxFiles", {}};
        REQUIRE(cache.remember_verdict(content, limit) == true);
        auto found = cache.find_verdict(content);
        REQUIRE(found);
        REQUIRE(found->has_value());
        CHECK((*found)->kind == OutcomeKind::limit_exceeded);
        CHECK((*found)->reason == limit.reason);
        CHECK((*found)->detections.empty());
        Outcome detected_past_limit = infected();
        detected_past_limit.reason = "ClamAV: Heuristics.Limits.Exceeded.MaxRecursion";
        const auto other = digest_of("other");
        REQUIRE(cache.remember_verdict(other, detected_past_limit) == true);
        auto found_other = cache.find_verdict(other);
        REQUIRE(found_other);
        REQUIRE(found_other->has_value());
        CHECK((*found_other)->kind == OutcomeKind::infected);
        CHECK((*found_other)->reason == detected_past_limit.reason);
        CHECK((*found_other)->detections.size() == detected_past_limit.detections.size());
    }
    SECTION("time limits, errors, skips and inconsistent outcomes are never stored") {
        Outcome timed_out_detection{OutcomeKind::infected, "YARA: scan timed out after 60s",
                                    infected().detections};
        timed_out_detection.transient = true;
        Outcome timed_out{OutcomeKind::limit_exceeded, "ClamAV: Heuristics.Limits.Exceeded.MaxScanTime", {}};
        timed_out.transient = true;
        for (const Outcome& outcome :
             {timed_out, timed_out_detection, Outcome{OutcomeKind::error, "read failed", {}},
              Outcome{OutcomeKind::skipped, "excluded", {}},
              Outcome{OutcomeKind::clean, "", infected().detections},
              Outcome{OutcomeKind::clean, "a reason", {}}, Outcome{OutcomeKind::limit_exceeded, "", {}}}) {
            CAPTURE(to_string(outcome.kind), outcome.reason);
            auto stored = cache.remember_verdict(content, outcome);
            REQUIRE(stored);
            CHECK(*stored == false);
        }
        auto found = cache.find_verdict(content);
        REQUIRE(found);
        CHECK_FALSE(found->has_value());
        CHECK(cache.counters().verdicts_written == 0);
    }
    SECTION("another signature set never sees this set's verdicts") {
        REQUIRE(cache.remember_verdict(content, Outcome{OutcomeKind::clean, "", {}}) == true);
        VerdictCache updated(*s.store, "signature set B");
        auto found = updated.find_verdict(content);
        REQUIRE(found);
        CHECK_FALSE(found->has_value());
        CHECK(updated.counters().verdict_misses == 1);
    }
    SECTION("other bytes are a miss") {
        REQUIRE(cache.remember_verdict(content, infected()) == true);
        auto found = cache.find_verdict(digest_of("other bytes"));
        REQUIRE(found);
        CHECK_FALSE(found->has_value());
    }
}

TEST_CASE("VerdictCache::find_verdict with a damaged record") {
    const bool rocksdb = GENERATE(false, true);
    Stores s(rocksdb);
    VerdictCache cache(*s.store, "set");
    const auto content = digest_of("x");
    REQUIRE(cache.remember_verdict(content, Outcome{OutcomeKind::clean, "", {}}) == true);
    // Overwrite every verdict record with garbage, as a damaged store might return it.
    std::vector<std::string> keys;
    REQUIRE(s.store->for_each(KeySpace::content_verdict, [&](std::string_view key, std::string_view) {
        keys.emplace_back(key);
        return true;
    }));
    REQUIRE(keys.size() == 1);
    const std::string garbage = GENERATE(
        std::string("{not json"),
        std::string(
            R"({"v":1,"outcome":"CLEAN","detections":[{"engine":"clamav","signature":"X","namespace":"","tags":[],"meta":[]}]})"),
        std::string(R"({"v":1,"outcome":"LIMIT_EXCEEDED","detections":[]})"),
        std::string(R"({"v":2,"outcome":"CLEAN","detections":[]})"));
    REQUIRE(s.store->put(KeySpace::content_verdict, keys[0], garbage));
    auto found = cache.find_verdict(content);
    REQUIRE(found);
    CHECK_FALSE(found->has_value()); // a miss, never "clean"
    CHECK(cache.counters().undecodable_records == 1);
}

TEST_CASE("VerdictCache::find_content") {
    const bool rocksdb = GENERATE(false, true);
    Stores s(rocksdb);
    VerdictCache cache(*s.store, "set");
    const auto content = digest_of("file bytes");
    const FileIdentity identity = sample_identity();
    REQUIRE(cache.remember_content(identity, content));

    SECTION("the same identity finds its content digest") {
        auto found = cache.find_content(identity);
        REQUIRE(found);
        REQUIRE(found->has_value());
        CHECK(**found == content);
        CHECK(cache.counters().identity_hits == 1);
    }
    SECTION(
        "any change of identity is a miss: ctime, mtime, size, inode, generation, filesystem, image, path") {
        std::vector<FileIdentity> changed(8, identity);
        changed[7].path = "/usr/bin/dir";
        changed[0].ctime_ns += 1;
        changed[1].mtime_ns += 1;
        changed[2].size += 1;
        changed[3].inode += 1;
        changed[4].generation += 1;
        changed[5].filesystem_uuid = "other";
        changed[6].image_identity += "x";
        for (const auto& other : changed) {
            auto found = cache.find_content(other);
            REQUIRE(found);
            CHECK_FALSE(found->has_value());
        }
        CHECK(cache.counters().identity_misses == 8);
    }
    SECTION("level 1 does not depend on the signature set") {
        VerdictCache updated(*s.store, "another set");
        auto found = updated.find_content(identity);
        REQUIRE(found);
        CHECK(found->has_value());
    }
}

TEST_CASE("VerdictCache::find_verdict with a variant") {
    const bool rocksdb = GENERATE(false, true);
    Stores s(rocksdb);
    VerdictCache cache(*s.store, "set");
    const auto content = digest_of("bytes");
    REQUIRE(cache.remember_verdict(content, Outcome{OutcomeKind::clean, "", {}}, "/a/setup.exe") == true);
    CHECK(cache.find_verdict(content, "/a/setup.exe").value().has_value());
    CHECK_FALSE(cache.find_verdict(content, "/b/setup.exe").value().has_value());
    CHECK_FALSE(cache.find_verdict(content).value().has_value());
}

TEST_CASE("collect_garbage") {
    const bool rocksdb = GENERATE(false, true);
    Stores s(rocksdb);
    std::int64_t now = 1'800'000'000;
    VerdictCache cache(*s.store, "set", [&now] { return now; });
    REQUIRE(cache.remember_verdict(digest_of("old"), Outcome{OutcomeKind::clean, "", {}}));
    REQUIRE(cache.remember_content(sample_identity(), digest_of("old")));
    now += 10 * 86400;
    REQUIRE(cache.remember_verdict(digest_of("new"), Outcome{OutcomeKind::clean, "", {}}));

    SECTION("records not used for longer than the age go; the rest stay") {
        auto removed = collect_garbage(*s.store, std::chrono::hours(24 * 5), now);
        REQUIRE(removed);
        CHECK(*removed == 2);
        CHECK_FALSE(cache.find_verdict(digest_of("old")).value().has_value());
        CHECK(cache.find_verdict(digest_of("new")).value().has_value());
    }
    SECTION("a hit refreshes the record's last use, so it survives") {
        CHECK(cache.find_verdict(digest_of("old")).value().has_value());
        CHECK(cache.find_content(sample_identity()).value().has_value());
        auto removed = collect_garbage(*s.store, std::chrono::hours(24 * 5), now);
        REQUIRE(removed);
        CHECK(*removed == 0);
    }
    SECTION("undecodable records go too") {
        REQUIRE(s.store->put(KeySpace::content_verdict, "junk key", "junk"));
        auto removed = collect_garbage(*s.store, std::chrono::hours(24 * 365), now);
        REQUIRE(removed);
        CHECK(*removed == 1);
    }
}

TEST_CASE("cache_stats") {
    const bool rocksdb = GENERATE(false, true);
    Stores s(rocksdb);
    VerdictCache cache(*s.store, "set", [] { return std::int64_t{1'800'000'000}; });
    REQUIRE(cache.remember_verdict(digest_of("a"), Outcome{OutcomeKind::clean, "", {}}));
    REQUIRE(cache.remember_verdict(digest_of("b"), infected()));
    REQUIRE(cache.remember_content(sample_identity(), digest_of("a")));
    auto stats = cache_stats(*s.store);
    REQUIRE(stats);
    CHECK(stats->verdicts.records == 2);
    CHECK(stats->identities.records == 1);
    CHECK(stats->identities.bytes == 34 + 48);
    CHECK(stats->verdicts.oldest_use == std::optional<std::int64_t>(1'800'000'000));
    CHECK(stats->verdicts.undecodable == 0);
}

TEST_CASE("verify_cache") {
    const bool rocksdb = GENERATE(false, true);
    Stores s(rocksdb);
    VerdictCache cache(*s.store, "set");
    REQUIRE(cache.remember_verdict(digest_of("a"), Outcome{OutcomeKind::clean, "", {}}));
    auto check = verify_cache(*s.store);
    REQUIRE(check);
    CHECK(check->records == 1);
    CHECK(check->undecodable == 0);
    CHECK_FALSE(check->checksum_error);
    REQUIRE(s.store->put(KeySpace::file_identity, "short", "x"));
    check = verify_cache(*s.store);
    REQUIRE(check);
    CHECK(check->undecodable == 1);
}
