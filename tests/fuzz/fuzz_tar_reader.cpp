// The appliance's tar stream (ustar, GNU long names, base-256 numbers, pax records) read by TarReader from
// a file descriptor holding the input. Oracles: every member's data reads back to exactly its size, and no
// more data than the stream held; paths are absolute; after an error every call fails the same way.
#include "fuzz_support.hpp"
#include "tar_reader.hpp"

#include <array>
#include <sys/mman.h>
#include <unistd.h>

using coldscan::disk::detail::TarReader;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const int fd = ::memfd_create("fuzz-tar", MFD_CLOEXEC);
    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(::ftruncate(fd, 0) == 0);
    FUZZ_CHECK(::pwrite(fd, data, size, 0) == static_cast<ssize_t>(size));
    FUZZ_CHECK(::lseek(fd, 0, SEEK_SET) == 0);

    TarReader reader(fd);
    std::uint64_t data_bytes = 0;
    std::array<std::byte, 4096> buffer{};
    for (int members = 0; members < 10'000; ++members) {
        auto member = reader.next();
        if (!member) {
            auto again = reader.next();
            FUZZ_CHECK(!again && again.error().message == member.error().message);
            break;
        }
        if (!*member) {
            (void)reader.drain(1U << 20);
            break;
        }
        FUZZ_CHECK((*member)->path.starts_with('/'));
        // A plain directory ('5') has no data whatever its size field says (as GNU tar reads it).
        const std::uint64_t data_size = reader.remaining();
        FUZZ_CHECK(data_size == (*member)->size ||
                   ((*member)->type == coldscan::disk::detail::TarMemberType::directory && data_size == 0));
        // Read the data of every other member; skipping the rest exercises skip().
        if (members % 2 == 0) {
            std::uint64_t got = 0;
            bool failed = false;
            for (;;) {
                auto n = reader.read(buffer);
                if (!n) {
                    failed = true;
                    break;
                }
                if (*n == 0) {
                    break;
                }
                got += *n;
            }
            FUZZ_CHECK(failed || got == data_size);
            data_bytes += got;
            FUZZ_CHECK(data_bytes <= size);
        }
    }
    return 0;
}
