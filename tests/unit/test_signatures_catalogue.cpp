#include "coldscan/common/sha256.hpp"
#include "coldscan/common/temp_dir.hpp"
#include "coldscan/signatures/signature_catalogue.hpp"
#include "coldscan/signatures/subset_databases.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

using namespace coldscan;
using namespace coldscan::signatures;

namespace {

void write(const std::filesystem::path& path, const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
}

std::string read_text(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

// A ClamAV container of the files in `folder` made with the real tar (and gzip when `gzip`): the
// "ClamAV-VDB:" header padded to 512 bytes, then the archive, as sigtool and freshclam write them.
std::filesystem::path container(const std::filesystem::path& folder, const std::filesystem::path& out,
                                bool gzip) {
    const auto archive = out.string() + ".tar";
    const std::string command = "tar -C '" + folder.string() + "' -c" + (gzip ? "z" : "") + "f '" + archive +
                                "' $(ls '" + folder.string() + "')";
    REQUIRE(std::system(command.c_str()) == 0);
    std::string header = "ClamAV-VDB:06 Dec 2026 10-00 +0000:27000:4:90:x:x:tests:1796551200";
    header.resize(512, ' ');
    write(out, header + read_text(archive));
    return out;
}

std::vector<std::byte> bytes_of(const std::string& text) {
    const auto* data = reinterpret_cast<const std::byte*>(text.data());
    return {data, data + text.size()};
}

CatalogueLine line(const std::string& text, LineKind kind) {
    Sha256 hasher;
    const auto kind_byte = static_cast<std::byte>(kind);
    hasher.update(std::span<const std::byte>(&kind_byte, 1));
    hasher.update(text);
    return CatalogueLine{hasher.finish(), kind};
}

struct Databases {
    TempDir dir = TempDir::create("coldscan-catalogue").value();
    std::filesystem::path plain = dir.path() / "plain";

    Databases() {
        std::filesystem::create_directories(plain);
        write(plain / "daily.hdb", "# a comment\r\n44d88612fea8a8f36de82e1278abb02f:68:Eicar.Hash\r\n\r\n"
                                   "d41d8cd98f00b204e9800998ecf8427e:0:Empty.Hash\n");
        write(plain / "daily.ndb", "Body.One:0:*:414243\nBody.Two:0:*:444546");
        write(plain / "daily.ldb", "Logical.One;Engine:51-255,Target:0;0;414243\n");
        write(plain / "daily.ign2", "Body.Two\n");
        write(plain / "daily.cfg", "DOCUMENT:0x0:0:0\n");
        write(plain / "daily.info", "ClamAV-VDB:whatever\ndaily.hdb:123:abc\n");
    }
};

} // namespace

TEST_CASE("read_catalogue: plain files", "[signatures]") {
    Databases dbs;
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(dbs.plain)) {
        files.push_back(entry.path());
    }
    const auto catalogue = read_catalogue(files);
    REQUIRE(catalogue);
    std::vector<CatalogueLine> want = {
        line("44d88612fea8a8f36de82e1278abb02f:68:Eicar.Hash", LineKind::hash),
        line("d41d8cd98f00b204e9800998ecf8427e:0:Empty.Hash", LineKind::hash),
        line("Body.One:0:*:414243", LineKind::body),
        line("Body.Two:0:*:444546", LineKind::body),
        line("Logical.One;Engine:51-255,Target:0;0;414243", LineKind::logical),
        line("Body.Two", LineKind::allow_list),
    };
    std::ranges::sort(want);
    CHECK(catalogue->lines == want); // no comment, no empty line, no line end
    REQUIRE(catalogue->engine_files.size() == 1);
    CHECK(catalogue->engine_files[0] == "daily.cfg " + sha256_hex("DOCUMENT:0x0:0:0\n"));
    CHECK(catalogue->engine_part.size() == 64);
}

TEST_CASE("read_catalogue: a .cvd and a .cld of the same content are one catalogue; plain files are not",
          "[signatures]") {
    Databases dbs;
    std::vector<std::filesystem::path> plain_files;
    for (const auto& entry : std::filesystem::directory_iterator(dbs.plain)) {
        plain_files.push_back(entry.path());
    }
    const auto plain = read_catalogue(plain_files);
    const auto cvd = read_catalogue({container(dbs.plain, dbs.dir.path() / "daily.cvd", true)});
    const auto cld = read_catalogue({container(dbs.plain, dbs.dir.path() / "daily.cld", false)});
    REQUIRE(plain);
    REQUIRE(cvd);
    REQUIRE(cld);
    CHECK(cld->lines == cvd->lines);
    CHECK(cld->engine_part == cvd->engine_part);
    CHECK(cld->detection_set == cvd->detection_set);
    const auto digest = digest_catalogue({dbs.dir.path() / "daily.cld"});
    REQUIRE(digest);
    CHECK(digest->detection_set == cvd->detection_set);
    CHECK(digest->engine_part == cvd->engine_part);
    CHECK(digest->lines == 6);
    // The same text from a plain file is another line: libclamav names its detections NAME.UNOFFICIAL.
    CHECK(plain->lines.size() == cvd->lines.size());
    CHECK(plain->engine_part == cvd->engine_part);
    CHECK(plain->detection_set != cvd->detection_set);
    CHECK(std::ranges::find(plain->lines, line("Body.One:0:*:414243", LineKind::body)) != plain->lines.end());
    CHECK(std::ranges::find(cvd->lines, line("Body.One:0:*:414243", LineKind::body)) == cvd->lines.end());
}

TEST_CASE("difference: lines added and removed, by kind", "[signatures]") {
    SignatureCatalogue before;
    REQUIRE(add_database("daily.hdb", bytes_of("aa:1:A\nbb:2:B\n"), before));
    REQUIRE(add_database("daily.ndb", bytes_of("N1:0:*:41\n"), before));
    finish_catalogue(before);
    SignatureCatalogue after;
    REQUIRE(add_database("daily.hdb", bytes_of("aa:1:A\nbb:2:B\ncc:3:C\n"), after));
    REQUIRE(add_database("daily.fp", bytes_of("dd:4:Clean\n"), after));
    finish_catalogue(after);
    const auto delta = difference(before, after);
    std::vector<CatalogueLine> added = {line("cc:3:C", LineKind::hash),
                                        line("dd:4:Clean", LineKind::allow_list)};
    std::ranges::sort(added);
    CHECK(delta.added == added);
    CHECK(delta.removed == std::vector<CatalogueLine>{line("N1:0:*:41", LineKind::body)});
    CHECK(difference(after, after).added.empty());
    CHECK(difference(after, after).removed.empty());
    CHECK(before.engine_part == after.engine_part); // no engine-part file in either

    SECTION("an engine-part change shows in engine_part, not in the lines") {
        SignatureCatalogue bytecode = after;
        REQUIRE(add_database("bytecode.cbc", bytes_of("ClamBC..."), bytecode));
        finish_catalogue(bytecode);
        CHECK(bytecode.engine_part != after.engine_part);
        CHECK(bytecode.lines == after.lines);
    }
    SECTION("a YARA file is one unit") {
        SignatureCatalogue yara;
        REQUIRE(add_database("extra.yar", bytes_of("rule a { condition: true }\n# not a comment\n"), yara));
        finish_catalogue(yara);
        REQUIRE(yara.lines.size() == 1);
        CHECK(yara.lines[0].kind == LineKind::yara);
    }
}

TEST_CASE("find_line_texts and hash_line_size", "[signatures]") {
    const Databases db;
    const auto files = std::vector<std::filesystem::path>{db.plain / "daily.hdb", db.plain / "daily.ndb"};
    const auto eicar = line("44d88612fea8a8f36de82e1278abb02f:68:Eicar.Hash", LineKind::hash);
    const auto body = line("Body.Two:0:*:444546", LineKind::body);
    const auto absent = line("not:in:any", LineKind::hash);
    std::vector<CatalogueLine> wanted{eicar, body, absent};
    std::ranges::sort(wanted);
    const auto texts = find_line_texts(files, wanted).value();
    REQUIRE(texts.size() == 2);
    for (const auto& text : texts) {
        CHECK(text.text == (text.line == eicar ? "44d88612fea8a8f36de82e1278abb02f:68:Eicar.Hash"
                                               : "Body.Two:0:*:444546"));
    }
    CHECK(texts[0].line < texts[1].line); // in the order of wanted

    CHECK(hash_line_size("44d88612fea8a8f36de82e1278abb02f:68:Eicar.Hash") == 68);
    CHECK(hash_line_size("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855:0:Empty:73") == 0);
    CHECK_FALSE(hash_line_size("44d88612fea8a8f36de82e1278abb02f:*:Any.Size:73").has_value());
    CHECK_FALSE(hash_line_size("44d88612fea8a8f36de82e1278abb02f").has_value());
    CHECK_FALSE(hash_line_size("44d88612fea8a8f36de82e1278abb02f:-1:Neg").has_value());
}

TEST_CASE("read_catalogue refuses what is not a container", "[signatures]") {
    const auto refused = [](const std::string& name, const std::string& bytes) {
        SignatureCatalogue catalogue;
        const auto added = add_database(name, bytes_of(bytes), catalogue);
        REQUIRE_FALSE(added);
        CHECK(added.error().code == Errc::invalid_argument);
        return added.error().message;
    };
    CHECK(refused("daily.cvd", "not a database") == "daily.cvd: no ClamAV-VDB header");
    std::string header = "ClamAV-VDB:x";
    header.resize(512, ' ');
    CHECK(refused("daily.cvd", header + "\x1f\x8b\x08\x00garbage") == "daily.cvd: a broken gzip stream");
    std::string member(512, '\0');
    member.replace(0, 9, "daily.hdb");
    member.replace(124, 11, "77777777777"); // far more bytes than follow
    member[156] = '0';
    CHECK(refused("daily.cld", header + member) == "daily.cld: a broken tar member header");
    CHECK(refused("daily.cld", header + std::string(100, 'x')) == "daily.cld: a broken tar member header");
    const auto missing = read_catalogue({"/nonexistent/daily.cvd"});
    REQUIRE_FALSE(missing);
    CHECK(missing.error().code == Errc::io);
}

TEST_CASE("pattern_line_target and target_may_match", "[signatures]") {
    CHECK(pattern_line_target(LineKind::body, "Win.Trojan.X:1:EP+0:4142") == 1);
    CHECK(pattern_line_target(LineKind::body, "Any.Body:0:*:414243") == 0);
    CHECK_FALSE(pattern_line_target(LineKind::body, "Old.Format=414243").has_value()); // .db: any layer
    CHECK_FALSE(pattern_line_target(LineKind::body, "Broken:x:*:41").has_value());
    CHECK(pattern_line_target(LineKind::logical, "Unix.X;Engine:81-255,Target:6;0&1;4142;4344") == 6);
    CHECK_FALSE(pattern_line_target(LineKind::logical, "No.Target;Engine:81-255;0;4142").has_value());
    CHECK_FALSE(pattern_line_target(LineKind::hash, "44d88612fea8a8f36de82e1278abb02f:68:H").has_value());

    const std::vector<std::string> elf_in_zip{"CL_TYPE_ELF", "CL_TYPE_ZIP"};
    CHECK(target_may_match(6, elf_in_zip));
    CHECK_FALSE(target_may_match(1, elf_in_zip));  // PE
    CHECK_FALSE(target_may_match(10, elf_in_zip)); // PDF
    CHECK(target_may_match(0, elf_in_zip));        // generic
    CHECK(target_may_match(3, elf_in_zip));        // HTML: normalised text inside other layers too
    CHECK(target_may_match(7, elf_in_zip));        // ASCII: likewise
}

TEST_CASE("write_subset_databases: the wanted lines and what keeps typing and allow-listing",
          "[signatures]") {
    Databases dbs;
    write(dbs.plain / "daily.ftm", "0:0:cafebabe:Java class:CL_TYPE_ANY:CL_TYPE_JAVA\n");
    write(dbs.plain / "daily.fp", "d41d8cd98f00b204e9800998ecf8427e:0:Empty.Allowed\n");
    const auto out = dbs.dir.path() / "subset";
    std::filesystem::create_directories(out);
    const std::vector<CatalogueLine> wanted = [] {
        std::vector<CatalogueLine> lines{
            line("Body.Two:0:*:444546", LineKind::body),
            line("44d88612fea8a8f36de82e1278abb02f:68:Eicar.Hash", LineKind::hash)};
        std::ranges::sort(lines);
        return lines;
    }();

    SECTION("from plain files") {
        std::vector<std::filesystem::path> files;
        for (const auto& entry : std::filesystem::directory_iterator(dbs.plain)) {
            files.push_back(entry.path());
        }
        std::ranges::sort(files);
        const auto written = write_subset_databases(files, wanted, out);
        REQUIRE(written);
        CHECK(written->lines == 2);
        CHECK(read_text(out / "daily.ndb") == "Body.Two:0:*:444546\n");
        CHECK(read_text(out / "daily.hdb") == "44d88612fea8a8f36de82e1278abb02f:68:Eicar.Hash\n");
        CHECK_FALSE(std::filesystem::exists(out / "daily.ldb")); // nothing wanted in it
        CHECK_FALSE(std::filesystem::exists(out / "daily.info"));
        // Engine part and allow lists whole.
        CHECK(read_text(out / "daily.ftm") == read_text(dbs.plain / "daily.ftm"));
        CHECK(read_text(out / "daily.cfg") == read_text(dbs.plain / "daily.cfg"));
        CHECK(read_text(out / "daily.ign2") == read_text(dbs.plain / "daily.ign2"));
        CHECK(read_text(out / "daily.fp") == read_text(dbs.plain / "daily.fp"));
    }
    SECTION("from a container: its members as plain files") {
        const auto cvd = container(dbs.plain, dbs.dir.path() / "daily.cvd", true);
        CHECK(write_subset_databases({cvd}, wanted, out).value().lines == 0); // plain-file lines: not these
        const auto catalogue = read_catalogue({cvd}).value();
        std::vector<CatalogueLine> from_container;
        const auto texts = find_line_texts({cvd}, catalogue.lines).value();
        for (const auto& [found, text, official] : texts) {
            if (text == "Body.Two:0:*:444546" || text.starts_with("44d88612")) {
                from_container.push_back(found);
            }
        }
        REQUIRE(from_container.size() == 2);
        std::filesystem::remove_all(out);
        std::filesystem::create_directories(out);
        const auto written = write_subset_databases({cvd}, from_container, out);
        REQUIRE(written);
        CHECK(written->lines == 2);
        CHECK(read_text(out / "daily.ndb") == "Body.Two:0:*:444546\n");
        CHECK(read_text(out / "daily.ftm") == read_text(dbs.plain / "daily.ftm"));
        CHECK_FALSE(std::filesystem::exists(out / "daily.cvd"));
    }
    SECTION("a container of engine files only is copied whole; bytecode next to detection lines is refused") {
        const auto bytecode_dir = dbs.dir.path() / "bytecode";
        std::filesystem::create_directories(bytecode_dir);
        write(bytecode_dir / "bytecode.cbc", "ClamBCaa`|``````|`agafp`clamcoincidencejb:4096\n");
        const auto bytecode = container(bytecode_dir, dbs.dir.path() / "bytecode.cvd", true);
        REQUIRE(write_subset_databases({bytecode}, wanted, out));
        CHECK(read_text(out / "bytecode.cvd") == read_text(bytecode));

        write(dbs.plain / "mixed.cbc", "ClamBCaa`|``````|`agafp`clamcoincidencejb:4096\n");
        const auto mixed = container(dbs.plain, dbs.dir.path() / "mixed.cvd", true);
        const auto elsewhere = dbs.dir.path() / "mixed";
        std::filesystem::create_directories(elsewhere);
        const auto refused = write_subset_databases({mixed}, wanted, elsewhere);
        REQUIRE_FALSE(refused);
        CHECK(refused.error().code == Errc::unsupported);
    }
}
