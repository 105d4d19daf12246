// probe_image on images made at test time with qemu-img (no appliance is launched here).
#include "coldscan/common/subprocess.hpp"
#include "coldscan/common/temp_dir.hpp"
#include "coldscan/disk/image_probe.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>
#include <fstream>

using coldscan::Errc;
using coldscan::TempDir;
using coldscan::disk::is_supported_format;
using coldscan::disk::k_max_backing_depth;
using coldscan::disk::probe_image;
using coldscan::disk::ProbeOptions;

using coldscan::test::read_text;

namespace {

namespace fs = std::filesystem;

void qemu_img(const std::vector<std::string>& args) {
    std::vector<std::string> argv{"qemu-img"};
    argv.reserve(args.size() + 1);
    for (const auto& arg : args) {
        argv.push_back(arg);
    }
    auto result = coldscan::run_bounded(argv, {});
    REQUIRE(result.has_value());
    INFO(result->err);
    REQUIRE(result->exit_code == 0);
}

// A qcow2 whose backing reference is written as given, without qemu-img checking it (-u).
void create_overlay(const fs::path& image, const std::string& backing,
                    const std::string& backing_format = "qcow2") {
    qemu_img(
        {"create", "-q", "-f", "qcow2", "-u", "-b", backing, "-F", backing_format, image.string(), "16M"});
}

void create_base(const fs::path& image, const std::string& format = "qcow2") {
    fs::create_directories(image.parent_path());
    qemu_img({"create", "-q", "-f", format, image.string(), "16M"});
}

bool contains(const std::string& text, std::string_view part) {
    return text.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("is_supported_format") {
    for (const char* format : {"qcow2", "vmdk", "vhdx", "vdi", "vpc", "qed", "raw"}) {
        CHECK(is_supported_format(format));
    }
    CHECK_FALSE(is_supported_format("file"));
    CHECK_FALSE(is_supported_format("nbd"));
    CHECK_FALSE(is_supported_format(""));
}

TEST_CASE("probe_image") {
    auto dir = TempDir::create("coldscan-test-probe");
    REQUIRE(dir.has_value());
    const fs::path store = fs::canonical(dir->path()) / "store";
    const fs::path elsewhere = fs::canonical(dir->path()) / "elsewhere";
    fs::create_directories(store);
    fs::create_directories(elsewhere);

    SECTION("a qcow2 with its backing file in the same folder") {
        create_base(store / "base.qcow2");
        create_overlay(store / "top.qcow2", "base.qcow2");
        auto info = probe_image(store / "top.qcow2", {});
        REQUIRE(info.has_value());
        CHECK(info->path == store / "top.qcow2");
        CHECK(info->format == "qcow2");
        CHECK(info->virtual_size == 16U << 20);
        REQUIRE(info->chain.size() == 2);
        CHECK(info->chain[0].path == store / "top.qcow2");
        CHECK(info->chain[0].backing_reference == "base.qcow2");
        CHECK(info->allowed_roots == std::vector<fs::path>{store});
        CHECK(info->chain[0].file_size == fs::file_size(store / "top.qcow2"));
        CHECK(info->chain[1].path == store / "base.qcow2");
        CHECK(info->chain[1].format == "qcow2");
        CHECK(info->chain[1].backing_reference.empty());
    }

    SECTION("a backing file in another folder is refused, unless that folder is allowed") {
        create_base(elsewhere / "base.qcow2");
        create_overlay(store / "top.qcow2", (elsewhere / "base.qcow2").string());
        auto refused = probe_image(store / "top.qcow2", {});
        REQUIRE_FALSE(refused.has_value());
        CHECK(refused.error().code == Errc::unsafe_image);
        CHECK(contains(refused.error().message, "outside the allowed roots"));
        CHECK(contains(refused.error().message, (elsewhere / "base.qcow2").string()));
        CHECK(contains(refused.error().message, "--allow-root"));

        ProbeOptions options;
        options.allowed_roots.push_back(elsewhere);
        auto allowed = probe_image(store / "top.qcow2", options);
        REQUIRE(allowed.has_value());
        REQUIRE(allowed->chain.size() == 2);
        CHECK(allowed->chain[1].path == elsewhere / "base.qcow2");
        CHECK(allowed->allowed_roots == std::vector<fs::path>{store, elsewhere});
    }

    SECTION("a symlink that leads out of the roots is refused") {
        create_base(elsewhere / "base.qcow2");
        fs::create_symlink(elsewhere / "base.qcow2", store / "base.qcow2");
        create_overlay(store / "top.qcow2", "base.qcow2");
        auto refused = probe_image(store / "top.qcow2", {});
        REQUIRE_FALSE(refused.has_value());
        CHECK(refused.error().code == Errc::unsafe_image);
        CHECK(contains(refused.error().message, "resolves to " + (elsewhere / "base.qcow2").string()));
    }

    SECTION("a relative ../ escape is refused") {
        create_base(elsewhere / "base.qcow2");
        create_overlay(store / "top.qcow2", "../elsewhere/base.qcow2");
        auto refused = probe_image(store / "top.qcow2", {});
        REQUIRE_FALSE(refused.has_value());
        CHECK(refused.error().code == Errc::unsafe_image);
        CHECK(contains(refused.error().message, "outside the allowed roots"));
    }

    SECTION("a host file as a raw backing layer is refused") {
        create_overlay(store / "top.qcow2", "/etc/passwd", "raw");
        auto refused = probe_image(store / "top.qcow2", {});
        REQUIRE_FALSE(refused.has_value());
        CHECK(refused.error().code == Errc::unsafe_image);
    }

    SECTION("a missing backing file is refused") {
        create_overlay(store / "top.qcow2", "gone.qcow2");
        auto refused = probe_image(store / "top.qcow2", {});
        REQUIRE_FALSE(refused.has_value());
        CHECK(refused.error().code == Errc::unsafe_image);
        CHECK(contains(refused.error().message, "does not exist"));
    }

    SECTION("protocol and json: references are refused") {
        for (const std::string reference :
             {"nbd://127.0.0.1:10809/disk", "nbd:127.0.0.1:10809",
              "json:{\"driver\":\"file\",\"filename\":\"/x\"}", "https://example.invalid/disk.qcow2"}) {
            create_overlay(store / "top.qcow2", reference, "raw");
            auto refused = probe_image(store / "top.qcow2", {});
            REQUIRE_FALSE(refused.has_value());
            CHECK(refused.error().code == Errc::unsafe_image);
            CHECK(contains(refused.error().message, "protocol"));
        }
    }

    SECTION("a backing loop is refused") {
        create_overlay(store / "a.qcow2", "b.qcow2");
        create_overlay(store / "b.qcow2", "a.qcow2");
        auto refused = probe_image(store / "a.qcow2", {});
        REQUIRE_FALSE(refused.has_value());
        CHECK(refused.error().code == Errc::unsafe_image);
        CHECK(contains(refused.error().message, "loops"));
    }

    SECTION("a chain deeper than the limit is refused") {
        create_base(store / "layer0.qcow2");
        for (std::size_t i = 1; i <= k_max_backing_depth; ++i) {
            create_overlay(store / ("layer" + std::to_string(i) + ".qcow2"),
                           "layer" + std::to_string(i - 1) + ".qcow2");
        }
        auto refused = probe_image(store / ("layer" + std::to_string(k_max_backing_depth) + ".qcow2"), {});
        REQUIRE_FALSE(refused.has_value());
        CHECK(refused.error().code == Errc::unsafe_image);
        CHECK(contains(refused.error().message, "longer than"));
        auto fits = probe_image(store / ("layer" + std::to_string(k_max_backing_depth - 1) + ".qcow2"), {});
        REQUIRE(fits.has_value());
        CHECK(fits->chain.size() == k_max_backing_depth);
    }

    SECTION("raw images: a detected raw must start like a disk; --format raw takes any file") {
        create_base(store / "disk.img", "raw"); // all zeros: no partition table, no filesystem
        auto blank = probe_image(store / "disk.img", {});
        REQUIRE_FALSE(blank.has_value());
        CHECK(blank.error().code == Errc::invalid_argument);
        CHECK(contains(blank.error().message, "is not a disk image"));
        CHECK(contains(blank.error().message, "--format raw"));

        ProbeOptions as_raw;
        as_raw.format = "raw";
        auto raw = probe_image(store / "disk.img", as_raw);
        REQUIRE(raw.has_value());
        CHECK(raw->format == "raw");
        CHECK(raw->virtual_size == 16U << 20);
        REQUIRE(raw->chain.size() == 1);

        {
            std::fstream disk(store / "disk.img", std::ios::in | std::ios::out | std::ios::binary);
            disk.seekp(510);
            disk.write("\x55\xAA", 2); // an MBR boot signature
        }
        auto partitioned = probe_image(store / "disk.img", {});
        REQUIRE(partitioned.has_value());
        CHECK(partitioned->format == "raw");

        std::ofstream(store / "notes.txt") << "just some text\n";
        auto text = probe_image(store / "notes.txt", {});
        REQUIRE_FALSE(text.has_value());
        CHECK(contains(text.error().message, "notes.txt is not a disk image"));
    }

    SECTION("an explicit format that does not match is refused") {
        create_base(store / "disk.img", "raw");
        ProbeOptions options;
        options.format = "qcow2";
        auto refused = probe_image(store / "disk.img", options);
        REQUIRE_FALSE(refused.has_value());
        CHECK(refused.error().code == Errc::invalid_argument);
        CHECK(contains(refused.error().message, "not a disk image coldscan can open"));

        options.format = "raw";
        create_base(store / "real.qcow2");
        auto as_raw = probe_image(store / "real.qcow2", options);
        REQUIRE(as_raw.has_value());
        CHECK(as_raw->format == "raw");
    }

    SECTION("an unsupported format is refused") {
        ProbeOptions options;
        options.format = "file";
        create_base(store / "disk.img", "raw");
        auto refused = probe_image(store / "disk.img", options);
        REQUIRE_FALSE(refused.has_value());
        CHECK(refused.error().code == Errc::invalid_argument);
    }

    SECTION("missing paths and folders") {
        auto missing = probe_image(store / "nope.qcow2", {});
        REQUIRE_FALSE(missing.has_value());
        CHECK(missing.error().code == Errc::not_found);
        auto folder = probe_image(store, {});
        REQUIRE_FALSE(folder.has_value());
        CHECK(folder.error().code == Errc::invalid_argument);
        CHECK(contains(folder.error().message, "is not a regular file"));
        ProbeOptions options;
        options.allowed_roots.push_back(dir->path() / "no-such-root");
        create_base(store / "disk.qcow2");
        auto bad_root = probe_image(store / "disk.qcow2", options);
        REQUIRE_FALSE(bad_root.has_value());
        CHECK(bad_root.error().code == Errc::invalid_argument);
    }

    SECTION("the image may be given through a symlink") {
        create_base(store / "base.qcow2");
        create_overlay(store / "top.qcow2", "base.qcow2");
        fs::create_symlink(store / "top.qcow2", elsewhere / "link.qcow2");
        auto info = probe_image(elsewhere / "link.qcow2", {});
        REQUIRE(info.has_value());
        CHECK(info->path == elsewhere / "link.qcow2");
        CHECK(info->chain[0].path == store / "top.qcow2");
        CHECK(info->chain[1].path == store / "base.qcow2");
    }

    SECTION("a truncated qcow2 is refused as damaged") {
        const fs::path raw = store / "data.img";
        create_base(raw, "raw");
        {
            std::fstream out(raw, std::ios::binary | std::ios::in | std::ios::out);
            for (int i = 0; i < 64; ++i) {
                out.seekp(static_cast<std::streamoff>(i) * (256 << 10));
                out << std::string(4096, static_cast<char>('a' + i % 26));
            }
        }
        qemu_img({"convert", "-f", "raw", "-O", "qcow2", raw.string(), (store / "data.qcow2").string()});
        fs::resize_file(store / "data.qcow2", fs::file_size(store / "data.qcow2") / 2);
        auto refused = probe_image(store / "data.qcow2", {});
        REQUIRE_FALSE(refused.has_value());
        CHECK(refused.error().code == Errc::invalid_argument);
        CHECK(contains(refused.error().message, "is damaged"));
    }

    SECTION("vmdk extents are checked like backing files") {
        qemu_img({"create", "-q", "-f", "vmdk", "-o", "subformat=monolithicFlat",
                  (store / "flat.vmdk").string(), "16M"});
        auto ok = probe_image(store / "flat.vmdk", {});
        REQUIRE(ok.has_value());
        CHECK(ok->format == "vmdk");

        // Point the descriptor's extent at a file in another folder.
        fs::rename(store / "flat-flat.vmdk", elsewhere / "flat-flat.vmdk");
        std::string descriptor = read_text(store / "flat.vmdk");
        const auto at = descriptor.find("\"flat-flat.vmdk\"");
        REQUIRE(at != std::string::npos);
        descriptor.replace(at, 16, "\"" + (elsewhere / "flat-flat.vmdk").string() + "\"");
        std::ofstream(store / "flat.vmdk", std::ios::trunc) << descriptor;
        auto refused = probe_image(store / "flat.vmdk", {});
        REQUIRE_FALSE(refused.has_value());
        CHECK(refused.error().code == Errc::unsafe_image);
        CHECK(contains(refused.error().message, "extent"));
    }

    SECTION("vmdk extents are checked before qemu-img opens them") {
        // Were qemu-img to open this extent first, it would fail with "not a disk image"; the gate must
        // refuse it as unsafe before that.
        std::ofstream(store / "desc.vmdk") << "# Disk DescriptorFile\nversion=1\nCID=fffffffe\n"
                                              "parentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\n"
                                              "RW 32768 FLAT \""
                                           << (elsewhere / "missing-flat.vmdk").string() << "\" 0\n";
        auto refused = probe_image(store / "desc.vmdk", {});
        REQUIRE_FALSE(refused.has_value());
        CHECK(refused.error().code == Errc::unsafe_image);
        CHECK(contains(refused.error().message, "outside the allowed roots"));

        // The same descriptor embedded in a sparse header (capacity 0, descriptor at sector 1).
        std::string sparse(512, '\0');
        sparse.replace(0, 4, "KDMV");
        sparse[4] = 1;  // version
        sparse[28] = 1; // descriptor offset, in sectors
        sparse += "# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicFlat\"\nRW 32768 FLAT "
                  "\"/etc/passwd\" 0\n";
        std::ofstream(store / "embedded.vmdk", std::ios::binary) << sparse;
        auto embedded = probe_image(store / "embedded.vmdk", {});
        REQUIRE_FALSE(embedded.has_value());
        CHECK(embedded.error().code == Errc::unsafe_image);
        CHECK(contains(embedded.error().message, "/etc/passwd"));
    }

    SECTION("qcow2 external data files are checked like backing files") {
        qemu_img({"create", "-q", "-f", "qcow2", "-o", "data_file=" + (store / "ok.data").string(),
                  (store / "ok.qcow2").string(), "16M"});
        auto ok = probe_image(store / "ok.qcow2", {});
        REQUIRE(ok.has_value());

        qemu_img({"create", "-q", "-f", "qcow2", "-o", "data_file=" + (elsewhere / "out.data").string(),
                  (store / "out.qcow2").string(), "16M"});
        auto refused = probe_image(store / "out.qcow2", {});
        REQUIRE_FALSE(refused.has_value());
        CHECK(refused.error().code == Errc::unsafe_image);
        CHECK(contains(refused.error().message, "external data file"));
    }

    SECTION("external data files: symlinks out of the roots, protocols and relative paths are refused") {
        std::ofstream(elsewhere / "outside.data") << "not image data\n";
        // The image names a path inside the root; the symlink there leads out.
        qemu_img({"create", "-q", "-f", "qcow2", "-o", "data_file=" + (store / "link.data").string(),
                  (store / "link.qcow2").string(), "16M"});
        fs::remove(store / "link.data");
        fs::create_symlink(elsewhere / "outside.data", store / "link.data");
        auto refused = probe_image(store / "link.qcow2", {});
        REQUIRE_FALSE(refused.has_value());
        CHECK(refused.error().code == Errc::unsafe_image);
        CHECK(contains(refused.error().message, "external data file"));
        CHECK(contains(refused.error().message, "resolves to " + (elsewhere / "outside.data").string()));

        // Same-length edits of the header extension: a protocol and a relative name.
        const std::string placeholder = (store / "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.data").string();
        for (const auto& [name, expected] : std::vector<std::pair<std::string, std::string>>{
                 {"nbd://127.0.0.1:9/" + std::string(placeholder.size() - 18, 'x'), "protocol"},
                 {std::string(placeholder.size() - 9, 'r') + "/../x.raw", "relative path"},
                 {"/etc/passwd" + std::string(placeholder.size() - 11, '\0'), "outside the allowed roots"}}) {
            REQUIRE(name.size() == placeholder.size());
            qemu_img({"create", "-q", "-f", "qcow2", "-o", "data_file=" + placeholder,
                      (store / "edited.qcow2").string(), "16M"});
            std::string bytes = read_text(store / "edited.qcow2");
            const auto at = bytes.find(placeholder);
            REQUIRE(at != std::string::npos);
            bytes.replace(at, placeholder.size(), name);
            std::ofstream(store / "edited.qcow2", std::ios::binary | std::ios::trunc) << bytes;
            auto edited = probe_image(store / "edited.qcow2", {});
            INFO(name);
            REQUIRE_FALSE(edited.has_value());
            CHECK(edited.error().code == Errc::unsafe_image);
            CHECK(contains(edited.error().message, expected));
        }
    }

    SECTION("vmdk extents: a symlink out of the roots and a nested sparse extent's own descriptor") {
        // A flat extent inside the root that is a symlink to a host file.
        std::ofstream(store / "link.vmdk") << "# Disk DescriptorFile\nversion=1\nCID=fffffffe\n"
                                              "parentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\n"
                                              "RW 32768 FLAT \"link-flat.vmdk\" 0\n";
        fs::create_symlink("/etc/passwd", store / "link-flat.vmdk");
        auto linked = probe_image(store / "link.vmdk", {});
        REQUIRE_FALSE(linked.has_value());
        CHECK(linked.error().code == Errc::unsafe_image);
        CHECK(contains(linked.error().message, "resolves to /etc/passwd"));

        // A descriptor naming a sparse extent inside the root, whose header embeds a descriptor of its own
        // that names a host file: qemu would follow it, so the gate must.
        std::string sparse(512, '\0');
        sparse.replace(0, 4, "KDMV");
        sparse[4] = 1;
        sparse[28] = 1;
        sparse += "# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicFlat\"\nRW 32768 FLAT "
                  "\"" +
                  (elsewhere / "secret.raw").string() + "\" 0\n";
        std::ofstream(elsewhere / "secret.raw") << std::string(4096, 's');
        std::ofstream(store / "nested-s001.vmdk", std::ios::binary) << sparse;
        std::ofstream(store / "nested.vmdk") << "# Disk DescriptorFile\nversion=1\nCID=fffffffe\n"
                                                "parentCID=ffffffff\ncreateType=\"twoGbMaxExtentSparse\"\n\n"
                                                "RW 32768 SPARSE \"nested-s001.vmdk\"\n";
        auto nested = probe_image(store / "nested.vmdk", {});
        REQUIRE_FALSE(nested.has_value());
        CHECK(nested.error().code == Errc::unsafe_image);
        CHECK(contains(nested.error().message, (elsewhere / "secret.raw").string()));
        CHECK(contains(nested.error().message, "outside the allowed roots"));

        // A real monolithicSparse image passes.
        qemu_img({"create", "-q", "-f", "vmdk", "-o", "subformat=monolithicSparse",
                  (store / "sparse.vmdk").string(), "16M"});
        auto ok = probe_image(store / "sparse.vmdk", {});
        REQUIRE(ok.has_value());
        CHECK(ok->format == "vmdk");
        CHECK(ok->chain.size() == 1);
    }

    SECTION("a backing symlink chain that ends outside the roots is refused; one that stays inside passes") {
        create_base(store / "base.qcow2");
        fs::create_symlink("base.qcow2", store / "step1.qcow2");
        fs::create_symlink("step1.qcow2", store / "step2.qcow2");
        create_overlay(store / "top.qcow2", "step2.qcow2");
        auto inside = probe_image(store / "top.qcow2", {});
        REQUIRE(inside.has_value());
        REQUIRE(inside->chain.size() == 2);
        CHECK(inside->chain[1].path == store / "base.qcow2");

        fs::remove(store / "step1.qcow2");
        create_base(elsewhere / "base.qcow2");
        fs::create_symlink(elsewhere / "base.qcow2", store / "step1.qcow2");
        auto outside = probe_image(store / "top.qcow2", {});
        REQUIRE_FALSE(outside.has_value());
        CHECK(outside.error().code == Errc::unsafe_image);
        CHECK(contains(outside.error().message, "resolves to " + (elsewhere / "base.qcow2").string()));
    }

    SECTION("a loop through a symlink and a self-reference are refused") {
        create_overlay(store / "self.qcow2", "self.qcow2");
        auto self = probe_image(store / "self.qcow2", {});
        REQUIRE_FALSE(self.has_value());
        CHECK(self.error().code == Errc::unsafe_image);
        CHECK(contains(self.error().message, "loops back to " + (store / "self.qcow2").string()));

        create_overlay(store / "x.qcow2", "y-link.qcow2");
        create_overlay(store / "y.qcow2", "x.qcow2");
        fs::create_symlink("y.qcow2", store / "y-link.qcow2");
        auto looped = probe_image(store / "x.qcow2", {});
        REQUIRE_FALSE(looped.has_value());
        CHECK(contains(looped.error().message, "loops"));
    }

    SECTION("a raw image whose first bytes are a qcow2 header: refused when probed, raw when the format is "
            "given or recorded in its parent") {
        create_base(store / "disk.img", "raw");
        {
            // The first KiB of a real qcow2 v3 (header, extensions and the backing name /etc/passwd) over the
            // start of the raw disk, where a filesystem such as ext4 leaves room.
            create_overlay(elsewhere / "header.qcow2", "/etc/passwd", "raw");
            const std::string header = read_text(elsewhere / "header.qcow2").substr(0, 1024);
            REQUIRE(header.starts_with("QFI\xfb"));
            REQUIRE(contains(header, "/etc/passwd"));
            std::fstream disk(store / "disk.img", std::ios::in | std::ios::out | std::ios::binary);
            disk.write(header.data(), static_cast<std::streamsize>(header.size()));
        }
        auto probed = probe_image(store / "disk.img", {});
        REQUIRE_FALSE(probed.has_value());
        CHECK(probed.error().code == Errc::unsafe_image);
        CHECK(contains(probed.error().message, "/etc/passwd"));

        ProbeOptions as_raw;
        as_raw.format = "raw";
        auto raw = probe_image(store / "disk.img", as_raw);
        REQUIRE(raw.has_value());
        CHECK(raw->format == "raw");
        REQUIRE(raw->chain.size() == 1);
        CHECK(raw->chain[0].backing_reference.empty());

        // As a backing file recorded as raw, it stays raw.
        create_overlay(store / "over.qcow2", "disk.img", "raw");
        auto over = probe_image(store / "over.qcow2", {});
        REQUIRE(over.has_value());
        REQUIRE(over->chain.size() == 2);
        CHECK(over->chain[1].format == "raw");
    }
}

TEST_CASE("probe_image when qemu-img dies of its limits") {
    // A qemu-img on PATH that ends as the kernel ends one over RLIMIT_CPU (SIGXCPU) or glib ends one over
    // RLIMIT_AS (abort). The limits themselves are setrlimit calls tested in test_common_subprocess.cpp.
    auto dir = TempDir::create("coldscan-test-probe-limits");
    REQUIRE(dir.has_value());
    const fs::path bin = dir->path() / "bin";
    fs::create_directories(bin);
    create_base(dir->path() / "disk.qcow2");
    const std::string old_path = std::getenv("PATH") != nullptr ? std::getenv("PATH") : "";
    ::setenv("PATH", (bin.string() + ":" + old_path).c_str(), 1);
    for (const auto& [signal, expected] : std::vector<std::pair<std::string, std::string>>{
             {"XCPU", "ran past its CPU time limit of 10 s"},
             {"KILL", "ran past its CPU time limit of 10 s"},
             {"ABRT", "ran past its memory limit of 1024 MiB"}}) {
        std::ofstream(bin / "qemu-img") << "#!/bin/sh\nkill -" << signal << " $$\n";
        fs::permissions(bin / "qemu-img", fs::perms::owner_all);
        auto killed = probe_image(dir->path() / "disk.qcow2", {});
        INFO(signal);
        REQUIRE_FALSE(killed.has_value());
        CHECK(killed.error().code == Errc::unsafe_image);
        CHECK(contains(killed.error().message, "qemu-img info on "));
        CHECK(contains(killed.error().message, "(SIG" + signal + ")"));
        CHECK(contains(killed.error().message, expected));
    }
    ::setenv("PATH", old_path.c_str(), 1);
}
