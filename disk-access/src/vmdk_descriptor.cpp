#include "vmdk_descriptor.hpp"

#include "coldscan/common/read_fully.hpp"
#include "coldscan/common/unique_fd.hpp"

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace coldscan::disk::detail {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t k_vmdk_descriptor_max = (1U << 20) - 1; // what qemu's vmdk_read_desc() reads

std::string read_at_most(const fs::path& path, std::uint64_t offset, std::size_t size) {
    std::string data(size, '\0');
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    if (!fd) {
        return {};
    }
    int error = 0; // a failed read keeps what came before it, as qemu would see no more either
    data.resize(read_fully(fd.get(), offset, std::as_writable_bytes(std::span(data)), error));
    return data;
}

std::uint64_t le64_at(std::string_view bytes, std::size_t offset) {
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < 8; ++i) {
        value |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes[offset + i])) << (8 * i);
    }
    return value;
}

// sscanf(line, "%10s %ld %10s \"%511[^\n\r\"]\"") as qemu's vmdk_parse_extents() runs it: the file name.
std::optional<std::string> vmdk_extent_name(std::string_view s) {
    std::size_t i = 0;
    const auto skip_space = [&] {
        while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i])) != 0) {
            ++i;
        }
    };
    const auto word = [&] {
        std::size_t n = 0;
        while (i < s.size() && n < 10 && std::isspace(static_cast<unsigned char>(s[i])) == 0) {
            ++i;
            ++n;
        }
        return n > 0;
    };
    skip_space();
    if (!word()) {
        return std::nullopt;
    }
    skip_space();
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
        ++i;
    }
    std::size_t digits = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])) != 0) {
        ++i;
        ++digits;
    }
    if (digits == 0) {
        return std::nullopt;
    }
    skip_space();
    if (!word()) {
        return std::nullopt;
    }
    skip_space();
    if (i >= s.size() || s[i] != '"') {
        return std::nullopt;
    }
    const std::size_t start = ++i;
    while (i < s.size() && i - start < 511 && s[i] != '\n' && s[i] != '\r' && s[i] != '"') {
        ++i;
    }
    if (i == start) {
        return std::nullopt;
    }
    return std::string(s.substr(start, i - start));
}

// qemu's vmdk_probe() for text: comment lines and space-only lines, then "version=1|2|3".
bool probes_as_vmdk_text(std::string_view head) {
    std::size_t p = 0;
    while (p < head.size()) {
        if (head[p] == '#') {
            const auto newline = head.find('\n', p);
            if (newline == std::string_view::npos) {
                return false;
            }
            p = newline + 1;
            continue;
        }
        if (head[p] == ' ') {
            while (p < head.size() && head[p] == ' ') {
                ++p;
            }
            if (p < head.size() && head[p] == '\r') {
                ++p;
            }
            if (p == head.size() || head[p] != '\n') {
                return false;
            }
            ++p;
            continue;
        }
        const std::string_view rest = head.substr(p);
        return rest.starts_with("version=1") || rest.starts_with("version=2") ||
               rest.starts_with("version=3");
    }
    return false;
}

constexpr std::string_view k_vmdk4_magic = "KDMV";
constexpr std::string_view k_vmdk3_magic = "COWD";

} // namespace

std::vector<std::string> vmdk_extent_names(std::string_view descriptor) {
    descriptor = descriptor.substr(0, descriptor.find('\0'));
    std::vector<std::string> names;
    std::size_t line = 0;
    while (line < descriptor.size()) {
        if (auto name = vmdk_extent_name(descriptor.substr(line))) {
            names.push_back(std::move(*name));
        }
        const auto newline = descriptor.find('\n', line);
        if (newline == std::string_view::npos) {
            break;
        }
        line = newline + 1;
    }
    return names;
}

// The descriptor qemu's vmdk driver parses in this file, if any. as_vmdk: the file is opened as vmdk for
// sure (explicit format, or an extent); otherwise only when qemu's probe would pick vmdk.
std::optional<std::string> vmdk_descriptor(const fs::path& file, bool as_vmdk) {
    const std::string head = read_at_most(file, 0, 4096);
    if (head.starts_with(k_vmdk4_magic)) {
        // A sparse header with capacity 0 points at a full descriptor inside the file.
        if (head.size() < 36 || le64_at(head, 12) != 0 || le64_at(head, 28) == 0) {
            return std::nullopt;
        }
        const std::uint64_t offset = le64_at(head, 28);
        if (offset > (std::numeric_limits<std::uint64_t>::max() >> 9)) {
            return std::nullopt;
        }
        return read_at_most(file, offset << 9, k_vmdk_descriptor_max);
    }
    if (head.starts_with(k_vmdk3_magic)) {
        return std::nullopt;
    }
    if (!as_vmdk && !probes_as_vmdk_text(head)) {
        return std::nullopt;
    }
    return read_at_most(file, 0, k_vmdk_descriptor_max);
}

} // namespace coldscan::disk::detail
