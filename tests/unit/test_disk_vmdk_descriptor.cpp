#include "../../disk-access/src/vmdk_descriptor.hpp"
#include "coldscan/common/temp_dir.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

using coldscan::TempDir;
using coldscan::disk::detail::vmdk_descriptor;
using coldscan::disk::detail::vmdk_extent_names;
using coldscan::test::write_file;

namespace {

const std::string k_descriptor = "# Disk DescriptorFile\n"
                                 "version=1\n"
                                 "CID=fffffffe\n"
                                 "parentCID=ffffffff\n"
                                 "createType=\"twoGbMaxExtentFlat\"\n"
                                 "\n"
                                 "# Extent description\n"
                                 "RW 4192256 FLAT \"disk-f001.vmdk\" 0\n"
                                 "RW 4192256 FLAT \"/etc/shadow\" 0\n"
                                 "RDONLY 2048 SPARSE \"../other/base-s001.vmdk\"\n"
                                 "RW 1024 ZERO\n";

} // namespace

TEST_CASE("vmdk_extent_names") {
    SECTION("every named extent, absolute and relative, in order; ZERO extents name no file") {
        CHECK(vmdk_extent_names(k_descriptor) ==
              std::vector<std::string>{"disk-f001.vmdk", "/etc/shadow", "../other/base-s001.vmdk"});
    }
    SECTION("text that is not a descriptor names nothing") {
        CHECK(vmdk_extent_names("just some text\nRW is not enough\n").empty());
        CHECK(vmdk_extent_names("").empty());
    }
}

TEST_CASE("vmdk_descriptor") {
    auto dir = TempDir::create("coldscan-test");
    REQUIRE(dir);
    SECTION("a text descriptor is found when qemu's probe would pick vmdk") {
        write_file(dir->path() / "disk.vmdk", k_descriptor);
        const auto found = vmdk_descriptor(dir->path() / "disk.vmdk", false);
        REQUIRE(found.has_value());
        CHECK(vmdk_extent_names(*found).size() == 3);
    }
    SECTION("a text file that does not probe as vmdk has none, unless the format says vmdk") {
        write_file(dir->path() / "notes.txt", "RW 4192256 FLAT \"/etc/shadow\" 0\n");
        CHECK_FALSE(vmdk_descriptor(dir->path() / "notes.txt", false).has_value());
        const auto forced = vmdk_descriptor(dir->path() / "notes.txt", true);
        REQUIRE(forced.has_value());
        CHECK(vmdk_extent_names(*forced) == std::vector<std::string>{"/etc/shadow"});
    }
}
