// qemu-nbd + libnbd on small qcow2 chains written with qemu-img and qemu-io at test time.
#include "../../disk-access/src/qemu_nbd_server.hpp"
#include "coldscan/common/subprocess.hpp"
#include "coldscan/disk/direct_image.hpp"
#include "coldscan/disk/nbd_device.hpp"

#include <catch2/catch.hpp>
#include <csignal>
#include <filesystem>
#include <sys/stat.h>

using namespace coldscan;
using namespace coldscan::disk;
using coldscan::disk::detail::image_opts;
using coldscan::disk::detail::QemuNbdServer;

namespace {

void run(const std::string& shell) {
    auto result = run_bounded({"sh", "-c", shell}, ProcessLimits{});
    REQUIRE(result);
    INFO(result->err);
    REQUIRE(result->exit_code == 0);
}

constexpr std::uint64_t k_kib = 1024;

// base.qcow2: 0xab at [0, 64k); top.qcow2 over it: 0xcd at [1M, 1M+64k). 4 MiB virtual.
ImageInfo make_chain(const std::filesystem::path& dir) {
    const auto base = dir / "base.qcow2";
    const auto top = dir / "top.qcow2";
    run("qemu-img create -q -f qcow2 " + base.string() + " 4M && qemu-io -f qcow2 -c 'write -P 0xab 0 64k' " +
        base.string() + " >/dev/null && qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 " + top.string() +
        " && qemu-io -f qcow2 -c 'write -P 0xcd 1M 64k' " + top.string() + " >/dev/null");
    ImageInfo info;
    info.path = top;
    info.format = "qcow2";
    info.virtual_size = 4 << 20;
    info.chain = {ImageLayer{top, "qcow2", 4 << 20, 0, "base.qcow2"},
                  ImageLayer{base, "qcow2", 4 << 20, 0, ""}};
    return info;
}

// How qemu-nbd refuses: before it listens (start fails) or after (it exits): qemu-nbd may create and
// accept on its socket before it has opened the image, so either can happen.
Error refusal_of(const ImageInfo& image, const coldscan::disk::detail::QemuNbdOptions& options) {
    auto server = QemuNbdServer::start(image, options);
    if (!server) {
        return server.error();
    }
    auto why = (*server)->exit_reason(std::chrono::seconds(30));
    REQUIRE(why);
    return *why;
}

std::byte at(const std::vector<std::byte>& bytes, std::size_t i) {
    return bytes[i];
}

} // namespace

TEST_CASE("image_opts") {
    ImageInfo info;
    info.path = "/img/a,b.qcow2";
    info.format = "qcow2";
    info.chain = {ImageLayer{"/img/a,b.qcow2", "qcow2", 0, 0, "base.raw"},
                  ImageLayer{"/img/base.raw", "raw", 0, 0, ""}};
    CHECK(image_opts(info) ==
          "driver=qcow2,file.driver=file,file.filename=/img/a,,b.qcow2,"
          "backing.driver=raw,backing.file.driver=file,backing.file.filename=/img/base.raw,"
          "backing.backing=");
    ImageInfo single;
    single.path = "/img/one.qcow2";
    single.format = "qcow2";
    CHECK(image_opts(single) == "driver=qcow2,file.driver=file,file.filename=/img/one.qcow2,backing=");
}

TEST_CASE("QemuNbdServer follows no backing file the gate did not see") {
    // The chain the gate validated ends at top.qcow2; its header (changed since, or never probed) names
    // secret.raw. qemu-nbd must read top alone: zeros where top has no data, never secret's bytes.
    auto dir = TempDir::create("coldscan-nbdtest");
    REQUIRE(dir);
    const auto secret = dir->path() / "secret.raw";
    const auto top = dir->path() / "top.qcow2";
    run("qemu-img create -q -f raw " + secret.string() + " 1M && qemu-io -f raw -c 'write -P 0x5a 0 64k' " +
        secret.string() + " >/dev/null && qemu-img create -q -f qcow2 -b " + secret.string() + " -F raw " +
        top.string() + " 1M");
    ImageInfo info;
    info.path = top;
    info.format = "qcow2";
    info.virtual_size = 1 << 20;
    info.chain = {ImageLayer{top, "qcow2", 1 << 20, 0, ""}};
    auto server = QemuNbdServer::start(info, {"", 1});
    REQUIRE(server);
    auto device = NbdDevice::connect_unix((*server)->socket_path(), NbdOptions{1, "", nullptr});
    REQUIRE(device);
    std::vector<std::byte> bytes(64 * k_kib);
    REQUIRE((*device)->read(0, bytes));
    CHECK(at(bytes, 0) == std::byte{0});
    CHECK(at(bytes, bytes.size() - 1) == std::byte{0});
}

TEST_CASE("QemuNbdServer and NbdDevice") {
    auto dir = TempDir::create("coldscan-nbdtest");
    REQUIRE(dir);
    const ImageInfo chain = make_chain(dir->path());
    struct stat before {};
    REQUIRE(::stat(chain.chain[1].path.c_str(), &before) == 0);

    pid_t server_pid = 0;
    std::filesystem::path socket;
    {
        auto server = QemuNbdServer::start(chain, {"", 4});
        REQUIRE(server);
        server_pid = (*server)->pid();
        socket = (*server)->socket_path();
        auto device = NbdDevice::connect_unix(socket, NbdOptions{3, ""}); // leaves a connection spare
        REQUIRE(device);
        CHECK((*device)->size() == 4ULL << 20);

        SECTION("reads give each layer's bytes, zeros where no layer wrote") {
            std::vector<std::byte> bytes(2 << 20);
            REQUIRE((*device)->read(0, bytes));
            CHECK(at(bytes, 0) == std::byte{0xab});
            CHECK(at(bytes, 64 * k_kib - 1) == std::byte{0xab});
            CHECK(at(bytes, 64 * k_kib) == std::byte{0});
            CHECK(at(bytes, 1 << 20) == std::byte{0xcd});
            CHECK(at(bytes, (1 << 20) + 64 * k_kib - 1) == std::byte{0xcd});
            CHECK(at(bytes, (1 << 20) + 64 * k_kib) == std::byte{0});
        }
        SECTION("a read past the end is refused") {
            std::vector<std::byte> bytes(4096);
            CHECK_FALSE((*device)->read((4ULL << 20) - 100, bytes));
        }
        SECTION("allocation depth: 1 for the top image, 2 for the backing file, 0 for neither") {
            REQUIRE((*device)->has_allocation_depth());
            auto extents = (*device)->allocation_depth(0, 4ULL << 20);
            REQUIRE(extents);
            const auto depth_at = [&](std::uint64_t offset) -> int {
                for (const auto& e : *extents) {
                    if (offset >= e.offset && offset < e.offset + e.length) {
                        return static_cast<int>(e.value);
                    }
                }
                return -1;
            };
            CHECK(depth_at(0) == 2);
            CHECK(depth_at(1 << 20) == 1);
            CHECK(depth_at(3 << 20) == 0);
            std::uint64_t covered = 0;
            for (const auto& e : *extents) {
                CHECK(e.offset == covered); // contiguous
                covered += e.length;
            }
            CHECK(covered == 4ULL << 20);
        }
        SECTION("a dirty bitmap the export does not have is refused") {
            auto bitmap = NbdDevice::connect_unix(socket, NbdOptions{1, "nightly"});
            REQUIRE_FALSE(bitmap);
            CHECK(bitmap.error().code == Errc::unsupported);
        }
    }
    // Stopped and cleaned up, and the images were only read.
    CHECK(::kill(server_pid, 0) == -1);
    CHECK_FALSE(std::filesystem::exists(socket.parent_path()));
    struct stat after {};
    REQUIRE(::stat(chain.chain[1].path.c_str(), &after) == 0);
    CHECK(after.st_mtim.tv_sec == before.st_mtim.tv_sec);
    CHECK(after.st_mtim.tv_nsec == before.st_mtim.tv_nsec);
}

TEST_CASE("QemuNbdServer refusals") {
    auto dir = TempDir::create("coldscan-nbdtest");
    REQUIRE(dir);
    SECTION("a damaged image: qemu-nbd's own message") {
        const auto bad = dir->path() / "bad.qcow2";
        run("printf 'QFI\\373garbage' > " + bad.string());
        ImageInfo info;
        info.path = bad;
        info.format = "qcow2";
        const Error refused = refusal_of(info, {});
        CHECK(refused.code == Errc::engine);
        CHECK(refused.message.find("qemu-nbd could not serve the image") != std::string::npos);
        auto image = DirectImage::serve(info, DirectOptions{1, "", ""}); // the same reason, through the API
        REQUIRE_FALSE(image);
        CHECK(image.error().message.find("qemu-nbd could not serve the image") != std::string::npos);
    }
    SECTION("an internal snapshot that does not exist: refused before qemu-nbd, or by it after it listened") {
        const ImageInfo chain = make_chain(dir->path());
        auto image = DirectImage::serve(chain, DirectOptions{1, "no-such-snapshot", ""});
        REQUIRE_FALSE(image);
        CHECK(image.error().message.find("no internal snapshot named \"no-such-snapshot\" (it has none)") !=
              std::string::npos);
        CHECK(refusal_of(chain, {"no-such-snapshot", 1}).message.find("no-such-snapshot") !=
              std::string::npos);
    }
}

TEST_CASE("NbdDevice::connect_uri") {
    SECTION("not an NBD URI") {
        auto device = NbdDevice::connect_uri("http://example/disk", NbdOptions{});
        REQUIRE_FALSE(device);
        CHECK(device.error().code == Errc::invalid_argument);
    }
    SECTION("nothing listening") {
        auto device = NbdDevice::connect_uri("nbd+unix:///?socket=/nonexistent/coldscan.sock", NbdOptions{});
        REQUIRE_FALSE(device);
        CHECK(device.error().code == Errc::io);
    }
}
