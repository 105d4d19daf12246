#include "coldscan/scheduler/browser_policy.hpp"

#include <catch2/catch.hpp>

using namespace coldscan::scheduler;

TEST_CASE("loopback_host", "[scheduler]") {
    for (const char* host : {"localhost", "localhost:8080", "127.0.0.1", "127.0.0.1:7070", "127.9.8.7:1",
                             "[::1]", "[::1]:8080"}) {
        INFO(host);
        CHECK(loopback_host(host));
    }
    for (const char* host : {"", "evil.example", "evil.example:8080", "10.0.0.1:80", "128.0.0.1", "[::2]:80",
                             "localhost.evil.example", "[::1", "127.0.0.1.evil.example"}) {
        INFO(host);
        CHECK_FALSE(loopback_host(host));
    }
}

TEST_CASE("browser_refusal", "[scheduler]") {
    BrowserFacts facts;
    facts.host = "127.0.0.1:8080";
    SECTION("programs: no browser headers, any Host") {
        CHECK_FALSE(browser_refusal(facts));
        facts.host = "scanner.internal:8080";
        CHECK_FALSE(browser_refusal(facts));
    }
    SECTION("the Origin must be this very origin") {
        facts.origin = "http://127.0.0.1:8080";
        CHECK_FALSE(browser_refusal(facts));
        facts.origin = "https://127.0.0.1:8080"; // behind a TLS proxy
        CHECK_FALSE(browser_refusal(facts));
        for (const char* other :
             {"http://127.0.0.1:8081", "http://localhost:8080", "null", "http://evil.example"}) {
            facts.origin = other;
            INFO(other);
            CHECK(browser_refusal(facts));
        }
        facts.origin = "http://127.0.0.1:8080";
        facts.host.reset();
        CHECK(browser_refusal(facts));
    }
    SECTION("cross-site fetches of the API are refused; the console's files may be linked from anywhere") {
        for (const char* site : {"cross-site", "same-site"}) {
            facts.fetch_site = site;
            CHECK(browser_refusal(facts));
            facts.console_file = true;
            CHECK_FALSE(browser_refusal(facts));
            facts.console_file = false;
        }
        facts.fetch_site = "same-origin";
        CHECK_FALSE(browser_refusal(facts));
    }
    SECTION("without a token a browser must name a loopback Host (DNS rebinding); with one, any") {
        facts.host = "evil.example:8080";
        facts.origin = "http://evil.example:8080";
        facts.fetch_site = "same-origin";
        const auto refused = browser_refusal(facts);
        REQUIRE(refused);
        CHECK(refused->find("evil.example:8080") != std::string::npos);
        facts.token_configured = true;
        CHECK_FALSE(browser_refusal(facts));
    }
    SECTION("the Unix socket: only the Origin rule") {
        facts.unix_socket = true;
        facts.host = "whatever";
        facts.fetch_site = "cross-site";
        CHECK_FALSE(browser_refusal(facts));
        facts.origin = "http://evil.example";
        CHECK(browser_refusal(facts));
    }
}
