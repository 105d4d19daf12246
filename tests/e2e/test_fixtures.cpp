// The fixtures themselves: the reference tools must see exactly the planted samples, and the images must be
// what build-images.sh promises. Needs no coldscan binary.
#include "checks.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

using namespace coldscan::e2e;

TEST_CASE("reference tools detect exactly the expected paths in every fixture tree", "[fixtures]") {
    const std::vector<std::pair<std::string, std::string>> trees{
        {"coldroot", "dormant"}, {"COLDNTFS", "ntfs"},   {"colddata", "lvm-data"}, {"coldlogs", "lvm-logs"},
        {"COLDFAT", "fat"},      {"coldbtrfs", "btrfs"}, {"coldbase", "base"},     {"coldclean", "clean"}};
    for (const auto& [label, tree] : trees) {
        INFO("tree " << tree);
        std::set<ExpectedHit> found;
        for (const auto& finding : reference_findings(label, fixtures_dir() / "trees" / tree)) {
            found.insert({finding.label, finding.path, finding.engine});
        }
        CHECK(found == expected_hits({label}));
    }
}

TEST_CASE("the planted dormant tree has the awkward cases the tests rely on", "[fixtures]") {
    const TreeIndex& tree = index_tree(fixtures_dir() / "trees/dormant");
    CHECK(tree.regular.size() >= 250);
    CHECK(tree.hardlink_names == 1);
    CHECK(tree.special.contains("/bin"));           // symlink to usr/bin
    CHECK(tree.special.contains("/etc/localtime")); // dangling symlink
    CHECK(tree.special.contains("/run/initctl"));   // FIFO
    CHECK(tree.regular.at("/var/backups/db-dump.sql").size == 48u * 1024 * 1024);
    CHECK(tree.regular.contains(unescape_bytes("/srv/legacy/caf\\xe9 eicar.com")));
    std::size_t empty = 0;
    for (const auto& [path, file] : tree.regular) {
        empty += file.size == 0 ? 1 : 0;
    }
    CHECK(empty >= 10);
}

TEST_CASE("the FAT tree holds only what FAT can store, the btrfs tree a hard link and a symlink",
          "[fixtures]") {
    const TreeIndex& fat = index_tree(fixtures_dir() / "trees/fat");
    CHECK(fat.special.empty()); // no symlinks, FIFOs, ...
    CHECK(fat.hardlink_names == 0);
    std::set<std::string> folded;
    for (const auto& [path, file] : fat.regular) {
        INFO(path);
        CHECK(path.find_first_of("\"*:<>?|") == std::string::npos);
        CHECK(folded.insert(to_lower(path)).second); // FAT compares names case-insensitively
    }
    CHECK(fat.regular.contains("/EFI/vendor/eicar test.com"));

    const TreeIndex& btrfs = index_tree(fixtures_dir() / "trees/btrfs");
    CHECK(btrfs.hardlink_names == 1);
    CHECK(btrfs.special == std::set<std::string>{"/srv/app/current"});
}

TEST_CASE("the directory target is an exact copy of the dormant tree", "[fixtures]") {
    const TreeIndex& original = index_tree(fixtures_dir() / "trees/dormant");
    const TreeIndex& copy = index_tree(dirscan_path());
    CHECK(copy.special == original.special);
    CHECK(copy.regular.size() == original.regular.size());
    CHECK(copy.hardlink_names == original.hardlink_names);
    for (const auto& [path, file] : original.regular) {
        INFO(path);
        REQUIRE(copy.regular.contains(path));
        CHECK(copy.regular.at(path).sha256 == file.sha256);
    }
}

TEST_CASE("fixture images have the formats, sizes and backing files the tests expect", "[fixtures]") {
    const Json ext4 = qemu_img_info(image_path("ext4-gpt.qcow2"));
    CHECK(ext4.at("format") == "qcow2");
    CHECK(ext4.at("virtual-size") == 256 * 1024 * 1024);
    CHECK(qemu_img_info(image_path("clean.qcow2")).at("format") == "qcow2");
    CHECK(qemu_img_info(image_path("ntfs.qcow2")).at("format") == "qcow2");
    const Json lvm = qemu_img_info(image_path("lvm.qcow2"));
    CHECK(lvm.at("format") == "qcow2");
    CHECK(lvm.at("virtual-size") == 768 * 1024 * 1024); // PV + FAT32 + btrfs partitions
    // The truncated qcow2 still passes `qemu-img info`; only reading it shows the damage.
    CHECK(qemu_img_info(image_path("truncated.qcow2")).at("format") == "qcow2");
    CHECK(fs::file_size(image_path("truncated.qcow2")) < fs::file_size(image_path("ext4-gpt.qcow2")));
    CHECK(qemu_img_info(image_path("truncated.raw")).at("format") == "raw");
    CHECK(qemu_img_info(image_path("truncated.raw")).at("virtual-size") < ext4.at("virtual-size"));
    CHECK(qemu_img_info(image_path("not-an-image.txt")).at("format") == "raw");

    const Json overlay = qemu_img_info(fixtures_dir() / "chain/overlay.qcow2");
    CHECK(overlay.at("backing-filename") == "../elsewhere/base.qcow2");
    CHECK(overlay.at("backing-filename-format") == "qcow2");
    CHECK(fs::canonical(fixtures_dir() / "chain" / overlay.at("backing-filename").get<std::string>()) ==
          fs::canonical(fixtures_dir() / "elsewhere/base.qcow2"));
}
