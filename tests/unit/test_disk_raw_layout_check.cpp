#include "../../disk-access/src/raw_layout_check.hpp"

#include <catch2/catch.hpp>
#include <cstring>
#include <vector>

using namespace coldscan::disk;

namespace {

std::vector<std::byte> zeros_with(std::size_t offset, std::string_view magic) {
    std::vector<std::byte> head(72 * 1024);
    std::memcpy(head.data() + offset, magic.data(), magic.size());
    return head;
}

} // namespace

TEST_CASE("starts_like_a_disk") {
    SECTION("partition tables and filesystems are recognised") {
        CHECK(starts_like_a_disk(zeros_with(510, std::string_view("\x55\xAA", 2))));
        CHECK(starts_like_a_disk(zeros_with(512, "EFI PART")));
        CHECK(starts_like_a_disk(zeros_with(1080, std::string_view("\x53\xEF", 2))));
        CHECK(starts_like_a_disk(zeros_with(0, "XFSB")));
        CHECK(starts_like_a_disk(zeros_with(512, "LABELONE")));
        CHECK(starts_like_a_disk(zeros_with(65600, "_BHRfS_M")));
    }
    SECTION("text, zeros and short files are not disks") {
        const std::string text = "this is a README, not a disk image\n";
        std::vector<std::byte> bytes(text.size());
        std::memcpy(bytes.data(), text.data(), text.size());
        CHECK_FALSE(starts_like_a_disk(bytes));
        CHECK_FALSE(starts_like_a_disk(std::vector<std::byte>(72 * 1024)));
        CHECK_FALSE(starts_like_a_disk({}));
    }
    SECTION("a magic cut off by the end of a short file does not count") {
        auto head = zeros_with(512, "EFI PART");
        head.resize(515);
        CHECK_FALSE(starts_like_a_disk(head));
    }
}
