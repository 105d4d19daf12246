#include "spill_file.hpp"

#include <cerrno>
#include <fcntl.h>
#include <unistd.h>

namespace coldscan::disk::detail {

Expected<void> write_all(int fd, std::span<const std::byte> bytes) {
    while (!bytes.empty()) {
        const ssize_t n = ::write(fd, bytes.data(), bytes.size());
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return make_error(Errc::io, errno_message("cannot write a spill file"));
        }
        bytes = bytes.subspan(static_cast<std::size_t>(n));
    }
    return {};
}

Expected<UniqueFd> create_spill_file(const std::string& dir) {
    UniqueFd fd(::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
    if (fd) {
        return fd;
    }
    const int tmpfile_errno = errno;
    std::string pattern = dir + "/coldscan-spill-XXXXXX";
    fd.reset(::mkostemp(pattern.data(), O_CLOEXEC)); // creates it 0600
    if (!fd) {
        return make_error(Errc::io, errno_message("cannot create a spill file in " + dir, tmpfile_errno));
    }
    ::unlink(pattern.c_str());
    return fd;
}

Content spilled_content(UniqueFd fd, std::uint64_t size) {
    const std::string self = "/proc/self/fd/" + std::to_string(fd.get());
    if (UniqueFd read_only(::open(self.c_str(), O_RDONLY | O_CLOEXEC)); read_only) {
        return Content::from_fd(std::move(read_only), size);
    }
    return Content::from_fd(std::move(fd), size);
}

} // namespace coldscan::disk::detail
