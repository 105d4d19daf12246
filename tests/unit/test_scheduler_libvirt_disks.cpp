#include "coldscan/common/temp_dir.hpp"
#include "coldscan/scheduler/libvirt_disks.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <string_view>

using namespace coldscan;
using namespace coldscan::scheduler;

namespace {

// What `virsh dumpxml` prints for a typical KVM guest: two file disks, a cdrom, a block disk.
constexpr std::string_view k_domain_xml = R"(<domain type='kvm' id='3'>
  <name>web01</name>
  <uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>
  <metadata>
    <app:disk xmlns:app="http://example.org/app" device="disk"/>
  </metadata>
  <memory unit='KiB'>2097152</memory>
  <vcpu placement='static'>2</vcpu>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
    <boot dev='hd'/>
  </os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' discard='unmap'/>
      <source file='/var/lib/libvirt/images/web01.qcow2' index='2'/>
      <backingStore type='file' index='3'>
        <format type='qcow2'/>
        <source file='/var/lib/libvirt/images/templates/debian12.qcow2'/>
        <backingStore/>
      </backingStore>
      <target dev='vda' bus='virtio'/>
      <alias name='virtio-disk0'/>
    </disk>
    <disk type='file'>
      <driver name='qemu' type='raw'/>
      <source file='/var/lib/libvirt/images/web01-data &amp; logs.img'/>
      <target dev='vdb' bus='virtio'/>
      <readonly/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='/var/lib/libvirt/images/debian-12.iso'/>
      <target dev='sda' bus='sata'/>
      <readonly/>
    </disk>
    <disk type='block' device='disk'>
      <driver name='qemu' type='raw' cache='none' io='native'/>
      <source dev='/dev/vg0/web01-db'/>
      <target dev='vdc' bus='virtio'/>
    </disk>
    <interface type='network'>
      <source network='default'/>
      <model type='virtio'/>
    </interface>
  </devices>
</domain>
)";

// A node file for libvirt's test driver (test:///PATH): two domains, one running, one shut off.
constexpr std::string_view k_node_xml = R"(<node>
  <domain type='test'>
    <name>db01</name>
    <memory>1048576</memory>
    <os><type>hvm</type></os>
    <devices>
      <disk type='file' device='disk'>
        <driver name='qemu' type='qcow2'/>
        <source file='/srv/vm/db01.qcow2'/>
        <target dev='vda' bus='virtio'/>
      </disk>
      <disk type='file' device='cdrom'>
        <source file='/srv/iso/install.iso'/>
        <target dev='hdc' bus='ide'/>
        <readonly/>
      </disk>
    </devices>
  </domain>
  <domain type='test'>
    <name>app01</name>
    <memory>1048576</memory>
    <os><type>hvm</type></os>
    <devices>
      <disk type='file' device='disk'>
        <driver name='qemu' type='raw'/>
        <source file='/srv/vm/app01-root.img'/>
        <target dev='vda' bus='virtio'/>
      </disk>
      <disk type='file' device='disk'>
        <driver name='qemu' type='qcow2'/>
        <source file='/srv/vm/app01-data.qcow2'/>
        <target dev='vdb' bus='virtio'/>
        <readonly/>
      </disk>
    </devices>
  </domain>
</node>
)";

} // namespace

TEST_CASE("disks_from_domain_xml", "[scheduler][libvirt]") {
    SECTION("every disk device, in order, without the cdrom") {
        const auto disks = disks_from_domain_xml(k_domain_xml);
        REQUIRE(disks.has_value());
        REQUIRE(disks->size() == 3);

        CHECK((*disks)[0].target == "vda");
        CHECK((*disks)[0].source == "/var/lib/libvirt/images/web01.qcow2");
        CHECK((*disks)[0].format == "qcow2");
        CHECK((*disks)[0].kind == "file");
        CHECK_FALSE((*disks)[0].read_only);

        // No device= means "disk"; entities in attributes are decoded.
        CHECK((*disks)[1].target == "vdb");
        CHECK((*disks)[1].source == "/var/lib/libvirt/images/web01-data & logs.img");
        CHECK((*disks)[1].format == "raw");
        CHECK((*disks)[1].kind == "file");
        CHECK((*disks)[1].read_only);

        CHECK((*disks)[2].target == "vdc");
        CHECK((*disks)[2].source == "/dev/vg0/web01-db");
        CHECK((*disks)[2].format == "raw");
        CHECK((*disks)[2].kind == "block");
        CHECK_FALSE((*disks)[2].read_only);
    }
    SECTION("network and volume disks name their source; a missing driver leaves the format empty") {
        const auto disks = disks_from_domain_xml(R"(<domain><devices>
            <disk type='network' device='disk'>
              <source protocol='rbd' name='pool/vm-100-disk-0'><host name='ceph1' port='6789'/></source>
              <target dev='vda'/>
            </disk>
            <disk type='volume' device='disk'>
              <driver name='qemu' type='qcow2'/>
              <source pool='default' volume='vm-101.qcow2'/>
              <target dev='vdb'/>
            </disk>
            <disk device='disk'><target dev='vdc'/></disk>
          </devices></domain>)");
        REQUIRE(disks.has_value());
        REQUIRE(disks->size() == 3);
        CHECK((*disks)[0].kind == "network");
        CHECK((*disks)[0].source == "pool/vm-100-disk-0");
        CHECK((*disks)[0].format.empty());
        CHECK((*disks)[1].kind == "volume");
        CHECK((*disks)[1].source == "vm-101.qcow2");
        CHECK((*disks)[1].format == "qcow2");
        // No type= is a file disk; no <source> leaves the source empty.
        CHECK((*disks)[2].kind == "file");
        CHECK((*disks)[2].source.empty());
        CHECK((*disks)[2].target == "vdc");
    }
    SECTION("floppies and luns are not disks; a domain without devices has none") {
        const auto disks = disks_from_domain_xml(R"(<domain><devices>
            <disk type='file' device='floppy'><source file='/srv/a.img'/><target dev='fda'/></disk>
            <disk type='block' device='lun'><source dev='/dev/sdx'/><target dev='sdb'/></disk>
          </devices></domain>)");
        REQUIRE(disks.has_value());
        CHECK(disks->empty());
        const auto none = disks_from_domain_xml("<domain type='kvm'><name>empty</name></domain>");
        REQUIRE(none.has_value());
        CHECK(none->empty());
    }
    SECTION("malformed XML is invalid_argument, with where") {
        const auto disks = disks_from_domain_xml("<domain><devices><disk type='file'></devices></domain>");
        REQUIRE_FALSE(disks.has_value());
        CHECK(disks.error().code == Errc::invalid_argument);
        CHECK_THAT(disks.error().message, Catch::StartsWith("domain XML: not well-formed (line 1: "));
        CHECK(disks_from_domain_xml("").error().code == Errc::invalid_argument);
        CHECK(disks_from_domain_xml("not xml at all").error().code == Errc::invalid_argument);
    }
    SECTION("a root that is not <domain> is invalid_argument") {
        const auto disks = disks_from_domain_xml("<node><domain/></node>");
        REQUIRE_FALSE(disks.has_value());
        CHECK(disks.error().code == Errc::invalid_argument);
        CHECK(disks.error().message == "domain XML: the root element is not <domain>");
    }
    SECTION("a DOCTYPE (entities, external DTDs) is refused") {
        // Well-formed, and the entity is never loaded: the DOCTYPE itself is refused.
        const auto external = disks_from_domain_xml(R"(<?xml version="1.0"?>
<!DOCTYPE domain [ <!ENTITY secret SYSTEM "file:///etc/passwd"> ]>
<domain><name>&secret;</name><devices><disk><source file='/a'/></disk></devices></domain>)");
        REQUIRE_FALSE(external.has_value());
        CHECK(external.error().code == Errc::invalid_argument);
        CHECK(external.error().message == "domain XML: a DOCTYPE is not allowed");

        // An external entity in an attribute is not even well-formed.
        const auto in_attribute = disks_from_domain_xml(R"(<?xml version="1.0"?>
<!DOCTYPE domain [ <!ENTITY secret SYSTEM "file:///etc/passwd"> ]>
<domain><devices><disk><source file='&secret;'/></disk></devices></domain>)");
        REQUIRE_FALSE(in_attribute.has_value());
        CHECK(in_attribute.error().code == Errc::invalid_argument);
        CHECK_THAT(in_attribute.error().message, Catch::Contains("external entity"));

        // An internal entity is refused as well, though libxml2 could expand it.
        const auto internal = disks_from_domain_xml(R"(<!DOCTYPE domain [ <!ENTITY img "/srv/a.img"> ]>
<domain><devices><disk><source file='&img;'/></disk></devices></domain>)");
        REQUIRE_FALSE(internal.has_value());
        CHECK(internal.error().message == "domain XML: a DOCTYPE is not allowed");

        // Billion laughs: libxml2 stops the expansion, or the DOCTYPE is refused; either way no disks.
        std::string laughs = "<?xml version=\"1.0\"?>\n<!DOCTYPE domain [\n<!ENTITY l0 \"lol\">\n";
        for (int i = 1; i < 10; ++i) {
            laughs += "<!ENTITY l" + std::to_string(i) + " \"";
            for (int j = 0; j < 10; ++j) {
                laughs += "&l" + std::to_string(i - 1) + ";";
            }
            laughs += "\">\n";
        }
        laughs += "]>\n<domain><devices><disk><source file='&l9;'/></disk></devices></domain>";
        const auto bomb = disks_from_domain_xml(laughs);
        REQUIRE_FALSE(bomb.has_value());
        CHECK(bomb.error().code == Errc::invalid_argument);
    }
}

TEST_CASE("list_domains and domain_disks", "[scheduler][libvirt]") {
    auto dir = TempDir::create("coldscan-test-libvirt");
    REQUIRE(dir.has_value());
    const auto node = dir->path() / "node.xml";
    test::write_file(node, k_node_xml);
    const std::string uri = "test://" + node.string();

    SECTION("list_domains: every domain of the node file, sorted") {
        const auto names = list_domains(uri);
        REQUIRE(names.has_value());
        CHECK(*names == std::vector<std::string>{"app01", "db01"});
    }
    SECTION("domain_disks: the disks the node file gives the domain") {
        const auto db01 = domain_disks(uri, "db01");
        REQUIRE(db01.has_value());
        REQUIRE(db01->size() == 1);
        CHECK((*db01)[0].source == "/srv/vm/db01.qcow2");
        CHECK((*db01)[0].format == "qcow2");
        CHECK((*db01)[0].target == "vda");

        const auto app01 = domain_disks(uri, "app01");
        REQUIRE(app01.has_value());
        REQUIRE(app01->size() == 2);
        CHECK((*app01)[0].source == "/srv/vm/app01-root.img");
        CHECK((*app01)[0].format == "raw");
        CHECK_FALSE((*app01)[0].read_only);
        CHECK((*app01)[1].source == "/srv/vm/app01-data.qcow2");
        CHECK((*app01)[1].target == "vdb");
        CHECK((*app01)[1].read_only);
    }
    SECTION("domain_disks: an unknown domain is not_found") {
        const auto disks = domain_disks(uri, "no-such-vm");
        REQUIRE_FALSE(disks.has_value());
        CHECK(disks.error().code == Errc::not_found);
        CHECK_THAT(disks.error().message, Catch::Contains("no-such-vm"));
    }
    SECTION("a node file that does not exist is io, with libvirt's message") {
        const std::string missing = "test://" + (dir->path() / "missing.xml").string();
        const auto names = list_domains(missing);
        REQUIRE_FALSE(names.has_value());
        CHECK(names.error().code == Errc::io);
        CHECK_THAT(names.error().message, Catch::StartsWith("libvirt: cannot connect to " + missing + ": "));
        CHECK(domain_disks(missing, "db01").error().code == Errc::io);
    }
}
