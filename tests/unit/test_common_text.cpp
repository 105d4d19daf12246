#include "coldscan/common/text.hpp"

#include <catch2/catch.hpp>

using namespace coldscan;

TEST_CASE("is_valid_utf8") {
    CHECK(is_valid_utf8("plain ascii"));
    CHECK(is_valid_utf8("J\xC3\xB6rg \xE2\x82\xAC \xF0\x9F\x98\x80"));
    CHECK_FALSE(is_valid_utf8("bad \xFF byte"));
    CHECK_FALSE(is_valid_utf8("overlong \xC0\xAF"));
    CHECK_FALSE(is_valid_utf8("surrogate \xED\xA0\x80"));
    CHECK_FALSE(is_valid_utf8("truncated \xE2\x82"));
}

TEST_CASE("printable") {
    SECTION("keeps readable text, including non-ASCII") {
        CHECK(printable("/home/j\xC3\xB6rg/a b.exe") == "/home/j\xC3\xB6rg/a b.exe");
    }
    SECTION("a newline in a file name cannot forge a second output line") {
        CHECK(printable("evil\n/fake: Clean") == "evil\\x0A/fake: Clean");
    }
    SECTION("escapes terminal controls, backslash and invalid bytes") {
        CHECK(printable("\x1b[2J") == "\\x1B[2J");
        CHECK(printable("a\\b") == "a\\x5Cb");
        CHECK(printable("x\xFFy") == "x\\xFFy");
        CHECK(printable("c1\xC2\x9B") == "c1\\xC2\\x9B");
    }
}

TEST_CASE("without_controls") {
    SECTION("text without controls comes back unchanged, backslashes included") {
        CHECK(without_controls("C:\\Windows\\evil.exe: j\xC3\xB6rg") == "C:\\Windows\\evil.exe: j\xC3\xB6rg");
        CHECK(without_controls(printable("a\x1b[2J\\")) == printable("a\x1b[2J\\"));
    }
    SECTION("escapes control characters, C1 controls and invalid bytes") {
        CHECK(without_controls("a\nb\tc\x1b[2J\x7F") == "a\\x0Ab\\x09c\\x1B[2J\\x7F");
        CHECK(without_controls("c1\xC2\x9B caf\xE9") == "c1\\xC2\\x9B caf\\xE9");
    }
}

TEST_CASE("utf8_or_escaped") {
    CHECK(utf8_or_escaped("ok \xC3\xA9") == "ok \xC3\xA9");
    CHECK(utf8_or_escaped("a\xFF\xC3\xA9") == "a\\xFF\xC3\xA9");
    CHECK(hex_encode("a\xFF") == "61ff");
}

TEST_CASE("parse_size") {
    CHECK(parse_size("4096") == 4096U);
    CHECK(parse_size("100M") == 100ULL << 20);
    CHECK(parse_size("2G") == 2ULL << 30);
    CHECK(parse_size("1GiB") == 1ULL << 30);
    CHECK(parse_size("512k") == 512ULL << 10);
    CHECK_FALSE(parse_size("").has_value());
    CHECK_FALSE(parse_size("M").has_value());
    CHECK_FALSE(parse_size("12Q").has_value());
    CHECK_FALSE(parse_size("-5").has_value());
    CHECK_FALSE(parse_size("99999999999999T").has_value());
}

TEST_CASE("format_bytes") {
    CHECK(format_bytes(17) == "17 B");
    CHECK(format_bytes(1536) == "1.5 KiB");
    CHECK(format_bytes(3ULL << 30) == "3.0 GiB");
}

TEST_CASE("format_duration") {
    CHECK(format_duration(std::chrono::duration<double>(12.44)) == "12.4s");
    CHECK(format_duration(std::chrono::duration<double>(187)) == "3m07s");
    CHECK(format_duration(std::chrono::duration<double>(3720)) == "1h02m");
}

TEST_CASE("parse_duration") {
    using std::chrono::seconds;
    CHECK(parse_duration("45s") == seconds(45));
    CHECK(parse_duration("90m") == seconds(5400));
    CHECK(parse_duration("12h") == seconds(43200));
    CHECK(parse_duration("30d") == seconds(30 * 86400));
    CHECK(parse_duration("2w") == seconds(14 * 86400));
    CHECK(parse_duration("1d12h") == seconds(36 * 3600));
    CHECK_FALSE(parse_duration(""));
    CHECK_FALSE(parse_duration("30")); // no unit
    CHECK_FALSE(parse_duration("3x"));
    CHECK_FALSE(parse_duration("-1d"));
    CHECK_FALSE(parse_duration("d"));
    CHECK_FALSE(parse_duration("99999999999999999w"));
}

TEST_CASE("parse_seconds_or_duration") {
    using std::chrono::seconds;
    CHECK(parse_seconds_or_duration("90") == seconds(90));
    CHECK(parse_seconds_or_duration("0") == seconds(0));
    CHECK(parse_seconds_or_duration("90s") == seconds(90));
    CHECK(parse_seconds_or_duration("15m") == seconds(900));
    CHECK(parse_seconds_or_duration("2h") == seconds(7200));
    CHECK(parse_seconds_or_duration("7d") == seconds(7 * 86400));
    CHECK_FALSE(parse_seconds_or_duration(""));
    CHECK_FALSE(parse_seconds_or_duration("-5"));
    CHECK_FALSE(parse_seconds_or_duration("5 s"));
    CHECK_FALSE(parse_seconds_or_duration("1.5h"));
    CHECK_FALSE(parse_seconds_or_duration("99999999999999999999"));
}

TEST_CASE("uri_password_spans") {
    using Spans = std::vector<std::pair<std::size_t, std::size_t>>;
    CHECK(coldscan::uri_password_spans("postgresql://scan:pa55@db:5432/c") == Spans{{18, 4}});
    CHECK(coldscan::uri_password_spans("postgresql://db/c?user=a&password=x1&password=") ==
          Spans{{34, 2}, {46, 0}});
    CHECK(coldscan::uri_password_spans("postgresql://scan@db:5432/c?sslmode=require").empty());
    CHECK(coldscan::uri_password_spans("postgresql:///c?host=/run/a:b@c").empty());
}
