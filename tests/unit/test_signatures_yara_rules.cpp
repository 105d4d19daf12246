#include "coldscan/common/subprocess.hpp"
#include "coldscan/signatures/engine_libraries.hpp"
#include "coldscan/signatures/yara_rules.hpp"
#include "test_signatures_support.hpp"

#include <optional>
#include <thread>

using namespace coldscan;
using namespace coldscan::signatures;
using namespace coldscan::signatures::test;
using Status = EngineResult::Status;

namespace {

constexpr std::string_view k_marker_rules = R"(
rule marker_found : demo testing {
    meta:
        author = "coldscan tests"
        severity = 7
        confirmed = true
    strings:
        $m = "coldscan-marker"
    condition:
        $m
}
)";

constexpr std::string_view k_externals_rules = R"(
rule windows_executable_name {
    condition:
        filename matches /\.exe$/ and filepath == "/Windows/System32/tool.exe"
}
rule lowercase_extension {
    condition:
        extension == "exe" and filetype == "" and owner == ""
}
)";

// 80 MiB = 83886080; 70 MiB = 73400320; "cold" = 0x636F6C64.
constexpr std::string_view k_large_file_rules = R"(
rule exactly_80_mib { condition: filesize == 83886080 }
rule cold_at_70_mib { condition: uint32be(73400320) == 0x636F6C64 }
)";

struct RulesFolder {
    TempDir dir;
    std::filesystem::path folder;

    static RulesFolder create() {
        auto dir = TempDir::create("coldscan-yaratest");
        REQUIRE(dir.has_value());
        RulesFolder rules{std::move(*dir), {}};
        rules.folder = rules.dir.path() / "rules";
        return rules;
    }
    std::filesystem::path add(const std::string& name, std::string_view text) const {
        write_file(folder / name, text);
        return folder / name;
    }
};

YaraRules compile_ok(const std::vector<std::filesystem::path>& paths) {
    auto rules = YaraRules::compile(paths);
    if (!rules) {
        FAIL("YaraRules::compile failed: " << rules.error().message);
    }
    return std::move(*rules);
}

YaraScanner scanner_for(const YaraRules& rules, std::chrono::seconds timeout = std::chrono::seconds(60)) {
    auto scanner = YaraScanner::create(rules, timeout);
    if (!scanner) {
        FAIL("YaraScanner::create failed: " << scanner.error().message);
    }
    return std::move(*scanner);
}

} // namespace

TEST_CASE("YaraRules::compile") {
    const auto rules = RulesFolder::create();

    SECTION("a folder is searched recursively for rule files, sorted") {
        rules.add("b.yar", k_marker_rules);
        rules.add("sub/a.yara", "rule other { condition: false }\n");
        rules.add("notes.txt", "not rules");
        const auto compiled = compile_ok({rules.folder});
        const auto& info = compiled.info();
        CHECK(info.files ==
              std::vector<std::filesystem::path>{rules.folder / "b.yar", rules.folder / "sub/a.yara"});
        CHECK(info.rule_count == 2);
        CHECK(info.fingerprint.size() == 64);
        CHECK(info.engine_version == EngineLibraries::yara_version());
    }
    SECTION("includes resolve next to the including file, nested ones too") {
        const auto main = rules.add("main.yar", "include \"lib/common.yar\"\ninclude \"other/second.yar\"\n"
                                                "rule own { condition: false }\n");
        rules.add("lib/common.yar", "include \"deep/leaf.yar\"\nrule from_include { condition: false }\n");
        rules.add("lib/deep/leaf.yar", "rule from_leaf { strings: $l = \"leaf-marker\" condition: $l }\n");
        rules.add("deep/leaf.yar", "rule decoy { condition: true }\n"); // next to main.yar: must not be used
        rules.add("other/second.yar", "include \"leaf2.yar\"\n");
        rules.add("other/leaf2.yar", "rule from_second_leaf { condition: false }\n");
        const auto compiled = compile_ok({main});
        const auto& info = compiled.info();
        CHECK(info.rule_count == 4);
        CHECK(info.files == std::vector<std::filesystem::path>{main});
        CHECK(info.included_files == std::vector<std::filesystem::path>{rules.folder / "lib/common.yar",
                                                                        rules.folder / "lib/deep/leaf.yar",
                                                                        rules.folder / "other/leaf2.yar",
                                                                        rules.folder / "other/second.yar"});
        auto scanner = scanner_for(compiled);
        const auto result = scanner.scan(memory_content("a leaf-marker b"), "/f");
        CHECK(result.status == Status::detected);
        REQUIRE(result.detections.size() == 1);
        CHECK(result.detections[0].signature == "from_leaf");
        CHECK(result.detections[0].yara_namespace == "main");
    }
    SECTION("a file included twice is listed once") {
        rules.add("common.yar", "rule shared_a { condition: false }\n");
        const auto one = rules.add("one.yar", "include \"common.yar\"\n");
        const auto two = rules.add("two.yar", "include \"common.yar\"\n");
        const auto compiled = compile_ok({one, two});
        CHECK(compiled.info().rule_count == 2); // one copy in each file's namespace
        CHECK(compiled.info().included_files ==
              std::vector<std::filesystem::path>{rules.folder / "common.yar"});
    }
    SECTION("an absolute include name is used as given") {
        const auto shared = rules.dir.path() / "elsewhere/shared.yar";
        write_file(shared, "rule from_elsewhere { condition: true }\n");
        const auto main = rules.add("main.yar", "include \"" + shared.string() + "\"\n");
        const auto compiled = compile_ok({main});
        CHECK(compiled.info().rule_count == 1);
        CHECK(compiled.info().included_files == std::vector<std::filesystem::path>{shared});
    }
    SECTION("a missing include is invalid_argument naming the including file and line") {
        const auto main =
            rules.add("main.yar", "rule own { condition: true }\ninclude \"lib/missing.yar\"\n");
        const auto compiled = YaraRules::compile({main});
        REQUIRE_FALSE(compiled.has_value());
        CHECK(compiled.error().code == Errc::invalid_argument);
        CHECK_THAT(compiled.error().message,
                   Catch::Contains(main.string() + ":2: cannot include \"lib/missing.yar\""));
        CHECK_THAT(compiled.error().message, Catch::Contains("No such file or directory"));
    }
    SECTION("an include cycle or a chain deeper than libyara allows is a compile error") {
        const auto cycle = rules.add("cycle.yar", "include \"lib/a.yar\"\n");
        rules.add("lib/a.yar", "include \"b.yar\"\n");
        rules.add("lib/b.yar", "rule b { condition: true }\ninclude \"a.yar\"\n");
        const auto cycled = YaraRules::compile({cycle});
        REQUIRE_FALSE(cycled.has_value());
        CHECK(cycled.error().code == Errc::invalid_argument);
        CHECK_THAT(cycled.error().message, Catch::Contains((rules.folder / "lib/b.yar").string() +
                                                           ":2: cannot include \"a.yar\": include cycle"));

        const auto deep = rules.add("deep.yar", "include \"chain/1.yar\"\n");
        for (int i = 1; i < 30; ++i) {
            rules.add("chain/" + std::to_string(i) + ".yar",
                      "include \"" + std::to_string(i + 1) + ".yar\"\n");
        }
        rules.add("chain/30.yar", "rule end { condition: true }\n");
        const auto too_deep = YaraRules::compile({deep});
        REQUIRE_FALSE(too_deep.has_value());
        CHECK(too_deep.error().code == Errc::invalid_argument);
        CHECK_THAT(too_deep.error().message, Catch::Contains("includes nest deeper than"));
    }
    SECTION("errors in a nested include name the included file's real path") {
        const auto main = rules.add("main.yar", "include \"lib/common.yar\"\n");
        rules.add("lib/common.yar", "rule fine { condition: true }\n\ninclude \"nothere.yar\"\n");
        const auto missing = YaraRules::compile({main});
        REQUIRE_FALSE(missing.has_value());
        CHECK_THAT(missing.error().message, Catch::Contains((rules.folder / "lib/common.yar").string() +
                                                            ":3: cannot include \"nothere.yar\""));

        rules.add("lib/common.yar", "include \"bad.yar\"\n");
        rules.add("lib/bad.yar", "rule fine { condition: true }\nrule bad { condition: no_such_thing }\n");
        const auto bad = YaraRules::compile({main});
        REQUIRE_FALSE(bad.has_value());
        CHECK(bad.error().code == Errc::invalid_argument);
        CHECK_THAT(bad.error().message, Catch::Contains((rules.folder / "lib/bad.yar").string() + ":2: "));
        CHECK_THAT(bad.error().message, Catch::Contains("no_such_thing"));
    }
    SECTION("a syntax error is invalid_argument naming file and line") {
        const auto bad =
            rules.add("broken.yar", "rule fine { condition: true }\n\nrule broken {\n  condition: (\n}\n");
        const auto compiled = YaraRules::compile({bad});
        REQUIRE_FALSE(compiled.has_value());
        CHECK(compiled.error().code == Errc::invalid_argument);
        CHECK_THAT(compiled.error().message, Catch::Contains(bad.string() + ":5: "));
        CHECK_THAT(compiled.error().message, Catch::Contains("syntax error"));
    }
    SECTION("an undefined identifier names its line too") {
        const auto bad = rules.add("undefined.yar", "rule r {\n  condition:\n    no_such_thing\n}\n");
        const auto compiled = YaraRules::compile({bad});
        REQUIRE_FALSE(compiled.has_value());
        CHECK(compiled.error().code == Errc::invalid_argument);
        CHECK_THAT(compiled.error().message, Catch::Contains("undefined.yar:3: "));
        CHECK_THAT(compiled.error().message, Catch::Contains("no_such_thing"));
    }
    SECTION("rule names may repeat across files: each file is its own namespace") {
        rules.add("one.yar", "rule same { condition: true }\n");
        rules.add("two.yar", "rule same { condition: true }\n");
        CHECK(compile_ok({rules.folder}).info().rule_count == 2);
    }
    SECTION("a missing path or a folder without rules is not_found") {
        const auto missing = YaraRules::compile({rules.dir.path() / "missing"});
        REQUIRE_FALSE(missing.has_value());
        CHECK(missing.error().code == Errc::not_found);
        rules.add("readme.txt", "nothing");
        const auto empty = YaraRules::compile({rules.folder});
        REQUIRE_FALSE(empty.has_value());
        CHECK(empty.error().code == Errc::not_found);
    }
    SECTION("compiled rules load, and must be the only input") {
        const auto source = rules.add("marker.yar", k_marker_rules);
        const auto compiled_path = rules.dir.path() / "marker.yarc";
        auto yarac = run_bounded({"yarac", source.string(), compiled_path.string()}, ProcessLimits{});
        if (!yarac || yarac->exit_code != 0) {
            WARN("yarac is not usable here; compiled rules are not tested");
            return;
        }
        const auto loaded = compile_ok({compiled_path});
        CHECK(loaded.info().rule_count == 1);
        CHECK(loaded.info().files == std::vector<std::filesystem::path>{compiled_path});
        CHECK(loaded.info().included_files.empty());
        CHECK(loaded.info().reads_file_path); // the source is not there to check
        auto scanner = scanner_for(loaded);
        const auto result = scanner.scan(memory_content("xx coldscan-marker xx"), "/a");
        CHECK(result.status == Status::detected);
        CHECK(signatures_of(result) == std::vector<std::string>{"marker_found"});

        const auto mixed = YaraRules::compile({compiled_path, source});
        REQUIRE_FALSE(mixed.has_value());
        CHECK(mixed.error().code == Errc::invalid_argument);
        CHECK_THAT(mixed.error().message, Catch::Contains("must be the only rules input"));
    }
}

TEST_CASE("YaraRules::info") {
    const auto rules = RulesFolder::create();
    const auto file = rules.add("marker.yar", k_marker_rules);
    const std::string before = compile_ok({rules.folder}).info().fingerprint;

    SECTION("the fingerprint is stable for the same files") {
        CHECK(compile_ok({rules.folder}).info().fingerprint == before);
    }
    SECTION("the fingerprint changes when a rule file changes") {
        write_file(file, std::string(k_marker_rules) + "\nrule added { condition: false }\n");
        CHECK(compile_ok({rules.folder}).info().fingerprint != before);
    }
    SECTION("the fingerprint changes when only an included file changes, at any depth") {
        const auto main = rules.add("with_include.yar", "include \"lib/common.yar\"\n");
        rules.add("lib/common.yar", "include \"deep/leaf.yar\"\n");
        const auto leaf = rules.add("lib/deep/leaf.yar", "rule leaf { condition: false }\n");
        const std::string with_include = compile_ok({main}).info().fingerprint;
        CHECK(compile_ok({main}).info().fingerprint == with_include);
        write_file(leaf, "rule leaf { condition: true }\n");
        CHECK(compile_ok({main}).info().fingerprint != with_include);
    }
    SECTION("reads_file_path is false for rules that name no path external") {
        CHECK_FALSE(compile_ok({rules.folder}).info().reads_file_path);
        // Other externals, and longer identifiers or strings that merely contain the names, do not count.
        const auto other =
            rules.add("other.yar", "rule extensions_x { strings: $a = \"filenames\" condition: $a "
                                   "and filetype == \"\" and owner == \"\" }\n");
        CHECK_FALSE(compile_ok({other}).info().reads_file_path);
    }
    SECTION("reads_file_path is true for a rule that reads filename, filepath or extension") {
        const auto name = rules.add("name.yar", "rule by_name { condition: filename == \"x\" }\n");
        CHECK(compile_ok({name}).info().reads_file_path);
        CHECK(compile_ok({rules.folder}).info().reads_file_path); // with marker.yar, which does not
        const auto ext = rules.add("ext/ext.yar", "rule by_ext {\n  condition:\n    extension==\"exe\"\n}\n");
        CHECK(compile_ok({ext}).info().reads_file_path);
    }
    SECTION("reads_file_path is true when only an included file reads a path external") {
        const auto main = rules.add("main.yar", "include \"lib/path.yar\"\nrule own { condition: true }\n");
        rules.add("lib/path.yar", "rule by_path { condition: filepath matches /tmp/ }\n");
        const auto compiled = compile_ok({main});
        CHECK(compiled.info().rule_count == 2);
        CHECK(compiled.info().reads_file_path);
    }
}

TEST_CASE("YaraScanner::scan") {
    const auto rules = RulesFolder::create();
    rules.add("markers.yar", k_marker_rules);
    rules.add("names.yar", k_externals_rules);
    rules.add("large.yar", k_large_file_rules);
    const auto compiled = compile_ok({rules.folder});
    auto scanner = scanner_for(compiled);

    SECTION("a match carries namespace, tags and meta") {
        const auto result = scanner.scan(memory_content("head coldscan-marker tail"), "/data/notes.txt");
        CHECK(result.status == Status::detected);
        CHECK(result.reason.empty());
        REQUIRE(result.detections.size() == 1);
        const auto& detection = result.detections[0];
        CHECK(detection.engine == Engine::yara);
        CHECK(detection.signature == "marker_found");
        CHECK(detection.yara_namespace == "markers");
        CHECK(detection.tags == std::vector<std::string>{"demo", "testing"});
        CHECK(detection.meta == std::vector<std::pair<std::string, std::string>>{
                                    {"author", "coldscan tests"}, {"severity", "7"}, {"confirmed", "true"}});
    }
    SECTION("an empty file is scanned too") {
        const auto file = rules.dir.path() / "empty.bin";
        write_file(file, "");
        CHECK(scanner.scan(Content::from_memory({}), "/empty").status == Status::clean);
        CHECK(scanner.scan(fd_content(file), "/empty").status == Status::clean);
    }
    SECTION("no match is clean") {
        const auto result = scanner.scan(memory_content("nothing to see"), "/data/notes.txt");
        CHECK(result.status == Status::clean);
        CHECK(result.detections.empty());
    }
    SECTION("externals are set from the path of each file") {
        const auto exe = scanner.scan(memory_content("MZ"), "/Windows/System32/tool.EXE");
        CHECK(signatures_of(exe) == std::vector<std::string>{"lowercase_extension"});
        const auto lower = scanner.scan(memory_content("MZ"), "/Windows/System32/tool.exe");
        auto names = signatures_of(lower);
        std::ranges::sort(names);
        CHECK(names == std::vector<std::string>{"lowercase_extension", "windows_executable_name"});
        const auto text = scanner.scan(memory_content("MZ"), "/home/user/exe.txt");
        CHECK(text.status == Status::clean);
    }
    SECTION("content behind a descriptor: exactly its bytes") {
        const auto file = rules.dir.path() / "sample.bin";
        write_file(file, "0123456789 coldscan-marker");
        CHECK(scanner.scan(fd_content(file), "/sample.bin").status == Status::detected);
        CHECK(scanner.scan(fd_content(file, 11), "/sample.bin").status == Status::clean);
    }
    SECTION("content behind a reader without a descriptor, small and large") {
        const auto small = scanner.scan(copied_reader_content(bytes_of("zz coldscan-marker zz")), "/small");
        CHECK(signatures_of(small) == std::vector<std::string>{"marker_found"});
        constexpr std::uint64_t k_large = 80ULL << 20; // past the copy limit: read in blocks
        const auto reader = std::make_shared<SyntheticReader>(k_large, "coldscan-marker", 70ULL << 20);
        auto large = signatures_of(scanner.scan(reader_content(reader, k_large), "/large"));
        std::ranges::sort(large);
        CHECK(large == std::vector<std::string>{"cold_at_70_mib", "exactly_80_mib", "marker_found"});
        const auto zeros = std::make_shared<SyntheticReader>(k_large, "", 0);
        CHECK(signatures_of(scanner.scan(reader_content(zeros, k_large), "/zeros")) ==
              std::vector<std::string>{"exactly_80_mib"});
    }
    SECTION("a read error is an error, never clean") {
        const auto small = scanner.scan(reader_content(std::make_shared<FailingReader>(), 4096), "/bad");
        CHECK(small.status == Status::error);
        CHECK_THAT(small.reason, Catch::Contains("Input/output error"));
        const auto large =
            scanner.scan(reader_content(std::make_shared<FailingReader>(), 100ULL << 20), "/bad");
        CHECK(large.status == Status::error);
        CHECK_THAT(large.reason, Catch::Contains("Input/output error"));
    }
}

TEST_CASE("YaraScanner::scan limits") {
    const auto rules = RulesFolder::create();
    rules.add("zeros.yar", R"(
rule every_zero {
    strings:
        $z = { 00 }
    condition:
        #z == 10000000
}
)");
    const auto compiled = compile_ok({rules.folder});
    auto scanner = scanner_for(compiled);
    const std::string zeros(10'000'000, '\0');

    SECTION("too many matches for one string is limit_exceeded") {
        const auto result = scanner.scan(memory_content(zeros), "/zeros.bin");
        CHECK(result.status == Status::limit_exceeded);
        CHECK(result.detections.empty());
        CHECK(result.reason == "YARA: too many matches for string $z in rule every_zero");
        CHECK_FALSE(result.timed_out); // the same bytes hit the same cap every time
    }
    SECTION("a rule running past the timeout is limit_exceeded and marked as timed out") {
        // About 10^11 steps: no machine finishes it within the one second allowed.
        rules.add("slow.yar", R"(
rule slow {
    condition:
        for all i in (0..filesize - 1) : (for all j in (0..100000) : (uint8(i) == uint8(i)))
}
)");
        const auto slow = compile_ok({rules.folder});
        auto slow_scanner = scanner_for(slow, std::chrono::seconds(1));
        const auto result = slow_scanner.scan(memory_content(std::string(1'000'000, 'a')), "/slow.bin");
        CHECK(result.status == Status::limit_exceeded);
        CHECK(result.timed_out);
        CHECK_THAT(result.reason, Catch::StartsWith("YARA: scan timed out after 1s"));
    }
    SECTION("a match found anyway still wins, keeping the reason") {
        rules.add("any.yar", "rule any_zero { strings: $z = { 00 } condition: $z }\n");
        const auto both = compile_ok({rules.folder});
        auto both_scanner = scanner_for(both);
        const auto result = both_scanner.scan(memory_content(zeros), "/zeros.bin");
        CHECK(result.status == Status::detected);
        CHECK(signatures_of(result) == std::vector<std::string>{"any_zero"});
        CHECK_THAT(result.reason, Catch::Contains("too many matches for string $z in rule"));
    }
}

TEST_CASE("YaraScanner::create") {
    const auto rules = RulesFolder::create();
    rules.add("markers.yar", k_marker_rules);
    const auto compiled = compile_ok({rules.folder});

    SECTION("one scanner per thread over shared rules") {
        constexpr int k_threads = 4;
        constexpr int k_rounds = 50;
        std::vector<int> failures(k_threads, 0);
        {
            std::vector<std::jthread> threads;
            for (int t = 0; t < k_threads; ++t) {
                threads.emplace_back([&, t] {
                    auto scanner = YaraScanner::create(compiled, std::chrono::seconds(60));
                    if (!scanner) {
                        failures[static_cast<std::size_t>(t)] = -1;
                        return;
                    }
                    for (int round = 0; round < k_rounds; ++round) {
                        const bool with_marker = (round + t) % 2 == 0;
                        const auto result = scanner->scan(
                            memory_content(with_marker ? "a coldscan-marker b" : "nothing here"), "/f");
                        const auto expected = with_marker ? Status::detected : Status::clean;
                        failures[static_cast<std::size_t>(t)] += result.status == expected ? 0 : 1;
                    }
                });
            }
        }
        CHECK(failures == std::vector<int>(k_threads, 0));
    }
    SECTION("a scanner keeps its rules alive") {
        std::optional<YaraScanner> scanner;
        {
            const auto local = compile_ok({rules.folder});
            scanner.emplace(scanner_for(local));
        }
        CHECK(scanner->scan(memory_content("coldscan-marker"), "/f").status == Status::detected);
    }
}
