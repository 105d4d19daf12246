#include "coldscan/common/file_view.hpp"
#include "coldscan/common/subprocess.hpp"
#include "coldscan/common/temp_dir.hpp"

#include <catch2/catch.hpp>
#include <fstream>

using namespace coldscan;

namespace {

void write_file(const std::filesystem::path& path, const std::string& text) {
    std::ofstream(path) << text;
}

} // namespace

TEST_CASE("FileViewRules::build") {
    if (FileViewRules::kernel_abi() == 0) {
        WARN("this kernel has no Landlock: nothing to test");
        return;
    }
    auto allowed = TempDir::create("coldscan-test-view");
    auto outside = TempDir::create("coldscan-test-outside");
    REQUIRE(allowed);
    REQUIRE(outside);
    write_file(allowed->path() / "inside.txt", "inside\n");
    write_file(outside->path() / "canary.txt", "canary\n");
    ProcessLimits limits;
    limits.file_view = system_file_view(false);
    limits.file_view->read.push_back(allowed->path());

    SECTION("a confined program reads inside its view") {
        auto result = run_bounded({"cat", (allowed->path() / "inside.txt").string()}, limits);
        REQUIRE(result);
        CHECK(result->exit_code == 0);
        CHECK(result->out == "inside\n");
    }
    SECTION("and nothing outside it, whatever it is told to open") {
        auto result = run_bounded({"cat", (outside->path() / "canary.txt").string()}, limits);
        REQUIRE(result);
        CHECK(result->exit_code == 1);
        CHECK(result->out.empty());
        CHECK(result->err.find("Permission denied") != std::string::npos);
    }
    SECTION("a read view is read-only") {
        auto result = run_bounded({"sh", "-c", "echo x > " + (allowed->path() / "new.txt").string()}, limits);
        REQUIRE(result);
        CHECK(result->exit_code != 0);
        CHECK_FALSE(std::filesystem::exists(allowed->path() / "new.txt"));
    }
    SECTION("a read-write folder takes new files") {
        limits.file_view->read_write.push_back(outside->path());
        auto result = run_bounded({"sh", "-c", "echo x > " + (outside->path() / "new.txt").string()}, limits);
        REQUIRE(result);
        CHECK(result->exit_code == 0);
        CHECK(std::filesystem::exists(outside->path() / "new.txt"));
    }
    SECTION("a block device is outside the system view") {
        // /dev itself is not in it: only the harmless devices are.
        auto result = run_bounded({"sh", "-c", "ls /dev >/dev/null"}, limits);
        REQUIRE(result);
        CHECK(result->exit_code != 0);
        auto null = run_bounded({"sh", "-c", "echo x >/dev/null && head -c 4 /dev/urandom | wc -c"}, limits);
        REQUIRE(null);
        CHECK(null->out == "4\n");
    }
    SECTION("a missing read-write folder is an error, a missing read folder is skipped") {
        limits.file_view->read.push_back(outside->path() / "no-such-folder");
        CHECK(FileViewRules::build(*limits.file_view));
        limits.file_view->read_write.push_back(outside->path() / "no-such-folder");
        auto rules = FileViewRules::build(*limits.file_view);
        REQUIRE_FALSE(rules);
        CHECK(rules.error().code == Errc::io);
    }
}
