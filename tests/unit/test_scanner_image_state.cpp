// capture_image_state and describe_change on real files: the identity compared before and after a scan.
#include "coldscan/common/sha256.hpp"
#include "coldscan/common/temp_dir.hpp"
#include "coldscan/scanner/image_state.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>
#include <fstream>
#include <sys/stat.h>

using namespace coldscan;
using namespace coldscan::scanner;
using coldscan::test::write_file;

namespace {

namespace fs = std::filesystem;

bool contains(const std::string& text, std::string_view part) {
    return text.find(part) != std::string::npos;
}

// Sets a file's mtime (and so its ctime) to a fixed time, as a writer that restores times would.
void set_mtime(const fs::path& path, std::int64_t seconds) {
    const timespec times[2] = {{seconds, 0}, {seconds, 0}};
    REQUIRE(::utimensat(AT_FDCWD, path.c_str(), times, 0) == 0);
}

} // namespace

TEST_CASE("capture_image_state") {
    auto dir = TempDir::create("coldscan-test-image-state");
    REQUIRE(dir.has_value());
    const fs::path top = dir->path() / "top.qcow2";
    const fs::path base = dir->path() / "base.qcow2";
    write_file(top, std::string(3U << 20, 't'));
    write_file(base, "base layer");

    const ImageState state = capture_image_state({top, base});
    REQUIRE(state.layers.size() == 2);
    struct stat st {};
    REQUIRE(::stat(top.c_str(), &st) == 0);
    CHECK(state.layers[0].path == top);
    CHECK(state.layers[0].error == 0);
    CHECK(state.layers[0].inode == st.st_ino);
    CHECK(state.layers[0].device == st.st_dev);
    CHECK(state.layers[0].size == 3U << 20);
    CHECK(state.layers[0].mtime_ns == st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec);
    CHECK(state.layers[1].size == 10);
    // SHA-256 of the first MiB only.
    CHECK(state.top_fingerprint == sha256_hex(std::string(1U << 20, 't')));

    const ImageState missing = capture_image_state({dir->path() / "gone.qcow2"});
    REQUIRE(missing.layers.size() == 1);
    CHECK(missing.layers[0].error == ENOENT);
    CHECK(missing.top_fingerprint.empty());
}

TEST_CASE("describe_change") {
    auto dir = TempDir::create("coldscan-test-image-state");
    REQUIRE(dir.has_value());
    const fs::path top = dir->path() / "top.qcow2";
    const fs::path base = dir->path() / "base.qcow2";
    write_file(top, std::string(2U << 20, 't'));
    write_file(base, std::string(4096, 'b'));
    set_mtime(top, 1'700'000'000);
    set_mtime(base, 1'700'000'000);
    const ImageState before = capture_image_state({top, base});

    SECTION("nothing changed") {
        CHECK_FALSE(describe_change(before, capture_image_state({top, base})).has_value());
    }
    SECTION("a grown top layer") {
        std::ofstream(top, std::ios::app) << "more";
        const auto change = describe_change(before, capture_image_state({top, base}));
        REQUIRE(change.has_value());
        CHECK(contains(*change, top.string() + ": "));
        CHECK(contains(*change, "size 2097152 -> 2097156"));
        CHECK(contains(*change, "modified (mtime)"));
        CHECK_FALSE(contains(*change, base.string()));
    }
    SECTION("a backing layer touched, its content unchanged") {
        set_mtime(base, 1'700'000'001);
        const auto change = describe_change(before, capture_image_state({top, base}));
        REQUIRE(change.has_value());
        CHECK(contains(*change, base.string() + ": modified (mtime), changed (ctime)"));
        CHECK_FALSE(contains(*change, top.string()));
    }
    SECTION("the top's first MiB rewritten in place with its times restored: ctime and the fingerprint") {
        {
            std::fstream out(top, std::ios::in | std::ios::out | std::ios::binary);
            out.seekp(100);
            out << "rewritten";
        }
        set_mtime(top, 1'700'000'000);
        const auto change = describe_change(before, capture_image_state({top, base}));
        REQUIRE(change.has_value());
        CHECK(contains(*change, "changed (ctime)"));
        CHECK_FALSE(contains(*change, "modified (mtime)"));
        CHECK(contains(*change, "its first MiB differs"));
    }
    SECTION("the top replaced by another file (rename over it)") {
        write_file(dir->path() / "new.qcow2", std::string(2U << 20, 't'));
        set_mtime(dir->path() / "new.qcow2", 1'700'000'000);
        fs::rename(dir->path() / "new.qcow2", top);
        const auto change = describe_change(before, capture_image_state({top, base}));
        REQUIRE(change.has_value());
        CHECK(contains(*change, "replaced by another file (device/inode)"));
        CHECK_FALSE(contains(*change, "first MiB")); // same bytes
    }
    SECTION("a layer removed") {
        fs::remove(base);
        const auto change = describe_change(before, capture_image_state({top, base}));
        REQUIRE(change.has_value());
        CHECK(contains(*change, base.string() + ": cannot be examined any more"));
    }
    SECTION("a different chain length") {
        const auto change = describe_change(before, capture_image_state({top}));
        REQUIRE(change.has_value());
        CHECK(contains(*change, "the chain has 1 layers, it had 2"));
    }
}
