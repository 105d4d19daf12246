// OVF packages as ovftool and VirtualBox write them: the descriptor's disks in the hardware's order, an OVA's
// members found in place (offsets equal to what Python's tarfile says), and the safety gate's view of a disk
// inside a package (a streamOptimized VMDK slice probes; a VMDK text descriptor naming extents is refused).
#include "coldscan/common/temp_dir.hpp"
#include "coldscan/disk/image_probe.hpp"
#include "coldscan/disk/ovf_package.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>
#include <sstream>

using namespace coldscan;
using namespace coldscan::disk;
using coldscan::test::read_text;
using coldscan::test::run_shell;
using coldscan::test::write_file;

namespace {

std::string envelope(const std::string& references, const std::string& disks, const std::string& items) {
    return R"(<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
 xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData">
  <References>)" +
           references +
           R"(</References>
  <DiskSection><Info>Virtual disk information</Info>)" +
           disks + R"(</DiskSection>
  <VirtualSystem ovf:id="web01"><VirtualHardwareSection>)" +
           items + R"(</VirtualHardwareSection></VirtualSystem>
</Envelope>
)";
}

std::string file_ref(const std::string& id, const std::string& href, const std::string& extra = "") {
    return "<File ovf:id=\"" + id + "\" ovf:href=\"" + href + "\" " + extra + "/>";
}

std::string ovf_disk(const std::string& id, const std::string& file) {
    return "<Disk ovf:diskId=\"" + id + "\" ovf:fileRef=\"" + file +
           "\" ovf:capacity=\"16\" ovf:format=\"http://www.vmware.com/interfaces/specifications/"
           "vmdk.html#streamOptimized\"/>";
}

std::string item(const std::string& host_resource) {
    return "<Item><rasd:HostResource>" + host_resource +
           "</rasd:HostResource><rasd:ResourceType>17</rasd:ResourceType></Item>";
}

const std::string k_two_disks =
    envelope(file_ref("file2", "web-disk2.vmdk") + file_ref("file1", "web-disk1.vmdk"),
             ovf_disk("vmdisk2", "file2") + ovf_disk("vmdisk1", "file1"),
             item("ovf:/disk/vmdisk1") + item("ovf:/disk/vmdisk2"));

} // namespace

TEST_CASE("ovf_disks lists the disks in the hardware's order") {
    SECTION("ovftool's form: ovf:/disk/ID; the descriptor lists them the other way round") {
        auto disks = detail::ovf_disks(k_two_disks);
        REQUIRE(disks);
        REQUIRE(disks->size() == 2);
        CHECK((*disks)[0].href == "web-disk1.vmdk");
        CHECK((*disks)[1].href == "web-disk2.vmdk");
        CHECK((*disks)[0].format == std::optional<std::string>("vmdk"));
    }
    SECTION("VirtualBox's older form /disk/ID; a disk no item attaches comes last; a blank disk is none") {
        auto disks = detail::ovf_disks(envelope(file_ref("a", "a.vmdk") + file_ref("b", "b.vmdk"),
                                                ovf_disk("d1", "a") + ovf_disk("d2", "b") +
                                                    "<Disk ovf:diskId=\"blank\" ovf:capacity=\"1\"/>",
                                                item("/disk/d2")));
        REQUIRE(disks);
        REQUIRE(disks->size() == 2);
        CHECK((*disks)[0].href == "b.vmdk");
        CHECK((*disks)[1].href == "a.vmdk");
    }
    SECTION("what cannot be read in place, or is not an OVF, is refused") {
        for (const std::string& bad :
             {envelope(file_ref("f", "d.vmdk.gz", "ovf:compression=\"gzip\""), ovf_disk("d", "f"), ""),
              envelope(file_ref("f", "d.vmdk", "ovf:chunkSize=\"1000\""), ovf_disk("d", "f"), ""),
              envelope(file_ref("f", "../../etc/shadow"), ovf_disk("d", "f"), ""),
              envelope(file_ref("f", "d.vmdk"), ovf_disk("d", "nope"), ""), std::string("<domain/>"),
              std::string("<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>"
                          "<Envelope>&e;</Envelope>"),
              std::string("<Envelope><References>")}) {
            INFO(bad);
            auto disks = detail::ovf_disks(bad);
            REQUIRE_FALSE(disks);
            CHECK(disks.error().code == Errc::invalid_argument);
        }
    }
}

TEST_CASE("package_disks finds an OVA's disks in place") {
    auto dir = TempDir::create("coldscan-ovatest");
    REQUIRE(dir);
    const auto at = dir->path();
    write_file(at / "web.ovf", k_two_disks);
    run_shell(
        "cd " + at.string() +
        " && qemu-img create -q -f raw d.raw 16M && printf 'MZ-disk-one' | dd of=d.raw conv=notrunc "
        "status=none"
        " && qemu-img convert -O vmdk -o subformat=streamOptimized d.raw web-disk1.vmdk"
        " && qemu-img convert -O vmdk -o subformat=streamOptimized d.raw web-disk2.vmdk"
        " && tar --format=ustar -cf web.ova web.ovf web-disk2.vmdk web-disk1.vmdk"
        " && python3 -c \"import tarfile; t = tarfile.open('web.ova');"
        " print(' '.join('%s %d %d' % (m.name, m.offset_data, m.size) for m in t.getmembers()))\" > offsets");
    const std::string offsets = read_text(at / "offsets");
    const auto ova = at / "web.ova";
    REQUIRE(is_ovf_package(ova));
    REQUIRE(is_ovf_package(at / "web.ovf"));
    CHECK_FALSE(is_ovf_package(at / "d.raw"));

    auto disks = package_disks(ova);
    REQUIRE(disks);
    REQUIRE(disks->size() == 2);
    for (const auto& d : *disks) {
        INFO(d.name);
        CHECK(d.file == ova);
        CHECK_THAT(offsets,
                   Catch::Contains(d.name + " " + std::to_string(d.offset) + " " + std::to_string(d.length)));
    }
    CHECK((*disks)[0].name == "web-disk1.vmdk");

    SECTION("the safety gate probes a disk inside the package as what it is") {
        auto info = probe_image(ova, ProbeOptions{std::nullopt, {}, (*disks)[0].offset, (*disks)[0].length});
        REQUIRE(info);
        CHECK(info->format == "vmdk");
        CHECK(info->virtual_size == 16U << 20);
        REQUIRE(info->chain.size() == 1);
        CHECK(info->chain[0].offset == (*disks)[0].offset);
    }
    SECTION("a VMDK text descriptor inside a package, naming a file beside it, is never opened") {
        write_file(at / "desc.vmdk", "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n"
                                     "createType=\"monolithicFlat\"\nRW 32768 FLAT \"d.raw\" 0\n");
        run_shell("cd " + at.string() +
                  " && tar --format=ustar -cf evil.ova web.ovf desc.vmdk && python3 -c "
                  "\"import tarfile; m = tarfile.open('evil.ova').getmember('desc.vmdk');"
                  " print(m.offset_data, m.size)\" > evil");
        std::uint64_t offset = 0;
        std::uint64_t length = 0;
        std::istringstream(read_text(at / "evil")) >> offset >> length;
        REQUIRE(length > 0);
        auto info = probe_image(at / "evil.ova", ProbeOptions{std::nullopt, {}, offset, length});
        REQUIRE_FALSE(info);
        CHECK(info.error().code == Errc::unsafe_image);
    }
    SECTION("a disk the OVF names but the package lacks") {
        run_shell("cd " + at.string() + " && tar --format=ustar -cf short.ova web.ovf web-disk1.vmdk");
        auto missing = package_disks(at / "short.ova");
        REQUIRE_FALSE(missing);
        CHECK_THAT(missing.error().message, Catch::Contains("web-disk2.vmdk, which the package lacks"));
    }
    SECTION("beside an .ovf, the disks are the files next to it") {
        auto beside = package_disks(at / "web.ovf");
        REQUIRE(beside);
        REQUIRE(beside->size() == 2);
        CHECK((*beside)[1].file == at / "web-disk2.vmdk");
        CHECK((*beside)[1].length == 0);
    }
}
