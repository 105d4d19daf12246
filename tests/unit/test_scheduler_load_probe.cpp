// Load probes: PSI text, probe answers, and real reads of a pressure folder, a command and an HTTP endpoint.
#include "coldscan/common/temp_dir.hpp"
#include "coldscan/scheduler/load_probe.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>
#include <filesystem>
#include <httplib.h>
#include <string>
#include <string_view>
#include <thread>

using namespace coldscan;
using namespace coldscan::scheduler;
using namespace std::chrono_literals;

namespace {

// /proc/pressure/io and /proc/pressure/cpu as Linux 6.1 writes them.
constexpr std::string_view k_io_pressure = "some avg10=12.34 avg60=5.00 avg300=1.25 total=9876543\n"
                                           "full avg10=10.00 avg60=4.00 avg300=1.00 total=8765432\n";
constexpr std::string_view k_cpu_pressure = "some avg10=56.78 avg60=40.01 avg300=20.00 total=123456789\n"
                                            "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
constexpr std::string_view k_idle_pressure = "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
                                             "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";

void write_executable(const std::filesystem::path& path, std::string_view script) {
    test::write_file(path, script);
    std::filesystem::permissions(path, std::filesystem::perms::owner_all);
}

// A cpp-httplib server on 127.0.0.1 and an ephemeral port, serving from its own thread until destroyed.
class TestServer {
public:
    TestServer() {
        m_server.Get("/load", [](const httplib::Request&, httplib::Response& response) {
            response.set_content("0.6\n", "text/plain");
        });
        m_server.Get("/broken", [](const httplib::Request&, httplib::Response& response) {
            response.status = 500;
            response.set_content("0.1\n", "text/plain");
        });
        m_server.Get("/chatty", [](const httplib::Request&, httplib::Response& response) {
            response.set_content("load: high\n", "text/plain");
        });
        m_server.Get("/slow", [](const httplib::Request&, httplib::Response& response) {
            std::this_thread::sleep_for(2500ms);
            response.set_content("0.2\n", "text/plain");
        });
        m_port = m_server.bind_to_any_port("127.0.0.1");
        REQUIRE(m_port > 0);
        m_thread = std::thread([this] { m_server.listen_after_bind(); });
        // stop() ends only a running accept loop, so wait for it to run.
        for (int i = 0; i < 500 && !m_server.is_running(); ++i) {
            std::this_thread::sleep_for(10ms);
        }
        REQUIRE(m_server.is_running());
    }
    ~TestServer() {
        m_server.stop();
        m_thread.join();
    }
    TestServer(const TestServer&) = delete;
    TestServer& operator=(const TestServer&) = delete;

    [[nodiscard]] std::string url(std::string_view path) const {
        return "http://127.0.0.1:" + std::to_string(m_port) + std::string(path);
    }

private:
    httplib::Server m_server;
    int m_port = 0;
    std::thread m_thread;
};

} // namespace

TEST_CASE("parse_psi", "[scheduler][load_probe]") {
    SECTION("the some line's avg10, as a share") {
        CHECK(parse_psi(k_io_pressure).value() == Approx(0.1234));
        CHECK(parse_psi(k_cpu_pressure).value() == Approx(0.5678));
        CHECK(parse_psi(k_idle_pressure).value() == 0.0);
        CHECK(parse_psi("some avg10=100.00 avg60=99.00 avg300=98.00 total=1").value() == Approx(1.0));
    }
    SECTION("Linux before 5.13 has no full line in cpu") {
        CHECK(parse_psi("some avg10=3.50 avg60=1.00 avg300=0.50 total=42\n").value() == Approx(0.035));
    }
    SECTION("the full line alone is not enough; garbage is invalid_argument") {
        for (const std::string_view text :
             {"full avg10=10.00 avg60=4.00 avg300=1.00 total=8765432\n", "", "some total=5\n",
              "some avg10=abc avg60=0.00 avg300=0.00 total=0\n",
              "some avg10=101.00 avg60=0 avg300=0 total=0\n",
              "some avg10=-1.00 avg60=0 avg300=0 total=0\n"}) {
            INFO(text);
            const auto value = parse_psi(text);
            REQUIRE_FALSE(value.has_value());
            CHECK(value.error().code == Errc::invalid_argument);
        }
    }
}

TEST_CASE("parse_load", "[scheduler][load_probe]") {
    SECTION("a number in 0..1 with whitespace around it") {
        CHECK(parse_load("0.42").value() == Approx(0.42));
        CHECK(parse_load(" 0.42\n").value() == Approx(0.42));
        CHECK(parse_load("\t0.5\r\n").value() == Approx(0.5));
        CHECK(parse_load("1").value() == 1.0);
        CHECK(parse_load("0").value() == 0.0);
        CHECK(parse_load("1.0\n").value() == 1.0);
    }
    SECTION("anything else is invalid_argument") {
        for (const std::string_view text :
             {"", " \n", "abc", "1.5", "-0.1", "nan", "inf", "0.4 0.5", "0.4\n0.5", "0.4x", "50%", "0x1"}) {
            INFO('"' << text << '"');
            const auto value = parse_load(text);
            REQUIRE_FALSE(value.has_value());
            CHECK(value.error().code == Errc::invalid_argument);
        }
        CHECK(parse_load("1.5").error().message == "\"1.5\" is not a load (a number from 0 to 1)");
    }
}

TEST_CASE("read_load", "[scheduler][load_probe]") {
    auto dir = TempDir::create("coldscan-test-load");
    REQUIRE(dir.has_value());
    const auto pressure = dir->path() / "pressure";

    SECTION("psi: the larger of io and cpu") {
        test::write_file(pressure / "io", k_io_pressure);
        test::write_file(pressure / "cpu", k_cpu_pressure);
        CHECK(read_load(PsiProbe{}, 5s, pressure).value() == Approx(0.5678));
        test::write_file(pressure / "cpu", k_idle_pressure);
        CHECK(read_load(PsiProbe{}, 5s, pressure).value() == Approx(0.1234));
    }
    SECTION("psi: io alone is enough; without io it is an io error") {
        test::write_file(pressure / "io", k_io_pressure);
        CHECK(read_load(PsiProbe{}, 5s, pressure).value() == Approx(0.1234));
        std::filesystem::remove(pressure / "io");
        test::write_file(pressure / "cpu", k_cpu_pressure);
        const auto load = read_load(PsiProbe{}, 5s, pressure);
        REQUIRE_FALSE(load.has_value());
        CHECK(load.error().code == Errc::io);
        CHECK_THAT(load.error().message, Catch::Contains((pressure / "io").string()));
    }
    SECTION("psi: an unreadable pressure file is invalid_argument, naming it") {
        test::write_file(pressure / "io", k_io_pressure);
        test::write_file(pressure / "cpu", "garbage\n");
        const auto load = read_load(PsiProbe{}, 5s, pressure);
        REQUIRE_FALSE(load.has_value());
        CHECK(load.error().code == Errc::invalid_argument);
        CHECK_THAT(load.error().message, Catch::StartsWith((pressure / "cpu").string()));
    }
    SECTION("psi: this machine's /proc/pressure, where the kernel has it") {
        if (!std::filesystem::exists("/proc/pressure/io")) {
            WARN("no /proc/pressure/io on this kernel");
            return;
        }
        const auto load = read_load(PsiProbe{}, 5s);
        REQUIRE(load.has_value());
        CHECK(*load >= 0.0);
        CHECK(*load <= 1.0);
    }
    SECTION("command: its stdout, run without a shell, arguments passed as they are") {
        const auto script = dir->path() / "load.sh";
        write_executable(script, "#!/bin/sh\n[ \"$1\" = 'kvm01 x' ] || exit 9\necho 0.25\n");
        CHECK(read_load(CommandProbe{{script.string(), "kvm01 x"}}, 5s).value() == Approx(0.25));
    }
    SECTION("command: a non-zero exit is io with its status and the first line of stderr") {
        const auto script = dir->path() / "fail.sh";
        write_executable(script,
                         "#!/bin/sh\necho 0.1\necho 'cannot reach kvm01' >&2\necho more >&2\nexit 3\n");
        const auto load = read_load(CommandProbe{{script.string()}}, 5s);
        REQUIRE_FALSE(load.has_value());
        CHECK(load.error().code == Errc::io);
        CHECK(load.error().message ==
              "load probe " + script.string() + ": exited with status 3: cannot reach kvm01");
    }
    SECTION("command: output that is not a load is invalid_argument") {
        const auto script = dir->path() / "chatty.sh";
        write_executable(script, "#!/bin/sh\necho 'load is 0.25'\n");
        const auto load = read_load(CommandProbe{{script.string()}}, 5s);
        REQUIRE_FALSE(load.has_value());
        CHECK(load.error().code == Errc::invalid_argument);
    }
    SECTION("command: one that runs past the timeout is stopped (timeout)") {
        const auto script = dir->path() / "hang.sh";
        write_executable(script, "#!/bin/sh\nexec sleep 30\n");
        const auto started = std::chrono::steady_clock::now();
        const auto load = read_load(CommandProbe{{script.string()}}, 1s);
        REQUIRE_FALSE(load.has_value());
        CHECK(load.error().code == Errc::timeout);
        CHECK(std::chrono::steady_clock::now() - started < 10s);
    }
    SECTION("command: a program that does not exist is not_found") {
        const auto load = read_load(CommandProbe{{(dir->path() / "missing").string()}}, 5s);
        REQUIRE_FALSE(load.has_value());
        CHECK(load.error().code == Errc::not_found);
    }
}

TEST_CASE("read_load over HTTP", "[scheduler][load_probe]") {
    TestServer server;

    SECTION("the body of a 200 answer") {
        CHECK(read_load(HttpProbe{server.url("/load")}, 5s).value() == Approx(0.6));
        CHECK(read_load(HttpProbe{server.url("/load?host=kvm01#top")}, 5s).value() == Approx(0.6));
    }
    SECTION("any other status is io, naming the status") {
        const auto load = read_load(HttpProbe{server.url("/broken")}, 5s);
        REQUIRE_FALSE(load.has_value());
        CHECK(load.error().code == Errc::io);
        CHECK(load.error().message == "load probe " + server.url("/broken") + ": HTTP status 500");
        const auto missing = read_load(HttpProbe{server.url("/nothing-here")}, 5s);
        REQUIRE_FALSE(missing.has_value());
        CHECK_THAT(missing.error().message, Catch::EndsWith("HTTP status 404"));
    }
    SECTION("a body that is not a load is invalid_argument") {
        const auto load = read_load(HttpProbe{server.url("/chatty")}, 5s);
        REQUIRE_FALSE(load.has_value());
        CHECK(load.error().code == Errc::invalid_argument);
    }
    SECTION("an answer slower than the timeout is a timeout, in about the timeout") {
        const auto started = std::chrono::steady_clock::now();
        const auto load = read_load(HttpProbe{server.url("/slow")}, 1s);
        REQUIRE_FALSE(load.has_value());
        CHECK(load.error().code == Errc::timeout);
        CHECK(std::chrono::steady_clock::now() - started < 2400ms);
    }
    SECTION("nobody listening is io") {
        // The server's own port once it has stopped would race; port 1 on loopback is never ours.
        const auto load = read_load(HttpProbe{"http://127.0.0.1:1/load"}, 2s);
        REQUIRE_FALSE(load.has_value());
        CHECK(load.error().code == Errc::io);
    }
}
