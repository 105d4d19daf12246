#include "coldscan/common/temp_dir.hpp"

#include <catch2/catch.hpp>
#include <fstream>
#include <sys/wait.h>
#include <unistd.h>

using coldscan::remove_stale_temp_dirs;
using coldscan::TempDir;

namespace {

// The id of a process that has exited and been reaped (the kernel may reuse it later, but not at once).
pid_t dead_pid() {
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::_exit(0);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    return child;
}

} // namespace

TEST_CASE("TempDir names carry the process id") {
    auto dir = TempDir::create("coldscan-test-name");
    REQUIRE(dir.has_value());
    const std::string name = dir->path().filename().string();
    CHECK(name.starts_with("coldscan-test-name-" + std::to_string(::getpid()) + "-"));
    CHECK(std::filesystem::is_directory(dir->path()));
}

TEST_CASE("remove_stale_temp_dirs") {
    auto base = TempDir::create("coldscan-test-base");
    REQUIRE(base.has_value());
    const auto& root = base->path();
    const std::string dead = std::to_string(dead_pid());
    const std::string alive = std::to_string(::getpid());
    const auto stale = root / ("coldscan-nbd-" + dead + "-Ab12Cd");
    std::filesystem::create_directories(stale / "inner");
    std::ofstream(stale / "inner" / "export.sock") << "x";
    const auto in_use = root / ("coldscan-clamav-" + alive + "-Xy34Zw");
    std::filesystem::create_directories(in_use);
    const auto no_pid = root / "coldscan-nbd-notapid-Ab12Cd";
    std::filesystem::create_directories(no_pid);
    const auto other_prefix = root / ("other-" + dead + "-Ab12Cd");
    std::filesystem::create_directories(other_prefix);
    const auto a_file = root / ("coldscan-spill-" + dead + "-Ab12Cd");
    std::ofstream(a_file) << "not a folder";

    CHECK(remove_stale_temp_dirs("coldscan", root) == 1);
    CHECK_FALSE(std::filesystem::exists(stale));
    CHECK(std::filesystem::exists(in_use));
    CHECK(std::filesystem::exists(no_pid));
    CHECK(std::filesystem::exists(other_prefix));
    CHECK(std::filesystem::exists(a_file));
    CHECK(remove_stale_temp_dirs("coldscan", root) == 0);
}
