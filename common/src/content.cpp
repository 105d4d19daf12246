#include "coldscan/common/content.hpp"

#include "coldscan/common/read_fully.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unistd.h>

namespace coldscan {

Content Content::from_memory(std::vector<std::byte> bytes) {
    Content content;
    content.m_in_memory = true;
    content.m_size = bytes.size();
    content.m_bytes = std::move(bytes);
    return content;
}

Content Content::from_fd(UniqueFd fd, std::uint64_t size) {
    return from_reader(std::make_shared<FdReader>(std::move(fd)), size);
}

Content Content::from_reader(std::shared_ptr<const ByteReader> reader, std::uint64_t size) {
    Content content;
    content.m_in_memory = false;
    content.m_size = size;
    content.m_reader = std::move(reader);
    return content;
}

std::optional<std::span<const std::byte>> Content::memory() const noexcept {
    if (!m_in_memory) {
        return std::nullopt;
    }
    return std::span<const std::byte>(m_bytes);
}

int Content::fd() const noexcept {
    return m_reader ? m_reader->fd() : -1;
}

Expected<std::size_t> Content::read_at(std::uint64_t offset, std::span<std::byte> out) const {
    if (offset >= m_size) {
        return 0;
    }
    const auto wanted = static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), m_size - offset));
    if (m_in_memory) {
        std::memcpy(out.data(), m_bytes.data() + offset, wanted);
        return wanted;
    }
    return m_reader->read_at(offset, out.first(wanted));
}

std::size_t read_fully(int fd, std::uint64_t offset, std::span<std::byte> out, int& error) noexcept {
    error = 0;
    std::size_t done = 0;
    while (done < out.size()) {
        const ssize_t n =
            ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            error = errno;
            break;
        }
        if (n == 0) {
            break;
        }
        done += static_cast<std::size_t>(n);
    }
    return done;
}

Expected<std::size_t> FdReader::read_at(std::uint64_t offset, std::span<std::byte> out) const {
    int error = 0;
    const std::size_t done = read_fully(m_fd.get(), offset, out, error);
    if (error != 0) {
        return make_error(Errc::io, errno_message("read", error));
    }
    return done;
}

} // namespace coldscan
