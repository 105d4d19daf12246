#include "coldscan/common/sha256.hpp"
#include "coldscan/common/temp_dir.hpp"
#include "coldscan/common/verdict.hpp"

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

TEST_CASE("digest_layer and its text") {
    const std::string text = "abc";
    const auto layer = digest_layer(std::as_bytes(std::span(text.data(), text.size())));
    CHECK(layer.size == 3);
    CHECK(to_hex(layer.md5) == "900150983cd24fb0d6963f7d28e17f72");
    CHECK(to_hex(layer.sha1) == "a9993e364706816aba3e25717850c26c9cd0d89d");
    CHECK(to_hex(layer.sha256) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const std::string written = to_text(layer);
    CHECK(written == "3:900150983cd24fb0d6963f7d28e17f72:a9993e364706816aba3e25717850c26c9cd0d89d:"
                     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(layer_digest_from_text(written) == layer);
    CHECK_FALSE(layer_digest_from_text("3:900150983cd24fb0d6963f7d28e17f72"));
    CHECK_FALSE(layer_digest_from_text("x:" + written.substr(2)));
    CHECK_FALSE(layer_digest_from_text(written + ":more"));
    CHECK_FALSE(layer_digest_from_text("3:" + std::string(32, 'G') + written.substr(34)));
}
