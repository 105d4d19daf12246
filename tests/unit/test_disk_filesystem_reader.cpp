#include "../../disk-access/src/filesystem_reader.hpp"
#include "coldscan/common/temp_dir.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>
#include <cstdlib>

using namespace coldscan;
using namespace coldscan::disk::detail;
using coldscan::test::FileDevice;

TEST_CASE("open_filesystem_reader") {
    auto dir = TempDir::create("coldscan-readertest");
    REQUIRE(dir);
    const auto image = dir->path() / "fs.img";
    const auto blank = dir->path() / "blank.img";
    REQUIRE(std::system(("truncate -s 16M '" + image.string() + "' '" + blank.string() +
                         "' && PATH=$PATH:/usr/sbin:/sbin mkfs.fat -n READERFAT '" + image.string() +
                         "' >/dev/null")
                            .c_str()) == 0);
    SECTION("a filesystem a backend recognises gets that backend") {
        auto reader = open_filesystem_reader(std::make_shared<FileDevice>(image), 0, 16 << 20);
        REQUIRE(reader);
        CHECK((*reader)->type() == "vfat");
        CHECK((*reader)->label() == "READERFAT");
        auto files = (*reader)->list();
        REQUIRE(files);
        CHECK(files->empty());
    }
    SECTION("bytes no backend recognises are unsupported") {
        auto reader = open_filesystem_reader(std::make_shared<FileDevice>(blank), 0, 16 << 20);
        REQUIRE_FALSE(reader);
        CHECK(reader.error().code == Errc::unsupported);
    }
}
