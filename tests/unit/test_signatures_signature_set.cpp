#include "coldscan/signatures/signature_set.hpp"
#include "test_signatures_support.hpp"

using namespace coldscan;
using namespace coldscan::signatures;
using namespace coldscan::signatures::test;

namespace {

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
    write_file(rules, "rule marker { strings: $m = \"coldscan-marker\" condition: $m }\n");
    SignatureOptions options;
    options.clamav_db = db.folder;
    options.yara_rules = {rules};
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
