#include "coldscan/common/fd_channel.hpp"

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <poll.h>
#include <sys/socket.h>

namespace coldscan {
namespace {

using Clock = std::chrono::steady_clock;

// Waits until socket is readable or the deadline passes.
Expected<void> wait_readable(int socket, std::optional<Clock::time_point> deadline) {
    for (;;) {
        int wait_ms = -1;
        if (deadline) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now());
            if (left.count() <= 0) {
                return make_error(Errc::timeout, "no answer in time");
            }
            wait_ms = static_cast<int>(std::min<long long>(left.count(), 60'000));
        }
        pollfd entry{socket, POLLIN, 0};
        const int ready = ::poll(&entry, 1, wait_ms);
        if (ready > 0) {
            return {};
        }
        if (ready < 0 && errno != EINTR) {
            return make_error(Errc::io, errno_message("poll"));
        }
    }
}

// Reads exactly out.size() bytes (the rest of a message). Errors: io, timeout.
Expected<void> read_exactly(int socket, std::span<char> out, std::optional<Clock::time_point> deadline) {
    std::size_t done = 0;
    while (done < out.size()) {
        if (auto ready = wait_readable(socket, deadline); !ready) {
            return ready;
        }
        const ssize_t n = ::recv(socket, out.data() + done, out.size() - done, 0);
        if (n == 0) {
            return make_error(Errc::io, "the peer closed the connection in the middle of a message");
        }
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                continue;
            }
            return make_error(Errc::io, errno_message("recv"));
        }
        done += static_cast<std::size_t>(n);
    }
    return {};
}

} // namespace

Expected<SocketPair> make_socket_pair() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
        return make_error(Errc::io, errno_message("socketpair"));
    }
    return SocketPair{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

Expected<void> send_message(int socket, std::string_view body, std::span<const int> fds) {
    if (fds.size() > k_max_message_fds || body.size() > k_max_message_bytes) {
        return make_error(Errc::internal, "send_message: message too large");
    }
    const auto length = static_cast<std::uint32_t>(body.size());
    std::array<char, 4> header{};
    std::memcpy(header.data(), &length, sizeof length);

    std::array<iovec, 2> parts{iovec{header.data(), header.size()},
                               iovec{const_cast<char*>(body.data()), body.size()}};
    alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int) * k_max_message_fds)> control{};
    msghdr message{};
    message.msg_iov = parts.data();
    message.msg_iovlen = parts.size();
    if (!fds.empty()) {
        message.msg_control = control.data();
        message.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
        cmsghdr* entry = CMSG_FIRSTHDR(&message);
        entry->cmsg_level = SOL_SOCKET;
        entry->cmsg_type = SCM_RIGHTS;
        entry->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
        std::memcpy(CMSG_DATA(entry), fds.data(), sizeof(int) * fds.size());
    }
    std::size_t sent_total = 0;
    const std::size_t total = header.size() + body.size();
    while (sent_total < total) {
        const ssize_t sent = ::sendmsg(socket, &message, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR) {
                continue;
            }
            return make_error(Errc::io, errno_message("sendmsg"));
        }
        sent_total += static_cast<std::size_t>(sent);
        // The descriptors went with the first bytes; send what is left without them.
        message.msg_control = nullptr;
        message.msg_controllen = 0;
        auto skip = static_cast<std::size_t>(sent);
        while (skip > 0 && message.msg_iovlen > 0) {
            const std::size_t step = std::min(skip, message.msg_iov->iov_len);
            message.msg_iov->iov_base = static_cast<char*>(message.msg_iov->iov_base) + step;
            message.msg_iov->iov_len -= step;
            skip -= step;
            if (message.msg_iov->iov_len == 0) {
                ++message.msg_iov;
                --message.msg_iovlen;
            }
        }
    }
    return {};
}

Expected<void> wait_for_message(int socket, std::chrono::milliseconds timeout) {
    return wait_readable(socket, Clock::now() + timeout);
}

Expected<FdMessage> receive_message(int socket, std::optional<std::chrono::milliseconds> timeout) {
    std::optional<Clock::time_point> deadline;
    if (timeout) {
        deadline = Clock::now() + *timeout;
    }
    if (auto ready = wait_readable(socket, deadline); !ready) {
        return std::unexpected(ready.error());
    }
    FdMessage result;
    std::array<char, 4> header{};
    iovec part{header.data(), header.size()};
    alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int) * k_max_message_fds)> control{};
    msghdr message{};
    message.msg_iov = &part;
    message.msg_iovlen = 1;
    message.msg_control = control.data();
    message.msg_controllen = control.size();
    ssize_t got = -1;
    do {
        got = ::recvmsg(socket, &message, MSG_CMSG_CLOEXEC);
    } while (got < 0 && errno == EINTR);
    if (got < 0) {
        return make_error(Errc::io, errno_message("recvmsg"));
    }
    for (cmsghdr* entry = CMSG_FIRSTHDR(&message); entry != nullptr; entry = CMSG_NXTHDR(&message, entry)) {
        if (entry->cmsg_level == SOL_SOCKET && entry->cmsg_type == SCM_RIGHTS) {
            const std::size_t count = (entry->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (std::size_t i = 0; i < count; ++i) {
                int fd = -1;
                std::memcpy(&fd, CMSG_DATA(entry) + i * sizeof(int), sizeof fd);
                result.fds.emplace_back(fd);
            }
        }
    }
    if (got == 0) {
        return make_error(Errc::not_found, "the peer closed the connection");
    }
    if ((message.msg_flags & MSG_CTRUNC) != 0) {
        return make_error(Errc::corrupt, "a message carried more descriptors than allowed");
    }
    if (auto rest = read_exactly(socket, std::span(header).subspan(static_cast<std::size_t>(got)), deadline);
        !rest) {
        return std::unexpected(rest.error());
    }
    std::uint32_t length = 0;
    std::memcpy(&length, header.data(), sizeof length);
    if (length > k_max_message_bytes) {
        return make_error(Errc::corrupt,
                          "a message of " + std::to_string(length) + " bytes is over the limit");
    }
    result.body.resize(length);
    if (auto body = read_exactly(socket, result.body, deadline); !body) {
        return std::unexpected(body.error());
    }
    return result;
}

} // namespace coldscan
