#include "coldscan/signatures/signature_set.hpp"
#include "test_signatures_support.hpp"

#include <cstdlib>

using namespace coldscan;
using namespace coldscan::signatures;
using namespace coldscan::signatures::test;

namespace {

// The test databases and one YARA rule file at `rules`.
SignatureOptions with_marker_rule(const TestDatabases& db, const std::filesystem::path& rules) {
    write_file(rules, "rule marker { strings: $m = \"coldscan-marker\" condition: $m }\n");
    SignatureOptions options;
    options.clamav_db = db.folder;
    options.yara_rules = {rules};
    return options;
}

SignatureSet load_ok(const SignatureOptions& options) {
    auto set = SignatureSet::load(options);
    if (!set) {
        FAIL("SignatureSet::load failed: " << set.error().message);
    }
    return std::move(*set);
}

} // namespace

TEST_CASE("SignatureSet::load") {
    const auto db = TestDatabases::create();
    const auto rules = db.dir.path() / "rules" / "marker.yar";
    write_file(rules, "rule marker { strings: $m = \"coldscan-marker\" condition: $m }\n");

    SECTION("both engines") {
        SignatureOptions options;
        options.clamav_db = db.folder;
        options.yara_rules = {rules};
        options.limits.max_recursion = 5;
        const auto set = load_ok(options);
        REQUIRE(set.clamav() != nullptr);
        REQUIRE(set.yara() != nullptr);
        CHECK(set.clamav()->info().signature_count == 2);
        CHECK(set.yara()->info().rule_count == 1);
        CHECK(set.limits().max_recursion == 5);
        CHECK(set.fingerprint().size() == 64);
    }
    SECTION("YARA rules alone") {
        if (holds_clamav_databases(k_default_clamav_db)) {
            WARN("databases in " << k_default_clamav_db << " are loaded too; skipping the YARA-only check");
            return;
        }
        SignatureOptions options;
        options.yara_rules = {rules.parent_path()};
        const auto set = load_ok(options);
        CHECK(set.clamav() == nullptr);
        REQUIRE(set.yara() != nullptr);
        CHECK(set.yara()->info().rule_count == 1);
    }
    SECTION("nothing at all is a clear invalid_argument") {
        const auto set = SignatureSet::load(SignatureOptions{});
        if (holds_clamav_databases(k_default_clamav_db)) {
            REQUIRE(set.has_value());
            CHECK(set->clamav() != nullptr);
            return;
        }
        REQUIRE_FALSE(set.has_value());
        CHECK(set.error().code == Errc::invalid_argument);
        CHECK(set.error().message == "no signatures: give --clamav-db PATH and/or --yara-rules PATH "
                                     "(no ClamAV databases in /var/lib/clamav)");
    }
    SECTION("rules that hold no rule at all count as nothing") {
        write_file(rules, "// no rules yet\n");
        SignatureOptions options;
        options.clamav_db = std::nullopt;
        options.yara_rules = {rules};
        const auto set = SignatureSet::load(options);
        if (holds_clamav_databases(k_default_clamav_db)) {
            CHECK(set.has_value());
            return;
        }
        REQUIRE_FALSE(set.has_value());
        CHECK(set.error().code == Errc::invalid_argument);
        CHECK_THAT(set.error().message, Catch::StartsWith("no signatures: "));
    }
    SECTION("a ClamAV database path that does not exist") {
        SignatureOptions options;
        options.clamav_db = db.dir.path() / "missing-db";
        const auto set = SignatureSet::load(options);
        REQUIRE_FALSE(set.has_value());
        CHECK(set.error().code == Errc::invalid_argument);
        CHECK(set.error().message ==
              "ClamAV database path " + (db.dir.path() / "missing-db").string() + " does not exist");
    }
    SECTION("a YARA rules path that does not exist") {
        SignatureOptions options;
        options.clamav_db = db.folder;
        options.yara_rules = {db.dir.path() / "missing.yar"};
        const auto set = SignatureSet::load(options);
        REQUIRE_FALSE(set.has_value());
        CHECK(set.error().code == Errc::invalid_argument);
        CHECK_THAT(set.error().message, Catch::Contains("missing.yar"));
    }
    SECTION("an engine's own error comes through") {
        write_file(rules, "rule broken {\n  condition: (\n}\n");
        SignatureOptions options;
        options.clamav_db = db.folder;
        options.yara_rules = {rules};
        const auto set = SignatureSet::load(options);
        REQUIRE_FALSE(set.has_value());
        CHECK(set.error().code == Errc::invalid_argument);
        CHECK_THAT(set.error().message, Catch::Contains("marker.yar:3: "));
    }
}

TEST_CASE("SignatureSet::fingerprint") {
    const auto db = TestDatabases::create();
    const auto rules = db.dir.path() / "rules" / "marker.yar";
    SignatureOptions options = with_marker_rule(db, rules);
    const std::string before = load_ok(options).fingerprint();

    SECTION("stable for the same signatures and limits") {
        CHECK(load_ok(options).fingerprint() == before);
    }
    SECTION("changes when a ClamAV database changes") {
        write_file(db.folder / "coldscan.ndb",
                   "Coldscan.Test.Other:0:*:" + hex_encode("other bytes!") + "\n");
        CHECK(load_ok(options).fingerprint() != before);
    }
    SECTION("changes when a YARA rule file changes") {
        write_file(rules, "rule marker { strings: $m = \"coldscan-other\" condition: $m }\n");
        CHECK(load_ok(options).fingerprint() != before);
    }
    SECTION("changes when a limit changes") {
        options.limits.max_file_size += 1;
        CHECK(load_ok(options).fingerprint() != before);
        options.limits.max_file_size -= 1;
        options.limits.yara_timeout += std::chrono::seconds(1);
        CHECK(load_ok(options).fingerprint() != before);
    }
    SECTION("differs from either engine's own fingerprint") {
        const auto set = load_ok(options);
        CHECK(set.fingerprint() != set.clamav()->info().fingerprint);
        CHECK(set.fingerprint() != set.yara()->info().fingerprint);
    }
}

TEST_CASE("SignatureSet: engine part and detection set", "[clamav-container]") {
    const auto db = TestDatabases::create();
    const auto rules = db.dir.path() / "rules" / "marker.yar";
    SignatureOptions options = with_marker_rule(db, rules);
    const auto before = load_ok(options);
    CHECK(before.engine_part().size() == 64);
    CHECK(before.detection_set().size() == 64);

    SECTION("stable for the same signatures and limits") {
        const auto again = load_ok(options);
        CHECK(again.engine_part() == before.engine_part());
        CHECK(again.detection_set() == before.detection_set());
    }
    SECTION("a detection line added changes the detection set only") {
        write_file(db.folder / "extra.hdb", "44d88612fea8a8f36de82e1278abb02f:68:Coldscan.Test.Hash\n");
        const auto after = load_ok(options);
        CHECK(after.engine_part() == before.engine_part());
        CHECK(after.detection_set() != before.detection_set());
        CHECK(after.fingerprint() != before.fingerprint());
    }
    SECTION("the same databases as a .cud container (sigtool --build --unsigned): another set, the same "
            "set whatever the packing") {
        // sigtool builds from the working folder: the databases named after the container, a COPYING file.
        const auto work = db.dir.path() / "sigtool";
        std::filesystem::create_directories(work);
        for (const auto& entry : std::filesystem::directory_iterator(db.folder)) {
            std::filesystem::copy_file(entry.path(), work / ("all" + entry.path().extension().string()));
        }
        write_file(work / "COPYING", "coldscan unit tests\n");
        auto pack = [&](const std::string& builder) {
            const auto packed = db.dir.path() / ("packed-" + builder);
            std::filesystem::create_directories(packed);
            REQUIRE(std::system(("cd '" + work.string() + "' && printf '" + builder +
                                 "\\n' | sigtool --build=all.cud --unsigned >/dev/null 2>&1")
                                    .c_str()) == 0);
            std::filesystem::rename(work / "all.cud", packed / "all.cud");
            options.clamav_db = packed;
            return load_ok(options);
        };
        const auto container = pack("first");
        CHECK(container.engine_part() == before.engine_part());
        // libclamav names detections by where their line was read (NAME.UNOFFICIAL from a plain file).
        CHECK(container.detection_set() != before.detection_set());
        const auto repacked = pack("second-builder");
        CHECK(repacked.detection_set() == container.detection_set());
        CHECK(repacked.fingerprint() == container.fingerprint());
    }
    SECTION("a YARA rule file changed changes the detection set only") {
        write_file(rules, "rule marker { strings: $m = \"coldscan-other\" condition: $m }\n");
        const auto after = load_ok(options);
        CHECK(after.engine_part() == before.engine_part());
        CHECK(after.detection_set() != before.detection_set());
    }
    SECTION("dynamic configuration or a limit changes the engine part") {
        write_file(db.folder / "local.cfg", "DOCUMENT:0x0:0:0\n");
        CHECK(load_ok(options).engine_part() != before.engine_part());
        std::filesystem::remove(db.folder / "local.cfg");
        options.limits.max_file_size += 1;
        CHECK(load_ok(options).engine_part() != before.engine_part());
    }
}

TEST_CASE("SignatureSet: digests of databases read before are remembered") {
    const auto db = TestDatabases::create();
    SignatureOptions options;
    options.clamav_db = db.folder;
    const auto unremembered = load_ok(options);
    options.memo_dir = db.dir.path() / "cache" / k_memo_folder;
    const auto first = load_ok(options);
    CHECK(first.fingerprint() == unremembered.fingerprint());
    std::vector<std::filesystem::path> memos;
    for (const auto& entry : std::filesystem::directory_iterator(*options.memo_dir)) {
        memos.push_back(entry.path());
    }
    REQUIRE(memos.size() == 1);

    SECTION("the second load takes the remembered digest instead of reading the lines") {
        // A forged memo for these very files shows which one the load used.
        const std::string forged(64, 'a');
        write_file(memos[0], forged + "\n" + forged + "\n7\n");
        const auto second = load_ok(options);
        CHECK(second.fingerprint() != first.fingerprint());
        options.memo_dir.reset();
        CHECK(load_ok(options).fingerprint() == first.fingerprint());
    }
    SECTION("a changed database is a new key: its lines are read") {
        write_file(db.folder / "extra.hdb", "44d88612fea8a8f36de82e1278abb02f:68:Coldscan.Test.Hash\n");
        const auto changed = load_ok(options);
        CHECK(changed.detection_set() != first.detection_set());
        options.memo_dir.reset();
        CHECK(load_ok(options).fingerprint() == changed.fingerprint());
    }
    SECTION("a damaged memo is ignored") {
        write_file(memos[0], "not a digest\n");
        CHECK(load_ok(options).fingerprint() == first.fingerprint());
        write_file(memos[0], std::string(64, 'a') + "\n" + std::string(63, 'a') + "\n7\n");
        CHECK(load_ok(options).fingerprint() == first.fingerprint());
    }
}

TEST_CASE("SignatureSet::load in the background") {
    const auto db = TestDatabases::create();
    SignatureOptions options;
    options.clamav_db = db.folder;

    SECTION("the fingerprint is known at once and equals the one of a load that waits") {
        auto set = SignatureSet::load(options, LoadMode::background);
        REQUIRE(set.has_value());
        CHECK(set->fingerprint() == load_ok(options).fingerprint());
        REQUIRE(set->clamav_databases().has_value());
        CHECK(set->clamav_databases()->files.size() == 2);
        CHECK(set->ready().has_value());
        REQUIRE(set->clamav() != nullptr);
        CHECK(set->clamav()->info().signature_count == 2);
    }
    SECTION("a database libclamav refuses: the load error comes from ready(), and there is no engine") {
        write_file(db.folder / "broken.ndb", "Coldscan.Test.Broken:0:*:zz-not-hex\n");
        auto set = SignatureSet::load(options, LoadMode::background);
        REQUIRE(set.has_value());
        const auto ready = set->ready();
        REQUIRE_FALSE(ready.has_value());
        CHECK(ready.error().code == Errc::engine);
        CHECK_THAT(ready.error().message, Catch::Contains("broken.ndb"));
        CHECK(set->clamav() == nullptr);
        const auto now = SignatureSet::load(options, LoadMode::now);
        REQUIRE_FALSE(now.has_value());
        CHECK(now.error().message == ready.error().message);
    }
    SECTION("a set still loading may be moved and destroyed") {
        auto set = SignatureSet::load(options, LoadMode::background);
        REQUIRE(set.has_value());
        SignatureSet moved = std::move(*set);
        CHECK(moved.fingerprint().size() == 64);
    }
}
