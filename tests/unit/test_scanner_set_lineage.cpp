#include "coldscan/common/temp_dir.hpp"
#include "coldscan/scanner/set_lineage.hpp"
#include "coldscan/scanner/verdict_cache.hpp"

#include <algorithm>
#include <catch2/catch.hpp>

using namespace coldscan;
using namespace coldscan::scanner;
using signatures::CatalogueLine;
using signatures::LineKind;
using signatures::LineText;

namespace {

CatalogueLine line(std::string_view text, LineKind kind) {
    Sha256 hasher;
    const auto kind_byte = static_cast<std::byte>(kind);
    hasher.update(std::span<const std::byte>(&kind_byte, 1));
    hasher.update(text);
    return CatalogueLine{hasher.finish(), kind};
}

// n hash lines "sig-0" ... plus extra, sorted and unique as SignatureSet::detection_lines gives them.
std::vector<CatalogueLine> set_of(std::size_t n, std::vector<CatalogueLine> extra = {}) {
    std::vector<CatalogueLine> lines = std::move(extra);
    for (std::size_t i = 0; i < n; ++i) {
        lines.push_back(line("sig-" + std::to_string(i), LineKind::hash));
    }
    std::ranges::sort(lines);
    const auto repeats = std::ranges::unique(lines);
    lines.erase(repeats.begin(), repeats.end());
    return lines;
}

std::size_t records_in(const KvStore& store) {
    std::size_t count = 0;
    REQUIRE(store.for_each(KeySpace::signature_sets, [&](std::string_view, std::string_view) {
        ++count;
        return true;
    }));
    return count;
}

std::string set_name(int i) {
    return std::string(63, 'a') + std::to_string(i % 10);
}

Outcome clean() {
    return Outcome{OutcomeKind::clean, "", {}};
}

} // namespace

TEST_CASE("SetLineage::change") {
    const bool rocksdb = GENERATE(false, true);
    CAPTURE(rocksdb);
    const TempDir dir = TempDir::create("coldscan-test").value();
    auto store = rocksdb ? open_rocksdb_store(dir.path() / "cache").value() : open_memory_store();
    const std::string hash_text = "44d88612fea8a8f36de82e1278abb02f:68:New.Hash";
    const auto added_hash = line(hash_text, LineKind::hash);
    std::vector<CatalogueLine> asked;
    SetLineage lineage(*store, [&](std::span<const CatalogueLine> wanted) -> Expected<std::vector<LineText>> {
        asked.assign(wanted.begin(), wanted.end());
        return std::vector<LineText>{LineText{added_hash, hash_text}};
    });
    const auto yesterday = set_of(20'000);
    const auto added_ign2 = line("Old.Fp.Sig", LineKind::allow_list);
    auto today = set_of(20'000, {added_hash, added_ign2});
    today.erase(std::ranges::find(today, line("sig-7", LineKind::hash)));
    REQUIRE(lineage.record("yesterday", yesterday, 1000));
    const auto stored_once = records_in(*store);
    REQUIRE(lineage.record("today", today, 2000));

    SECTION("exactly the lines added and removed, by kind, and the sizes the added hashes name") {
        const auto change = lineage.change("yesterday", "today").value();
        REQUIRE(change);
        const auto& delta = change->delta;
        CHECK(delta.added ==
              std::vector<CatalogueLine>{std::min(added_hash, added_ign2), std::max(added_hash, added_ign2)});
        REQUIRE(delta.removed.size() == 1);
        CHECK(delta.removed[0] == line("sig-7", LineKind::hash));
        CHECK(asked == std::vector<CatalogueLine>{added_hash}); // only the added hash lines' texts are read
        CHECK(change->added_hash_sizes == std::vector<std::uint64_t>{68});
        CHECK_FALSE(change->hash_of_any_size);
        const auto back = lineage.change("today", "yesterday").value();
        REQUIRE(back);
        CHECK(back->delta.added == delta.removed);
        CHECK(back->delta.removed == delta.added);
        // sig-7 came back: its text is not the reader's, so it may match any size.
        CHECK(back->hash_of_any_size);
    }
    SECTION("lineage_stats: what `coldscan cache stats` prints") {
        const auto stats = lineage_stats(*store).value();
        CHECK(stats.sets == 2);
        CHECK(stats.buckets + stats.sets == records_in(*store));
        CHECK(stats.buckets > 0);
        CHECK(stats.undecodable == 0);
        CHECK(stats.oldest_use == 1000);
        CHECK(stats.newest_use == 2000);
        CHECK(stats.bytes > 20'000 * 33); // every line's digest and kind, at least
    }
    SECTION("a set shares the buckets an update did not touch") {
        // One manifest and at most three new buckets for three lines changed.
        CHECK(records_in(*store) - stored_once <= 4);
        CHECK(lineage.knows("today").value());
        CHECK_FALSE(lineage.knows("tomorrow").value());
    }
    SECTION("an unknown set has no change") {
        CHECK(lineage.change("never-seen", "today").value() == nullptr);
    }
    SECTION("a damaged bucket makes the set unknown, never a wrong change") {
        std::vector<std::string> buckets;
        REQUIRE(store->for_each(KeySpace::signature_sets, [&](std::string_view key, std::string_view) {
            if (key.starts_with("B")) {
                buckets.emplace_back(key);
            }
            return true;
        }));
        for (const auto& key : buckets) {
            REQUIRE(store->put(KeySpace::signature_sets, key, std::string(33, 'x')));
        }
        CHECK(lineage.change("yesterday", "today").value() == nullptr);
    }
    SECTION("only the sets used last are kept, with the buckets they name") {
        for (int i = 0; i < static_cast<int>(SetLineage::k_kept_sets) + 5; ++i) {
            REQUIRE(lineage.record(set_name(i) + std::to_string(i),
                                   set_of(50, {line(set_name(i), LineKind::body)}), 3000 + i));
        }
        CHECK_FALSE(lineage.knows("yesterday").value());
        CHECK_FALSE(lineage.knows("today").value());
        CHECK(lineage.knows(set_name(34) + "34").value());
        // 30 manifests; their 50 shared hash lines and 30 body lines fall in at most 80 buckets.
        CHECK(records_in(*store) <= SetLineage::k_kept_sets + 80);
    }
}

TEST_CASE("stands_without_work") {
    const auto hash = line("hash", LineKind::hash);
    const auto section = line("section", LineKind::section_hash);
    const auto body = line("body", LineKind::body);
    const auto allow = line("allow", LineKind::allow_list);
    const auto phishing_allow = line("X:example.com", LineKind::phishing);
    auto change = [](std::vector<CatalogueLine> added, std::vector<CatalogueLine> removed,
                     std::vector<std::uint64_t> hash_sizes = {}) {
        SetChange out;
        out.delta = {std::move(added), std::move(removed)};
        out.added_hash_sizes = std::move(hash_sizes);
        return out;
    };
    Outcome scanned = clean();
    scanned.layers = ScannedLayers{{68, 4096}, {"CL_TYPE_GZ", "CL_TYPE_ZIP"}, true};
    const Outcome infected{OutcomeKind::infected, "", {Detection{Engine::clamav, "Sig", "", {}, {}}}};
    const Outcome limit{OutcomeKind::limit_exceeded, "archive member over MaxFileSize", {}};

    SECTION("removed detection lines and added allow-list lines") {
        CHECK(stands_without_work(clean(), change({}, {hash, body})));
        CHECK(stands_without_work(clean(), change({allow}, {})));
        CHECK(stands_without_work(limit, change({allow}, {hash})));
        CHECK_FALSE(stands_without_work(clean(), change({}, {allow})));
        CHECK_FALSE(stands_without_work(clean(), change({}, {phishing_allow})));
        CHECK_FALSE(stands_without_work(infected, change({}, {hash})));
        CHECK_FALSE(stands_without_work(infected, change({allow}, {})));
    }
    SECTION("added hash lines: by the sizes of the layers scanned") {
        CHECK(stands_without_work(scanned, change({hash}, {}, {67, 69, 5000})));
        CHECK_FALSE(stands_without_work(scanned, change({hash}, {}, {67, 4096})));
        auto any_size = change({hash}, {}, {});
        any_size.hash_of_any_size = true;
        CHECK_FALSE(stands_without_work(scanned, any_size));
        CHECK_FALSE(stands_without_work(clean(), change({hash}, {}, {67}))); // no layers recorded
        // libclamav also hashes what it derives from text (normalised HTML, scripts): not recorded as layers.
        Outcome text = scanned;
        text.layers.types = {"CL_TYPE_GZ", "CL_TYPE_TEXT_ASCII"};
        CHECK_FALSE(stands_without_work(text, change({hash}, {}, {67, 69, 5000})));
    }
    SECTION("added section hashes: only where a PE was scanned") {
        CHECK(stands_without_work(scanned, change({section}, {})));
        Outcome pe = scanned;
        pe.layers.types = {"CL_TYPE_MSEXE"};
        CHECK_FALSE(stands_without_work(pe, change({section}, {})));
    }
    SECTION("added pattern lines: by the target types of the layers scanned") {
        auto targeting = [&](std::vector<int> targets) {
            auto out = change({allow, body}, {});
            out.added_targets = std::move(targets);
            return out;
        };
        CHECK(stands_without_work(scanned, targeting({1, 6, 10})));   // PE, ELF, PDF: none was scanned
        CHECK_FALSE(stands_without_work(scanned, targeting({1, 0}))); // generic: any layer
        CHECK_FALSE(stands_without_work(scanned, targeting({7})));    // ASCII also runs on normalised text
        auto unknown = targeting({1});
        unknown.pattern_of_any_target = true;
        CHECK_FALSE(stands_without_work(scanned, unknown));
        CHECK_FALSE(stands_without_work(clean(), targeting({1}))); // no layers recorded
    }
}

TEST_CASE("plan_recheck") {
    using Kind = Recheck::Kind;
    const auto body = line("body", LineKind::body);
    const auto rules = line("rule file", LineKind::yara);
    const auto icon = line("icon", LineKind::icon);
    const auto allow = line("allow", LineKind::allow_list);
    Outcome scanned = clean();
    scanned.layers = ScannedLayers{{68}, {"CL_TYPE_ELF"}, true};
    SetChange change;
    change.delta.added = {body};
    change.added_targets = {6};

    SECTION("a CLEAN verdict is checked against the added lines alone") {
        const Recheck plan = plan_recheck(scanned, change);
        CHECK(plan.kind == Kind::added_lines);
        CHECK(plan.clamav);
        CHECK_FALSE(plan.yara);
        change.delta.added = {rules};
        const Recheck yara = plan_recheck(scanned, change);
        CHECK(yara.kind == Kind::added_lines);
        CHECK(yara.yara);
    }
    SECTION("what the added lines alone cannot confirm is scanned in full") {
        const Outcome limit{
            OutcomeKind::limit_exceeded, "archive member over MaxFileSize", {}, false, scanned.layers};
        CHECK(plan_recheck(limit, change).kind == Kind::full);
        const Outcome infected{OutcomeKind::infected, "", {Detection{Engine::clamav, "Sig", "", {}, {}}}};
        CHECK(plan_recheck(infected, change).kind == Kind::full);
        change.delta.added = {body, icon};
        CHECK(plan_recheck(scanned, change).kind == Kind::full);
        change.delta.added = {body};
        change.delta.removed = {allow};
        CHECK(plan_recheck(scanned, change).kind == Kind::full);
    }
}

TEST_CASE("plan_recheck: added hash lines against recorded layer digests") {
    using Kind = Recheck::Kind;
    const std::string data = "a gzip member's bytes";
    const LayerDigest layer = digest_layer(std::as_bytes(std::span(data.data(), data.size())));
    Outcome scanned = clean();
    scanned.layers = ScannedLayers{{layer.size}, {"CL_TYPE_GZ"}, true, {layer}, true};
    auto adding = [](std::vector<AddedHash> hashes) {
        SetChange change;
        change.delta.added = {line("hash", LineKind::hash)};
        for (const auto& hash : hashes) {
            change.added_hash_sizes.push_back(hash.size.value_or(0));
        }
        change.added_hashes = std::move(hashes);
        return change;
    };
    const std::vector<std::byte> md5(layer.md5.begin(), layer.md5.end());
    const std::vector<std::byte> sha256(layer.sha256.begin(), layer.sha256.end());
    std::vector<std::byte> other = md5;
    other[0] ^= std::byte{1};

    // The same size, another digest: answered with no read (sizes alone would re-check it).
    CHECK(plan_recheck(scanned, adding({AddedHash{layer.size, other, "Sig"}})).kind == Kind::none);
    // Its digest: the content is now detected, scanned in full for every match.
    CHECK(plan_recheck(scanned, adding({AddedHash{layer.size, md5, "Sig"}})).kind == Kind::full);
    CHECK(plan_recheck(scanned, adding({AddedHash{std::nullopt, sha256, "Sig"}})).kind == Kind::full);
    CHECK(plan_recheck(scanned, adding({AddedHash{layer.size + 1, md5, "Sig"}})).kind == Kind::none);
    // Text layers: libclamav hashes what it derives from them unseen, so their engine checks the bytes.
    Outcome text = scanned;
    text.layers.types = {"CL_TYPE_TEXT_ASCII"};
    CHECK(plan_recheck(text, adding({AddedHash{layer.size, other, "Sig"}})).kind == Kind::added_lines);
    // No digests recorded: sizes decide.
    Outcome sizes_only = scanned;
    sizes_only.layers.digests.clear();
    sizes_only.layers.digests_complete = false;
    CHECK(plan_recheck(sizes_only, adding({AddedHash{layer.size, other, "Sig"}})).kind == Kind::added_lines);
    CHECK(plan_recheck(sizes_only, adding({AddedHash{layer.size + 1, other, "Sig"}})).kind == Kind::none);
}

TEST_CASE("VerdictCache across detection sets") {
    auto store = open_memory_store();
    std::string hash_text;
    SetLineage lineage(*store, [&](std::span<const CatalogueLine> wanted) -> Expected<std::vector<LineText>> {
        return std::vector<LineText>{LineText{wanted[0], hash_text}};
    });
    const auto old_lines = set_of(100);
    REQUIRE(lineage.record("old", old_lines, 1000));
    const auto content = Sha256Digest{std::byte{1}};
    const auto scanned = Sha256Digest{std::byte{2}};
    {
        VerdictCache made(*store, "engine part");
        made.follow_sets("old", &lineage);
        REQUIRE(made.remember_verdict(content, clean()).value());
        Outcome with_layers = clean();
        LayerDigest zip_layer;
        zip_layer.size = 4096;
        zip_layer.md5[0] = std::byte{7};
        with_layers.layers = ScannedLayers{{68, 4096}, {"CL_TYPE_ZIP"}, true, {zip_layer}, true};
        REQUIRE(made.remember_verdict(scanned, with_layers).value());
    }
    SECTION("a hash line added: the layers the verdict recorded say whether it can match") {
        hash_text = "44d88612fea8a8f36de82e1278abb02f:99:New.Hash";
        REQUIRE(lineage.record("new", set_of(100, {line(hash_text, LineKind::hash)}), 2000));
        VerdictCache cache(*store, "engine part");
        cache.follow_sets("new", &lineage);
        const auto found = cache.find_verdict(scanned).value();
        REQUIRE(found);
        CHECK(found->layers.sizes == std::vector<std::uint64_t>{68, 4096}); // kept in the record
        CHECK(found->layers.types == std::vector<std::string>{"CL_TYPE_ZIP"});
        REQUIRE(found->layers.digests.size() == 1);
        CHECK(found->layers.digests[0].md5[0] == std::byte{7});
        CHECK(found->layers.digests_complete);
        CHECK_FALSE(cache.find_verdict(content).value()); // recorded no layers: the added line may match
        const auto pending = cache.find_pending(content).value();
        REQUIRE(pending);
        CHECK(pending->made_with == "old");
        CHECK(pending->recheck.kind == Recheck::Kind::added_lines);
        CHECK(pending->recheck.clamav);
        CHECK(pending->change->delta.added.size() == 1);
        CHECK_FALSE(cache.find_pending(scanned).value()); // it stands: nothing pending
        CHECK(cache.counters().verdicts_carried == 1);
        CHECK(cache.counters().verdicts_outdated == 0); // counted once the added lines were scanned for
        cache.count_recheck(content, true);
        cache.count_recheck(content, true);
        CHECK(cache.counters().verdicts_rechecked == 1);
    }
    SECTION("a hash line of a size a layer has: its digest decides, with no read") {
        hash_text = "44d88612fea8a8f36de82e1278abb02f:4096:New.Hash";
        REQUIRE(lineage.record("new", set_of(100, {line(hash_text, LineKind::hash)}), 2000));
        VerdictCache cache(*store, "engine part");
        cache.follow_sets("new", &lineage);
        CHECK(cache.find_verdict(scanned).value().has_value()); // another digest: it stands
    }
    SECTION("a hash line of a recorded layer's digest: scanned in full") {
        hash_text = "07000000000000000000000000000000:4096:New.Hash";
        REQUIRE(lineage.record("new", set_of(100, {line(hash_text, LineKind::hash)}), 2000));
        VerdictCache cache(*store, "engine part");
        cache.follow_sets("new", &lineage);
        CHECK_FALSE(cache.find_verdict(scanned).value());
        CHECK_FALSE(cache.find_pending(scanned).value().has_value());
        CHECK(cache.counters().verdicts_outdated == 1);
    }

    SECTION("a change that cannot alter it: the verdict stands, and is carried to the new set") {
        REQUIRE(lineage.record("new", set_of(90), 2000)); // ten lines removed
        VerdictCache cache(*store, "engine part");
        cache.follow_sets("new", &lineage);
        const auto found = cache.find_verdict(content).value();
        REQUIRE(found);
        CHECK(found->kind == OutcomeKind::clean);
        CHECK(cache.counters().verdicts_carried == 1);
        // Rewritten under the new set: no lineage needed the next time.
        VerdictCache without_lineage(*store, "engine part");
        without_lineage.follow_sets("new", nullptr);
        CHECK(without_lineage.find_verdict(content).value().has_value());
    }
    SECTION("a hash line whose size cannot be read: scanned again") {
        REQUIRE(lineage.record("new", set_of(100, {line("new hash", LineKind::hash)}), 2000));
        VerdictCache cache(*store, "engine part");
        cache.follow_sets("new", &lineage);
        CHECK_FALSE(cache.find_verdict(content).value().has_value());
        CHECK(cache.counters().verdict_misses == 1);
        REQUIRE(cache.find_pending(content).value().has_value());
        cache.count_recheck(content, false); // the added line matched: scanned in full
        CHECK(cache.counters().verdicts_outdated == 1);
        CHECK(cache.counters().verdicts_rechecked == 0);
    }
    SECTION("no lineage, or a set it does not know: scanned again") {
        VerdictCache cache(*store, "engine part");
        cache.follow_sets("unknown", &lineage);
        CHECK_FALSE(cache.find_verdict(content).value().has_value());
        VerdictCache blind(*store, "engine part");
        blind.follow_sets("new", nullptr);
        CHECK_FALSE(blind.find_verdict(content).value().has_value());
    }
    SECTION("another engine part never sees it") {
        REQUIRE(lineage.record("new", set_of(90), 2000));
        VerdictCache cache(*store, "another engine part");
        cache.follow_sets("new", &lineage);
        CHECK_FALSE(cache.find_verdict(content).value().has_value());
        CHECK(cache.counters().verdicts_carried == 0);
    }
}
