// Images that scan completely: every planted sample found with the same signatures clamscan and yara
// report, every file inventoried with its real SHA-256, and the report fields the schema promises.
#include "checks.hpp"
#include "support.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <set>
#include <tuple>
#include <utility>

using namespace coldscan::e2e;

namespace {

// The ext4 root partition; the clean image has its own label so that no expected detection applies to it.
FilesystemSpec root_filesystem(const std::string& label, const std::string& tree) {
    return {label, "ext4", {"/dev/sda1"}, tree, std::string(k_root_uuid)};
}

} // namespace

TEST_CASE("scan ext4-gpt image", "[ext4-gpt]") {
    check_completed_scan(
        {"ext4-gpt", image_path("ext4-gpt.qcow2"), "image", 1, {root_filesystem("coldroot", "dormant")}});
}

TEST_CASE("inspection of the ext4-gpt image finds Debian 12", "[ext4-gpt]") {
    const ScanRun& run = load_scan("ext4-gpt");
    REQUIRE(run.report.has_value());
    const Json& inspection = run.report->at("targets").at(0).at("inspection");
    REQUIRE(inspection.size() == 1);
    const Json& os = inspection.at(0);
    CHECK(os.at("root") == "/dev/sda1");
    CHECK(os.at("type") == "linux");
    CHECK(os.at("distro") == "debian");
    CHECK(os.at("hostname") == "dormant-web01");
    CHECK(os.at("version").get<std::string>().starts_with("12"));
}

TEST_CASE("scan clean image", "[clean]") {
    check_completed_scan(
        {"clean", image_path("clean.qcow2"), "image", 0, {root_filesystem("coldclean", "clean")}});
    const ScanRun& run = load_scan("clean");
    REQUIRE(run.report.has_value());
    CHECK(run.report->at("detections").empty());
    CHECK(run.report->at("targets").at(0).at("inspection").size() == 1);
}

TEST_CASE("scan ntfs image", "[ntfs]") {
    check_completed_scan({"ntfs",
                          image_path("ntfs.qcow2"),
                          "image",
                          1,
                          {{"COLDNTFS", "ntfs", {"/dev/sda1"}, "ntfs", std::nullopt}}});
    const ScanRun& run = load_scan("ntfs");
    REQUIRE(run.report.has_value());
    CHECK(run.report->at("targets").at(0).at("inspection").empty()); // no Windows registry: no OS
}

// One GPT disk, three partitions: an LVM PV (ext4 and XFS logical volumes), a FAT32 EFI system partition and
// a btrfs filesystem (tests/fixtures/build-images.sh).
TEST_CASE("scan lvm image with ext4 and XFS logical volumes, a FAT32 and a btrfs partition", "[lvm]") {
    check_completed_scan(
        {"lvm",
         image_path("lvm.qcow2"),
         "image",
         1,
         {{"colddata", "ext4", {"/dev/coldvg/data", "/dev/mapper/coldvg-data"}, "lvm-data", std::nullopt},
          {"coldlogs", "xfs", {"/dev/coldvg/logs", "/dev/mapper/coldvg-logs"}, "lvm-logs", std::nullopt},
          {"COLDFAT", "vfat", {"/dev/sda2"}, "fat", std::string("c01d-fa75")},
          {"coldbtrfs",
           "btrfs",
           {"/dev/sda3"},
           "btrfs",
           std::string("5c0d5ca4-0000-4000-8000-0000000b7f50")}}});
}

TEST_CASE("the lvm scan finds planted samples on every filesystem, FAT32 and btrfs included", "[lvm]") {
    const ScanRun& run = load_scan("lvm");
    REQUIRE(run.report.has_value());
    std::map<std::string, std::set<std::pair<std::string, std::string>>> by_label;
    for (const auto& finding : report_findings(*run.report)) {
        by_label[finding.label].insert({finding.path, finding.engine});
    }
    using Hits = std::set<std::pair<std::string, std::string>>;
    CHECK(by_label.size() == 4);
    CHECK(by_label["COLDFAT"] ==
          Hits{{"/EFI/vendor/eicar test.com", "clamav"}, {"/Updates/Firmware Update.zip", "clamav"}});
    CHECK(by_label["coldbtrfs"] ==
          Hits{{"/opt/updater/clam-upx.exe", "clamav"}, {"/home/ops/Desktop/READ ME NOW.txt", "yara"}});
    CHECK(by_label["colddata"].size() == 2);
    CHECK(by_label["coldlogs"].size() == 2);

    // The btrfs tree's hard link is one file with two names; the FAT tree's non-ASCII long name survives.
    REQUIRE(run.inventory.has_value());
    std::size_t hardlink_lines = 0;
    bool umlaut_name = false;
    for (const auto& line : *run.inventory) {
        if (line.at("device") == "/dev/sda3" && line.contains("hardlink_of")) {
            ++hardlink_lines;
        }
        if (line.at("device") == "/dev/sda2" && raw_field(line, "path") == "/Docs/Übersicht März.txt") {
            umlaut_name = true;
        }
    }
    CHECK(hardlink_lines == 1);
    CHECK(umlaut_name);

    // /home and /opt are btrfs subvolumes, /home the default one: both are scanned through the top level,
    // once (the file counts above), and libguestfs' separate entry for /opt is skipped, not scanned again.
    std::size_t subvolume_entries = 0;
    for (const auto& filesystem : run.report->at("targets").at(0).at("filesystems")) {
        const std::string device = filesystem.at("device").get<std::string>();
        if (device.starts_with("btrfsvol:")) {
            ++subvolume_entries;
            CHECK(device.ends_with("/opt")); // the appliance may name the device the volume was made on
            CHECK(filesystem.at("status") == "skipped");
            CHECK(filesystem.at("reason").get<std::string>().find("top level of /dev/sda3") !=
                  std::string::npos);
        }
    }
    CHECK(subvolume_entries == 1);
    CHECK(run.report->at("targets").at(0).at("inspection").empty()); // data volumes and an ESP: no OS
}

TEST_CASE("scan overlay whose backing file is outside its folder, with --allow-root",
          "[outside-backing-allowed]") {
    const std::string overlay = (fixtures_dir() / "chain/overlay.qcow2").string();
    check_completed_scan(
        {"outside-backing-allowed",
         overlay,
         "image",
         1,
         {{"coldbase", "ext4", {"/dev/sda"}, "base", std::string("5c0d5ca4-0000-4000-8000-0000000ba5e0")}}});

    const ScanRun& run = load_scan("outside-backing-allowed");
    REQUIRE(run.report.has_value());
    const Json& chain = run.report->at("targets").at(0).at("backing_chain");
    REQUIRE(chain.size() == 1);
    const fs::path base = fixtures_dir() / "elsewhere/base.qcow2";
    const fs::path reported = chain.at(0).at("path").get<std::string>();
    if (reported.is_absolute()) {
        CHECK(fs::weakly_canonical(reported) == fs::canonical(base));
    } else {
        CHECK(reported == fs::path("../elsewhere/base.qcow2"));
    }
    CHECK(chain.at(0).at("format") == "qcow2");
    CHECK(chain.at(0).at("virtual_size") == qemu_img_info(base).at("virtual-size"));
    CHECK(chain.at(0).at("file_size") == fs::file_size(base));
}

// The same disk as VMware, Hyper-V and VirtualBox store it, three targets in one run: each is detected as its
// format, scanned completely, and gives exactly the detections of the qcow2 original.
TEST_CASE("scan the dormant disk as VMDK, VHDX and VDI in one run", "[formats]") {
    const ScanRun& run = load_scan("formats");
    const ScanRun& qcow2 = load_scan("ext4-gpt");
    REQUIRE(run.report.has_value());
    REQUIRE(qcow2.report.has_value());
    check_envelope(*run.report, "completed");
    const Json& targets = run.report->at("targets");
    REQUIRE(targets.size() == 3);
    const Json& original = qcow2.report->at("targets").at(0);

    using Hit = std::tuple<std::string, std::string, std::string, std::string>;
    std::set<Hit> expected;
    for (const auto& d : qcow2.report->at("detections")) {
        expected.emplace(raw_field(d, "path"), d.at("engine").get<std::string>(),
                         d.at("signature").get<std::string>(), d.at("sha256").get<std::string>());
    }
    REQUIRE_FALSE(expected.empty());
    for (const std::string format : {"vmdk", "vhdx", "vdi"}) {
        INFO("format " << format);
        const std::string path = image_path("formats/dormant." + format);
        const auto target =
            std::find_if(targets.begin(), targets.end(), [&](const Json& t) { return t.at("path") == path; });
        REQUIRE(target != targets.end());
        CHECK(target->at("format") == format);
        CHECK(target->at("status") == "completed");
        CHECK(target->at("virtual_size") == original.at("virtual_size"));
        CHECK(target->at("counts") == original.at("counts"));
        CHECK(target->at("inspection") == original.at("inspection"));
        std::set<Hit> found;
        for (const auto& d : run.report->at("detections")) {
            if (d.at("target") == path) {
                found.emplace(raw_field(d, "path"), d.at("engine").get<std::string>(),
                              d.at("signature").get<std::string>(), d.at("sha256").get<std::string>());
            }
        }
        CHECK(found == expected);
    }
    CHECK(run.report->at("counts").at("files").get<std::size_t>() ==
          3 * qcow2.report->at("counts").at("files").get<std::size_t>());
}
