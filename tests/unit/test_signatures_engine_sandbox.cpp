// The engine sandbox: a real host process (this test binary re-executed), real workers, real signals.
#include "coldscan/common/confinement.hpp"
#include "coldscan/common/fd_channel.hpp"
#include "coldscan/scanner/file_scanner.hpp"
#include "coldscan/signatures/engine_sandbox.hpp"
#include "coldscan/signatures/signature_set.hpp"
#include "test_signatures_support.hpp"

#include <cerrno>
#include <csignal>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace coldscan::signatures::test {
namespace {

using Status = EngineResult::Status;

SandboxOptions options_for(const TestDatabases& db) {
    SandboxOptions options;
    options.clamav_db = db.folder;
    options.limits.max_scan_time = std::chrono::seconds(1);
    options.limits.yara_timeout = std::chrono::seconds(1);
    return options;
}

// Runs body in a forked child and returns its wait status (the child exits with body's return value).
template <typename Body> int in_child(Body&& body) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::_exit(body());
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    return status;
}

bool gone(pid_t pid) {
    for (int i = 0; i < 200; ++i) {
        if (::kill(pid, 0) != 0 && errno == ESRCH) {
            return true;
        }
        ::usleep(25'000);
    }
    return false;
}

} // namespace

TEST_CASE("send_message and receive_message") {
    auto pair = make_socket_pair();
    REQUIRE(pair.has_value());

    SECTION("a body and a descriptor arrive together") {
        auto inner = make_socket_pair();
        REQUIRE(inner.has_value());
        const int fd = inner->first.get();
        REQUIRE(send_message(pair->first.get(), "hello", std::span(&fd, 1)).has_value());
        auto got = receive_message(pair->second.get(), std::chrono::seconds(5));
        REQUIRE(got.has_value());
        CHECK(got->body == "hello");
        REQUIRE(got->fds.size() == 1);
        // The received descriptor is the same socket: what goes in one end comes out of inner->second.
        REQUIRE(send_message(got->fds[0].get(), "through").has_value());
        auto through = receive_message(inner->second.get(), std::chrono::seconds(5));
        REQUIRE(through.has_value());
        CHECK(through->body == "through");
    }
    SECTION("a body larger than a socket buffer") {
        const std::string big(3U << 20, 'x');
        std::thread sender([&] { CHECK(send_message(pair->first.get(), big).has_value()); });
        auto got = receive_message(pair->second.get(), std::chrono::seconds(30));
        sender.join();
        REQUIRE(got.has_value());
        CHECK(got->body == big);
    }
    SECTION("the peer closing between messages is not_found") {
        pair->first.reset();
        auto got = receive_message(pair->second.get(), std::chrono::seconds(5));
        REQUIRE_FALSE(got.has_value());
        CHECK(got.error().code == Errc::not_found);
    }
    SECTION("no message in time is a timeout") {
        auto got = receive_message(pair->second.get(), std::chrono::milliseconds(50));
        REQUIRE_FALSE(got.has_value());
        CHECK(got.error().code == Errc::timeout);
    }
    SECTION("a length over the limit is refused before anything is allocated") {
        const std::uint32_t huge = k_max_message_bytes + 1;
        REQUIRE(::send(pair->first.get(), &huge, sizeof huge, 0) == sizeof huge);
        auto got = receive_message(pair->second.get(), std::chrono::seconds(5));
        REQUIRE_FALSE(got.has_value());
        CHECK(got.error().code == Errc::corrupt);
    }
}

TEST_CASE("confine_process") {
    SECTION("no new socket, no signal to another process, setrlimit refused; its own signals still work") {
        const pid_t parent = ::getpid();
        const int status = in_child([parent] {
            if (!confine_process(Confinement{std::nullopt, std::chrono::seconds(60), true})) {
                return 10;
            }
            if (::socket(AF_INET, SOCK_STREAM, 0) >= 0 || errno != EPERM) {
                return 11;
            }
            if (::socket(AF_UNIX, SOCK_STREAM, 0) >= 0) {
                return 12;
            }
            if (::kill(parent, 0) == 0 || errno != EPERM) {
                return 13;
            }
            const rlimit more{RLIM_INFINITY, RLIM_INFINITY};
            if (::setrlimit(RLIMIT_CPU, &more) == 0) {
                return 14;
            }
            int pipe_fds[2];
            if (::pipe(pipe_fds) != 0) { // ordinary calls still work
                return 15;
            }
            std::signal(SIGUSR1, SIG_IGN);
            if (::raise(SIGUSR1) != 0) {
                return 16;
            }
            return 0;
        });
        REQUIRE(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
    }
    SECTION("exec ends the process") {
        const int status = in_child([] {
            if (!confine_process(Confinement{})) {
                return 10;
            }
            char* const argv[] = {const_cast<char*>("/bin/true"), nullptr};
            ::execv("/bin/true", argv);
            return 11;
        });
        REQUIRE(WIFSIGNALED(status));
        CHECK(WTERMSIG(status) == SIGSYS);
    }
}

TEST_CASE("EngineSandbox") {
    const auto db = TestDatabases::create();
    auto sandbox = EngineSandbox::start(options_for(db));
    REQUIRE(sandbox.has_value());
    auto engines = (*sandbox)->ready();
    REQUIRE(engines.has_value());
    REQUIRE(engines->clamav.has_value());
    CHECK(engines->clamav->signature_count == 2);
    auto worker = (*sandbox)->spawn_worker();
    REQUIRE(worker.has_value());

    SECTION("a worker scans memory, descriptor and reader contents like the engine in-process") {
        auto in_memory = worker->scan(memory_content("a " + k_eicar), "/srv/eicar.txt");
        REQUIRE(in_memory.has_value());
        REQUIRE(in_memory->size() == 1);
        CHECK((*in_memory)[0].status == Status::detected);
        CHECK(signatures_of((*in_memory)[0]) == std::vector<std::string>{"Coldscan.Test.Eicar.UNOFFICIAL"});

        auto from_fd = worker->scan(fd_content(k_testfiles / "clam.exe"), "/bin/clam.exe");
        REQUIRE(from_fd.has_value());
        CHECK(signatures_of((*from_fd)[0]) == std::vector<std::string>{"Coldscan.Test.ClamExe.UNOFFICIAL"});

        auto clean = worker->scan(copied_reader_content(bytes_of("nothing to see\n")), "/etc/motd");
        REQUIRE(clean.has_value());
        CHECK((*clean)[0].status == Status::clean);
        CHECK_FALSE(worker->retired());
    }
    SECTION("a worker that dies is an io error; a fresh worker scans again") {
        const pid_t pid = worker->pid();
        REQUIRE(::kill(pid, SIGSEGV) == 0);
        auto result = worker->scan(memory_content(k_eicar), "/eicar");
        REQUIRE_FALSE(result.has_value());
        CHECK(result.error().code == Errc::io);
        CHECK(worker->retired());
        CHECK(gone(pid));
        auto fresh = (*sandbox)->spawn_worker();
        REQUIRE(fresh.has_value());
        CHECK(fresh->pid() != pid);
        auto again = fresh->scan(memory_content(k_eicar), "/eicar");
        REQUIRE(again.has_value());
        CHECK((*again)[0].status == Status::detected);
    }
    SECTION("a worker that stops answering is a timeout and is killed") {
        const pid_t pid = worker->pid();
        REQUIRE(::kill(pid, SIGSTOP) == 0);
        auto result = worker->scan(memory_content(k_eicar), "/eicar"); // 1 s + 1 s + 10 s grace
        REQUIRE_FALSE(result.has_value());
        CHECK(result.error().code == Errc::timeout);
        CHECK(worker->retired());
        CHECK(gone(pid));
    }
    SECTION("a host that dies is replaced when a worker is next needed; running workers carry on") {
        const pid_t first_host = (*sandbox)->host_pid();
        REQUIRE(::kill(first_host, SIGKILL) == 0);
        auto still = worker->scan(memory_content(k_eicar), "/eicar"); // forked before the host died
        REQUIRE(still.has_value());
        CHECK((*still)[0].status == Status::detected);
        auto fresh = (*sandbox)->spawn_worker();
        REQUIRE(fresh.has_value());
        CHECK((*sandbox)->host_pid() != first_host);
        CHECK(gone(first_host));
        auto scanned = fresh->scan(memory_content(k_eicar), "/eicar");
        REQUIRE(scanned.has_value());
        CHECK(signatures_of((*scanned)[0]) == std::vector<std::string>{"Coldscan.Test.Eicar.UNOFFICIAL"});

        SECTION("at most 3 restarts in 10 minutes: a host that keeps dying is given up on") {
            for (int restart = 2; restart <= 3; ++restart) {
                REQUIRE(::kill((*sandbox)->host_pid(), SIGKILL) == 0);
                REQUIRE((*sandbox)->spawn_worker().has_value());
            }
            REQUIRE(::kill((*sandbox)->host_pid(), SIGKILL) == 0);
            auto refused = (*sandbox)->spawn_worker();
            REQUIRE_FALSE(refused.has_value());
            CHECK(refused.error().code == Errc::io);
            CHECK(refused.error().message.find("not restarting") != std::string::npos);
        }
    }
    SECTION("a replacement host that would load changed signatures is refused") {
        write_file(db.folder / "added.hdb", "44d88612fea8a8f36de82e1278abb02f:68:Coldscan.Test.Added\n");
        REQUIRE(::kill((*sandbox)->host_pid(), SIGKILL) == 0);
        auto refused = (*sandbox)->spawn_worker();
        REQUIRE_FALSE(refused.has_value());
        CHECK(refused.error().message.find("signatures changed") != std::string::npos);
        CHECK_FALSE((*sandbox)->spawn_worker().has_value()); // and stays refused
    }
    SECTION("closing a worker ends it; closing the sandbox ends the host") {
        std::optional<EngineWorker> idle;
        idle.emplace(std::move(*worker));
        const pid_t worker_pid = idle->pid();
        const pid_t host_pid = (*sandbox)->host_pid();
        idle.reset();
        CHECK(gone(worker_pid));
        sandbox->reset(); // waits for the host
        CHECK(::kill(host_pid, 0) != 0);
    }
}

TEST_CASE("EngineSandbox load errors") {
    auto dir = TempDir::create("coldscan-sigtest");
    REQUIRE(dir.has_value());
    write_file(dir->path() / "broken.ndb", "not a signature line\n");
    SandboxOptions options;
    options.clamav_db = dir->path();
    auto sandbox = EngineSandbox::start(options);
    REQUIRE(sandbox.has_value());
    auto engines = (*sandbox)->ready();
    REQUIRE_FALSE(engines.has_value());
    CHECK(engines.error().code == Errc::engine);
    CHECK_FALSE((*sandbox)->spawn_worker().has_value());
}

TEST_CASE("FileScanner with sandboxed engines") {
    const auto db = TestDatabases::create();
    SignatureOptions options;
    options.clamav_db = db.folder;
    options.isolation = EngineIsolation::sandboxed;
    auto set = SignatureSet::load(options, LoadMode::background);
    REQUIRE(set.has_value());
    REQUIRE(set->sandbox() != nullptr);
    CHECK(set->clamav() == nullptr);
    CHECK(set->clamav_signature_count() == 2);

    SignatureOptions in_process = options;
    in_process.isolation = EngineIsolation::in_process;
    auto local = SignatureSet::load(in_process);
    REQUIRE(local.has_value());
    CHECK(set->fingerprint() == local->fingerprint()); // isolation does not change what a verdict means

    auto scanner = scanner::FileScanner::create(*set);
    REQUIRE(scanner.has_value());
    const auto infected = scanner->scan(memory_content(k_eicar), "/eicar.com");
    CHECK(infected.kind == OutcomeKind::infected);
    const auto clean = scanner->scan(memory_content("harmless\n"), "/motd");
    CHECK(clean.kind == OutcomeKind::clean);
}

} // namespace coldscan::signatures::test
