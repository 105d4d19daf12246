#include "coldscan/signatures/clamav_engine.hpp"
#include "coldscan/signatures/engine_libraries.hpp"
#include "test_signatures_support.hpp"
#include "test_support.hpp"

#include <thread>

using namespace coldscan;
using namespace coldscan::signatures;
using namespace coldscan::signatures::test;
using Status = EngineResult::Status;

namespace {

ClamavEngine load_engine(const std::filesystem::path& path, const ScanLimits& limits = {}) {
    auto engine = ClamavEngine::load(path, limits);
    if (!engine) {
        FAIL("ClamavEngine::load failed: " << engine.error().message);
    }
    return std::move(*engine);
}

// clam.exe inside `depth` levels of stored zips (depth 1 = one zip holding clam.exe).
std::vector<std::byte> nested_zip(int depth) {
    auto data = read_file(k_testfiles / "clam.exe");
    std::string name = "clam.exe";
    for (int level = 0; level < depth; ++level) {
        data = stored_zip(name, data);
        name = "level" + std::to_string(level) + ".zip";
    }
    return data;
}

} // namespace

TEST_CASE("ClamavEngine::load") {
    const auto db = TestDatabases::create();

    SECTION("a folder loads every database file in it, sorted") {
        const auto engine = load_engine(db.folder);
        const auto& info = engine.info();
        CHECK(info.path == db.folder);
        REQUIRE(info.files.size() == 2);
        CHECK(info.files[0].filename() == "coldscan.hsb");
        CHECK(info.files[1].filename() == "coldscan.ndb");
        CHECK(info.signature_count == 2);
        CHECK(info.fingerprint.size() == 64);
        CHECK(info.engine_version == EngineLibraries::clamav_version());
    }
    SECTION("a single database file") {
        const auto engine = load_engine(db.folder / "coldscan.ndb");
        CHECK(engine.info().files == std::vector<std::filesystem::path>{db.folder / "coldscan.ndb"});
        CHECK(engine.info().signature_count == 1);
    }
    SECTION("a missing path is not_found") {
        const auto engine = ClamavEngine::load(db.dir.path() / "nothing-here", {});
        REQUIRE_FALSE(engine.has_value());
        CHECK(engine.error().code == Errc::not_found);
        CHECK_THAT(engine.error().message, Catch::Contains("nothing-here"));
    }
    SECTION("a folder without databases is not_found") {
        const auto empty = db.dir.path() / "empty";
        write_file(empty / "README.txt", "not a database\n");
        const auto engine = ClamavEngine::load(empty, {});
        REQUIRE_FALSE(engine.has_value());
        CHECK(engine.error().code == Errc::not_found);
        CHECK_THAT(engine.error().message, Catch::Contains("no ClamAV database files"));
    }
    SECTION("a database name that is not a regular file is an error naming it, not a silent gap") {
        const auto folder = db.dir.path() / "odd";
        std::filesystem::create_directories(folder);
        std::filesystem::copy_file(db.folder / "coldscan.ndb", folder / "coldscan.ndb");
        std::filesystem::create_symlink(db.dir.path() / "no-such-file.hdb", folder / "gone.hdb");
        const auto dangling = ClamavEngine::load(folder, {});
        REQUIRE_FALSE(dangling.has_value());
        CHECK(dangling.error().code == Errc::invalid_argument);
        CHECK_THAT(dangling.error().message,
                   Catch::Contains("gone.hdb") && Catch::Contains("not a regular file"));
        std::filesystem::remove(folder / "gone.hdb");
        std::filesystem::create_directories(folder / "daily.ndb");
        const auto subfolder = ClamavEngine::load(folder, {});
        REQUIRE_FALSE(subfolder.has_value());
        CHECK_THAT(subfolder.error().message, Catch::Contains("daily.ndb"));
        CHECK(holds_clamav_databases(folder)); // the default folder is then loaded, and the load says why not
    }
    SECTION("a malformed database is an engine error with libclamav's reason") {
        const auto bad = db.dir.path() / "bad";
        write_file(bad / "broken.ndb", "Broken.Sig:0:*:not-hex-at-all\n");
        const auto engine = ClamavEngine::load(bad, {});
        REQUIRE_FALSE(engine.has_value());
        CHECK(engine.error().code == Errc::engine);
        CHECK_THAT(engine.error().message, Catch::Contains("Malformed database"));
        CHECK_THAT(engine.error().message, Catch::Contains("broken.ndb"));
    }
}

TEST_CASE("ClamavEngine::info") {
    const auto db = TestDatabases::create();
    const std::string before = load_engine(db.folder).info().fingerprint;

    SECTION("the fingerprint is stable for the same files") {
        CHECK(load_engine(db.folder).info().fingerprint == before);
    }
    SECTION("the fingerprint changes when a database file changes") {
        write_file(db.folder / "coldscan.ndb",
                   "Coldscan.Test.Other:0:*:" + hex_encode("some other bytes") + "\n");
        CHECK(load_engine(db.folder).info().fingerprint != before);
    }
    SECTION("the fingerprint changes when a database file is added") {
        write_file(db.folder / "extra.ndb",
                   "Coldscan.Test.Extra:0:*:" + hex_encode("extra bytes here") + "\n");
        const auto engine = load_engine(db.folder);
        CHECK(engine.info().files.size() == 3);
        CHECK(engine.info().fingerprint != before);
    }
    SECTION("the fingerprint does not depend on where the folder is") {
        const auto copy = db.dir.path() / "elsewhere";
        std::filesystem::copy(db.folder, copy);
        CHECK(load_engine(copy).info().fingerprint == before);
    }
}

TEST_CASE("holds_clamav_databases") {
    const auto db = TestDatabases::create();

    SECTION("a folder with database files") {
        CHECK(holds_clamav_databases(db.folder));
    }
    SECTION("database extensions match case-insensitively, as libclamav does") {
        const auto folder = db.dir.path() / "upper";
        write_file(folder / "MAIN.CVD", "x");
        CHECK(holds_clamav_databases(folder));
    }
    SECTION("a folder with other files only") {
        const auto folder = db.dir.path() / "other";
        write_file(folder / "freshclam.dat", "x");
        write_file(folder / "notes.txt", "x");
        CHECK_FALSE(holds_clamav_databases(folder));
    }
    SECTION("databases in a subfolder do not count: cl_load does not recurse") {
        const auto folder = db.dir.path() / "outer";
        write_file(folder / "inner" / "x.ndb", "x");
        CHECK_FALSE(holds_clamav_databases(folder));
    }
    SECTION("a missing folder") {
        CHECK_FALSE(holds_clamav_databases(db.dir.path() / "missing"));
    }
}

TEST_CASE("ClamavEngine::scan") {
    const auto db = TestDatabases::create();
    const auto engine = load_engine(db.folder);

    SECTION("a clean buffer is clean") {
        const auto result = engine.scan(memory_content("just some harmless text\n"), "/etc/motd");
        CHECK(result.status == Status::clean);
        CHECK(result.detections.empty());
        CHECK(result.reason.empty());
    }
    SECTION("an empty file is clean") {
        const auto result = engine.scan(Content::from_memory({}), "/empty");
        CHECK(result.status == Status::clean);
    }
    SECTION("EICAR in memory is detected under the name libclamav reports") {
        const auto result = engine.scan(memory_content("prefix " + k_eicar + " suffix"), "/tmp/eicar.txt");
        CHECK(result.status == Status::detected);
        REQUIRE(result.detections.size() == 1);
        CHECK(result.detections[0].engine == Engine::clamav);
        CHECK(result.detections[0].signature == "Coldscan.Test.Eicar.UNOFFICIAL");
        CHECK(result.reason.empty());
    }
    SECTION("clam.exe in memory, behind a descriptor and behind a reader") {
        const auto bytes = read_file(k_testfiles / "clam.exe");
        const std::vector<std::string> expected = {"Coldscan.Test.ClamExe.UNOFFICIAL"};
        const auto in_memory = engine.scan(Content::from_memory(bytes), "/clam.exe");
        CHECK(in_memory.status == Status::detected);
        CHECK(signatures_of(in_memory) == expected);
        const auto by_fd = engine.scan(fd_content(k_testfiles / "clam.exe"), "/clam.exe");
        CHECK(by_fd.status == Status::detected);
        CHECK(signatures_of(by_fd) == expected);
        const auto by_reader = engine.scan(copied_reader_content(bytes), "/clam.exe");
        CHECK(by_reader.status == Status::detected);
        CHECK(signatures_of(by_reader) == expected);
    }
    SECTION("all matches are reported, each name once") {
        auto bytes = nested_zip(1); // the member matches the hash signature
        const auto eicar = bytes_of(k_eicar);
        bytes.insert(bytes.begin(), eicar.begin(), eicar.end()); // the outer file the body signature
        bytes.insert(bytes.end(), eicar.begin(), eicar.end());   // twice
        auto names = signatures_of(engine.scan(Content::from_memory(bytes), "/both"));
        std::ranges::sort(names);
        CHECK(names ==
              std::vector<std::string>{"Coldscan.Test.ClamExe.UNOFFICIAL", "Coldscan.Test.Eicar.UNOFFICIAL"});
    }
    SECTION("every layer scanned is recorded: the zip and the member inside it, with their sizes and types") {
        const auto bytes = nested_zip(1);
        const auto member = read_file(k_testfiles / "clam.exe");
        const auto result = engine.scan(Content::from_memory(bytes), "/nested.zip");
        REQUIRE(result.layers.complete);
        CHECK(std::ranges::binary_search(result.layers.sizes, static_cast<std::uint64_t>(bytes.size())));
        CHECK(std::ranges::binary_search(result.layers.sizes, static_cast<std::uint64_t>(member.size())));
        CHECK(std::ranges::binary_search(result.layers.types, std::string("CL_TYPE_ZIP")));
        CHECK(std::ranges::binary_search(result.layers.types, std::string("CL_TYPE_MSEXE")));
        // Each layer's digests, as hash signatures match them: the zip and the executable inside.
        REQUIRE(result.layers.digests_complete);
        CHECK(std::ranges::binary_search(result.layers.digests, digest_layer(bytes)));
        CHECK(std::ranges::binary_search(result.layers.digests, digest_layer(member)));
        const auto text = engine.scan(memory_content("just some harmless text\n"), "/etc/motd");
        CHECK(text.layers.sizes == std::vector<std::uint64_t>{24});
        REQUIRE(text.layers.digests.size() == 1);
        const std::string harmless = "just some harmless text\n";
        CHECK(text.layers.digests[0] ==
              digest_layer(std::as_bytes(std::span(harmless.data(), harmless.size()))));
        CHECK_FALSE(std::ranges::binary_search(text.layers.types, std::string("CL_TYPE_MSEXE")));
    }
    SECTION("behind a descriptor only the content's bytes are scanned") {
        const auto file = db.dir.path() / "prefix-then-eicar.bin";
        write_file(file, "clean prefix " + k_eicar);
        CHECK(engine.scan(fd_content(file), "/f").status == Status::detected);
        CHECK(engine.scan(fd_content(file, 13), "/f").status == Status::clean);
    }
    SECTION("an archive member is detected") {
        const auto result = engine.scan(fd_content(k_testfiles / "clam.zip"), "/clam.zip");
        CHECK(result.status == Status::detected);
        CHECK(signatures_of(result) == std::vector<std::string>{"Coldscan.Test.ClamExe.UNOFFICIAL"});
    }
    SECTION("a member libclamav re-reads after paging the archive out is found behind any content kind") {
        // Scanning a big file pages its start out; the zip parser then reads the first member again.
        // libclamav 1.4 fstat()s a reader map's handle on such a re-read and drops the member.
        std::vector<std::byte> filler(24U << 20);
        std::uint64_t state = 0x9E3779B97F4A7C15ULL;
        for (auto& b : filler) {
            state = state * 6364136223846793005ULL + 1442695040888963407ULL;
            b = static_cast<std::byte>(state >> 56);
        }
        const auto zip =
            stored_zip({{"clam.exe", read_file(k_testfiles / "clam.exe")}, {"filler.bin", filler}});
        const auto file = db.dir.path() / "big.zip";
        write_file(file, zip);
        const std::vector<std::string> expected = {"Coldscan.Test.ClamExe.UNOFFICIAL"};
        const auto by_fd = engine.scan(fd_content(file), "/big.zip");
        CHECK(by_fd.status == Status::detected);
        CHECK(signatures_of(by_fd) == expected);
        CHECK(by_fd.reason.empty());
        const auto by_reader = engine.scan(copied_reader_content(zip), "/big.zip");
        CHECK(by_reader.status == Status::detected);
        CHECK(signatures_of(by_reader) == expected);
        const auto in_memory = engine.scan(Content::from_memory(zip), "/big.zip");
        CHECK(signatures_of(in_memory) == expected);
    }
    SECTION("a read error is an error, never clean") {
        const auto result = engine.scan(reader_content(std::make_shared<FailingReader>(), 4096), "/bad");
        CHECK(result.status == Status::error);
        CHECK_THAT(result.reason, Catch::StartsWith("ClamAV: "));
        CHECK_THAT(result.reason, Catch::Contains("Input/output error"));
    }
}

TEST_CASE("ClamavEngine::scan limits") {
    const auto db = TestDatabases::create();

    SECTION("a file over max_file_size is limit_exceeded; only its first max_file_size bytes are scanned") {
        ScanLimits limits;
        limits.max_file_size = 100;
        limits.max_scan_size = 100;
        const auto engine = load_engine(db.folder, limits);
        const auto result = engine.scan(memory_content(std::string(1000, 'A') + k_eicar), "/big");
        CHECK(result.status == Status::limit_exceeded);
        CHECK(result.detections.empty());
        CHECK(result.reason == "ClamAV: Heuristics.Limits.Exceeded.MaxFileSize (the file has 1068 bytes; its "
                               "first 100 were scanned)");
        CHECK_FALSE(result.timed_out);
        // EICAR within the first 100 bytes: a real detection wins, the limit stays in the reason.
        const auto early = engine.scan(memory_content(k_eicar + std::string(1000, 'A')), "/big-early");
        CHECK(early.status == Status::detected);
        CHECK(signatures_of(early) == std::vector<std::string>{"Coldscan.Test.Eicar.UNOFFICIAL"});
        CHECK_THAT(early.reason,
                   Catch::StartsWith("ClamAV: Heuristics.Limits.Exceeded.MaxFileSize (the file has"));
        const auto by_fd = engine.scan(fd_content(k_testfiles / "clam.exe"), "/clam.exe");
        CHECK(by_fd.status == Status::limit_exceeded);
        CHECK_THAT(by_fd.reason, Catch::Contains("MaxFileSize"));
        // Behind a descriptor: the first 100 bytes are mapped and scanned, the rest is not.
        const auto early_file = db.dir.path() / "eicar-then-padding.bin";
        write_file(early_file, k_eicar + std::string(1000, 'A'));
        const auto early_fd = engine.scan(fd_content(early_file), "/early");
        CHECK(early_fd.status == Status::detected);
        CHECK_THAT(early_fd.reason,
                   Catch::StartsWith("ClamAV: Heuristics.Limits.Exceeded.MaxFileSize (the file has"));
        const auto late_file = db.dir.path() / "padding-then-eicar.bin";
        write_file(late_file, std::string(1000, 'A') + k_eicar);
        const auto late_fd = engine.scan(fd_content(late_file), "/late");
        CHECK(late_fd.status == Status::limit_exceeded);
        CHECK(late_fd.detections.empty());
    }
    SECTION("an archive member cut at max_file_size is limit_exceeded, named, every time") {
        ScanLimits limits;
        limits.max_file_size = 1'000'000;
        const auto engine = load_engine(db.folder, limits);
        const auto dir = db.dir.path();
        write_file(dir / "zeros.bin", std::string(3'000'000, '\0'));
        REQUIRE(std::system(("cd '" + dir.string() + "' && zip -q big.zip zeros.bin").c_str()) == 0);
        const auto zip = read_file(dir / "big.zip");
        // Twice on one engine: a clean cache inside libclamav would skip the archive the second time.
        for (int round = 0; round < 2; ++round) {
            INFO("round " << round);
            const auto result = engine.scan(Content::from_memory(zip), "/big.zip");
            CHECK(result.status == Status::limit_exceeded);
            CHECK_THAT(result.reason,
                       Catch::StartsWith("ClamAV: Heuristics.Limits.Exceeded.MaxFileSize (archive "
                                         "member \"zeros.bin\" declares 3000000 bytes; its first "));
        }
    }
    SECTION("a zip header inside ordinary bytes that only declares a big size is not a limit hit") {
        // As in Python's zipfile.pyc or PHP's phar.so: libclamav finds the header, extracts nothing.
        ScanLimits limits;
        limits.max_file_size = 1'000'000;
        const auto engine = load_engine(db.folder, limits);
        std::string bytes;
        for (int i = 0; i < 20; ++i) {
            bytes += "ordinary text before an embedded header\n";
        }
        const auto put16 = [&](unsigned v) {
            bytes += static_cast<char>(v & 0xFF), bytes += static_cast<char>(v >> 8);
        };
        const auto put32 = [&](std::uint32_t v) { put16(v & 0xFFFF), put16(v >> 16); };
        put32(0x04034b50); // local file header: deflated, 100 bytes declared to inflate to 2 GiB
        put16(20), put16(0), put16(8), put16(0), put16(0);
        put32(0), put32(100), put32(0x7FFFFFFF);
        put16(4), put16(0);
        bytes += "L4Qs" + std::string(100, '\xFF') + std::string(500, 'x');
        const auto result = engine.scan(memory_content(bytes), "/zipfile.pyc");
        CHECK(result.status == Status::clean);
        CHECK(result.reason.empty());
    }
    SECTION("archives nested deeper than max_recursion are limit_exceeded") {
        ScanLimits limits;
        limits.max_recursion = 2;
        const auto engine = load_engine(db.folder, limits);
        const auto shallow = engine.scan(Content::from_memory(nested_zip(1)), "/shallow.zip");
        CHECK(shallow.status == Status::detected);
        CHECK(signatures_of(shallow) == std::vector<std::string>{"Coldscan.Test.ClamExe.UNOFFICIAL"});
        const auto deep = engine.scan(Content::from_memory(nested_zip(6)), "/deep.zip");
        CHECK(deep.status == Status::limit_exceeded);
        CHECK(deep.detections.empty());
        CHECK_THAT(deep.reason, Catch::Contains("MaxRecursion (raised in a CL_TYPE_ZIP at depth "));
    }
    SECTION("a detection wins over a limit hit, and the limit stays in the reason") {
        ScanLimits limits;
        limits.max_recursion = 2;
        const auto engine = load_engine(db.folder, limits);
        auto bytes = nested_zip(6);
        const auto eicar = bytes_of(k_eicar);
        bytes.insert(bytes.begin(), eicar.begin(), eicar.end());
        const auto result = engine.scan(Content::from_memory(bytes), "/mixed");
        CHECK(result.status == Status::detected);
        CHECK(signatures_of(result) == std::vector<std::string>{"Coldscan.Test.Eicar.UNOFFICIAL"});
        CHECK_THAT(result.reason, Catch::Contains("MaxRecursion"));
    }
    SECTION("encrypted archive members were not scanned: limit_exceeded, never clean; a detection beside "
            "them wins") {
        const auto engine = load_engine(db.folder, ScanLimits{});
        const auto dir = db.dir.path();
        write_file(dir / "eicar.com", k_eicar);
        write_file(dir / "notes.txt", "nothing to see\n");
        coldscan::test::run_shell(
            "cd " + dir.string() +
            " && zip -q -P secret locked.zip eicar.com && zip -q -P secret locked-clean.zip notes.txt"
            " && 7z a -psecret -mhe=on -bso0 -bsp0 locked.7z notes.txt"
            " && zip -q mixed.zip eicar.com && zip -q -P secret mixed.zip notes.txt");
        for (const char* name : {"locked.zip", "locked-clean.zip", "locked.7z"}) {
            INFO(name);
            const auto locked = engine.scan(fd_content(dir / name), name);
            CHECK(locked.status == Status::limit_exceeded);
            CHECK(locked.detections.empty());
            CHECK_THAT(locked.reason,
                       Catch::Contains("Heuristics.Encrypted.") && Catch::Contains("not scanned"));
        }
        const auto mixed = engine.scan(fd_content(dir / "mixed.zip"), "mixed.zip");
        CHECK(mixed.status == Status::detected);
        CHECK(signatures_of(mixed) == std::vector<std::string>{"Coldscan.Test.Eicar.UNOFFICIAL"});
        CHECK_THAT(mixed.reason, Catch::Contains("Heuristics.Encrypted.Zip"));
    }
}

TEST_CASE("ClamavEngine::scan from many threads") {
    const auto db = TestDatabases::create();
    const auto engine = load_engine(db.folder);
    const auto clam_exe = read_file(k_testfiles / "clam.exe");

    SECTION("each scan sees only its own matches") {
        constexpr int k_threads = 4;
        constexpr int k_rounds = 25;
        const std::vector<std::string> eicar_names = {"Coldscan.Test.Eicar.UNOFFICIAL"};
        const std::vector<std::string> exe_names = {"Coldscan.Test.ClamExe.UNOFFICIAL"};
        std::vector<int> failures(k_threads, 0);
        {
            std::vector<std::jthread> threads;
            for (int t = 0; t < k_threads; ++t) {
                threads.emplace_back([&, t] {
                    for (int round = 0; round < k_rounds; ++round) {
                        const auto text = "thread " + std::to_string(t) + " round " + std::to_string(round);
                        const auto clean = engine.scan(memory_content(text), "/clean");
                        const auto eicar = engine.scan(memory_content(text + k_eicar), "/eicar");
                        const auto exe = engine.scan(copied_reader_content(clam_exe), "/clam.exe");
                        const bool ok = clean.status == Status::clean &&
                                        signatures_of(eicar) == eicar_names &&
                                        signatures_of(exe) == exe_names;
                        failures[static_cast<std::size_t>(t)] += ok ? 0 : 1;
                    }
                });
            }
        }
        CHECK(failures == std::vector<int>(k_threads, 0));
    }
}
