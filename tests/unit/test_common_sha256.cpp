#include "coldscan/common/sha256.hpp"
#include "coldscan/common/temp_dir.hpp"

#include <catch2/catch.hpp>
#include <cstring>
#include <fcntl.h>
#include <fstream>

using namespace coldscan;

TEST_CASE("sha256_hex") {
    CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("sha256_of") {
    std::vector<std::byte> bytes(3 * 1024 * 1024 + 17);
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        bytes[i] = static_cast<std::byte>(i * 7 + 3);
    }
    const std::string expected =
        sha256_hex(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
    SECTION("in memory") {
        auto digest = sha256_of(Content::from_memory(bytes));
        REQUIRE(digest);
        CHECK(to_hex(*digest) == expected);
    }
    SECTION("behind a file descriptor, read in chunks") {
        auto dir = TempDir::create("coldscan-test");
        REQUIRE(dir);
        const auto path = dir->path() / "file";
        std::ofstream(path, std::ios::binary)
            .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
        UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        REQUIRE(fd);
        auto content = Content::from_fd(std::move(fd), bytes.size());
        CHECK(content.resident_bytes() == 0);
        auto digest = sha256_of(content);
        REQUIRE(digest);
        CHECK(to_hex(*digest) == expected);
    }
    SECTION("a file shorter than announced is an error, not a digest of partial data") {
        auto dir = TempDir::create("coldscan-test");
        REQUIRE(dir);
        const auto path = dir->path() / "short";
        std::ofstream(path, std::ios::binary) << "only this";
        UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        auto digest = sha256_of(Content::from_fd(std::move(fd), 1000));
        REQUIRE_FALSE(digest);
        CHECK(digest.error().code == Errc::io);
    }
}
