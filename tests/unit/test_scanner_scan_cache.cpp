// ScanCache's per-target holding: an image's records reach the store only while the image is unchanged.
#include "coldscan/scanner/scan_cache.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

using namespace coldscan;
using namespace coldscan::scanner;

namespace {

Sha256Digest digest_of(std::string_view text) {
    Sha256 hasher;
    hasher.update(text);
    return hasher.finish();
}

FileIdentity identity_of(std::string path) {
    return FileIdentity{"image|/images/vm.qcow2|qcow2|2049:131:4096:1:1",
                        "uuid-1",
                        std::move(path),
                        12,
                        0,
                        544,
                        1'700'000'000'000,
                        1'700'000'100'000};
}

Outcome clean() {
    return Outcome{OutcomeKind::clean, "", {}};
}

std::size_t records(const KvStore& store, KeySpace space) {
    std::size_t count = 0;
    REQUIRE(store.for_each(space, [&](std::string_view, std::string_view) {
        ++count;
        return true;
    }));
    return count;
}

// Past the checkpoint period (250 ms), so the next record stored runs a checkpoint.
void wait_for_checkpoint() {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
}

} // namespace

TEST_CASE("ScanCache::begin_target") {
    const std::shared_ptr<KvStore> store = open_memory_store();
    ScanCache cache(share_store(store), "test verdicts", IdentityUse::trust, "test-location");
    const Sha256Digest content = digest_of("file body");
    ScanCache::Served served{};
    unsigned scans = 0;
    const auto scan = [&] {
        ++scans;
        return clean();
    };
    std::atomic<bool> unchanged{true};
    std::atomic<unsigned> checks{0};

    cache.begin_target([&] {
        ++checks;
        return unchanged.load();
    });
    cache.remember_content(identity_of("/etc/hosts"), content);
    CHECK(cache.scan_once(content, "", scan, served).kind == OutcomeKind::clean);
    CHECK(served == ScanCache::Served::engines);
    // Within the target, what is held answers lookups: the same content is not scanned twice.
    CHECK(cache.find_content(identity_of("/etc/hosts")) == content);
    CHECK(cache.find_verdict(content, "").has_value());
    CHECK(cache.scan_once(content, "", scan, served).kind == OutcomeKind::clean);
    CHECK(served == ScanCache::Served::cache);
    CHECK(scans == 1);
    // ... but none is in the store yet.
    CHECK(records(*store, KeySpace::file_identity) == 0);
    CHECK(records(*store, KeySpace::content_verdict) == 0);

    SECTION("commit_target writes them") {
        cache.commit_target();
        CHECK(records(*store, KeySpace::file_identity) == 1);
        CHECK(records(*store, KeySpace::content_verdict) == 1);
        CHECK(cache.report().verdicts_written == 1);
        // Outside a target, records go straight to the store.
        cache.remember_content(identity_of("/etc/passwd"), digest_of("other"));
        CHECK(records(*store, KeySpace::file_identity) == 2);
    }
    SECTION("discard_target drops them, and the next target starts afresh") {
        cache.discard_target();
        CHECK(records(*store, KeySpace::file_identity) == 0);
        CHECK(records(*store, KeySpace::content_verdict) == 0);
        CHECK_FALSE(cache.find_content(identity_of("/etc/hosts")).has_value());
        CHECK_FALSE(cache.find_verdict(content, "").has_value());
        CHECK(cache.report().verdicts_written == 0);

        cache.begin_target([] { return true; });
        CHECK(cache.scan_once(content, "", scan, served).kind == OutcomeKind::clean);
        CHECK(served == ScanCache::Served::engines);
        CHECK(scans == 2);
        cache.commit_target();
        CHECK(records(*store, KeySpace::content_verdict) == 1);
        CHECK(cache.report().verdicts_written == 1);
    }
    SECTION("a checkpoint that finds the image unchanged writes what is held (a crash keeps it)") {
        wait_for_checkpoint();
        cache.remember_content(identity_of("/etc/passwd"), digest_of("other"));
        CHECK(checks == 1);
        CHECK(records(*store, KeySpace::file_identity) == 2);
        CHECK(records(*store, KeySpace::content_verdict) == 1);
        cache.commit_target();
        CHECK(records(*store, KeySpace::file_identity) == 2);
    }
    SECTION("a checkpoint that finds the image changed drops everything of the target") {
        unchanged = false;
        wait_for_checkpoint();
        cache.remember_content(identity_of("/etc/passwd"), digest_of("other"));
        CHECK(checks == 1);
        CHECK_FALSE(cache.find_content(identity_of("/etc/hosts")).has_value());
        // Later records of the target are not even held.
        cache.remember_content(identity_of("/etc/group"), digest_of("third"));
        CHECK_FALSE(cache.find_content(identity_of("/etc/group")).has_value());
        cache.commit_target(); // the caller's own check would discard; commit writes nothing either
        CHECK(records(*store, KeySpace::file_identity) == 0);
        CHECK(records(*store, KeySpace::content_verdict) == 0);
        CHECK(cache.report().verdicts_written == 0);
    }
}

TEST_CASE("ScanCache without an image check") {
    const std::shared_ptr<KvStore> store = open_memory_store();
    ScanCache cache(share_store(store), "test verdicts", IdentityUse::trust, "test-location");
    cache.begin_target(); // a folder or an NBD export: records go to the store as they come
    cache.remember_content(identity_of("/etc/hosts"), digest_of("file body"));
    CHECK(records(*store, KeySpace::file_identity) == 1);
    cache.commit_target();
    CHECK(records(*store, KeySpace::file_identity) == 1);
}
