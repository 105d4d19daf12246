#include "coldscan/common/sha256.hpp"
#include "coldscan/common/temp_dir.hpp"
#include "coldscan/signatures/signature_catalogue.hpp"

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

TEST_CASE("read_catalogue: a .cvd, a .cld and plain files of the same content are one catalogue",
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
    CHECK(cvd->lines == plain->lines);
    CHECK(cld->lines == plain->lines);
    CHECK(cvd->engine_part == plain->engine_part);
    CHECK(cld->engine_part == plain->engine_part);
    CHECK(cvd->detection_set == plain->detection_set);
    const auto digest = digest_catalogue({dbs.dir.path() / "daily.cld"});
    REQUIRE(digest);
    CHECK(digest->detection_set == plain->detection_set);
    CHECK(digest->engine_part == plain->engine_part);
    CHECK(digest->lines == 6);
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
