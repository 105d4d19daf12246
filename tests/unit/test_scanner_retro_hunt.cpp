#include "coldscan/common/temp_dir.hpp"
#include "coldscan/scanner/content_places.hpp"
#include "coldscan/scanner/retro_hunt.hpp"
#include "coldscan/scanner/verdict_cache.hpp"
#include "coldscan/signatures/signature_set.hpp"
#include "test_support.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace coldscan;
using namespace coldscan::scanner;
using signatures::CatalogueLine;
using signatures::LineKind;
using signatures::LineText;

namespace {

CatalogueLine line(std::string_view text, LineKind kind) {
    Sha256 hasher;
    hasher.update(text);
    return CatalogueLine{hasher.finish(), kind};
}

Sha256Digest content_of(std::string_view bytes) {
    Sha256 hasher;
    hasher.update(bytes);
    return hasher.finish();
}

// A CLEAN verdict of these bytes, one layer of the given type, digests recorded as the ClamAV engine does.
Outcome clean_with_layer(std::string_view bytes, std::string type = "CL_TYPE_GZ") {
    const LayerDigest layer = digest_layer(std::as_bytes(std::span(bytes.data(), bytes.size())));
    Outcome outcome{OutcomeKind::clean, "", {}};
    outcome.layers = ScannedLayers{{layer.size}, {std::move(type)}, true, {layer}, true};
    return outcome;
}

} // namespace

TEST_CASE("retro_hunt names cached contents an added hash line detects, and where they were seen") {
    const bool rocksdb = GENERATE(false, true);
    CAPTURE(rocksdb);
    const TempDir dir = TempDir::create("coldscan-test").value();
    auto store = rocksdb ? open_rocksdb_store(dir.path() / "cache").value() : open_memory_store();

    const std::string bad = "bytes an update now detects";
    const std::string good = "bytes no update names";
    const std::string text = "a text file: libclamav hashes what it normalises from it unseen";
    const LayerDigest bad_layer = digest_layer(std::as_bytes(std::span(bad.data(), bad.size())));
    const std::string hash_text = to_hex(bad_layer.md5) + ":" + std::to_string(bad.size()) + ":Retro.Hash";
    const auto old_line = line("old body line", LineKind::body);
    const auto added_hash = line(hash_text, LineKind::hash);
    SetLineage lineage(*store, [&](std::span<const CatalogueLine> wanted) -> Expected<std::vector<LineText>> {
        std::vector<LineText> texts;
        if (std::ranges::binary_search(wanted, added_hash)) {
            texts.push_back(LineText{added_hash, hash_text, false});
        }
        return texts;
    });
    REQUIRE(lineage.record("yesterday", std::vector{old_line}, 1000));
    auto today = std::vector{old_line, added_hash};
    std::ranges::sort(today);
    REQUIRE(lineage.record("today", today, 2000));

    VerdictCache cache(*store, "context");
    cache.follow_sets("yesterday", &lineage);
    REQUIRE(cache.remember_verdict(content_of(bad), clean_with_layer(bad)).value());
    REQUIRE(cache.remember_verdict(content_of(good), clean_with_layer(good)).value());
    REQUIRE(cache.remember_verdict(content_of(text), clean_with_layer(text, "CL_TYPE_TEXT_ASCII")).value());
    // The same bad bytes in two images; a third place held them once and holds other bytes now.
    const PlaceKey template_key{"template.qcow2", "fs-1", "/usr/bin/tool"};
    const PlaceKey clone_key{"clone.qcow2", "fs-1", "/usr/bin/tool"};
    const PlaceKey changed_key{"clone.qcow2", "fs-1", "/opt/tool"};
    REQUIRE(remember_place(*store, template_key, {"template.qcow2", "/dev/sda1", "/usr/bin/tool", 5000},
                           content_of(bad)));
    REQUIRE(remember_place(*store, clone_key, {"clone.qcow2", "/dev/sda1", "/usr/bin/tool", 6000},
                           content_of(bad)));
    REQUIRE(remember_place(*store, changed_key, {"clone.qcow2", "/dev/sda1", "/opt/tool", 6000},
                           content_of(bad)));
    REQUIRE(remember_place(*store, changed_key, {"clone.qcow2", "/dev/sda1", "/opt/tool", 7000},
                           content_of(good)));

    SECTION("the hit, its detection name as a scan reports it, and every place that holds it now") {
        const auto hunt = retro_hunt(*store, lineage, "today").value();
        CHECK(hunt.verdicts == 3);
        CHECK(hunt.contents == 3);
        CHECK(hunt.compared == 3);
        CHECK(hunt.current == 0);
        CHECK(hunt.hash_lines_added == 1);
        CHECK(hunt.from_sets == std::vector<std::string>{"yesterday"});
        CHECK(hunt.unproven == 1); // the text layer: a digest cannot prove a miss there
        REQUIRE(hunt.hits.size() == 1);
        CHECK(hunt.hits[0].content == content_of(bad));
        CHECK(hunt.hits[0].signatures == std::vector<std::string>{"Retro.Hash.UNOFFICIAL"});
        REQUIRE(hunt.hits[0].places.size() == 2);
        CHECK(hunt.hits[0].places[0].target == "clone.qcow2");
        CHECK(hunt.hits[0].places[0].seen == 6000);
        CHECK(hunt.hits[0].places[1].target == "template.qcow2");
        CHECK(hunt.hits[0].places[1].device == "/dev/sda1");
        CHECK(hunt.hits[0].places[1].path == "/usr/bin/tool");
        const auto json = nlohmann::json::parse(retro_hunt_json(hunt));
        CHECK(json.at("hits").at(0).at("sha256") == to_hex(content_of(bad)));
        CHECK(json.at("hits").at(0).at("places").size() == 2);
        CHECK(json.at("unproven") == 1);
    }
    SECTION("a hit the allow lists may concern (its name ignored, a layer allowed) is unproven, not named") {
        AllowListFields ignored;
        ignored.fields = {"Retro.Hash"}; // an .ign2 line names it
        auto hunt = retro_hunt(*store, lineage, "today", ignored).value();
        CHECK(hunt.hits.empty());
        CHECK(hunt.unproven == 2);
        AllowListFields allowed;
        allowed.digests = {to_hex(bad_layer.sha256)}; // an .sfp line allows the file
        hunt = retro_hunt(*store, lineage, "today", allowed).value();
        CHECK(hunt.hits.empty());
        CHECK(hunt.unproven == 2);
        allowed.digests = {to_hex(content_of(good))}; // another file's: no concern
        CHECK(retro_hunt(*store, lineage, "today", allowed).value().hits.size() == 1);
    }
    SECTION("verdicts made with the current set are not hunted") {
        VerdictCache current(*store, "context");
        current.follow_sets("today", &lineage);
        REQUIRE(current.remember_verdict(content_of(bad), clean_with_layer(bad)).value());
        const auto hunt = retro_hunt(*store, lineage, "today").value();
        CHECK(hunt.hits.empty());
        CHECK(hunt.current == 1);
    }
    SECTION(
        "a content detected by the same name already is not news (the line moved, say into a container)") {
        VerdictCache cache_of_infected(*store, "context");
        cache_of_infected.follow_sets("yesterday", &lineage);
        Outcome infected = clean_with_layer(bad);
        infected.kind = OutcomeKind::infected;
        infected.detections = {Detection{Engine::clamav, "Retro.Hash.UNOFFICIAL", "", {}, {}}};
        REQUIRE(cache_of_infected.remember_verdict(content_of(bad), infected).value());
        CHECK(retro_hunt(*store, lineage, "today").value().hits.empty());
        infected.detections = {Detection{Engine::clamav, "Another.Name", "", {}, {}}};
        REQUIRE(cache_of_infected.remember_verdict(content_of(bad), infected).value());
        CHECK(retro_hunt(*store, lineage, "today").value().hits.size() == 1);
    }
    SECTION("a set the lineage does not keep proves nothing: counted, not called clean or detected") {
        VerdictCache unknown(*store, "another context");
        unknown.follow_sets("forgotten", &lineage);
        REQUIRE(unknown.remember_verdict(content_of("other bytes"), clean_with_layer("other bytes")).value());
        const auto hunt = retro_hunt(*store, lineage, "today").value();
        CHECK(hunt.unproven == 2);
        CHECK(hunt.hits.size() == 1);
    }
    SECTION("the same disk scanned as a VM's disk is another place, named with the VM") {
        REQUIRE(remember_place(*store, clone_key, {"vm:clone", "/dev/vda1", "/usr/bin/tool", 8000},
                               content_of(bad)));
        const auto hunt = retro_hunt(*store, lineage, "today").value();
        REQUIRE(hunt.hits.size() == 1);
        REQUIRE(hunt.hits[0].places.size() == 3);
        CHECK(hunt.hits[0].places[2].target == "vm:clone");
        CHECK(hunt.hits[0].places[2].device == "/dev/vda1");
    }
    SECTION("a place seen again within a day is not rewritten; later, it is") {
        REQUIRE(remember_place(*store, template_key,
                               {"template.qcow2", "/dev/sda1", "/usr/bin/tool", 5000 + 3600},
                               content_of(bad)));
        auto places = places_of(*store, {content_of(bad)}).value();
        CHECK(places.at(content_of(bad)).back().seen == 5000);
        REQUIRE(remember_place(*store, template_key,
                               {"template.qcow2", "/dev/sda1", "/usr/bin/tool", 5000 + 90000},
                               content_of(bad)));
        places = places_of(*store, {content_of(bad)}).value();
        CHECK(places.at(content_of(bad)).back().seen == 95000);
    }
}

TEST_CASE("allow_list_fields reads the names and digests of a set's allow-list lines") {
    const TempDir dir = TempDir::create("coldscan-test").value();
    const auto db = dir.path() / "db";
    std::filesystem::create_directories(db);
    const std::string md5(32, 'A');
    test::write_file(db / "local.hdb", "44d88612fea8a8f36de82e1278abb02f:68:Eicar.Hash\n");
    test::write_file(db / "local.ign2", "Some.Ignored.Sig\n");
    test::write_file(db / "local.fp", md5 + ":1234:Some.Allowed.File\n");
    signatures::SignatureOptions options;
    options.clamav_db = db;
    const auto set = signatures::SignatureSet::load(options, signatures::LoadMode::catalogue).value();
    const auto fields = allow_list_fields(set).value();
    CHECK(fields.fields.contains("Some.Ignored.Sig"));
    CHECK(fields.fields.contains("Some.Allowed.File"));
    CHECK(fields.digests == std::set<std::string, std::less<>>{std::string(32, 'a')});
    CHECK_FALSE(fields.fields.contains("Eicar.Hash")); // a detection line, not an allow-list line
}
