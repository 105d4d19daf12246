// Helpers every unit test may use (header-only; the test glob compiles only test_*.cpp).
#pragma once

#include "coldscan/common/content.hpp"
#include "coldscan/common/subprocess.hpp"
#include "coldscan/disk/block_device.hpp"

#include <catch2/catch.hpp>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <unistd.h>

namespace coldscan::test {

// Writes bytes to path, creating its folders.
inline void write_file(const std::filesystem::path& path, std::string_view bytes) {
    std::filesystem::create_directories(path.parent_path());
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(out.good());
}

inline std::string read_text(const std::filesystem::path& path) {
    std::string text(std::filesystem::file_size(path), '\0');
    std::ifstream in(path, std::ios::binary);
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    REQUIRE(in.good());
    return text;
}

// All of a content's bytes as a string.
inline std::string content_bytes(const Content& content) {
    std::string bytes(content.size(), '\0');
    auto n =
        content.read_at(0, std::span<std::byte>(reinterpret_cast<std::byte*>(bytes.data()), bytes.size()));
    REQUIRE(n.has_value());
    REQUIRE(*n == bytes.size());
    return bytes;
}

// Runs a shell command line (with /usr/sbin on PATH for mkfs and friends); the test fails if it does.
// Deterministic bytes that differ at every offset (a misplaced run shows).
inline std::string pattern(std::size_t size, unsigned seed) {
    std::string bytes(size, '\0');
    std::uint32_t x = seed * 2654435761U + 1;
    for (auto& c : bytes) {
        x = x * 1664525U + 1013904223U;
        c = static_cast<char>(x >> 24U);
    }
    return bytes;
}

inline void run_shell(const std::string& command) {
    auto result = run_bounded({"sh", "-c", "PATH=$PATH:/usr/sbin:/sbin; " + command}, ProcessLimits{});
    REQUIRE(result);
    INFO(command << "\n" << result->err);
    REQUIRE(result->exit_code == 0);
}

// A disk image file as a BlockDevice, read with pread.
class FileDevice final : public disk::BlockDevice {
public:
    explicit FileDevice(const std::filesystem::path& path)
        : m_fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC)), m_size(std::filesystem::file_size(path)) {}
    ~FileDevice() override { ::close(m_fd); }
    FileDevice(const FileDevice&) = delete;
    FileDevice& operator=(const FileDevice&) = delete;
    [[nodiscard]] std::uint64_t size() const noexcept override { return m_size; }
    Expected<void> read(std::uint64_t offset, std::span<std::byte> out) override {
        if (::pread(m_fd, out.data(), out.size(), static_cast<off_t>(offset)) !=
            static_cast<ssize_t>(out.size())) {
            return make_error(Errc::io, "short read");
        }
        return {};
    }

private:
    int m_fd;
    std::uint64_t m_size;
};

} // namespace coldscan::test
