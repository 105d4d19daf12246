// VMDK descriptors as qemu reads them: the file is the input (a memfd, opened by its /proc path as the
// safety gate opens an image), then the extent names of the descriptor found. Oracle: vmdk_extent_names
// agrees with the sscanf() call qemu's vmdk_parse_extents() makes on every line; each name is non-empty,
// at most 511 bytes, without a quote or line break.
#include "fuzz_support.hpp"
#include "vmdk_descriptor.hpp"

#include <cinttypes>
#include <cstdio>
#include <string>
#include <sys/mman.h>
#include <unistd.h>
#include <vector>

namespace {

// What qemu gets: sscanf(p, "%10s %" SCNd64 " %10s \"%511[^\n\r\"]\"", ...) from each line start to the
// end of the (NUL-terminated) descriptor; 4 conversions name an extent.
std::vector<std::string> qemu_extent_names(std::string descriptor) {
    descriptor = descriptor.substr(0, descriptor.find('\0'));
    std::vector<std::string> names;
    std::size_t line = 0;
    while (line < descriptor.size()) {
        char access[11] = {};
        char type[11] = {};
        char name[512] = {};
        std::int64_t sectors = 0;
        const int matched = std::sscanf(descriptor.c_str() + line, "%10s %" SCNd64 " %10s \"%511[^\n\r\"]\"",
                                        access, &sectors, type, name);
        if (matched >= 4) {
            names.emplace_back(name);
        }
        const auto newline = descriptor.find('\n', line);
        if (newline == std::string::npos) {
            break;
        }
        line = newline + 1;
    }
    return names;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const auto names = coldscan::disk::detail::vmdk_extent_names(text);
    for (const auto& name : names) {
        FUZZ_CHECK(!name.empty() && name.size() <= 511);
        FUZZ_CHECK(name.find_first_of("\"\r\n") == std::string::npos);
    }
    // sscanf is quadratic over a long run of spaces; the descriptors worth comparing are short.
    if (size <= 4096) {
        FUZZ_CHECK(names == qemu_extent_names(std::string(text)));
    }

    static const int fd = ::memfd_create("fuzz-vmdk", MFD_CLOEXEC);
    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(::ftruncate(fd, 0) == 0);
    FUZZ_CHECK(::pwrite(fd, data, size, 0) == static_cast<ssize_t>(size));
    const std::string path = "/proc/self/fd/" + std::to_string(fd);
    for (const bool as_vmdk : {false, true}) {
        const auto descriptor = coldscan::disk::detail::vmdk_descriptor(path, as_vmdk);
        if (descriptor) {
            FUZZ_CHECK(descriptor->size() < (1U << 20));
            FUZZ_CHECK(descriptor->size() <= size);
            (void)coldscan::disk::detail::vmdk_extent_names(*descriptor);
        }
    }
    return 0;
}
