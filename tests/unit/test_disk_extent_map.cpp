#include "../../disk-access/src/extent_map.hpp"

#include <catch2/catch.hpp>
#include <limits>
#include <vector>

using namespace coldscan::disk;
using namespace coldscan::disk::detail;

namespace {

bool same(const std::vector<BlockExtent>& a, const std::vector<BlockExtent>& b) {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (a[i].offset != b[i].offset || a[i].length != b[i].length || a[i].value != b[i].value) {
            return false;
        }
    }
    return true;
}

} // namespace

TEST_CASE("append_block_status") {
    std::vector<BlockExtent> map;
    const std::vector<std::uint32_t> first = {4096, 1, 4096, 1, 8192, 2};
    CHECK(append_block_status(map, 0, first) == 16384);
    CHECK(same(map, {{0, 8192, 1}, {8192, 8192, 2}}));

    SECTION("a reply that continues the last extent merges into it") {
        const std::vector<std::uint32_t> next = {1024, 2, 1024, 0};
        CHECK(append_block_status(map, 16384, next) == 2048);
        CHECK(same(map, {{0, 8192, 1}, {8192, 9216, 2}, {17408, 1024, 0}}));
    }
    SECTION("an odd last number is ignored") {
        const std::vector<std::uint32_t> odd = {512, 3, 77};
        CHECK(append_block_status(map, 16384, odd) == 512);
        CHECK(map.size() == 3);
    }
}

TEST_CASE("clip_extents") {
    std::vector<BlockExtent> map = {{0, 100, 1}, {100, 100, 2}, {200, 100, 3}};
    clip_extents(map, 150);
    CHECK(same(map, {{0, 100, 1}, {100, 50, 2}}));
    clip_extents(map, 100);
    CHECK(same(map, {{0, 100, 1}}));
}

TEST_CASE("shallowest_layer") {
    const std::vector<BlockExtent> map = {{0, 50, 2}, {50, 50, 0}, {100, 50, 3}};
    CHECK(shallowest_layer(map, 0, 150) == 2);
    CHECK(shallowest_layer(map, 60, 10) == 0);
    CHECK(shallowest_layer(map, 60, 50) == 3);
    CHECK(shallowest_layer(map, 49, 1) == 2);

    SECTION("only extents that hold a byte of the range count") {
        CHECK(shallowest_layer(map, 40, 0) == 0);   // an empty range
        CHECK(shallowest_layer(map, 500, 10) == 0); // past the end of the map
        // An empty extent a server sent (found by tests/fuzz/fuzz_nbd_extents.cpp).
        const std::vector<BlockExtent> with_empty = {{0, 50, 2}, {50, 0, 1}, {50, 50, 3}};
        CHECK(shallowest_layer(with_empty, 20, 40) == 2);
        CHECK(shallowest_layer(with_empty, 50, 10) == 3);
    }
    SECTION("a range whose end wraps past 2^64 ends at the top") {
        CHECK(shallowest_layer(map, 120, std::numeric_limits<std::uint64_t>::max()) == 3);
    }
}
